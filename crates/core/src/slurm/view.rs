//! The cluster as the scheduler reports it: `scontrol show node -d -o`, `scontrol show partition
//! -o` and `squeue` text read into a [`ClusterView`], and [`detect`]ing a SLURM login node.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{SlurmError, parse_time};
use crate::ssh::Connection;

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
