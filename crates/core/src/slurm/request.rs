//! What a launch asks SLURM for: a GPU request ([`GpuRequest`]), a batch job request
//! ([`JobRequest`]) checked against the cluster before it is submitted ([`check_request`]), the
//! app's form for it ([`SlurmRequestForm`]), and pending reasons in words.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{ClusterView, GpuFlag, GpuPool, SlurmDefaults, SlurmError, format_time, parse_time};

/// A GPU request: `count` GPUs of `gpu_type` (any type when `None`) on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct GpuRequest {
    /// GPU type as the cluster names it (`a100`), or any.
    pub gpu_type: Option<String>,
    /// How many, at least 1.
    pub count: u32,
}

impl std::str::FromStr for GpuRequest {
    type Err = SlurmError;
    /// `N`, `TYPE:N` or `TYPE` (one GPU of that type); a leading `gpu:` is allowed.
    fn from_str(s: &str) -> Result<Self, SlurmError> {
        let s = s.trim();
        let s = s.strip_prefix("gpu:").unwrap_or(s);
        let bad = || {
            SlurmError::Parse(format!(
                "cannot read the GPU request {s:?}: write [TYPE:]N, e.g. `v100:1` or `2`"
            ))
        };
        let (ty, n) = match s.rsplit_once(':') {
            Some((t, n)) => (Some(t), n),
            None if s.chars().all(|c| c.is_ascii_digit()) => (None, s),
            None => (Some(s), "1"),
        };
        let count: u32 = n.parse().map_err(|_| bad())?;
        if count == 0 || ty.is_some_and(|t| t.is_empty() || t.contains([':', ',', ' '])) {
            return Err(bad());
        }
        Ok(GpuRequest {
            gpu_type: ty.map(str::to_string),
            count,
        })
    }
}

impl fmt::Display for GpuRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.gpu_type {
            Some(t) => write!(f, "{t}:{}", self.count),
            None => write!(f, "{}", self.count),
        }
    }
}

impl GpuRequest {
    /// The `sbatch` argument for this request in `style`.
    pub fn sbatch_arg(&self, style: GpuFlag) -> String {
        match style {
            GpuFlag::Gres => format!("--gres=gpu:{self}"),
            GpuFlag::GpusPerNode => format!("--gpus-per-node={self}"),
            GpuFlag::Gpus => format!("--gpus={self}"),
        }
    }
}

/// A batch job request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobRequest {
    /// Partition; `None`: the default partition.
    pub partition: Option<String>,
    /// Account.
    pub account: Option<String>,
    /// Time limit in seconds; `None`: the partition's DefaultTime.
    pub time_secs: Option<u64>,
    /// GPUs.
    pub gpus: Option<GpuRequest>,
    /// How the GPU request is written.
    pub gpu_flag: GpuFlag,
    /// Extra `#SBATCH` lines.
    pub sbatch_lines: Vec<String>,
    /// Shell lines run in the job before JupyterLab.
    pub setup: Vec<String>,
}

impl JobRequest {
    /// `defaults`, with the launch's own choices on top.
    ///
    /// # Errors
    /// [`SlurmError::Parse`] for a time or GPU request that cannot be read.
    pub fn from_defaults(
        defaults: &SlurmDefaults,
        partition: Option<String>,
        account: Option<String>,
        time: Option<String>,
        gpus: Option<String>,
    ) -> Result<JobRequest, SlurmError> {
        let time = time.or_else(|| defaults.time.clone());
        let gpus = gpus.or_else(|| defaults.gpus.clone());
        Ok(JobRequest {
            partition: partition.or_else(|| defaults.partition.clone()),
            account: account.or_else(|| defaults.account.clone()),
            time_secs: match time {
                Some(t) => Some(parse_time(&t)?.ok_or_else(|| {
                    SlurmError::Parse("ask for a time limit, not UNLIMITED".into())
                })?),
                None => None,
            },
            gpus: gpus
                .filter(|g| !matches!(g.trim(), "" | "0" | "none"))
                .map(|g| g.parse())
                .transpose()?,
            gpu_flag: defaults.gpu_flag,
            sbatch_lines: defaults.sbatch_lines.clone(),
            setup: defaults.setup.clone(),
        })
    }

    /// The `sbatch` options for this request (no secrets: all of it is visible to everyone
    /// through `squeue`).
    pub fn sbatch_args(&self) -> Vec<String> {
        let mut a = Vec::new();
        if let Some(p) = &self.partition {
            a.push(format!("--partition={p}"));
        }
        if let Some(acc) = &self.account {
            a.push(format!("--account={acc}"));
        }
        if let Some(t) = self.time_secs {
            a.push(format!("--time={}", format_time(t)));
        }
        if let Some(g) = &self.gpus {
            a.push(g.sbatch_arg(self.gpu_flag));
        }
        a
    }
}

/// Checks `req` against `view` before anything is submitted: the partition exists and is up,
/// the time fits its MaxTime (SLURM accepts a longer one and the job then waits forever with
/// `PartitionTimeLimit`), the GPU type exists in the partition and the count fits one node.
///
/// # Errors
/// [`SlurmError::Refused`] saying what to change.
pub fn check_request(req: &JobRequest, view: &ClusterView) -> Result<(), SlurmError> {
    let names = || {
        view.partitions
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let part = match &req.partition {
        Some(name) => view
            .partitions
            .iter()
            .find(|p| &p.name == name)
            .ok_or_else(|| SlurmError::Refused {
                field: "partition",
                message: format!("there is no partition {name:?}; partitions: {}", names()),
            })?,
        None => view
            .default_partition()
            .ok_or_else(|| SlurmError::Refused {
                field: "partition",
                message: format!(
                    "the cluster has no default partition: choose one with --partition ({})",
                    names()
                ),
            })?,
    };
    if part.state != "UP" {
        return Err(SlurmError::Refused {
            field: "partition",
            message: format!(
                "partition {} is {} and takes no jobs now; choose another ({})",
                part.name,
                part.state,
                names()
            ),
        });
    }
    if let (Some(t), Some(max)) = (req.time_secs, part.max_time_secs)
        && t > max
    {
        return Err(SlurmError::Refused {
            field: "time",
            message: format!(
                "time {} is over partition {}'s limit of {} (SLURM would queue the job forever); ask for --time {} or less, or another partition",
                format_time(t),
                part.name,
                format_time(max),
                format_time(max)
            ),
        });
    }
    if let Some(g) = &req.gpus {
        let pools: Vec<GpuPool> = view
            .pools()
            .into_iter()
            .filter(|p| p.partition == part.name)
            .collect();
        if pools.is_empty() {
            return Err(SlurmError::Refused {
                field: "gpus",
                message: format!(
                    "partition {} has no GPUs; choose a partition with GPUs",
                    part.name
                ),
            });
        }
        let list = pools
            .iter()
            .map(|p| {
                format!(
                    "{} (up to {} per node)",
                    if p.gpu_type.is_empty() {
                        "untyped"
                    } else {
                        &p.gpu_type
                    },
                    p.per_node_max
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let max = match &g.gpu_type {
            Some(t) => pools
                .iter()
                .find(|p| &p.gpu_type == t)
                .map(|p| p.per_node_max)
                .ok_or_else(|| SlurmError::Refused {
                    field: "gpus",
                    message: format!(
                        "partition {} has no GPU of type {t:?}; it has {list}",
                        part.name
                    ),
                })?,
            None => view
                .nodes
                .iter()
                .filter(|n| n.partitions.contains(&part.name))
                .map(|n| n.gpus.values().sum::<u32>())
                .max()
                .unwrap_or(0),
        };
        if g.count > max {
            return Err(SlurmError::Refused {
                field: "gpus",
                message: format!(
                    "{} GPUs{} do not fit on one node of partition {}: at most {max}; it has {list}",
                    g.count,
                    g.gpu_type
                        .as_deref()
                        .map(|t| format!(" of type {t}"))
                        .unwrap_or_default(),
                    part.name
                ),
            });
        }
    }
    Ok(())
}

/// A SLURM pending reason in words.
pub fn reason_in_words(reason: &str) -> String {
    let r = reason.trim();
    let words = match r {
        "None" | "" => "no reason given",
        "Priority" => "other jobs have priority",
        "Resources" => "waiting for resources (the GPUs asked for are in use)",
        "Dependency" => "waiting for a job it depends on",
        "DependencyNeverSatisfied" => "a job it depends on failed, so it can never start",
        "PartitionTimeLimit" => "its time limit is over the partition's MaxTime",
        "PartitionNodeLimit" => "it asks for more nodes than the partition allows",
        "PartitionDown" => "the partition is down",
        "PartitionInactive" => "the partition is inactive",
        "ReqNodeNotAvail" => "a node it needs is not available (drained, down or reserved)",
        "BeginTime" => "its start time has not come yet",
        "JobHeldUser" => "held by you (scontrol release)",
        "JobHeldAdmin" => "held by an administrator",
        "InvalidAccount" => "the account is invalid",
        "InvalidQOS" => "the QOS is invalid",
        "BadConstraints" => "its constraints cannot be met by any node",
        "Reservation" => "waiting for a reservation",
        "NodeDown" => "a node it needs is down",
        "Cleaning" => "being cleaned up after a restart",
        "Licenses" => "waiting for licenses",
        "TimeLimit" => "the time limit was reached",
        _ if r.starts_with("ReqNodeNotAvail") => {
            "a node it needs is not available (drained, down or reserved)"
        }
        _ if r.starts_with("QOS") || r.starts_with("Assoc") => {
            return format!("{r}: a QOS or association limit holds it");
        }
        _ => return r.to_string(),
    };
    words.to_string()
}

/// For a pending reason that will not clear by itself: what to change. `None` for reasons that
/// clear as other jobs end.
pub fn never_clears(reason: &str) -> Option<String> {
    let r = reason.trim();
    let advice = match r {
        "PartitionTimeLimit" => "ask for a shorter --time (at most the partition's MaxTime)",
        "PartitionNodeLimit" => "ask for fewer nodes or another partition",
        "DependencyNeverSatisfied" => "remove the dependency from the extra #SBATCH lines",
        "InvalidAccount" => {
            "use an account you belong to (--account; `sacctmgr show assoc user=$USER`)"
        }
        "InvalidQOS" => "use a QOS your account may use",
        "BadConstraints" => "remove or change the --constraint in the extra #SBATCH lines",
        _ if r.starts_with("ReqNodeNotAvail") => {
            "choose another partition or leave out the node list"
        }
        _ if (r.starts_with("QOS") || r.starts_with("Assoc"))
            && (r.contains("PerJob") || r.contains("MaxWall") || r.contains("MinWall")) =>
        {
            "the request is over a QOS/association limit per job: ask for less time or fewer GPUs"
        }
        _ => return None,
    };
    Some(format!("{} — {advice}", reason_in_words(r)))
}

/// The launch form as a front sends it (the app's GPU step): each field as typed. Empty strings
/// count as not given.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct SlurmRequestForm {
    /// Partition; `null`: the cluster's default.
    pub partition: Option<String>,
    /// GPU type; `null`: any type.
    pub gpu_type: Option<String>,
    /// How many GPUs (0: none).
    pub gpu_count: u32,
    /// Time limit as SLURM writes it (`90` minutes, `2:00:00`); `null`: the partition's default.
    pub time: Option<String>,
    /// Account; `null`: the user's default.
    pub account: Option<String>,
}

impl SlurmRequestForm {
    /// The form as a request, with the host's saved `defaults` (GPU flag, extra `#SBATCH`
    /// lines, setup) around it.
    ///
    /// # Errors
    /// [`SlurmError::Form`] naming every unreadable field by its form name (`time`, `gpuCount`,
    /// `gpuType`) with what to change.
    pub fn to_request(&self, defaults: &SlurmDefaults) -> Result<JobRequest, SlurmError> {
        fn given(v: &Option<String>) -> Option<&str> {
            v.as_deref().map(str::trim).filter(|v| !v.is_empty())
        }
        let mut fields = Vec::new();
        let mut refuse = |field: &'static str, message: String| fields.push((field, message));
        let time_secs = match given(&self.time).map(parse_time) {
            None => None,
            Some(Ok(Some(s))) => Some(s),
            Some(Ok(None)) => {
                refuse("time", "ask for a time limit, not UNLIMITED".into());
                None
            }
            Some(Err(e)) => {
                refuse("time", e.to_string());
                None
            }
        };
        let gpus = match (self.gpu_count, given(&self.gpu_type)) {
            (0, None) => None,
            (0, Some(_)) => {
                refuse("gpuCount", "ask for at least 1 GPU of this type".into());
                None
            }
            (n, ty) => {
                let text = match ty {
                    Some(t) => format!("{t}:{n}"),
                    None => n.to_string(),
                };
                match text.parse::<GpuRequest>() {
                    Ok(g) => Some(g),
                    Err(e) => {
                        refuse("gpuType", e.to_string());
                        None
                    }
                }
            }
        };
        if !fields.is_empty() {
            return Err(SlurmError::Form(fields));
        }
        Ok(JobRequest {
            partition: given(&self.partition).map(str::to_string),
            account: given(&self.account).map(str::to_string),
            time_secs,
            gpus,
            gpu_flag: defaults.gpu_flag,
            sbatch_lines: defaults.sbatch_lines.clone(),
            setup: defaults.setup.clone(),
        })
    }

    /// A refusal of the request ([`check_request`], the launch) with the form's field names:
    /// the request's `gpus` is the form's `gpuType`.
    pub fn form_names(e: SlurmError) -> SlurmError {
        match e {
            SlurmError::Refused {
                field: "gpus",
                message,
            } => SlurmError::Refused {
                field: "gpuType",
                message,
            },
            e => e,
        }
    }
}
