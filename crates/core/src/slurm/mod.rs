//! SLURM login nodes: detecting one, the cluster's GPUs as the scheduler reports them, a GPU
//! request checked before it is submitted, and JupyterLab as a batch job ([`job`]).
//!
//! What it owns: reading `scontrol show node -d -o` / `scontrol show partition -o` / `squeue`
//! text output (not `--json`, whose schema changes between Slurm releases) into a
//! [`ClusterView`], checking a [`JobRequest`] against it ([`check_request`]), and the job's
//! life (submit, poll, cancel) in [`job`]. What it leaves out: the SSH connection (see
//! [`crate::ssh`]) and the local forward to the node (see [`crate::tunnel`]).

pub mod job;
pub mod launch;

use std::{collections::BTreeMap, fmt};

use serde::{Deserialize, Serialize};

use crate::ssh::{Connection, SshError};

/// What went wrong talking to SLURM or with a request.
#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    /// The connection failed.
    #[error(transparent)]
    Ssh(#[from] SshError),
    /// A SLURM command failed; `stderr` is its message.
    #[error("`{command}` failed on the login node: {stderr}")]
    Command {
        /// The command's name (e.g. `sbatch`).
        command: String,
        /// What it printed on stderr (trimmed).
        stderr: String,
    },
    /// The login node has no SLURM client or the controller does not answer.
    #[error("{0}")]
    NotSlurm(String),
    /// The request cannot be met as written; the message says what to change.
    #[error("{message}")]
    Refused {
        /// The request's field to change: `partition`, `time` or `gpus`.
        field: &'static str,
        /// What is wrong and what to change.
        message: String,
    },
    /// A value (time, GPU request) could not be read.
    #[error("{0}")]
    Parse(String),
    /// The job ended before JupyterLab was ready; `log_tail` is the end of its log.
    #[error("job {job_id} {state}{}{}", reason_suffix(.reason), log_suffix(.log_tail))]
    JobEnded {
        /// The job id.
        job_id: String,
        /// Its final state (`FAILED`, `CANCELLED`, `TIMEOUT`, …).
        state: String,
        /// SLURM's reason, if any.
        reason: Option<String>,
        /// The last lines of the job's log.
        log_tail: String,
    },
    /// The job waits for something that will not change by itself; the message says what to
    /// change. The job was cancelled.
    #[error("job {job_id} cannot start: {advice} (it was cancelled)")]
    NeverStarts {
        /// The job id.
        job_id: String,
        /// SLURM's reason code.
        reason: String,
        /// What to change.
        advice: String,
    },
    /// Waiting ended by the caller (Ctrl-C, Cancel): before anything was queued (`job_id`
    /// `None`), or the job was cancelled and ended in `state`.
    #[error("{}", cancelled_words(.job_id, .state))]
    Cancelled {
        /// The job, when one was queued.
        job_id: Option<String>,
        /// Its final state after scancel (`CANCELLED`).
        state: Option<String>,
    },
    /// JupyterLab did not answer in time.
    #[error("{0}")]
    Timeout(String),
    /// No Tunnelbook job (or not the one asked for) runs with JupyterLab listening; the message
    /// says what there is and what to do.
    #[error("{0}")]
    NoJob(String),
}

fn reason_suffix(r: &Option<String>) -> String {
    match r {
        Some(r) if r != "None" => format!(" ({})", reason_in_words(r)),
        _ => String::new(),
    }
}

fn cancelled_words(job_id: &Option<String>, state: &Option<String>) -> String {
    match (job_id, state) {
        (Some(id), Some(state)) => format!("job {id} cancelled ({state})"),
        (Some(id), None) => format!("job {id} cancelled"),
        _ => "cancelled before anything was queued".into(),
    }
}

fn log_suffix(t: &str) -> String {
    if t.trim().is_empty() {
        String::new()
    } else {
        format!("; end of its log:\n{}", t.trim_end())
    }
}

pub use crate::profile::scheduler::{GpuFlag, Scheduler, SlurmDefaults};

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

/// Reads a SLURM time (`MM`, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM`, `D-HH:MM:SS`) as seconds;
/// `UNLIMITED`/`INFINITE` are `None` inside `Ok`.
///
/// # Errors
/// [`SlurmError::Parse`] for anything else.
pub fn parse_time(s: &str) -> Result<Option<u64>, SlurmError> {
    let s = s.trim();
    if matches!(s, "UNLIMITED" | "INFINITE" | "Partition_Limit") {
        return Ok(None);
    }
    let bad = || {
        SlurmError::Parse(format!(
            "cannot read the time {s:?}: write minutes (`90`), `H:MM:SS` or `D-HH:MM:SS`"
        ))
    };
    let num = |p: &str| p.parse::<u64>().map_err(|_| bad());
    let (days, rest) = match s.split_once('-') {
        Some((d, r)) => (Some(num(d)?), r),
        None => (None, s),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let secs = match (days, parts.as_slice()) {
        (None, [m]) => num(m)? * 60,
        (None, [m, sec]) => num(m)? * 60 + num(sec)?,
        (None, [h, m, sec]) => num(h)? * 3600 + num(m)? * 60 + num(sec)?,
        (Some(d), [h]) => d * 86400 + num(h)? * 3600,
        (Some(d), [h, m]) => d * 86400 + num(h)? * 3600 + num(m)? * 60,
        (Some(d), [h, m, sec]) => d * 86400 + num(h)? * 3600 + num(m)? * 60 + num(sec)?,
        _ => return Err(bad()),
    };
    Ok(Some(secs))
}

/// Seconds as SLURM writes a time (`D-HH:MM:SS`, days only when non-zero).
pub fn format_time(secs: u64) -> String {
    let (d, h, m, s) = (
        secs / 86400,
        secs % 86400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    if d > 0 {
        format!("{d}-{h:02}:{m:02}:{s:02}")
    } else {
        format!("{h}:{m:02}:{s:02}")
    }
}

/// `Key=Value` fields of one `scontrol … -o` line. Values may hold spaces (`OS=Linux 6.1 …`,
/// `Reason=…`): a word without `=` joins the value before it.
pub fn parse_fields(line: &str) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut last: Option<String> = None;
    for word in line.split_whitespace() {
        let key_like = word.split_once('=').filter(|(k, _)| {
            !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '/' | '.'))
        });
        match (key_like, &last) {
            (Some((k, v)), _) => {
                out.insert(k.to_string(), v.to_string());
                last = Some(k.to_string());
            }
            (None, Some(k)) => {
                if let Some(v) = out.get_mut(k) {
                    v.push(' ');
                    v.push_str(word);
                }
            }
            (None, None) => {}
        }
    }
    out
}

/// One GRES entry: `gpu:a100:2(S:0-1)` or `gpu:2` or `gpu:a100:1(IDX:0)`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GresEntry {
    name: String,
    gpu_type: Option<String>,
    count: u32,
}

/// Splits a GRES list on the commas outside parentheses (`gpu:a100:2(IDX:0,2),gpu:v100:0`).
fn split_gres(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out.into_iter().filter(|p| !p.is_empty()).collect()
}

fn parse_gres(s: &str) -> Vec<GresEntry> {
    if matches!(s.trim(), "" | "(null)" | "N/A") {
        return Vec::new();
    }
    split_gres(s.trim())
        .into_iter()
        .filter_map(|e| {
            let e = e.split('(').next().unwrap_or(e);
            let parts: Vec<&str> = e.split(':').collect();
            let (name, ty, n) = match parts.as_slice() {
                [name, n] if n.parse::<u32>().is_ok() => (*name, None, *n),
                [name, ty, n] => (*name, Some(*ty), *n),
                [name, ty] => (*name, Some(*ty), "1"),
                [name] => (*name, None, "1"),
                _ => return None,
            };
            // Counts may carry a unit suffix for big GRES (`4K`); GPUs never do.
            let count = n.parse::<u32>().ok()?;
            Some(GresEntry {
                name: name.to_string(),
                gpu_type: ty.map(str::to_string),
                count,
            })
        })
        .collect()
}

/// One compute node as `scontrol show node -d -o` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct Node {
    /// `NodeName`.
    pub name: String,
    /// `State` as written (`IDLE`, `MIXED`, `IDLE+DRAIN`, `DOWN*`, …).
    pub state: String,
    /// Partitions the node belongs to.
    pub partitions: Vec<String>,
    /// GPUs per type (`""` for untyped GPUs).
    pub gpus: BTreeMap<String, u32>,
    /// GPUs in use per type.
    pub gpus_used: BTreeMap<String, u32>,
}

impl Node {
    /// Whether new jobs can start on the node: not drained, down, reserved, failing or in
    /// maintenance.
    pub fn available(&self) -> bool {
        let s = self.state.to_ascii_uppercase();
        !(s.ends_with('*')
            || [
                "DRAIN", "DOWN", "RESERVED", "FAIL", "MAINT", "INVAL", "FUTURE", "POWER", "REBOOT",
            ]
            .iter()
            .any(|w| s.contains(w)))
    }
}

fn gpu_counts(entries: &[GresEntry]) -> BTreeMap<String, u32> {
    let mut m = BTreeMap::new();
    for e in entries.iter().filter(|e| e.name == "gpu") {
        *m.entry(e.gpu_type.clone().unwrap_or_default()).or_insert(0) += e.count;
    }
    m
}

/// Reads `scontrol show node -d -o` (one node a line).
pub fn parse_nodes(text: &str) -> Vec<Node> {
    text.lines()
        .filter(|l| l.starts_with("NodeName="))
        .map(|l| {
            let f = parse_fields(l);
            let get = |k: &str| f.get(k).cloned().unwrap_or_default();
            Node {
                name: get("NodeName"),
                state: get("State"),
                partitions: get("Partitions")
                    .split(',')
                    .filter(|p| !p.is_empty() && *p != "(null)")
                    .map(str::to_string)
                    .collect(),
                gpus: gpu_counts(&parse_gres(&get("Gres"))),
                gpus_used: gpu_counts(&parse_gres(&get("GresUsed"))),
            }
        })
        .collect()
}

/// One partition as `scontrol show partition -o` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct Partition {
    /// `PartitionName`.
    pub name: String,
    /// Whether jobs go here without `-p`.
    pub default: bool,
    /// `State` (`UP`, `DOWN`, `DRAIN`, `INACTIVE`).
    pub state: String,
    /// `MaxTime` in seconds; `None`: unlimited.
    pub max_time_secs: Option<u64>,
    /// `DefaultTime` in seconds; `None`: not set (MaxTime applies).
    pub default_time_secs: Option<u64>,
}

/// Reads `scontrol show partition -o`.
pub fn parse_partitions(text: &str) -> Vec<Partition> {
    text.lines()
        .filter(|l| l.starts_with("PartitionName="))
        .map(|l| {
            let f = parse_fields(l);
            let get = |k: &str| f.get(k).cloned().unwrap_or_default();
            let time = |k: &str| {
                let v = get(k);
                if v == "NONE" || v.is_empty() {
                    None
                } else {
                    parse_time(&v).ok().flatten()
                }
            };
            Partition {
                name: get("PartitionName"),
                default: get("Default") == "YES",
                state: get("State"),
                max_time_secs: time("MaxTime"),
                default_time_secs: time("DefaultTime"),
            }
        })
        .collect()
}

/// GPUs of one type in one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct GpuPool {
    /// Partition name.
    pub partition: String,
    /// GPU type (`""` for untyped).
    pub gpu_type: String,
    /// GPUs on all the partition's nodes.
    pub total: u32,
    /// GPUs not in use on nodes that take jobs now (a hint: CPUs, memory, QOS and priority
    /// decide too).
    pub idle: u32,
    /// Most GPUs of this type one node has.
    pub per_node_max: u32,
}

/// A job of the user's, from `squeue --me`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct JobRow {
    /// Job id.
    pub id: String,
    /// Job name.
    pub name: String,
    /// Partition.
    pub partition: String,
    /// State (`PENDING`, `RUNNING`, …).
    pub state: String,
    /// Reason code (`None`, `Resources`, …).
    pub reason: String,
    /// Time left as SLURM writes it.
    pub time_left: String,
    /// Nodes.
    pub nodes: String,
    /// Requested TRES per node (`gres:gpu:v100:1`).
    pub tres_per_node: String,
    /// When the job ends at the latest (its time limit), as SLURM writes it
    /// (`2026-11-30T21:45:00`); for a pending job SLURM's estimate, `N/A` or empty when unknown.
    pub end_time: String,
}

/// The `squeue -o` format [`parse_jobs`] reads: id, name, partition, state, reason, time left,
/// nodes, TRES per node, end time.
pub const SQUEUE_FORMAT: &str = "%i|%j|%P|%T|%r|%L|%N|%b|%e";

/// What `squeue --me` prints for [`JobRow`]s.
pub const SQUEUE_ME: &str = "squeue --me -h -o '%i|%j|%P|%T|%r|%L|%N|%b|%e'";

/// Reads [`SQUEUE_ME`] output.
pub fn parse_jobs(text: &str) -> Vec<JobRow> {
    text.lines()
        .filter_map(|l| {
            let p: Vec<&str> = l.trim().split('|').collect();
            if p.len() < 8 {
                return None;
            }
            Some(JobRow {
                id: p[0].into(),
                name: p[1].into(),
                partition: p[2].into(),
                state: p[3].into(),
                reason: p[4].into(),
                time_left: p[5].into(),
                nodes: p[6].into(),
                tres_per_node: p[7].into(),
                end_time: p.get(8).copied().unwrap_or("").into(),
            })
        })
        .collect()
}

/// The cluster as the scheduler sees it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ClusterView {
    /// Partitions, in `scontrol`'s order.
    pub partitions: Vec<Partition>,
    /// Nodes.
    pub nodes: Vec<Node>,
    /// The user's own jobs.
    pub jobs: Vec<JobRow>,
}

impl ClusterView {
    /// Reads the three command outputs.
    pub fn parse(nodes: &str, partitions: &str, jobs: &str) -> ClusterView {
        ClusterView {
            partitions: parse_partitions(partitions),
            nodes: parse_nodes(nodes),
            jobs: parse_jobs(jobs),
        }
    }

    /// GPUs per partition and type (partitions in order, types sorted).
    pub fn pools(&self) -> Vec<GpuPool> {
        let mut out = Vec::new();
        for p in &self.partitions {
            let mut by_type: BTreeMap<String, GpuPool> = BTreeMap::new();
            for n in self.nodes.iter().filter(|n| n.partitions.contains(&p.name)) {
                for (ty, &count) in &n.gpus {
                    let pool = by_type.entry(ty.clone()).or_insert_with(|| GpuPool {
                        partition: p.name.clone(),
                        gpu_type: ty.clone(),
                        total: 0,
                        idle: 0,
                        per_node_max: 0,
                    });
                    pool.total += count;
                    pool.per_node_max = pool.per_node_max.max(count);
                    if n.available() {
                        let used = n.gpus_used.get(ty).copied().unwrap_or(0);
                        pool.idle += count.saturating_sub(used);
                    }
                }
            }
            out.extend(by_type.into_values());
        }
        out
    }

    /// The partition a job without `-p` goes to.
    pub fn default_partition(&self) -> Option<&Partition> {
        self.partitions.iter().find(|p| p.default)
    }
}

/// The one command that prints what [`ClusterView::parse`] reads, sections split by a marker.
const VIEW_SCRIPT: &str = "scontrol show node -d -o; echo '@@tb@@'; scontrol show partition -o; echo '@@tb@@'; squeue --me -h -o '%i|%j|%P|%T|%r|%L|%N|%b|%e'";

/// Reads the cluster view over `conn` in one round trip.
///
/// # Errors
/// [`SlurmError::Command`] when `scontrol` fails; connection errors.
pub async fn cluster_view(conn: &Connection) -> Result<ClusterView, SlurmError> {
    let out = conn.exec_named("scontrol", VIEW_SCRIPT).await?;
    let text = out.stdout_text();
    let parts: Vec<&str> = text.split("@@tb@@\n").collect();
    if parts.len() < 3 || !parts[0].contains("NodeName=") {
        return Err(SlurmError::Command {
            command: "scontrol show node".into(),
            stderr: out.stderr_text().trim().to_string(),
        });
    }
    Ok(ClusterView::parse(parts[0], parts[1], parts[2]))
}

/// Whether the login node behind `conn` is a SLURM login node: `sbatch` on the login PATH and
/// `scontrol ping` reporting a controller UP. `Ok(Err(why))` says why not.
///
/// # Errors
/// Connection errors only.
pub async fn detect(conn: &Connection) -> Result<Result<(), String>, SlurmError> {
    let out = conn
        .exec_named(
            "scontrol ping",
            "command -v sbatch >/dev/null 2>&1 || { echo no-sbatch; exit 0; }; scontrol ping 2>&1",
        )
        .await?;
    let text = out.stdout_text();
    if text.trim() == "no-sbatch" {
        return Ok(Err("`sbatch` is not on the login PATH".into()));
    }
    if text.contains(" is UP") {
        Ok(Ok(()))
    } else {
        Ok(Err(format!(
            "`scontrol ping` finds no controller up: {}",
            text.trim()
        )))
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

#[cfg(test)]
mod tests;
