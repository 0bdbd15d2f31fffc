//! SLURM hosts in the app (issue 20): the GPU step's cluster view and request form, and
//! JupyterLab launched as a batch job on a compute node through core's one launch flow
//! ([`tunnelbook_core::slurm::launch`], the CLI's `up --slurm` too), forwarded through the login
//! node to `node:port` and opened in the same notebook window as on a plain box. Stop is
//! JupyterLab's shutdown, then `scancel`, the job's end confirmed.
//!
//! The app never starts JupyterLab on a SLURM login node: `launch_notebook` refuses there
//! ([`refuse_login_node`]).

use std::time::Duration;

use serde::Serialize;
use tauri::{AppHandle, Emitter, Manager, Runtime, State};
use ts_rs::TS;
/// The views and the request form as the UI sends and gets them (core's).
pub use tunnelbook_core::slurm::{
    JobLeftRunning, QuitQuestion, SlurmJobView, SlurmRequestForm, SlurmView,
    notebook::{JobNotebook as SlurmHandle, leave},
};
use tunnelbook_core::{
    host::HostSession,
    profile::Profile,
    slurm::{
        self, Scheduler,
        job::{self, JupyterJob},
        launch::{self, LaunchStep},
        notebook::{self as job_notebook, NotebookNews},
    },
    ssh::Connection,
    tray,
};

use crate::{
    commands::notebook,
    error::{AppError, ErrorCode},
    state::{AppState, SessionEntry},
    wire::SessionStatus,
};

/// Name of the event that carries a [`SlurmEvent`].
pub const SLURM_EVENT: &str = "slurm";

/// One change of a SLURM launch or of its running job, emitted as the `slurm` event. Exactly one
/// of `step`, `timeLeftSecs`, `ended`, `error` is set.
#[derive(Debug, Clone, Default, Serialize, TS)]
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

pub use tunnelbook_core::slurm::notebook::OpenedJob;

fn emit<R: Runtime>(app: &AppHandle<R>, event: SlurmEvent) {
    if let Err(e) = app.emit(SLURM_EVENT, event) {
        tracing::warn!(error = %e, "cannot deliver a slurm event");
    }
}

/// The session's host, its open connection and its profile.
fn host_of(state: &AppState, id: &str) -> Result<(HostSession, Connection, Profile), AppError> {
    let (host, profile) = host_and_profile(state, id)?;
    let conn = host.open_connection()?;
    Ok((host, conn, profile))
}

fn host_and_profile(state: &AppState, id: &str) -> Result<(HostSession, Profile), AppError> {
    let sessions = state.sessions();
    let entry = sessions.get(id).ok_or_else(|| AppError::no_session(id))?;
    Ok((entry.host.clone(), entry.profile()))
}

/// Whether session `id`'s host is a SLURM login node (core's [`HostSession::is_slurm`]); a
/// detected one counts as `scheduler: slurm` for the rest of the session.
async fn is_slurm(state: &AppState, id: &str) -> Result<bool, AppError> {
    let (host, profile) = host_and_profile(state, id)?;
    let slurm = host.is_slurm(profile.scheduler).await;
    if slurm
        && let Some(last) = state
            .sessions()
            .get_mut(id)
            .and_then(|e| e.chain.as_mut()?.last_mut())
    {
        last.scheduler = Some(Scheduler::Slurm);
    }
    Ok(slurm)
}

/// For `launch_notebook`: an error when session `id`'s host is a SLURM login node, where
/// JupyterLab must not run (it runs as a batch job: [`launch_slurm_notebook`]).
pub async fn refuse_login_node(state: &AppState, id: &str) -> Result<(), AppError> {
    match is_slurm(state, id).await? {
        true => Err(slurm::SlurmError::LoginNode.into()),
        false => Ok(()),
    }
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
    Ok(Some(
        SlurmView::read(&conn, profile.slurm.unwrap_or_default()).await?,
    ))
}

/// The job id of session `entry`'s own SLURM launch, once submitted.
fn own_job(entry: &SessionEntry) -> Option<String> {
    entry.slurm.as_ref().and_then(SlurmHandle::job_id)
}

/// The token-free URL of job `job_id` when session `entry` has a forward to it (its own launch,
/// or a job opened from Sessions).
fn job_url(entry: &SessionEntry, job_id: &str) -> Option<String> {
    match own_job(entry).as_deref() == Some(job_id) {
        true => entry.summary.url.clone(),
        false => entry.slurm_open.get(job_id).map(|o| o.url.clone()),
    }
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
    let view = |j: job::TunnelbookJob| {
        let (url, own) = (job_url(entry, &j.row.id), own.as_ref() == Some(&j.row.id));
        SlurmJobView::new(&session_id, j, own, url)
    };
    Ok(Some(jobs.into_iter().map(view).collect()))
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
    let link = {
        let sessions = state.sessions();
        let entry = sessions
            .get(&session_id)
            .ok_or_else(|| AppError::no_session(&session_id))?;
        if let Some(url) = job_url(entry, &job_id) {
            return Ok(url);
        }
        entry.host.link()
    };
    let (forward, url) = job_notebook::open_job(&link, &job_id).await?;
    let url = notebook::public_url(&app, &url);
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
/// Sessions), each with the end time SLURM gives it (core's [`slurm::jobs_left_running`]): what
/// keeps running when the app quits without stopping notebooks.
pub async fn jobs_left_running(state: &AppState) -> Vec<JobLeftRunning> {
    let held: Vec<_> = (state.sessions().values())
        .filter_map(|e| {
            let ids: Vec<String> = own_job(e)
                .into_iter()
                .chain(e.slurm_open.keys().cloned())
                .collect();
            (!ids.is_empty()).then(|| (e.profile().name, e.host.connection(), ids))
        })
        .collect();
    slurm::jobs_left_running(held).await
}

/// Whether session `entry` holds a SLURM job open (its own launch, or one opened from Sessions).
pub fn holds_jobs(entry: &SessionEntry) -> bool {
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
    let jupyter = JupyterJob::on_host(env, None, &profile);
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
    let (id, name) = (session_id.clone(), profile.name.clone());
    let news = move |news| tell(&app, &id, &name, news);
    entry.slurm = Some(SlurmHandle::start(host.link(), conn, req, jupyter, news));
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
        entry.summary.notebook_gone();
        (handle, entry.summary.window.take(), entry.host.clone())
    };
    super::jupyter::close_window(&app, window);
    stop(handle, &host).await
}

/// Ends a SLURM notebook's job over `host`'s connection (core's [`job_notebook::stop`]).
///
/// # Errors
/// The host is not connected; `scancel` or the confirmation failed.
pub async fn stop(handle: SlurmHandle, host: &HostSession) -> Result<String, AppError> {
    Ok(job_notebook::stop(handle, &host.link()).await?)
}

/// Says what happened to session `id`'s SLURM notebook (on host `host_name`): `slurm` events,
/// the session's row (core's [`tunnelbook_core::host::SessionSummary::job_news`]), the notebook
/// window, desktop notices (core's [`tray::job_notice`]).
fn tell<R: Runtime>(app: &AppHandle<R>, id: &str, host_name: &str, news: NotebookNews) {
    let state = app.state::<AppState>();
    // Ready: the window opens first (the row names it), on the URL with its token.
    let opened = match &news {
        NotebookNews::Ready { url, gpu, .. } => {
            let title = notebook::window_title(host_name, Some(gpu));
            let window = notebook::open_window(app, &state, url, &title)
                .inspect_err(|e| tracing::warn!(error = %e, "cannot open the notebook window"));
            Some((notebook::public_url(app, url), window.ok()))
        }
        _ => None,
    };
    let window = state.sessions().get_mut(id).and_then(|e| {
        if e.summary.job_news(&news) {
            e.slurm = None;
        }
        if let Some((url, window)) = opened {
            (e.summary.url, e.summary.window) = (Some(url), window);
        }
        e.summary.window.clone()
    });
    if let Some(notice) = tray::job_notice(&news) {
        crate::tray::notify(app, &notice);
    }
    let mut event = SlurmEvent {
        session_id: id.to_string(),
        ..SlurmEvent::default()
    };
    match news {
        NotebookNews::Step(step) => event.step = Some(step),
        NotebookNews::Failed(error) => event.error = Some(error.into()),
        // The tray sees the session ready now: its "Notebook ready" desktop notification.
        NotebookNews::Ready { .. } => return crate::tray::refresh(app),
        NotebookNews::TimeLeft { secs, warning } => {
            event.time_left_secs = Some(secs);
            event.warning = warning;
        }
        NotebookNews::Ended { message, .. } => {
            // The notebook window stays (unsaved work can be copied) and says why.
            if let Some(window) = window.and_then(|label| app.get_webview_window(&label)) {
                notebook::set_banner(&window, Some(&message), None);
            }
            event.ended = Some(message);
        }
    }
    emit(app, event);
}
