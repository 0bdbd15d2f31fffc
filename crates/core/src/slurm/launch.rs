//! One SLURM launch flow for every front end (the CLI's `up --slurm`, the app's request form):
//! the request checked against the cluster ([`check`]), then submitted and followed through the
//! queue until JupyterLab listens on a compute node ([`launch`]), each change reported as a
//! typed [`LaunchStep`]; and the end of a job: JupyterLab shut down, then `scancel`, the end
//! confirmed ([`stop`]).
//!
//! Everything runs on the login node's open connection (a host session's
//! [`crate::host::HostSession::connection`], or the CLI's own). What it leaves out: forwarding a
//! local port to `node:port` (the caller's, through the login node) and rendering the steps.

use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{
    ClusterView, JobRequest, SlurmError, check_request, cluster_view,
    job::{self, ConnectionFile, JobPhase, JupyterJob, Submitted},
};
use crate::{
    secret::Sensitive,
    ssh::{Connection, shell_quote},
    tunnel::{Link, Listen, Target, Tunnel},
};

/// How often a queued or starting job is polled.
pub const POLL: Duration = Duration::from_secs(1);

/// One step of a launch, as the front ends show it (`step` on the wire). Each is reported once
/// per change (a queued job's reason or expected start changing is a new step).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "SlurmLaunchStep"))]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "step"
)]
pub enum LaunchStep {
    /// Checking the request against the cluster; `request` is its `sbatch` options.
    Checking {
        /// The `sbatch` options (`--partition=gpu --gres=gpu:v100:1 …`).
        request: String,
    },
    /// SLURM accepts the request (`sbatch --test-only`).
    Checked {
        /// When SLURM expects it to start (`2026-11-30T09:37:45`).
        expected_start: String,
    },
    /// The job is in the queue.
    Submitted {
        /// Its id.
        job_id: String,
    },
    /// Waiting in the queue.
    Queued {
        /// The job id.
        job_id: String,
        /// SLURM's reason code (`Resources`, `Priority`, …).
        reason: String,
        /// The reason in words.
        words: String,
        /// When SLURM expects it to start, if it says.
        expected_start: Option<String>,
        /// 1 for the first pending job of its partition (by priority), if known.
        position: Option<u32>,
    },
    /// The job runs on `node`; JupyterLab does not listen yet.
    Starting {
        /// The job id.
        job_id: String,
        /// The compute node.
        node: String,
    },
    /// JupyterLab listens on `host:port` of `node`.
    Ready {
        /// The job id.
        job_id: String,
        /// The compute node.
        node: String,
        /// The host name JupyterLab listens on (as the login node resolves it).
        host: String,
        /// Its TCP port.
        port: u16,
        /// `CUDA_VISIBLE_DEVICES` SLURM set for the job.
        cuda_visible_devices: String,
        /// Seconds before the job's time limit, if known.
        time_left_secs: Option<u64>,
    },
}

/// A job whose JupyterLab listens.
#[derive(Debug, Clone)]
pub struct Launched {
    /// The job and the launch directory holding its token.
    pub submitted: Submitted,
    /// Where JupyterLab listens, and the job's GPUs.
    pub connection: ConnectionFile,
    /// Seconds before the time limit, when the job became ready.
    pub time_left_secs: Option<u64>,
    /// When SLURM expected it to start before it was submitted.
    pub expected_start: String,
}

/// What [`check`] finds: the cluster now and SLURM's estimate.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The cluster as the request was checked against it.
    pub view: ClusterView,
    /// When SLURM expects the request to start.
    pub expected_start: String,
}

/// Checks `req` before anything is queued: against the cluster view (partition, time, GPU type
/// and count: [`check_request`]), then `sbatch --test-only` for the expected start.
///
/// # Errors
/// [`SlurmError::Refused`] saying what to change; [`SlurmError::Command`] with `sbatch`'s
/// message (`command` is `sbatch --test-only`) when SLURM rejects it; connection errors.
pub async fn check(conn: &Connection, req: &JobRequest) -> Result<Checked, SlurmError> {
    let view = cluster_view(conn).await?;
    check_request(req, &view)?;
    let expected_start = job::expected_start(conn, req).await?;
    Ok(Checked {
        view,
        expected_start,
    })
}

/// Runs a whole launch on `conn`: [`check`], submit (the token over stdin), then polls every
/// [`POLL`] until JupyterLab listens. `on_step` hears each [`LaunchStep`].
///
/// `cancel` ends it at any point: before submitting nothing is left; after, the job is
/// cancelled and its end confirmed. A reason that never clears cancels the job; a job that ends
/// before JupyterLab listens brings the tail of its log.
///
/// # Errors
/// As [`check`]; [`SlurmError::Cancelled`], [`SlurmError::NeverStarts`],
/// [`SlurmError::JobEnded`]; `sbatch` and connection errors.
pub async fn launch(
    conn: &Connection,
    req: &JobRequest,
    jupyter: &JupyterJob,
    token: &Sensitive<String>,
    mut on_step: impl FnMut(LaunchStep),
    cancel: &CancellationToken,
) -> Result<Launched, SlurmError> {
    let not_queued = || SlurmError::Cancelled {
        job_id: None,
        state: None,
    };
    on_step(LaunchStep::Checking {
        request: req.sbatch_args().join(" "),
    });
    let checked = tokio::select! {
        r = check(conn, req) => r?,
        () = cancel.cancelled() => return Err(not_queued()),
    };
    on_step(LaunchStep::Checked {
        expected_start: checked.expected_start.clone(),
    });
    if cancel.is_cancelled() {
        return Err(not_queued());
    }
    // Submitting is not interrupted halfway: a job id that never came back would be a job
    // nobody cancels.
    let submitted = job::submit(conn, req, jupyter, token).await?;
    let id = submitted.job_id.clone();
    on_step(LaunchStep::Submitted { job_id: id.clone() });
    let waited = tokio::select! {
        r = wait_ready(conn, &id, &mut on_step) => r,
        () = cancel.cancelled() => {
            let state = job::cancel_and_confirm(conn, &id, Duration::from_secs(30)).await?;
            return Err(SlurmError::Cancelled { job_id: Some(id), state: Some(state) });
        }
    };
    let (connection, time_left_secs) = waited?;
    Ok(Launched {
        submitted,
        connection,
        time_left_secs,
        expected_start: checked.expected_start,
    })
}

/// Polls job `id` until JupyterLab listens: Queued (reason, expected start, position) →
/// Starting → Ready.
async fn wait_ready(
    conn: &Connection,
    id: &str,
    on_step: &mut impl FnMut(LaunchStep),
) -> Result<(ConnectionFile, Option<u64>), SlurmError> {
    let mut last: Option<LaunchStep> = None;
    loop {
        let phase = job::poll(conn, id).await?;
        let step = match &phase {
            JobPhase::Queued {
                reason,
                words,
                expected_start,
            } => {
                if let Err(e) = job::check_never_clears(id, &phase) {
                    // Best effort: the error says it was cancelled; a failure shows in `ls`.
                    let _ = job::cancel(conn, id).await;
                    return Err(e);
                }
                Some(LaunchStep::Queued {
                    job_id: id.to_string(),
                    reason: reason.clone(),
                    words: words.clone(),
                    expected_start: expected_start.clone(),
                    position: queue_position(conn, id).await.ok().flatten(),
                })
            }
            JobPhase::Starting { node } => Some(LaunchStep::Starting {
                job_id: id.to_string(),
                node: node.clone(),
            }),
            JobPhase::Running {
                connection,
                time_left_secs,
            } => {
                on_step(LaunchStep::Ready {
                    job_id: id.to_string(),
                    node: connection.node.clone(),
                    host: connection.host.clone(),
                    port: connection.port,
                    cuda_visible_devices: connection.cuda_visible_devices.clone(),
                    time_left_secs: *time_left_secs,
                });
                return Ok((connection.clone(), *time_left_secs));
            }
            // Still ending (its processes being killed): the final state comes next poll.
            JobPhase::Ended { state, .. } if state == "COMPLETING" => None,
            JobPhase::Ended { state, reason } => {
                let log_tail = job::log_tail(conn, id, 20).await.unwrap_or_default();
                return Err(SlurmError::JobEnded {
                    job_id: id.to_string(),
                    state: state.clone(),
                    reason: reason.clone(),
                    log_tail,
                });
            }
        };
        if let Some(step) = step
            && last.as_ref() != Some(&step)
        {
            on_step(step.clone());
            last = Some(step);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Where pending job `id` stands in its partition's queue (1: next), by SLURM's priority order;
/// `None` when it is not pending.
///
/// # Errors
/// Connection errors.
pub async fn queue_position(conn: &Connection, id: &str) -> Result<Option<u32>, SlurmError> {
    let out = conn
        .exec_named(
            "squeue",
            &format!(
                "p=$(squeue -h -j {id} -o %P 2>/dev/null); [ -n \"$p\" ] && squeue -h -t PENDING -p \"$p\" --sort=-p,i -o %i 2>/dev/null",
                id = shell_quote(id)
            ),
        )
        .await?;
    Ok(position_in(&out.stdout_text(), id))
}

/// The 1-based line of `id` in `squeue -o %i` output.
pub fn position_in(text: &str, id: &str) -> Option<u32> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .position(|l| l == id)
        .and_then(|i| u32::try_from(i + 1).ok())
}

/// Stops a Tunnelbook job: JupyterLab's `/api/shutdown` first through `jupyter` (a local
/// address forwarded to it, with its token) so it stops its kernels, then `scancel`, then the
/// job's end confirmed (at most `timeout`). Returns the final state (`CANCELLED`, or
/// `COMPLETED` when JupyterLab's shutdown ended the job first).
///
/// # Errors
/// [`SlurmError::Timeout`] when the job still runs after `timeout`; scancel and connection
/// errors.
pub async fn stop(
    conn: &Connection,
    job_id: &str,
    jupyter: Option<(std::net::SocketAddr, &Sensitive<String>)>,
    timeout: Duration,
) -> Result<String, SlurmError> {
    if let Some((addr, token)) = jupyter {
        job::mark_stopping(conn, job_id).await?;
        let shutdown = crate::jupyter::http::request(addr, "POST", "/api/shutdown", Some(token));
        match tokio::time::timeout(Duration::from_secs(5), shutdown).await {
            Ok(Ok(r)) if r.status < 300 => tracing::debug!(job_id, "JupyterLab shut down"),
            other => tracing::debug!(job_id, ?other, "JupyterLab shutdown did not answer"),
        }
    }
    // scancel right away: the job is cancelled while JupyterLab finishes its shutdown.
    match job::cancel_and_confirm(conn, job_id, timeout).await {
        Err(SlurmError::Command { stderr, .. }) => match job::poll(conn, job_id).await? {
            // It ended before scancel reached it.
            JobPhase::Ended { state, .. } => Ok(state),
            _ => Err(SlurmError::Command {
                command: "scancel".into(),
                stderr,
            }),
        },
        other => other,
    }
}

/// A running Tunnelbook job found again (from another computer, another `TUNNELBOOK_HOME`, or
/// after a restart) with what it takes to open it: where JupyterLab listens and its token.
#[derive(Debug, Clone)]
pub struct Attachable {
    /// What `squeue` says of it (partition, time left, end time, GPUs asked for).
    pub row: super::JobRow,
    /// Where JupyterLab listens (node, host, port) and the job's `CUDA_VISIBLE_DEVICES`.
    pub connection: ConnectionFile,
    /// The server's token, read from the job's 0600 launch directory.
    pub token: Sensitive<String>,
}

/// Finds job `id` (else the newest running one) among the user's Tunnelbook jobs and reads its
/// token, for forwarding a local port to `connection.host:connection.port` through the login
/// node. What the CLI's `attach` and the app's Sessions → Open use.
///
/// # Errors
/// [`SlurmError::NoJob`] when no such job runs with JupyterLab listening (a queued job, one
/// still starting, or none); the token cannot be read; connection errors.
pub async fn find_attachable(
    conn: &Connection,
    id: Option<&str>,
) -> Result<Attachable, SlurmError> {
    let jobs = job::list(conn).await?;
    let pending = jobs
        .iter()
        .find(|j| id.is_none_or(|i| j.row.id == i) && j.connection.is_none())
        .map(|j| (j.row.id.clone(), j.row.state.clone()));
    let Some((connection, row)) = job::find_running(jobs, id) else {
        return Err(SlurmError::NoJob(match (id, pending) {
            (_, Some((job, state))) => format!(
                "job {job} is {state}: JupyterLab does not listen yet; open it once it runs"
            ),
            (Some(job), None) => format!(
                "job {job} is not a running Tunnelbook job of yours (it ended, or it is not \
                 Tunnelbook's); list the jobs again"
            ),
            (None, None) => "no Tunnelbook job of yours runs on this cluster".into(),
        }));
    };
    let token = job::read_token(conn, &connection).await?;
    Ok(Attachable {
        row,
        connection,
        token,
    })
}

/// Stops Tunnelbook job `job_id`, looked up in the queue first, as [`stop_listed`] does;
/// returns its final state (`CANCELLED`).
///
/// # Errors
/// [`SlurmError::NoJob`] when it is not a Tunnelbook job of the user's in the queue (it ended
/// already); those of [`job::list`] and [`stop_listed`].
pub async fn stop_job(
    conn: &Connection,
    job_id: &str,
    timeout: Duration,
) -> Result<String, SlurmError> {
    let j = job::list(conn)
        .await?
        .into_iter()
        .find(|j| j.row.id == job_id)
        .ok_or_else(|| {
            SlurmError::NoJob(format!(
                "job {job_id} is not a Tunnelbook job of yours in the queue (it ended already)"
            ))
        })?;
    stop_listed(conn, &j, timeout).await
}

/// Stops job `j` (from [`job::list`]) from here: JupyterLab's `/api/shutdown` through a
/// short-lived forward to the node with the token from the job's 0600 file (when it listens),
/// then `scancel`, then the end confirmed ([`stop`]). For jobs this process did not launch
/// (the CLI's `down`, the app's Sessions → Stop of a job started elsewhere).
///
/// # Errors
/// As [`stop`].
pub async fn stop_listed(
    conn: &Connection,
    j: &job::TunnelbookJob,
    timeout: Duration,
) -> Result<String, SlurmError> {
    let Some(c) = &j.connection else {
        return stop(conn, &j.row.id, None, timeout).await;
    };
    let token = job::read_token(conn, c).await.ok();
    let link = Link::new(Some(conn.clone()), Duration::from_secs(5));
    let tunnel = Tunnel::local_over(
        &link,
        Listen::loopback_any(),
        Target::Tcp {
            host: c.host.clone(),
            port: c.port,
        },
    )
    .await
    .ok();
    let jupyter = match (&tunnel, &token) {
        (Some(t), Some(token)) => t.local_addr().map(|a| (a, token)),
        _ => None,
    };
    let end = stop(conn, &j.row.id, jupyter, timeout).await;
    if let Some(t) = tunnel {
        t.close().await;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The position is the job's line in the partition's pending list, 1-based.
    #[test]
    fn position_counts_from_one() {
        assert_eq!(position_in("12\n15\n17\n", "15"), Some(2));
        assert_eq!(position_in("12\n", "12"), Some(1));
        assert_eq!(position_in("", "12"), None);
        assert_eq!(position_in("120\n", "12"), None);
    }

    /// The steps reach the UI tagged by `step`, camelCase.
    #[test]
    fn steps_are_tagged() {
        let s = serde_json::to_value(LaunchStep::Queued {
            job_id: "7".into(),
            reason: "Resources".into(),
            words: "w".into(),
            expected_start: None,
            position: Some(1),
        })
        .unwrap();
        assert_eq!(s["step"], "queued");
        assert_eq!(s["jobId"], "7");
        assert_eq!(s["position"], 1);
    }
}
