//! GPUs on a host and who is using them: the model, the one-round-trip `nvidia-smi` query and its
//! parser, NVML for this computer, the free ranking and the polling stream.
//!
//! What it owns: turning "a host" (an SSH [`Connection`] or this computer) into a
//! [`GpuSnapshot`] — every GPU with its MIG instances and every compute process with its user —
//! and choosing a GPU ([`GpuSnapshot::rank_free`], [`GpuSnapshot::select`]) as the value for
//! `CUDA_VISIBLE_DEVICES`. What it leaves out: launching anything on the chosen GPU
//! (`jupyter`), rendering (the CLI and the app), and reconnecting when a poll fails (`session`).
//! A host without NVIDIA GPUs is a valid snapshot with [`GpuSnapshot::no_gpu_reason`], not an
//! error; errors are for a broken driver, a failed connection or an unreadable answer.

mod container;
mod fields;
mod local;
mod query;
mod rank;
mod report;
mod text;
mod watch;

use serde::{Deserialize, Serialize};

pub use self::{
    local::{LocalGpus, local},
    query::{
        GpuQuery, QUERY_TIMEOUT, REMOTE_SCRIPT, REPORT_CAP_BYTES, SECTION_CAP_BYTES, parse_report,
    },
    rank::{FreeRule, GpuChoice, GpuSelector},
    report::GpuReport,
    text::display_safe,
    watch::{DEFAULT_INTERVAL, GpuSource, watch},
};
use crate::ssh::{Connection, SshError};

/// Everything known about the GPUs of one host at one moment.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GpuSnapshot {
    /// The host the snapshot is of (the connection's destination, or `local`).
    pub host: String,
    /// The GPUs, in `nvidia-smi` index order.
    pub gpus: Vec<Gpu>,
    /// Every compute process on any GPU or MIG instance.
    pub processes: Vec<GpuProcess>,
    /// Why `gpus` is empty when there are no GPUs ("no NVIDIA GPU found on HOST"); `None` when
    /// GPUs were found.
    pub no_gpu_reason: Option<String>,
    /// The user the query ran as; processes of this user have [`GpuProcess::own`] set.
    pub current_user: Option<String>,
    /// GPUs the driver knows of but cannot read at all (fallen off the bus, `GPU is lost`,
    /// `Unable to determine the device handle…`): shown with their reason, never chosen.
    #[serde(default)]
    pub unreadable: Vec<UnreadableGpu>,
    /// Things that went wrong without making the snapshot wrong, in words (a process list that
    /// could not be read, an answer cut at [`SECTION_CAP_BYTES`], query fields the driver does
    /// not know). Display-safe.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// A GPU nvidia-smi (or NVML) reports but cannot read: nothing about it can be trusted, so it is
/// listed with nvidia-smi's own words and never offered.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnreadableGpu {
    /// Its index, when the driver still gave one.
    pub index: Option<u32>,
    /// Its PCI bus id (`0000:0B:00.0`), when the message names it.
    pub pci_bus_id: Option<String>,
    /// What nvidia-smi or NVML said, display-safe (control characters removed).
    pub message: String,
}

/// One physical GPU. Every measured field is optional: drivers answer `[N/A]` or
/// `[Not Supported]` for some of them depending on the card and its mode.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gpu {
    /// The index `nvidia-smi` and NVML give it (PCI bus order).
    pub index: u32,
    /// `GPU-…` UUID; stable across reboots and the best value for `CUDA_VISIBLE_DEVICES`.
    pub uuid: String,
    /// Marketing name, e.g. `NVIDIA H100 80GB HBM3`.
    pub name: Option<String>,
    /// Total memory, MiB.
    pub memory_total_mib: Option<u64>,
    /// Used memory, MiB.
    pub memory_used_mib: Option<u64>,
    /// Free memory, MiB.
    pub memory_free_mib: Option<u64>,
    /// GPU utilization over the last sample period, percent (`None` with MIG enabled).
    pub utilization_gpu: Option<u32>,
    /// Memory controller utilization, percent.
    pub utilization_memory: Option<u32>,
    /// Core temperature, °C.
    pub temperature_c: Option<u32>,
    /// Current power draw, W.
    pub power_draw_w: Option<f64>,
    /// Enforced power limit, W.
    pub power_limit_w: Option<f64>,
    /// Whether MIG mode is currently enabled; `None` on cards without MIG.
    pub mig_enabled: Option<bool>,
    /// PCI bus id, e.g. `00000000:00:06.0`.
    pub pci_bus_id: Option<String>,
    /// Compute mode as the driver names it (`Default`, `Exclusive_Process`, `Prohibited`).
    pub compute_mode: Option<String>,
    /// MIG instances (empty unless MIG is enabled and instances were created).
    pub mig: Vec<MigInstance>,
    /// Why this GPU cannot be trusted although it answered: a field read as `ERR!`,
    /// `[Unknown Error]` or `[GPU is lost]` (e.g. `memory.used is "[Unknown Error]"`). A GPU with
    /// a problem is shown with it and never chosen; `None` for a healthy GPU.
    #[serde(default)]
    pub problem: Option<String>,
}

/// One MIG instance of a GPU, usable on its own through its UUID.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MigInstance {
    /// `MIG-…` UUID (or the legacy `MIG-GPU-…/gi/ci` form on old drivers).
    pub uuid: String,
    /// Profile, e.g. `3g.40gb`.
    pub profile: Option<String>,
    /// The MIG device index within its GPU (`Device N` in `nvidia-smi -L`).
    pub device_index: Option<u32>,
}

/// One compute process on a GPU or MIG instance.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GpuProcess {
    /// UUID of the GPU (or MIG instance) the process runs on.
    pub gpu_uuid: String,
    /// Process id in the host's PID namespace.
    pub pid: u32,
    /// Owner; `None` when the process table could not tell (e.g. a container's PID namespace).
    pub user: Option<String>,
    /// The program, as the driver or the process table names it (never its arguments, which
    /// may hold tokens).
    pub command: Option<String>,
    /// GPU memory it holds, MiB.
    pub used_memory_mib: Option<u64>,
    /// Seconds since it started.
    pub running_secs: Option<u64>,
    /// Whether it belongs to [`GpuSnapshot::current_user`].
    pub own: bool,
    /// The container it runs in, from its cgroup (`docker 1a2b3c4d5e6f`, `podman …`,
    /// `kubernetes …`, `lxc NAME`); absent for a process on the host or when unreadable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub container: Option<String>,
}

/// What can go wrong while reading GPUs. "No GPU on this host" is not an error.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// The driver is broken or mismatched; `message` is nvidia-smi's (or NVML's) own line.
    #[error(
        "the NVIDIA driver on {host} is not working: \"{message}\". \
         A driver/library version mismatch usually goes away after a reboot; otherwise reinstall the driver."
    )]
    Driver {
        /// The host.
        host: String,
        /// The driver's own words.
        message: String,
    },
    /// The query ran but its answer could not be read.
    #[error("cannot read the GPU query's answer from {host}: {detail}")]
    Unreadable {
        /// The host.
        host: String,
        /// What was wrong, with an excerpt of the output.
        detail: String,
    },
    /// The query did not answer within its time limit (a hung `nvidia-smi`, e.g. while a GPU
    /// falls off the bus). Polling goes on; the last snapshot stays valid but stale.
    #[error(
        "nvidia-smi on {host} did not answer within {secs} s (the driver may be hung on a \
         failing GPU); try again, or check the host with nvidia-smi"
    )]
    TimedOut {
        /// The host.
        host: String,
        /// The time limit, seconds.
        secs: u64,
    },
    /// The SSH command failed.
    #[error(transparent)]
    Ssh(#[from] SshError),
    /// NVML failed on this computer for a reason other than "no driver".
    #[error("NVML failed on this computer: {0}")]
    Nvml(String),
    /// A GPU selector that is none of `auto`, `none`, an index or a `GPU-`/`MIG-` UUID.
    #[error(
        "\"{input}\" is not a GPU choice: use auto, none, a GPU index (0, 1, …) or a GPU-…/MIG-… UUID"
    )]
    InvalidSelector {
        /// What was given.
        input: String,
    },
    /// The selector names no GPU of the snapshot.
    #[error("{host} has no GPU {id}; valid choices: {}", valid.join(", "))]
    UnknownGpu {
        /// The host.
        host: String,
        /// The id asked for.
        id: String,
        /// Every index and UUID that would have been accepted.
        valid: Vec<String>,
    },
    /// The GPU asked for cannot be used: nvidia-smi cannot read it (`reason`).
    #[error("{id} on {host} cannot be used: {reason}; pick another GPU")]
    UnusableGpu {
        /// The host.
        host: String,
        /// The id asked for.
        id: String,
        /// Why, in words.
        reason: String,
    },
    /// `auto` found GPUs but none of them free.
    #[error("every GPU on {host} is in use; pick one explicitly (valid choices: {})", valid.join(", "))]
    NoFreeGpu {
        /// The host.
        host: String,
        /// Every index and UUID that could be picked explicitly.
        valid: Vec<String>,
    },
}

/// Reads the GPUs of the host behind `connection` with one remote command (a [`GpuQuery`] with a
/// fresh marker), within [`QUERY_TIMEOUT`]. The answer is capped at [`REPORT_CAP_BYTES`] before it
/// is parsed.
pub async fn snapshot(connection: &Connection) -> Result<GpuSnapshot, GpuError> {
    let host = connection.destination();
    let query = GpuQuery::for_host(host);
    let stdin = query.stdin();
    let run = connection.exec_with_stdin(query.command(), stdin.as_bytes());
    let output = match tokio::time::timeout(QUERY_TIMEOUT, run).await {
        Ok(output) => output?,
        Err(_) => {
            return Err(GpuError::TimedOut {
                host: host.to_string(),
                secs: QUERY_TIMEOUT.as_secs(),
            });
        }
    };
    let mut stdout = output.stdout;
    stdout.truncate(REPORT_CAP_BYTES);
    if output.status != Some(0) && stdout.is_empty() {
        return Err(GpuError::Unreadable {
            host: host.to_string(),
            detail: format!(
                "the query exited with {:?} and printed nothing; stderr: {}",
                output.status,
                excerpt(&String::from_utf8_lossy(&output.stderr))
            ),
        });
    }
    query.parse(host, &String::from_utf8_lossy(&stdout))
}

impl GpuSnapshot {
    /// A snapshot of a host with no GPU, saying why.
    pub fn without_gpus(host: &str, reason: String, current_user: Option<String>) -> Self {
        Self {
            host: host.to_string(),
            no_gpu_reason: Some(reason),
            current_user,
            ..Self::default()
        }
    }

    /// The processes running on the GPU or MIG instance with this UUID.
    pub fn processes_on<'a>(&'a self, uuid: &'a str) -> impl Iterator<Item = &'a GpuProcess> {
        self.processes.iter().filter(move |p| p.gpu_uuid == uuid)
    }
}

/// The first few hundred characters of `text`, display-safe, for error messages.
fn excerpt(text: &str) -> String {
    const MAX: usize = 300;
    let safe = display_safe(text::cut(text, 64 * 1024));
    let trimmed = safe.trim();
    match trimmed.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &trimmed[..cut]),
        None => trimmed.to_string(),
    }
}
