//! SLURM login nodes: detecting one, the cluster's GPUs as the scheduler reports them, a GPU
//! request checked before it is submitted, and JupyterLab as a batch job ([`job`]).
//!
//! What it owns: reading `scontrol show node -d -o` / `scontrol show partition -o` / `squeue`
//! text output (not `--json`, whose schema changes between Slurm releases) into a
//! [`ClusterView`], checking a [`JobRequest`] against it ([`check_request`]), and the job's
//! life (submit, poll, cancel) in [`job`]. What it leaves out: the SSH connection (see
//! [`crate::ssh`]) and the local forward to the node (see [`crate::tunnel`]).
//!
//! Files: `view` (the cluster as the scheduler reports it), `request` (what a launch asks for),
//! `watch` (following a ready job), `jobs` (the cluster and the user's jobs as a front shows
//! them), [`job`], [`launch`], [`notebook`] (a launch run and followed for the app); SLURM's time
//! format and the errors here. `request` and `view` both read times from here, not from each other.

pub mod job;
pub mod launch;
pub mod notebook;

mod jobs;
mod request;
mod view;
mod watch;

pub use jobs::{
    JobLeftRunning, QuitQuestion, SlurmJobView, SlurmView, jobs_left_running, known_time,
};
pub use request::{
    GpuRequest, JobRequest, SlurmRequestForm, check_request, never_clears, reason_in_words,
};
pub use view::{
    ClusterView, GpuPool, JobRow, Node, Partition, SQUEUE_FORMAT, SQUEUE_ME, cluster_view, detect,
    parse_fields, parse_jobs, parse_nodes, parse_partitions,
};
pub use watch::{JobEnd, JobNews, JobWatch, RUNNING_POLL, WARN_AT_MINUTES};

use crate::ssh::SshError;

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
    /// A plain JupyterLab launch asked on a SLURM login node: it runs as a batch job on a
    /// compute node instead.
    #[error(
        "this host is a SLURM login node: JupyterLab runs as a batch job on a compute node, not \
         here. Ask for GPUs with the request form of the GPU step."
    )]
    LoginNode,
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
    /// The login node's connection is down right now (a host session dials it again).
    #[error("the host is not connected right now; wait for the connection to come back")]
    NotConnected,
    /// A local port cannot be forwarded to the job's JupyterLab.
    #[error(transparent)]
    Tunnel(#[from] crate::tunnel::TunnelError),
    /// The job's JupyterLab does not answer through the forward; the message says what to do.
    #[error("{0}")]
    NotAnswering(String),
    /// Fields of a request form that cannot be read ([`SlurmRequestForm::to_request`]): each the
    /// field's form name (`time`, `gpuCount`, `gpuType`) and what to change.
    #[error("{}", form_words(.0))]
    Form(Vec<(&'static str, String)>),
}

fn form_words(fields: &[(&'static str, String)]) -> String {
    match fields {
        [(_, one)] => one.clone(),
        _ => format!("{} fields need attention", fields.len()),
    }
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

#[cfg(test)]
mod tests;
