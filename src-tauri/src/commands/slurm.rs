//! SLURM hosts in the app (issue 20): the GPU step's cluster view and request form, and
//! JupyterLab launched as a batch job on a compute node through core's one launch flow
//! ([`tunnelbook_core::slurm::launch`], the CLI's `up --slurm` too), forwarded through the login
//! node to `node:port` and opened in the same notebook window as on a plain box. Stop is
//! JupyterLab's shutdown, then `scancel`, the job's end confirmed.
//!
//! The app never starts JupyterLab on a SLURM login node: `launch_notebook` refuses there
//! ([`refuse_login_node`]).

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use serde::Serialize;
use tauri::{AppHandle, Emitter, Manager, Runtime, State};
use tokio_util::sync::CancellationToken;
use ts_rs::TS;
/// The request form as the UI sends it (core's: it becomes a [`JobRequest`] there).
pub use tunnelbook_core::slurm::SlurmRequestForm;
use tunnelbook_core::{
    host::{Forward, HostSession},
    secret::Sensitive,
    slurm::{
        self, GpuPool, JobNews, JobRequest, JobRow, JobWatch, Partition, RUNNING_POLL, Scheduler,
        SlurmDefaults, SlurmError,
        job::{self, JobPhase, JupyterJob},
        launch::{self, LaunchStep},
    },
    ssh::Connection,
};

use crate::{
    commands::notebook,
    error::{AppError, ErrorCode},
    state::AppState,
    wire::SessionStatus,
};

/// Name of the event that carries a [`SlurmEvent`].
pub const SLURM_EVENT: &str = "slurm";

/// What the GPU step shows on a SLURM host.
#[derive(Debug, Clone, Serialize, TS)]
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

/// One change of a SLURM launch or of its running job, emitted as the `slurm` event. Exactly one
/// of `step`, `timeLeftSecs`, `ended`, `error` is set.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SlurmEvent {
    /// The session.
    pub session_id: String,
    /// A step of the launch (checking, queued, starting, ready).
    pub step: Option<LaunchStep>,
    /// Seconds before the job's time limit (a running job, every poll).
    pub time_left_secs: Option<u64>,
    /// A warning to show (15 and 5 minutes before the time limit).
    pub warning: Option<String>,
    /// The job ended by itself: what to show (`time limit reached …`).
    pub ended: Option<String>,
    /// The launch failed; says why and what to change (`fields` for the form).
    pub error: Option<AppError>,
}

impl SlurmEvent {
    fn new(session_id: &str) -> Self {
        Self {
            session_id: session_id.to_string(),
            step: None,
            time_left_secs: None,
            warning: None,
            ended: None,
            error: None,
        }
    }
}

/// A job this app opened from the Sessions screen (started elsewhere: the CLI, another
/// computer, an earlier run of the app): its forward through the login node and the URL the
/// main window knows (without the token).
pub struct OpenedJob {
    /// Local port → the job's `node:port`, through the login node; survives reconnects.
    pub forward: Forward,
    /// The notebook URL as the main window sees it (token-free; [`notebook::public_url`]).
    pub url: String,
}

/// One of the user's Tunnelbook SLURM jobs on a session's host, as the Sessions screen lists it:
/// what `squeue` says joined with the job's connection file. Jobs started anywhere are listed
/// (this app, the CLI, another computer): they are found on the cluster, not in this app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
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

/// A SLURM job that keeps running when the app quits, for the quit question and notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, TS)]
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
}

/// Once the job is ready: the local forward to its JupyterLab and the token.
pub type ReadyJob = Arc<Mutex<Option<(Forward, Sensitive<String>)>>>;

/// A SLURM launch of a session: Cancel/Stop and what the notebook window needs.
pub struct SlurmHandle {
    /// Cancels the launch while it is not ready (the queued job is scancelled).
    pub cancel: CancellationToken,
    /// The job, once submitted.
    pub job_id: Arc<Mutex<Option<String>>>,
    /// The local forward to JupyterLab and its token, once ready.
    pub ready: ReadyJob,
    /// The task that launches and then follows the job.
    pub task: tauri::async_runtime::JoinHandle<()>,
}

fn emit<R: Runtime>(app: &AppHandle<R>, event: SlurmEvent) {
    if let Err(e) = app.emit(SLURM_EVENT, event) {
        tracing::warn!(error = %e, "cannot deliver a slurm event");
    }
}

/// The session's host, its open connection and its profile.
fn host_of(
    state: &AppState,
    id: &str,
) -> Result<(HostSession, Connection, tunnelbook_core::profile::Profile), AppError> {
    let (host, profile) = {
        let sessions = state.sessions();
        let entry = sessions.get(id).ok_or_else(|| AppError::no_session(id))?;
        (entry.host.clone(), entry.profile())
    };
    let conn = host.connection().ok_or_else(|| {
        AppError::new(
            ErrorCode::Unreachable,
            "the host is not connected right now; wait for the connection to come back",
        )
    })?;
    Ok((host, conn, profile))
}

/// Whether session `id`'s host is a SLURM login node: its saved `scheduler`, else what core's
/// host session detected when it connected (`sbatch` on the login PATH and `scontrol ping`;
/// core saved a SLURM host as `scheduler: slurm`). Waits for that probe when it still runs.
async fn is_slurm(state: &AppState, id: &str) -> Result<bool, AppError> {
    let (host, profile) = {
        let sessions = state.sessions();
        let entry = sessions.get(id).ok_or_else(|| AppError::no_session(id))?;
        (entry.host.clone(), entry.profile())
    };
    if let Some(s) = profile.scheduler {
        return Ok(s == Scheduler::Slurm);
    }
    if host.is_local() || host.connection().is_none() {
        return Ok(false);
    }
    let detected = host.detected_scheduler(Duration::from_secs(15)).await;
    if detected == Some(Scheduler::Slurm)
        && let Some(last) = state
            .sessions()
            .get_mut(id)
            .and_then(|e| e.chain.as_mut())
            .and_then(|c| c.last_mut())
    {
        last.scheduler = Some(Scheduler::Slurm);
    }
    Ok(detected == Some(Scheduler::Slurm))
}

/// For `launch_notebook`: an error when session `id`'s host is a SLURM login node, where
/// JupyterLab must not run (it runs as a batch job: [`launch_slurm_notebook`]).
pub async fn refuse_login_node(state: &AppState, id: &str) -> Result<(), AppError> {
    if is_slurm(state, id).await? {
        return Err(AppError::new(
            ErrorCode::Unsupported,
            "this host is a SLURM login node: JupyterLab runs as a batch job on a compute node, \
             not here. Ask for GPUs with the request form of the GPU step.",
        ));
    }
    Ok(())
}

/// The cluster view of session `session_id`'s host when it is a SLURM login node (detected when
/// the session connected and saved as `scheduler: slurm`); `null` for other hosts (the GPU cards
/// apply).
#[tauri::command]
pub async fn slurm_cluster(
    state: State<'_, AppState>,
    session_id: String,
) -> Result<Option<SlurmView>, AppError> {
    if !is_slurm(&state, &session_id).await? {
        return Ok(None);
    }
    let (_, conn, profile) = host_of(&state, &session_id)?;
    let view = slurm::cluster_view(&conn).await?;
    Ok(Some(SlurmView {
        pools: view.pools(),
        partitions: view.partitions,
        jobs: view.jobs,
        defaults: profile.slurm.unwrap_or_default(),
    }))
}

/// The job id of session `entry`'s own SLURM launch, once submitted.
fn own_job(entry: &crate::state::SessionEntry) -> Option<String> {
    entry
        .slurm
        .as_ref()
        .and_then(|h| h.job_id.lock().ok().and_then(|j| j.clone()))
}

/// The user's Tunnelbook SLURM jobs on session `session_id`'s host — started here, by the CLI or
/// on another computer — joined with their connection files (core's [`job::list`], what
/// `tunnelbook ls` prints); `null` when the host is not a SLURM login node.
#[tauri::command]
pub async fn list_slurm_jobs(
    state: State<'_, AppState>,
    session_id: String,
) -> Result<Option<Vec<SlurmJobView>>, AppError> {
    if !is_slurm(&state, &session_id).await? {
        return Ok(None);
    }
    let (_, conn, _) = host_of(&state, &session_id)?;
    let jobs = job::list(&conn).await?;
    let sessions = state.sessions();
    let entry = sessions
        .get(&session_id)
        .ok_or_else(|| AppError::no_session(&session_id))?;
    let own = own_job(entry);
    Ok(Some(
        jobs.into_iter()
            .map(|j| {
                let id = j.row.id.clone();
                let this_session = own.as_deref() == Some(id.as_str());
                let url = if this_session {
                    entry.summary.url.clone()
                } else {
                    entry.slurm_open.get(&id).map(|o| o.url.clone())
                };
                SlurmJobView {
                    session_id: session_id.clone(),
                    reason: (j.row.state == "PENDING")
                        .then(|| slurm::reason_in_words(&j.row.reason)),
                    node: Some(j.row.nodes.clone())
                        .filter(|n| !n.is_empty() && !n.starts_with('(')),
                    gpus: j
                        .connection
                        .as_ref()
                        .map(|c| c.cuda_visible_devices.clone()),
                    requested: j.row.tres_per_node.clone(),
                    time_left: j.row.time_left.clone(),
                    end_time: known_time(&j.row.end_time),
                    ready: j.connection.is_some(),
                    partition: j.row.partition.clone(),
                    state: j.row.state.clone(),
                    job_id: id,
                    this_session,
                    url,
                }
            })
            .collect(),
    ))
}

/// A SLURM time that says something (`N/A`, `Unknown` and empty do not).
fn known_time(t: &str) -> Option<String> {
    Some(t.trim().to_string()).filter(|t| !matches!(t.as_str(), "" | "N/A" | "Unknown" | "NONE"))
}

/// Opens job `job_id` on session `session_id`'s SLURM host here — a job started anywhere (the
/// CLI, another computer): a local port forwarded through the login node to the job's
/// `node:port` (core's [`launch::find_attachable`] finds it and reads its token from the job's
/// 0600 file), kept until the session closes. Returns the notebook URL (without its token) for
/// `open_notebook` — the same notebook window as a launch's.
#[tauri::command]
pub async fn open_slurm_job<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    session_id: String,
    job_id: String,
) -> Result<String, AppError> {
    {
        let sessions = state.sessions();
        let entry = sessions
            .get(&session_id)
            .ok_or_else(|| AppError::no_session(&session_id))?;
        if own_job(entry).as_deref() == Some(job_id.as_str())
            && let Some(url) = &entry.summary.url
        {
            return Ok(url.clone());
        }
        if let Some(o) = entry.slurm_open.get(&job_id) {
            return Ok(o.url.clone());
        }
    }
    let (host, conn, _) = host_of(&state, &session_id)?;
    let found = launch::find_attachable(&conn, Some(&job_id)).await?;
    let c = &found.connection;
    let wait = Duration::from_secs(30);
    let Some((forward, local)) = host
        .forward_to_jupyter(&c.host, c.port, &found.token, wait)
        .await?
    else {
        return Err(AppError::new(
            ErrorCode::Jupyter,
            format!(
                "JupyterLab of job {job_id} does not answer through {}:{}; the job keeps running \
                 (Stop ends it)",
                c.host, c.port
            ),
        ));
    };
    let url = notebook::public_url(
        &app,
        &format!(
            "http://127.0.0.1:{}/lab?token={}",
            local.port(),
            found.token.expose()
        ),
    );
    let opened = OpenedJob {
        forward,
        url: url.clone(),
    };
    // The session closed meanwhile: the forward goes with it.
    let unkept = match state.sessions().get_mut(&session_id) {
        Some(entry) => {
            entry.slurm_open.insert(job_id, opened);
            None
        }
        None => Some(opened),
    };
    if let Some(o) = unkept {
        o.forward.close().await;
        return Err(AppError::no_session(&session_id));
    }
    Ok(url)
}

/// Stops job `job_id` on session `session_id`'s SLURM host, wherever it was started: this
/// session's own launch as [`stop_slurm_notebook`] does; any other Tunnelbook job by
/// JupyterLab's shutdown (through a forward, with the token from the job's file), then
/// `scancel`, then its end confirmed. Returns the final state (`CANCELLED`).
#[tauri::command]
pub async fn stop_slurm_job<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    session_id: String,
    job_id: String,
) -> Result<String, AppError> {
    let (own, opened) = {
        let mut sessions = state.sessions();
        let entry = sessions
            .get_mut(&session_id)
            .ok_or_else(|| AppError::no_session(&session_id))?;
        (
            own_job(entry).as_deref() == Some(job_id.as_str()),
            entry.slurm_open.remove(&job_id),
        )
    };
    if own {
        return stop_slurm_notebook(app, state, session_id).await;
    }
    let (_, conn, _) = host_of(&state, &session_id)?;
    let end = launch::stop_job(&conn, &job_id, Duration::from_secs(60)).await;
    if let Some(o) = opened {
        o.forward.close().await;
    }
    Ok(end?)
}

/// The SLURM jobs this app holds open (its own launches once submitted, jobs opened from
/// Sessions), each with the end time SLURM gives it: what keeps running when the app quits
/// without stopping notebooks. One `squeue` per login node, at most 5 s each.
pub async fn jobs_left_running(state: &AppState) -> Vec<JobLeftRunning> {
    let held: Vec<(String, HostSession, Vec<String>)> = state
        .sessions()
        .values()
        .filter_map(|e| {
            let mut ids: Vec<String> = own_job(e).into_iter().collect();
            ids.extend(e.slurm_open.keys().cloned());
            (!ids.is_empty()).then(|| (e.profile().name, e.host.clone(), ids))
        })
        .collect();
    let mut out = Vec::new();
    for (name, host, ids) in held {
        let rows = match host.connection() {
            Some(conn) => tokio::time::timeout(Duration::from_secs(5), job::list(&conn))
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default(),
            None => Vec::new(),
        };
        for id in ids {
            let end_time = rows
                .iter()
                .find(|j| j.row.id == id)
                .and_then(|j| known_time(&j.row.end_time));
            out.push(JobLeftRunning {
                host: name.clone(),
                job_id: id,
                end_time,
            });
        }
    }
    out
}

/// Whether session `entry` holds a SLURM job open (its own launch, or one opened from Sessions).
pub fn holds_jobs(entry: &crate::state::SessionEntry) -> bool {
    own_job(entry).is_some() || !entry.slurm_open.is_empty()
}

/// Checks `request` on session `session_id`'s SLURM host before anything is queued (partition,
/// time against its MaxTime, GPU type and count against its nodes, then `sbatch --test-only`);
/// returns when SLURM expects it to start. Refusals are `validation` errors whose `fields` name
/// the form's field (`partition`, `time`, `gpuType`, `gpuCount`) with what to change.
#[tauri::command]
pub async fn check_slurm_request(
    state: State<'_, AppState>,
    session_id: String,
    request: SlurmRequestForm,
) -> Result<String, AppError> {
    let (_, conn, profile) = host_of(&state, &session_id)?;
    let req = request.to_request(&profile.slurm.unwrap_or_default())?;
    let checked = launch::check(&conn, &req)
        .await
        .map_err(SlurmRequestForm::form_names)?;
    Ok(checked.expected_start)
}

/// Launches JupyterLab as a SLURM job for session `session_id` from `request` (checked first;
/// `env`: a Python environment prefix on the cluster, `null`: the host's, else `python3`).
/// Progress arrives as `slurm` events (Checking → Queued → Starting → Ready); on ready the
/// notebook window opens through the login node. [`stop_slurm_notebook`] cancels or stops it.
#[tauri::command]
pub async fn launch_slurm_notebook<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    session_id: String,
    request: SlurmRequestForm,
    env: Option<String>,
) -> Result<(), AppError> {
    let (host, conn, profile) = host_of(&state, &session_id)?;
    let req = request.to_request(&profile.slurm.clone().unwrap_or_default())?;
    let jupyter = JupyterJob {
        env_prefix: env
            .filter(|e| !e.trim().is_empty())
            .or(profile.environment.clone()),
        notebook_dir: profile.notebook_dir.clone(),
    };
    let cancel = CancellationToken::new();
    let job_id = Arc::new(Mutex::new(None));
    let ready = Arc::new(Mutex::new(None));
    let mut sessions = state.sessions();
    let entry = sessions
        .get_mut(&session_id)
        .ok_or_else(|| AppError::no_session(&session_id))?;
    if entry.slurm.is_some() || entry.notebook.is_some() {
        return Err(AppError::new(
            ErrorCode::Validation,
            "a notebook already runs in this session; stop it first",
        ));
    }
    entry.summary.status = SessionStatus::Launching;
    entry.summary.url = None;
    let run = Run {
        app: app.clone(),
        id: session_id.clone(),
        host,
        conn,
        req,
        jupyter,
        cancel: cancel.clone(),
        job_id: job_id.clone(),
        ready: ready.clone(),
        host_name: profile.name.clone(),
    };
    let task = tauri::async_runtime::spawn(run.go());
    entry.slurm = Some(SlurmHandle {
        cancel,
        job_id,
        ready,
        task,
    });
    Ok(())
}

/// Stops session `session_id`'s SLURM notebook: while queued, Cancel (`scancel`); once ready,
/// JupyterLab's shutdown, then `scancel`, then the job's end confirmed; the notebook window
/// closes. Returns the job's final state (`CANCELLED`), `""` when no job was queued yet.
#[tauri::command]
pub async fn stop_slurm_notebook<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    session_id: String,
) -> Result<String, AppError> {
    let (handle, window, host) = {
        let mut sessions = state.sessions();
        let entry = sessions
            .get_mut(&session_id)
            .ok_or_else(|| AppError::no_session(&session_id))?;
        let handle = entry.slurm.take().ok_or_else(|| {
            AppError::new(
                ErrorCode::NotFound,
                "no SLURM notebook runs in this session",
            )
        })?;
        entry.summary.url = None;
        entry.summary.server_id = None;
        entry.summary.gpu = None;
        entry.summary.status = SessionStatus::Connected;
        (handle, entry.summary.window.take(), entry.host.clone())
    };
    super::jupyter::close_window(&app, window);
    stop(handle, &host).await
}

/// Ends a SLURM notebook's job: while launching, the launch is cancelled (the queued job
/// `scancel`led, its end confirmed); once ready, JupyterLab's shutdown, then `scancel`, then the
/// end confirmed. Returns the job's final state, `""` when no job was queued yet.
///
/// # Errors
/// The host is not connected; `scancel` or the confirmation failed.
pub async fn stop(handle: SlurmHandle, host: &HostSession) -> Result<String, AppError> {
    let ready = handle.ready.lock().ok().and_then(|mut r| r.take());
    let job = handle.job_id.lock().ok().and_then(|j| j.clone());
    if ready.is_none() {
        // Still launching: the launch cancels the queued job and confirms its end.
        handle.cancel.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(40), handle.task).await;
        let Some(job) = job.or_else(|| handle.job_id.lock().ok().and_then(|j| j.clone())) else {
            return Ok(String::new());
        };
        let conn = host
            .connection()
            .ok_or_else(|| AppError::new(ErrorCode::Unreachable, "the host is not connected"))?;
        return Ok(match job::poll(&conn, &job).await? {
            JobPhase::Ended { state, .. } => state,
            _ => launch::stop(&conn, &job, None, Duration::from_secs(30)).await?,
        });
    }
    handle.task.abort();
    let Some(job) = job else {
        return Ok(String::new());
    };
    let conn = host
        .connection()
        .ok_or_else(|| AppError::new(ErrorCode::Unreachable, "the host is not connected"))?;
    let end = {
        let jupyter = ready
            .as_ref()
            .and_then(|(f, t)| f.local_addr().map(|a| (a, t)));
        launch::stop(&conn, &job, jupyter, Duration::from_secs(60)).await
    };
    if let Some((forward, _)) = ready {
        forward.close().await;
    }
    Ok(end?)
}

/// Leaves a SLURM notebook's job running (quitting the app without stopping notebooks): only
/// this app's polling and forward end. Returns the job and its time left as SLURM says, for the
/// log.
pub async fn leave(handle: SlurmHandle) -> Option<String> {
    handle.task.abort();
    let ready = handle.ready.lock().ok().and_then(|mut r| r.take());
    if let Some((forward, _)) = ready {
        forward.close().await;
    }
    handle.job_id.lock().ok().and_then(|j| j.clone())
}

/// One launch, run as a task.
struct Run<R: Runtime> {
    app: AppHandle<R>,
    id: String,
    host: HostSession,
    conn: Connection,
    req: JobRequest,
    jupyter: JupyterJob,
    cancel: CancellationToken,
    job_id: Arc<Mutex<Option<String>>>,
    ready: ReadyJob,
    host_name: String,
}

impl<R: Runtime> Run<R> {
    fn step(&self, step: LaunchStep) {
        if let LaunchStep::Submitted { job_id } = &step
            && let Ok(mut j) = self.job_id.lock()
        {
            *j = Some(job_id.clone());
        }
        emit(
            &self.app,
            SlurmEvent {
                step: Some(step),
                ..SlurmEvent::new(&self.id)
            },
        );
    }

    fn fail(&self, error: AppError) {
        let state = self.app.state::<AppState>();
        if let Some(entry) = state.sessions().get_mut(&self.id) {
            entry.summary.status = SessionStatus::Failed;
            entry.slurm = None;
        }
        emit(
            &self.app,
            SlurmEvent {
                error: Some(error),
                ..SlurmEvent::new(&self.id)
            },
        );
    }

    async fn go(self) {
        let token = tunnelbook_core::jupyter::new_token();
        let result = launch::launch(
            &self.conn,
            &self.req,
            &self.jupyter,
            &token,
            |s| self.step(s),
            &self.cancel,
        )
        .await;
        let launched = match result {
            Ok(l) => l,
            // Stop took the handle and reports the end itself.
            Err(SlurmError::Cancelled { .. }) => return,
            Err(e) => return self.fail(SlurmRequestForm::form_names(e).into()),
        };
        let c = &launched.connection;
        // Through the login node to node:port (direct-tcpip); the listener survives a reconnect.
        let wait = Duration::from_secs(60);
        let (forward, local) = match self
            .host
            .forward_to_jupyter(&c.host, c.port, &token, wait)
            .await
        {
            Ok(Some(f)) => f,
            Ok(None) => {
                return self.fail(AppError::new(
                    ErrorCode::Jupyter,
                    format!(
                        "JupyterLab of job {} does not answer through {}:{}; the job keeps running \
                         (stop it here, or `tunnelbook down`)",
                        c.job_id, c.host, c.port
                    ),
                ));
            }
            Err(e) => return self.fail(e.into()),
        };
        let url = format!(
            "http://127.0.0.1:{}/lab?token={}",
            local.port(),
            token.expose()
        );
        if let Ok(mut r) = self.ready.lock() {
            *r = Some((forward, token));
        }
        let state = self.app.state::<AppState>();
        let gpu = format!(
            "job {} on {} · CUDA_VISIBLE_DEVICES={}",
            c.job_id,
            c.node,
            if c.cuda_visible_devices.is_empty() {
                "none"
            } else {
                &c.cuda_visible_devices
            }
        );
        let title = notebook::window_title(&self.host_name, Some(&gpu));
        let window = match notebook::open_window(&self.app, &state, &url, &title) {
            Ok(label) => Some(label),
            Err(e) => {
                tracing::warn!(error = %e, "cannot open the notebook window");
                None
            }
        };
        if let Some(entry) = state.sessions().get_mut(&self.id) {
            entry.summary.status = SessionStatus::Ready;
            entry.summary.url = Some(notebook::public_url(&self.app, &url));
            entry.summary.gpu = Some(gpu);
            entry.summary.server_id = Some(format!("slurm-{}", c.job_id));
            entry.summary.window = window;
        }
        // The tray sees the session ready now: its "Notebook ready" desktop notification (people
        // walk away while queued).
        crate::tray::refresh(&self.app);
        self.follow(&c.job_id).await;
    }

    /// Polls the ready job: time left (warnings at 15 and 5 minutes), and its end ("time limit
    /// reached" when SLURM's limit ended it).
    async fn follow(&self, job_id: &str) {
        let mut watch = JobWatch::new();
        loop {
            tokio::time::sleep(RUNNING_POLL).await;
            let Some(conn) = self.host.connection() else {
                continue;
            };
            match watch.poll(&conn, job_id).await {
                Some(JobNews::Running {
                    time_left_secs: Some(left),
                    warn_at_minutes,
                }) => {
                    let mut event = SlurmEvent {
                        time_left_secs: Some(left),
                        ..SlurmEvent::new(&self.id)
                    };
                    if let Some(mark) = warn_at_minutes {
                        let warning = format!(
                            "Job {job_id} reaches its time limit in {} ({mark} minutes or less \
                             left): save your work.",
                            slurm::format_time(left)
                        );
                        crate::tray::notify(
                            &self.app,
                            &crate::tray::Notice {
                                title: "Notebook time limit soon".into(),
                                body: warning.clone(),
                            },
                        );
                        event.warning = Some(warning);
                    }
                    emit(&self.app, event);
                }
                Some(JobNews::Ended(end)) => {
                    let message = if end.timed_out {
                        format!(
                            "Time limit reached: SLURM ended job {job_id}. Relaunch with the \
                             same settings to go on."
                        )
                    } else {
                        format!("Job {job_id} ended: {}", end.words())
                    };
                    return self.ended(message, end.timed_out).await;
                }
                _ => {}
            }
        }
    }

    /// The job ended on its own: back to choosing (the connection is fine), the notebook window
    /// keeps its page and says why, a desktop notice.
    async fn ended(&self, message: String, timed_out: bool) {
        let state = self.app.state::<AppState>();
        let forward = state.sessions().get_mut(&self.id).and_then(|e| {
            e.summary.status = SessionStatus::Connected;
            e.summary.server_id = None;
            e.summary.url = None;
            // No notebook runs in the session any more: no GPU to show either.
            e.summary.gpu = None;
            e.slurm
                .take()
                .and_then(|h| h.ready.lock().ok().and_then(|mut r| r.take()))
        });
        if let Some((f, _)) = forward {
            f.close().await;
        }
        // The notebook window stays (unsaved work can be copied) and says why.
        let window = state
            .sessions()
            .get(&self.id)
            .and_then(|e| e.summary.window.clone())
            .and_then(|label| self.app.get_webview_window(&label));
        if let Some(window) = window {
            notebook::set_banner(&window, Some(&message), None);
        }
        crate::tray::notify(
            &self.app,
            &crate::tray::Notice {
                title: if timed_out {
                    "Time limit reached".into()
                } else {
                    "Notebook job ended".into()
                },
                body: message.clone(),
            },
        );
        emit(
            &self.app,
            SlurmEvent {
                ended: Some(message),
                ..SlurmEvent::new(&self.id)
            },
        );
    }
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
}
