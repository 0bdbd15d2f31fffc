//! Starting and cancelling sessions, answering the questions they ask, running commands.
//!
//! A session is core's [`HostSession`] on the chosen host: its events go to the UI one to one as
//! `session` events; the app only keeps the sessions list's status in step with them.

use tauri::{AppHandle, Emitter, Manager, Runtime, State};
use tokio::sync::mpsc;
use tunnelbook_core::{
    host::{HostEvent, HostSpec},
    jupyter,
    session::{ReconnectPolicy, SessionHost},
    sessions::{DISMISS_AGAIN, reconnect_change},
    settings::SettingsStore,
};

use crate::{
    commands::notebook,
    error::AppError,
    launch,
    prompt::PromptAnswer,
    state::AppState,
    wire::{ExecOutput, LOCAL_HOST_ID, SESSION_EVENT, SessionEvent},
};

/// Starts a session on host `host_id`; progress arrives as `session` events. Returns its id.
/// One connection per host: when the host has a live session ([`live_session`]) that one's id
/// is returned and nothing is dialed (its earlier events are not sent again).
#[tauri::command]
pub async fn start_session<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    host_id: String,
) -> Result<String, AppError> {
    if let Some(id) = state.live_session(&host_id) {
        tracing::info!(session = %id, host = %host_id, "the host is connected already: no second connection");
        return Ok(id);
    }
    let chain = match host_id.as_str() {
        LOCAL_HOST_ID => None,
        name => Some(state.profiles.chain(name)?),
    };
    let spec = HostSpec {
        host: SessionHost::of(chain.clone(), || launch::connect_context(&app, &state)),
        reconnect: ReconnectPolicy::default(),
        free_rule: SettingsStore::in_home(state.home())
            .load_or_default()
            .gpu_free,
        // A SLURM login node is detected on connect and saved with the host (issue 20).
        profiles: Some(state.profiles.clone()),
        probe: true,
    };
    // Registered before the task starts, so it always finds its entry.
    let (id, events) = state.start(host_id, chain, spec);
    let task = tauri::async_runtime::spawn(forward_events(app, id.clone(), events));
    let _ = state.with(&id, |e| e.task = Some(task.inner().abort_handle()));
    Ok(id)
}

/// The session whose connection to host `host_id` is open, being dialed or re-established
/// (`null`: none, or only closed and failed ones): Connect on that host shows it rather than
/// opening a second SSH connection.
#[tauri::command]
pub async fn live_session(
    state: State<'_, AppState>,
    host_id: String,
) -> Result<Option<String>, AppError> {
    Ok(state.live_session(&host_id))
}

/// Stops session `session_id` wherever it is (connecting, waiting for a prompt, running).
#[tauri::command]
pub async fn cancel_session<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    session_id: String,
) -> Result<(), AppError> {
    super::sessions::close(&app, &state, &session_id).await
}

/// Completes question `id` (from a `prompt` event).
#[tauri::command]
pub async fn answer_prompt(
    state: State<'_, AppState>,
    id: u32,
    answer: PromptAnswer,
) -> Result<(), AppError> {
    Ok(state.prompts.answer(id, answer)?)
}

/// Runs `command` on session `session_id`'s host through its login shell.
#[tauri::command]
pub async fn run_command(
    state: State<'_, AppState>,
    session_id: String,
    command: String,
) -> Result<ExecOutput, AppError> {
    let output = state.connection(&session_id)?.exec(&command).await?;
    Ok(ExecOutput {
        status: output.status,
        stdout: output.stdout_text(),
        stderr: output.stderr_text(),
    })
}

/// Emits session `id`'s host events as `session` events until the host session ends, keeping
/// the sessions list's status in step (core's [`follow_host_event`](tunnelbook_core::sessions::Sessions::follow_host_event),
/// before the event goes out, so a UI reacting to it already sees it).
async fn forward_events<R: Runtime>(
    app: AppHandle<R>,
    id: String,
    mut events: mpsc::Receiver<HostEvent>,
) {
    // Whether the connection was lost and is being dialed again.
    let mut down = false;
    while let Some(event) = events.recv().await {
        if let Some(lost) = reconnect_change(&event, &mut down) {
            reopened_banner(&app, &id, lost);
        }
        // Connected: the projects followed when the app last ran resume (issue 21), and the
        // host's enabled forwarding rules start.
        let resume_on = app.state::<AppState>().follow_host_event(&id, &event);
        if let Err(e) = app.emit(SESSION_EVENT, SessionEvent::of(&id, event)) {
            tracing::warn!(error = %e, "cannot deliver a session event");
        }
        if let Some(host) = resume_on {
            crate::commands::projects::resume(&app, &id, &host);
            let app = app.clone();
            tauri::async_runtime::spawn(async move {
                super::tunnels::start_saved(&app, &host).await;
            });
        }
    }
}

/// The windows on the servers session `id` reopened (Reopen, Sessions' Open: its `attached`
/// servers, whose forwards run over the host session) follow the host session's connection as
/// a fresh launch's window follows its notebook's: a banner while it is lost (`lost`), and on
/// reconnect the banner goes and JupyterLab's stale "Server Connection Error" is dismissed
/// (once more a moment later, for one raised by a request that failed just before).
pub fn reopened_banner<R: Runtime>(app: &AppHandle<R>, id: &str, lost: bool) {
    let windows = reopened_windows(app, id);
    if windows.is_empty() {
        return;
    }
    let name = app
        .state::<AppState>()
        .with(id, |e| e.summary.host_id.clone());
    let name = name.unwrap_or_default();
    for w in &windows {
        if lost {
            let message = jupyter::words::reconnecting_banner(&name, None);
            notebook::set_banner(w, Some(&message), None);
        } else {
            notebook::set_banner(w, None, None);
            notebook::dismiss_connection_errors(w);
        }
    }
    if !lost {
        let (app, id) = (app.clone(), id.to_string());
        tauri::async_runtime::spawn(async move {
            tokio::time::sleep(DISMISS_AGAIN).await;
            for w in reopened_windows(&app, &id) {
                notebook::dismiss_connection_errors(&w);
            }
        });
    }
}

/// Every window showing a server session `id` reopened.
fn reopened_windows<R: Runtime>(app: &AppHandle<R>, id: &str) -> Vec<tauri::WebviewWindow<R>> {
    let urls = app.state::<AppState>().with(id, |e| {
        let urls = e.attached.values().map(|(_, url)| url.clone());
        urls.collect::<Vec<_>>()
    });
    let urls = urls.unwrap_or_default();
    launch::windows_of(app, urls.iter().map(String::as_str), None)
}
