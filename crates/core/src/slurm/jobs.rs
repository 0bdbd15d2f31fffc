//! The cluster and the user's Tunnelbook jobs as a front shows them: the GPU step's
//! [`SlurmView`], the Sessions screen's [`SlurmJobView`] rows (built from [`job::list`]), and
//! the jobs that keep running when the app quits ([`JobLeftRunning`], [`QuitQuestion`]).

use std::time::Duration;

use serde::Serialize;

use super::{
    GpuPool, JobRow, Partition, SlurmDefaults, SlurmError, cluster_view,
    job::{self, TunnelbookJob},
    reason_in_words,
};
use crate::ssh::Connection;

/// What the GPU step shows on a SLURM host.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct SlurmView {
    /// Partitions, in `scontrol`'s order.
    pub partitions: Vec<Partition>,
    /// GPUs per partition and type: total and idle now (a hint).
    pub pools: Vec<GpuPool>,
    /// The user's own jobs.
    pub jobs: Vec<JobRow>,
    /// The host's saved launch defaults (the form starts from them).
    pub defaults: SlurmDefaults,
}

impl SlurmView {
    /// Reads the cluster over `conn` ([`cluster_view`]); the form starts from `defaults`.
    ///
    /// # Errors
    /// As [`cluster_view`].
    pub async fn read(conn: &Connection, defaults: SlurmDefaults) -> Result<Self, SlurmError> {
        let view = cluster_view(conn).await?;
        Ok(SlurmView {
            pools: view.pools(),
            partitions: view.partitions,
            jobs: view.jobs,
            defaults,
        })
    }
}

/// One of the user's Tunnelbook SLURM jobs on a session's host, as the Sessions screen lists it:
/// what `squeue` says joined with the job's connection file. Jobs started anywhere are listed
/// (this app, the CLI, another computer): they are found on the cluster, not in this app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct SlurmJobView {
    /// The session whose host (login node) runs the job's cluster.
    pub session_id: String,
    /// SLURM's job id.
    pub job_id: String,
    /// `PENDING`, `RUNNING`, `COMPLETING`, … as `squeue` says.
    pub state: String,
    /// Why a pending job waits, in words (`null` once it runs).
    pub reason: Option<String>,
    /// Its partition.
    pub partition: String,
    /// The compute node JupyterLab runs on (`null` while pending).
    pub node: Option<String>,
    /// `CUDA_VISIBLE_DEVICES` SLURM gave the job, once JupyterLab listens.
    pub gpus: Option<String>,
    /// The GPUs asked for (`gres:gpu:v100:1`).
    pub requested: String,
    /// Time left before its limit, as SLURM writes it (`1:23:45`).
    pub time_left: String,
    /// When SLURM ends it at the latest (`2026-11-30T21:45:00`), when known.
    pub end_time: Option<String>,
    /// Whether JupyterLab listens (Open works).
    pub ready: bool,
    /// Whether this session's request form launched it.
    pub this_session: bool,
    /// The local URL (without its token) when this app has a forward to it.
    pub url: Option<String>,
}

impl SlurmJobView {
    /// The row of job `j` ([`job::list`]) on session `session_id`'s host; `this_session` when
    /// the session launched it, `url` (token-free) when a local forward to it is open.
    pub fn new(
        session_id: &str,
        j: TunnelbookJob,
        this_session: bool,
        url: Option<String>,
    ) -> Self {
        let row = j.row;
        SlurmJobView {
            session_id: session_id.to_string(),
            reason: (row.state == "PENDING").then(|| reason_in_words(&row.reason)),
            node: Some(row.nodes).filter(|n| !n.is_empty() && !n.starts_with('(')),
            gpus: j
                .connection
                .as_ref()
                .map(|c| c.cuda_visible_devices.clone()),
            ready: j.connection.is_some(),
            end_time: known_time(&row.end_time),
            requested: row.tres_per_node,
            time_left: row.time_left,
            partition: row.partition,
            state: row.state,
            job_id: row.id,
            this_session,
            url,
        }
    }
}

/// A SLURM time that says something (`N/A`, `Unknown`, `NONE` and empty do not).
pub fn known_time(t: &str) -> Option<String> {
    Some(t.trim().to_string()).filter(|t| !matches!(t.as_str(), "" | "N/A" | "Unknown" | "NONE"))
}

/// A SLURM job that keeps running when the app quits, for the quit question and notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct JobLeftRunning {
    /// The saved host (login node) name.
    pub host: String,
    /// SLURM's job id.
    pub job_id: String,
    /// When SLURM ends it (its time limit, `2026-11-30T21:45:00`); `null` when SLURM did not say.
    pub end_time: Option<String>,
}

/// What the quit question shows (the `quit-requested` event).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct QuitQuestion {
    /// The SLURM jobs that keep running until their time limit if notebooks are left running.
    pub slurm_jobs: Vec<JobLeftRunning>,
}

impl JobLeftRunning {
    /// One line for the quit question and the notification after quitting.
    pub fn words(&self) -> String {
        match &self.end_time {
            Some(end) => format!(
                "SLURM job {} on {} keeps running until {} (its time limit, as SLURM says)",
                self.job_id,
                self.host,
                end.replace('T', " ")
            ),
            None => format!(
                "SLURM job {} on {} keeps running until its time limit",
                self.job_id, self.host
            ),
        }
    }

    /// Jobs `ids` held open on login node `host` (its connection `conn` now), each with the end
    /// time SLURM gives it: one `squeue`, at most 5 s; without an answer the end time is unknown.
    pub async fn on_host(host: &str, conn: Option<&Connection>, ids: Vec<String>) -> Vec<Self> {
        let rows = match conn {
            Some(conn) => tokio::time::timeout(Duration::from_secs(5), job::list(conn))
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default(),
            None => Vec::new(),
        };
        ids.into_iter()
            .map(|id| JobLeftRunning {
                host: host.to_string(),
                end_time: rows
                    .iter()
                    .find(|j| j.row.id == id)
                    .and_then(|j| known_time(&j.row.end_time)),
                job_id: id,
            })
            .collect()
    }
}

/// The jobs `held` open on each login node (its saved name, its connection now, the job ids),
/// each with the end time SLURM gives it ([`JobLeftRunning::on_host`], one after another): what
/// keeps running when the app quits without stopping notebooks.
pub async fn jobs_left_running(
    held: Vec<(String, Option<Connection>, Vec<String>)>,
) -> Vec<JobLeftRunning> {
    let mut out = Vec::new();
    for (host, conn, ids) in held {
        out.extend(JobLeftRunning::on_host(&host, conn.as_ref(), ids).await);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The quit question and the notice after quitting say until when a job left running runs:
    /// SLURM's end time, or its time limit when SLURM gave none; the event carries the jobs.
    #[test]
    fn a_job_left_running_says_until_when() {
        let job = JobLeftRunning {
            host: "login-node".into(),
            job_id: "41".into(),
            end_time: Some("2026-11-30T21:45:00".into()),
        };
        assert_eq!(
            job.words(),
            "SLURM job 41 on login-node keeps running until 2026-11-30 21:45:00 (its time limit, \
             as SLURM says)"
        );
        let unknown = JobLeftRunning {
            end_time: known_time("N/A"),
            ..job.clone()
        };
        assert!(unknown.words().ends_with("until its time limit"));
        let question = serde_json::to_value(QuitQuestion {
            slurm_jobs: vec![job],
        })
        .unwrap();
        assert_eq!(question["slurmJobs"][0]["endTime"], "2026-11-30T21:45:00");
        assert_eq!(question["slurmJobs"][0]["jobId"], "41");
    }

    /// A Sessions row: a pending job's reason in words and no node; a running one's node, GPUs
    /// and readiness from its connection file; an unknown end time is `null`.
    #[test]
    fn a_job_row_says_what_squeue_and_its_connection_file_say() {
        let row = JobRow {
            id: "7".into(),
            name: job::JOB_NAME.into(),
            partition: "gpu".into(),
            state: "PENDING".into(),
            reason: "Resources".into(),
            time_left: "1:00:00".into(),
            nodes: "(Resources)".into(),
            tres_per_node: "gres:gpu:v100:1".into(),
            end_time: "N/A".into(),
        };
        let pending = SlurmJobView::new(
            "s1",
            TunnelbookJob {
                row: row.clone(),
                connection: None,
            },
            true,
            None,
        );
        assert_eq!(pending.reason, Some(reason_in_words("Resources")));
        assert_eq!((pending.node, pending.end_time), (None, None));
        assert!(!pending.ready && pending.this_session);
        let running = SlurmJobView::new(
            "s1",
            TunnelbookJob {
                row: JobRow {
                    state: "RUNNING".into(),
                    nodes: "n1".into(),
                    end_time: "2026-11-30T21:45:00".into(),
                    ..row
                },
                connection: Some(job::ConnectionFile {
                    job_id: "7".into(),
                    node: "n1".into(),
                    host: "n1".into(),
                    port: 8888,
                    pid: 1,
                    cuda_visible_devices: "0".into(),
                    launch_dir: String::new(),
                }),
            },
            false,
            Some("http://127.0.0.1:1/lab".into()),
        );
        assert_eq!(running.reason, None);
        assert_eq!(running.node.as_deref(), Some("n1"));
        assert_eq!(running.gpus.as_deref(), Some("0"));
        assert!(running.ready);
        assert_eq!(running.end_time.as_deref(), Some("2026-11-30T21:45:00"));
    }
}
