//! The notebook of a session: core's [`Session`] run to ready, its typed events turned into the
//! app's step events, the notebook window opened on ready, and the session ended on request.
//!
//! Core's session starts on the host's open connection (the one the GPU picker, environments
//! and commands use), so nothing is asked twice; after a lost connection it dials its own from
//! the profile chain, as the CLI's `up` does. Nothing here decides how a step is done; this is
//! the translation between core's events and the UI's.
//! Waking from sleep or moving to another network makes core check the notebook's connection at
//! once ([`wake`]) rather than after the keepalives give up.

use std::sync::Arc;

use tauri::{AppHandle, Emitter, Manager, Runtime};
use tokio::sync::oneshot;
use tunnelbook_core::{
    jupyter::words,
    session::{self as core, Session, SessionEvent as CoreEvent},
    settings::SettingsStore,
    ssh::{ConnectContext, ConnectOptions, KnownHosts},
    wake,
};

use crate::{
    commands::notebook,
    error::AppError,
    prompt::AppPrompter,
    state::AppState,
    wire::{SESSION_EVENT, SessionEvent, SessionStatus, SessionStep, StepState},
};

/// How core connects from the app: questions become dialogs, keys are checked against the app's
/// known_hosts under the host-key policy chosen in Settings (read at each connection, so a
/// change applies to the next one).
pub fn connect_context<R: Runtime>(app: &AppHandle<R>, state: &AppState) -> ConnectContext {
    let host_key_policy = SettingsStore::in_home(state.home())
        .load_or_default()
        .host_key_policy;
    ConnectContext {
        prompter: Arc::new(AppPrompter::new(app.clone(), state.prompts.clone())),
        known_hosts: KnownHosts::new(state.known_hosts_file()),
        secrets: state.secrets(),
        options: ConnectOptions {
            host_key_policy,
            ..ConnectOptions::default()
        },
    }
}

/// Emits one step event of session `id`.
pub fn emit<R: Runtime>(
    app: &AppHandle<R>,
    id: &str,
    step: SessionStep,
    state: StepState,
    message: impl Into<String>,
    error: Option<AppError>,
) {
    let event = SessionEvent {
        session_id: id.to_string(),
        step,
        state,
        message: message.into(),
        error,
    };
    if let Err(e) = app.emit(SESSION_EVENT, event) {
        tracing::warn!(error = %e, "cannot deliver a session event");
    }
}

/// Session `id`'s host as a person knows it (the saved host's name, or "This computer").
fn host_name(state: &AppState, id: &str) -> String {
    let host_id = state
        .sessions()
        .get(id)
        .map(|e| e.summary.host_id.clone())
        .unwrap_or_default();
    if host_id == crate::wire::LOCAL_HOST_ID {
        "This computer".into()
    } else {
        host_id
    }
}

/// The notebook window title of session `id` ([`notebook::window_title`]): host and GPU.
pub fn notebook_title(state: &AppState, id: &str) -> String {
    let gpu = state.sessions().get(id).and_then(|e| e.summary.gpu.clone());
    notebook::window_title(&host_name(state, id), gpu.as_deref())
}

/// Shows (`Some`, with `button` if any) or removes (`None`) the banner of session `id`'s
/// notebook window, if open.
fn notebook_banner<R: Runtime>(
    app: &AppHandle<R>,
    state: &AppState,
    id: &str,
    message: Option<&str>,
    button: Option<notebook::BannerButton<'_>>,
) {
    let window = state
        .sessions()
        .get(id)
        .and_then(|e| e.summary.window.clone())
        .and_then(|label| app.get_webview_window(&label));
    if let Some(window) = window {
        notebook::set_banner(&window, message, button);
    }
}

/// Dismisses JupyterLab's stale "Server Connection Error" in every window on session `id`'s
/// notebook (its own window, and others opened on the same address).
fn dismiss_connection_errors<R: Runtime>(app: &AppHandle<R>, state: &AppState, id: &str) {
    let (window, url) = state
        .sessions()
        .get(id)
        .map(|e| (e.summary.window.clone(), e.summary.url.clone()))
        .unwrap_or_default();
    let mut windows = url
        .as_deref()
        .map(|u| notebook::windows_on(app, u))
        .unwrap_or_default();
    if let Some(w) = window.and_then(|l| app.get_webview_window(&l))
        && !windows.iter().any(|x| x.label() == w.label())
    {
        windows.push(w);
    }
    for w in &windows {
        notebook::dismiss_connection_errors(w);
    }
}

/// The app's step for a core step.
fn app_step(step: core::Step) -> SessionStep {
    match step {
        core::Step::Connect => SessionStep::Connect,
        core::Step::Gpus => SessionStep::ReadGpus,
        core::Step::Environment => SessionStep::FindEnvironments,
        core::Step::Launch => SessionStep::StartJupyter,
        core::Step::Tunnel => SessionStep::OpenTunnel,
        core::Step::Ready => SessionStep::Ready,
    }
}

/// Runs core's session for session `id` until it fails, or is ready and then told to `stop`
/// (`true`: stop the server too). A `stop` before ready cancels: core stops a server that was
/// started but never became ready.
pub async fn drive_notebook<R: Runtime>(
    app: AppHandle<R>,
    id: String,
    mut session: Session,
    mut stop: oneshot::Receiver<bool>,
) {
    let state = app.state::<AppState>();
    let mut ready = false;
    let mut last_ready_message = String::new();
    // Waking from sleep or a new network checks the notebook's connection at once.
    let mut wakes = wake::watch(wake::DEFAULT_TICK);
    loop {
        let event = tokio::select! {
            event = session.next_event() => event,
            Some(why) = wakes.recv() => {
                if ready {
                    tracing::info!(session = %id, "{why}: checking the connection");
                    session.reconnect_now();
                }
                continue;
            }
            stop_server = &mut stop => {
                if ready {
                    session.close(stop_server.unwrap_or(true)).await;
                } else {
                    session.cancel();
                    // The channel closes once core has cleaned up.
                    while session.next_event().await.is_some() {}
                }
                return;
            }
        };
        let Some(event) = event else {
            break;
        };
        let say = |step, st, message: String, error| emit(&app, &id, step, st, message, error);
        let banner =
            |message: Option<&str>, button| notebook_banner(&app, &state, &id, message, button);
        match event {
            CoreEvent::Progress(p) => {
                let step = app_step(p.step);
                let st = match p.state {
                    core::StepState::Started => StepState::Running,
                    core::StepState::Done => StepState::Done,
                    core::StepState::Skipped => StepState::Skipped,
                };
                if step == SessionStep::Ready && st == StepState::Done {
                    // Reported with the URL in place, below.
                    last_ready_message = p.message;
                    continue;
                }
                say(step, st, p.message, None);
                if step == SessionStep::Connect && st != StepState::Running {
                    // Core connects in one go: the host key and authentication are part of it.
                    let done = st == StepState::Done;
                    let (key, auth) = if done {
                        ("host key verified", "authenticated")
                    } else {
                        ("", "")
                    };
                    say(SessionStep::HostKey, st, key.into(), None);
                    say(SessionStep::Authenticate, st, auth.into(), None);
                }
            }
            CoreEvent::Ready(info) => {
                ready = true;
                let host_id = state.sessions().get(&id).map(|e| e.summary.host_id.clone());
                // Reopen (after the app restarts, or from the CLI's attach) comes back here.
                let book = tunnelbook_core::jupyter::PortBook::in_home(state.home());
                let remembered = book.remember(
                    &host_id.unwrap_or_default(),
                    &info.server_id,
                    info.local_port,
                );
                if let Err(e) = remembered {
                    tracing::debug!(error = %e, "cannot remember the notebook's local port");
                }
                let gpu_label = info.gpu_label.as_deref();
                let title = notebook::window_title(&host_name(&state, &id), gpu_label);
                // Ready again after a restart: the open notebook window follows the new server.
                let open = state
                    .sessions()
                    .get(&id)
                    .and_then(|e| e.summary.window.clone());
                let window = match open.and_then(|label| app.get_webview_window(&label)) {
                    Some(window) => notebook::navigate(&window, &info.url)
                        .map(|()| window.label().to_string())
                        .inspect_err(
                            |e| tracing::warn!(error = %e, "cannot reload the notebook window"),
                        ),
                    None => notebook::open_window(&app, &state, &info.url, &title).inspect_err(
                        |e| tracing::warn!(error = %e, "cannot open the notebook window"),
                    ),
                };
                if let Some(entry) = state.sessions().get_mut(&id) {
                    entry.summary.status = SessionStatus::Ready;
                    // The main window gets the URL without its token (notebook::public_url).
                    entry.summary.url = Some(notebook::public_url(&app, &info.url));
                    entry.summary.gpu = info.gpu_label.clone().or(info.gpu.clone());
                    entry.summary.env = Some(info.env.clone());
                    entry.summary.server_id = Some(info.server_id.clone());
                    entry.summary.window = window.ok();
                }
                let message = words::ready_step(&last_ready_message, info.local_port, gpu_label);
                say(SessionStep::Ready, StepState::Done, message, None);
            }
            CoreEvent::Failed { step, error } => {
                let error = AppError::from(error);
                // Status first: a UI reacting to the event must already see the failure.
                if let Some(entry) = state.sessions().get_mut(&id) {
                    // The host's connection is still up: back to choosing.
                    entry.summary.status = SessionStatus::Failed;
                    entry.notebook = None;
                }
                say(
                    app_step(step),
                    StepState::Failed,
                    error.message.clone(),
                    Some(error),
                );
            }
            CoreEvent::Reconnecting {
                attempt,
                next_try_in_secs,
                reason,
            } => {
                state.set_status(&id, SessionStatus::Disconnected);
                banner(
                    Some(&words::reconnecting_banner(
                        &host_name(&state, &id),
                        Some(attempt),
                    )),
                    None,
                );
                let message = words::reconnecting_step(&reason, attempt, next_try_in_secs);
                say(SessionStep::OpenTunnel, StepState::Running, message, None);
            }
            CoreEvent::Reconnected {
                attempts,
                outage_secs,
            } => {
                state.set_status(&id, SessionStatus::Ready);
                banner(None, None);
                // JupyterLab's "Server Connection Error" from the outage is stale now; once
                // more a moment later for one raised by a request that failed just before.
                dismiss_connection_errors(&app, &state, &id);
                let (later_app, later_id) = (app.clone(), id.clone());
                tauri::async_runtime::spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
                    let state = later_app.state::<AppState>();
                    dismiss_connection_errors(&later_app, &state, &later_id);
                });
                let message = words::reconnected_step(outage_secs, attempts);
                say(SessionStep::OpenTunnel, StepState::Done, message, None);
            }
            CoreEvent::ServerGone { reason } => {
                // Core keeps the session for a restart or a close; so does the app.
                state.set_status(&id, SessionStatus::Failed);
                // Core's typed problem as it is (code `serverGone`, what was seen in words): the
                // UI switches on the code for Restart server and what to say next.
                let error = AppError::from(reason);
                // The banner says what happened in words, with a Restart button; the details
                // (process, log on the host) go to the log and the main window's step.
                tracing::warn!(session = %id, reason = %error.message, "the notebook server is gone");
                dismiss_connection_errors(&app, &state, &id);
                let restart = notebook::BannerButton {
                    label: "Restart server",
                    path: notebook::RESTART_PATH,
                    pending: "Restarting the notebook server…",
                };
                banner(
                    Some(&words::server_gone_banner(&host_name(&state, &id))),
                    Some(restart),
                );
                say(
                    SessionStep::Ready,
                    StepState::Failed,
                    error.message.clone(),
                    Some(error),
                );
            }
            CoreEvent::Disconnected { reason } => {
                state.set_status(&id, SessionStatus::Disconnected);
                // The code says why (a changed host key, refused credentials, …).
                let error = AppError::new(reason.code, words::disconnected_error(&reason));
                banner(
                    Some(&words::disconnected_banner(
                        &host_name(&state, &id),
                        &reason,
                    )),
                    None,
                );
                say(
                    SessionStep::OpenTunnel,
                    StepState::Failed,
                    error.message.clone(),
                    Some(error),
                );
            }
        }
    }
    // Core's session ended by itself (failed, or dropped its connection and was closed): wait
    // for the stop that close_session sends, so the handle stays consistent.
    let _ = stop.await;
}
