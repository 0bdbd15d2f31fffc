//! A SLURM notebook for a front that stays open (the app): JupyterLab launched as a batch job
//! ([`launch::launch`]), a local port forwarded to it through the login node ([`forward_job`],
//! the CLI's `up --slurm` and `attach` too), then the job followed ([`JobWatch`]) until it ends.
//! Each change is told as [`NotebookNews`]; the front only says it (events, windows, notices).
//! [`stop`] ends the job (JupyterLab's shutdown, `scancel`, the end confirmed); [`leave`] leaves
//! it running.
//!
//! Everything runs over a [`Link`] (a host session's, which follows its reconnects), so the
//! local port keeps forwarding after the login node's connection comes back.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio_util::sync::CancellationToken;

use super::{
    JobNews, JobRequest, JobWatch, RUNNING_POLL, SlurmError, SlurmRequestForm, format_time,
    job::{self, JobPhase, JupyterJob},
    launch::{self, LaunchStep},
};
use crate::{
    jupyter::http::wait_answers,
    secret::Sensitive,
    ssh::Connection,
    tunnel::{Link, Listen, Target, Tunnel, TunnelError},
};

/// Forwards `listen` to the JupyterLab of a job at `host:port` as the login node sees it
/// (direct-tcpip over `link`, so the listener survives a reconnect) and waits up to `wait` for
/// it to answer with `token`. `Ok(None)` when it did not answer in time (the forward is closed).
///
/// # Errors
/// The forward cannot start (the port is taken, the login node is not connected).
pub async fn forward_job(
    link: &Link,
    host: &str,
    port: u16,
    token: &Sensitive<String>,
    listen: Listen,
    wait: Duration,
) -> Result<Option<(Tunnel, SocketAddr)>, TunnelError> {
    let target = Target::Tcp {
        host: host.to_string(),
        port,
    };
    let tunnel = Tunnel::local_over(link, listen, target).await?;
    match tunnel.local_addr() {
        Some(local) if wait_answers(local, token, wait).await => Ok(Some((tunnel, local))),
        _ => {
            tunnel.close().await;
            Ok(None)
        }
    }
}

/// JupyterLab's URL at local port `port`, with its token (never shown or logged as it is).
pub fn lab_url(port: u16, token: &Sensitive<String>) -> String {
    format!("http://127.0.0.1:{port}/lab?token={}", token.expose())
}

/// Opens job `job_id` (started anywhere: the CLI, another computer) over `link`: a free local
/// port forwarded to its JupyterLab ([`launch::find_attachable`] finds it and reads its token).
/// Returns the forward and the URL with the token.
///
/// # Errors
/// The login node is not connected; no such running job; its JupyterLab does not answer within
/// 30 s (the job keeps running).
pub async fn open_job(link: &Link, job_id: &str) -> Result<(Tunnel, String), SlurmError> {
    let conn = link.current().ok_or(SlurmError::NotConnected)?;
    let found = launch::find_attachable(&conn, Some(job_id)).await?;
    let c = &found.connection;
    let wait = Duration::from_secs(30);
    match forward_job(
        link,
        &c.host,
        c.port,
        &found.token,
        Listen::loopback_any(),
        wait,
    )
    .await?
    {
        Some((tunnel, local)) => Ok((tunnel, lab_url(local.port(), &found.token))),
        None => Err(SlurmError::NotAnswering(format!(
            "JupyterLab of job {job_id} does not answer through {}:{}; the job keeps running \
             (Stop ends it)",
            c.host, c.port
        ))),
    }
}

/// What happens to a [`JobNotebook`], in order: steps, then ready, then time left until it ends;
/// or a failure.
#[derive(Debug)]
pub enum NotebookNews {
    /// A step of the launch (checking, queued, starting, ready).
    Step(LaunchStep),
    /// JupyterLab answers through the local forward.
    Ready {
        /// Its URL here, with the token.
        url: String,
        /// The job's server id as the sessions list knows it (`slurm-<job>`).
        server_id: String,
        /// What runs where, in words: `job 7 on n1 · CUDA_VISIBLE_DEVICES=0`.
        gpu: String,
    },
    /// Seconds before the job's time limit (every poll of the ready job), with the warning to
    /// show at 15 and 5 minutes.
    TimeLeft {
        /// Seconds left.
        secs: u64,
        /// What to tell the person, when a warning mark was reached.
        warning: Option<String>,
    },
    /// The job ended by itself (the forward is closed): what to show.
    Ended {
        /// `Time limit reached: …` or `Job 7 ended: …`.
        message: String,
        /// SLURM's time limit ended it.
        timed_out: bool,
    },
    /// The launch failed: why and what to change (`fields` name the request form's fields).
    Failed(SlurmError),
}

/// A job a front end opened from its sessions list (started elsewhere: the CLI, another
/// computer, an earlier run of the app): its forward through the login node (over the host
/// session's link: it survives reconnects) and the URL the front end's main window knows (without
/// the token).
pub struct OpenedJob {
    /// Local port → the job's `node:port`, through the login node.
    pub forward: Tunnel,
    /// The notebook URL as the main window sees it (token-free).
    pub url: String,
}

/// The forward to a ready job's JupyterLab and its token.
type Ready = Arc<Mutex<Option<(Tunnel, Sensitive<String>)>>>;

/// A SLURM notebook being launched, then followed: Cancel/Stop and the job it runs.
pub struct JobNotebook {
    cancel: CancellationToken,
    job_id: Arc<Mutex<Option<String>>>,
    ready: Ready,
    task: tokio::task::JoinHandle<()>,
}

impl JobNotebook {
    /// Launches `jupyter` as a job asking for `req` on the login node behind `link` (open now:
    /// `conn`), telling `news` each change ([`NotebookNews`]); runs until the job ends, the
    /// launch fails, or [`stop`] / [`leave`].
    pub fn start(
        link: Link,
        conn: Connection,
        req: JobRequest,
        jupyter: JupyterJob,
        news: impl Fn(NotebookNews) + Send + Sync + 'static,
    ) -> JobNotebook {
        let (cancel, job_id, ready) = (CancellationToken::new(), Arc::default(), Arc::default());
        let run = Run {
            link,
            conn,
            req,
            jupyter,
            cancel: cancel.clone(),
            job_id: Arc::clone(&job_id),
            ready: Arc::clone(&ready),
            news: Box::new(news),
        };
        JobNotebook {
            cancel,
            job_id,
            ready,
            task: tokio::spawn(run.go()),
        }
    }

    /// The job, once submitted.
    pub fn job_id(&self) -> Option<String> {
        self.job_id.lock().ok().and_then(|j| j.clone())
    }
}

/// Ends `notebook`'s job over `link`: while launching, the launch is cancelled (the queued job
/// `scancel`led, its end confirmed); once ready, JupyterLab's shutdown, then `scancel`, then the
/// end confirmed. Returns the job's final state, `""` when no job was queued yet.
///
/// # Errors
/// The login node is not connected; `scancel` or the confirmation failed.
pub async fn stop(notebook: JobNotebook, link: &Link) -> Result<String, SlurmError> {
    let ready = notebook.ready.lock().ok().and_then(|mut r| r.take());
    let Some((forward, token)) = ready else {
        // Still launching: the launch cancels the queued job and confirms its end.
        notebook.cancel.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(40), notebook.task).await;
        let Some(job) = notebook.job_id.lock().ok().and_then(|j| j.clone()) else {
            return Ok(String::new());
        };
        let conn = link.current().ok_or(SlurmError::NotConnected)?;
        return Ok(match job::poll(&conn, &job).await? {
            JobPhase::Ended { state, .. } => state,
            _ => launch::stop(&conn, &job, None, Duration::from_secs(30)).await?,
        });
    };
    notebook.task.abort();
    let job = notebook.job_id.lock().ok().and_then(|j| j.clone());
    let end = match (job, link.current()) {
        (None, _) => Ok(String::new()),
        (Some(_), None) => Err(SlurmError::NotConnected),
        (Some(job), Some(conn)) => {
            let jupyter = forward.local_addr().map(|a| (a, &token));
            launch::stop(&conn, &job, jupyter, Duration::from_secs(60)).await
        }
    };
    forward.close().await;
    end
}

/// Leaves `notebook`'s job running (quitting the app without stopping notebooks): only the
/// following and the forward end. Returns the job, for the log.
pub async fn leave(notebook: JobNotebook) -> Option<String> {
    notebook.task.abort();
    let ready = notebook.ready.lock().ok().and_then(|mut r| r.take());
    if let Some((forward, _)) = ready {
        forward.close().await;
    }
    notebook.job_id.lock().ok().and_then(|j| j.clone())
}

/// What to say when job `job_id` reaches warning mark `mark` with `left` seconds left.
pub fn time_limit_warning(job_id: &str, left: u64, mark: u64) -> String {
    format!(
        "Job {job_id} reaches its time limit in {} ({mark} minutes or less left): save your work.",
        format_time(left)
    )
}

/// What to say when job `job_id` ended by itself.
pub fn ended_words(job_id: &str, end: &super::JobEnd) -> String {
    if end.timed_out {
        format!(
            "Time limit reached: SLURM ended job {job_id}. Relaunch with the same settings to go \
             on."
        )
    } else {
        format!("Job {job_id} ended: {}", end.words())
    }
}

/// One launch, run as a task.
struct Run {
    link: Link,
    conn: Connection,
    req: JobRequest,
    jupyter: JupyterJob,
    cancel: CancellationToken,
    job_id: Arc<Mutex<Option<String>>>,
    ready: Ready,
    news: Box<dyn Fn(NotebookNews) + Send + Sync>,
}

impl Run {
    fn step(&self, step: LaunchStep) {
        if let LaunchStep::Submitted { job_id } = &step
            && let Ok(mut j) = self.job_id.lock()
        {
            *j = Some(job_id.clone());
        }
        (self.news)(NotebookNews::Step(step));
    }

    async fn go(self) {
        let token = crate::jupyter::new_token();
        let steps = |s| self.step(s);
        let result = launch::launch(
            &self.conn,
            &self.req,
            &self.jupyter,
            &token,
            steps,
            &self.cancel,
        );
        let launched = match result.await {
            Ok(l) => l,
            // Stop took the notebook and reports the end itself.
            Err(SlurmError::Cancelled { .. }) => return,
            Err(e) => return self.fail(SlurmRequestForm::form_names(e)),
        };
        let c = &launched.connection;
        let wait = Duration::from_secs(60);
        let listen = Listen::loopback_any();
        let forwarded = forward_job(&self.link, &c.host, c.port, &token, listen, wait).await;
        let (forward, local) = match forwarded {
            Ok(Some(f)) => f,
            Ok(None) => {
                return self.fail(SlurmError::NotAnswering(format!(
                    "JupyterLab of job {} does not answer through {}:{}; the job keeps running \
                     (stop it here, or `tunnelbook down`)",
                    c.job_id, c.host, c.port
                )));
            }
            Err(e) => return self.fail(e.into()),
        };
        let url = lab_url(local.port(), &token);
        if let Ok(mut r) = self.ready.lock() {
            *r = Some((forward, token));
        }
        let devices = Some(c.cuda_visible_devices.as_str()).filter(|d| !d.is_empty());
        (self.news)(NotebookNews::Ready {
            url,
            server_id: format!("slurm-{}", c.job_id),
            gpu: format!(
                "job {} on {} · CUDA_VISIBLE_DEVICES={}",
                c.job_id,
                c.node,
                devices.unwrap_or("none")
            ),
        });
        self.follow(&c.job_id).await;
    }

    fn fail(&self, error: SlurmError) {
        (self.news)(NotebookNews::Failed(error));
    }

    /// Polls the ready job: time left (warnings at 15 and 5 minutes), and its end.
    async fn follow(&self, job_id: &str) {
        let mut watch = JobWatch::new();
        loop {
            tokio::time::sleep(RUNNING_POLL).await;
            let Some(conn) = self.link.current() else {
                continue;
            };
            match watch.poll(&conn, job_id).await {
                Some(JobNews::Running {
                    time_left_secs: Some(secs),
                    warn_at_minutes,
                }) => (self.news)(NotebookNews::TimeLeft {
                    secs,
                    warning: warn_at_minutes.map(|m| time_limit_warning(job_id, secs, m)),
                }),
                Some(JobNews::Ended(end)) => {
                    let forward = self.ready.lock().ok().and_then(|mut r| r.take());
                    if let Some((forward, _)) = forward {
                        forward.close().await;
                    }
                    let message = ended_words(job_id, &end);
                    let timed_out = end.timed_out;
                    return (self.news)(NotebookNews::Ended { message, timed_out });
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The warnings and the end say which job, how long, and what to do.
    #[test]
    fn the_end_and_the_warnings_say_what_to_do() {
        let warning = time_limit_warning("7", 14 * 60, 15);
        assert_eq!(
            warning,
            "Job 7 reaches its time limit in 0:14:00 (15 minutes or less left): save your work."
        );
        let end = |state: &str, timed_out| super::super::JobEnd {
            state: state.into(),
            reason: None,
            timed_out,
        };
        assert!(ended_words("7", &end("TIMEOUT", true)).starts_with("Time limit reached"));
        assert_eq!(
            ended_words("7", &end("FAILED", false)),
            "Job 7 ended: FAILED"
        );
    }

    /// The URL carries the token to JupyterLab's lab page on loopback.
    #[test]
    fn the_lab_url_is_on_loopback_with_the_token() {
        let token = Sensitive::new("t0k".to_string());
        assert_eq!(lab_url(8888, &token), "http://127.0.0.1:8888/lab?token=t0k");
    }
}
