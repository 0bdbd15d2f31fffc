//! A session's notebook driven to ready and kept: core's [`Session`] events turned into what the
//! front end shows — step events in the main window ([`host::Step`]: the same steps a host
//! session reports), the notebook window opened or reloaded on ready, its banner while the
//! connection or the server is lost — and the session's row kept in step. The front end only
//! performs them ([`NotebookUi`]).
//!
//! Waking from sleep or moving to another network makes core check the notebook's connection at
//! once ([`wake`]) rather than after the keepalives give up.

use std::time::Duration;

use tokio::{sync::oneshot, time::Instant};

use super::Sessions;
use crate::{
    error::Problem,
    host::{self, SessionStatus},
    jupyter::{
        PortBook,
        window::{BannerButton, RESTART_PATH, window_title},
        words,
    },
    session::{self, Session, SessionEvent},
    wake,
};

/// How long after a reconnect JupyterLab's stale "Server Connection Error" is dismissed once
/// more (one raised by a request that failed just before).
pub const DISMISS_AGAIN: Duration = Duration::from_secs(3);

/// What a front end does for a notebook [`drive_notebook`] runs. Windows are named by their
/// label (`jupyter-<n>`).
pub trait NotebookUi {
    /// Reports one step of the session in the main window (`error` set when `state` is failed).
    fn step(
        &self,
        step: host::Step,
        state: host::StepState,
        message: String,
        error: Option<Problem>,
    );
    /// Shows (`Some`) or removes (`None`) the banner of notebook window `window`, if open.
    fn banner(&self, window: &str, text: Option<&str>, button: Option<BannerButton<'_>>);
    /// Dismisses JupyterLab's stale "Server Connection Error" in window `window` and in every
    /// window on `url` (a notebook's address, token-free).
    fn dismiss_connection_errors(&self, window: Option<&str>, url: Option<&str>);
    /// Shows the ready notebook at `url` (holds the token): reloads window `open` when it is
    /// still open, else opens a window titled `title`. Returns the URL as the main window may
    /// know it (token-free) and the window's label, if one shows it.
    fn show(&self, open: Option<&str>, url: &str, title: &str) -> (String, Option<String>);
}

/// Where a driven notebook is.
#[derive(Debug, Default)]
pub(super) struct Driving {
    pub(super) ready: bool,
    pub(super) last_ready_message: String,
    pub(super) dismiss_at: Option<Instant>,
}

/// Runs core's `session` for session `id` of `sessions` until it fails, or is ready and then
/// told to `stop` (`true`: stop the server too). A `stop` before ready cancels: core stops a
/// server that was started but never became ready. A ready notebook's local port is
/// remembered in `book`, so a reopen comes back on it.
pub async fn drive_notebook(
    sessions: &Sessions,
    id: &str,
    mut session: Session,
    mut stop: oneshot::Receiver<bool>,
    book: &PortBook,
    ui: &impl NotebookUi,
) {
    let mut at = Driving::default();
    // Waking from sleep or a new network checks the notebook's connection at once.
    let mut wakes = wake::watch(wake::DEFAULT_TICK);
    loop {
        let dismiss_at = at.dismiss_at;
        let later = async move {
            match dismiss_at {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        let event = tokio::select! {
            event = session.next_event() => event,
            Some(why) = wakes.recv() => {
                if at.ready {
                    tracing::info!(session = %id, "{why}: checking the connection");
                    session.reconnect_now();
                }
                continue;
            }
            () = later => {
                at.dismiss_at = None;
                dismiss(sessions, id, ui);
                continue;
            }
            stop_server = &mut stop => {
                if at.ready {
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
        on_event(sessions, id, event, &mut at, book, ui);
    }
    // Core's session ended by itself (failed, or dropped its connection and was closed): wait
    // for the stop that closing the session sends, so the handle stays consistent.
    let _ = stop.await;
}

/// The host step a notebook step is reported as.
pub fn host_step(step: session::Step) -> host::Step {
    match step {
        session::Step::Connect => host::Step::Connect,
        session::Step::Gpus => host::Step::ReadGpus,
        session::Step::Environment => host::Step::FindEnvironments,
        session::Step::Launch => host::Step::StartJupyter,
        session::Step::Tunnel => host::Step::OpenTunnel,
        session::Step::Ready => host::Step::Ready,
    }
}

/// Dismisses the stale connection errors in every window on session `id`'s notebook.
fn dismiss(sessions: &Sessions, id: &str, ui: &impl NotebookUi) {
    let (window, url) = sessions
        .with(id, |e| (e.summary.window.clone(), e.summary.url.clone()))
        .unwrap_or_default();
    ui.dismiss_connection_errors(window.as_deref(), url.as_deref());
}

/// What one event of session `id`'s notebook changes and shows.
pub(super) fn on_event(
    sessions: &Sessions,
    id: &str,
    event: SessionEvent,
    at: &mut Driving,
    book: &PortBook,
    ui: &impl NotebookUi,
) {
    let (host_id, host_name, window) = sessions
        .with(id, |e| {
            let w = e.summary.window.clone();
            (e.summary.host_id.clone(), e.host_name(), w)
        })
        .unwrap_or_default();
    let banner = |text: Option<&str>, button| {
        if let Some(window) = &window {
            ui.banner(window, text, button);
        }
    };
    match event {
        SessionEvent::Progress(p) => {
            let step = host_step(p.step);
            let state = match p.state {
                session::StepState::Started => host::StepState::Running,
                session::StepState::Done => host::StepState::Done,
                session::StepState::Skipped => host::StepState::Skipped,
            };
            if step == host::Step::Ready && state == host::StepState::Done {
                // Reported with the URL in place, on ready.
                at.last_ready_message = p.message;
                return;
            }
            ui.step(step, state, p.message, None);
            if step == host::Step::Connect && state != host::StepState::Running {
                // Core connects in one go: the host key and authentication are part of it.
                let (key, auth) = match state {
                    host::StepState::Done => ("host key verified", "authenticated"),
                    _ => ("", ""),
                };
                ui.step(host::Step::HostKey, state, key.into(), None);
                ui.step(host::Step::Authenticate, state, auth.into(), None);
            }
        }
        SessionEvent::Ready(info) => {
            at.ready = true;
            // Reopen (after the app restarts, or from the CLI's attach) comes back here.
            if let Err(e) = book.remember(&host_id, &info.server_id, info.local_port) {
                tracing::debug!(error = %e, "cannot remember the notebook's local port");
            }
            let gpu_label = info.gpu_label.as_deref();
            let title = window_title(&host_name, gpu_label);
            // Ready again after a restart: the open notebook window follows the new server.
            let (url, window) = ui.show(window.as_deref(), &info.url, &title);
            let _ = sessions.with(id, |entry| {
                entry.summary.status = SessionStatus::Ready;
                entry.summary.url = Some(url);
                entry.summary.gpu = info.gpu_label.clone().or(info.gpu.clone());
                entry.summary.env = Some(info.env.clone());
                entry.summary.server_id = Some(info.server_id.clone());
                entry.summary.window = window;
            });
            let message = words::ready_step(&at.last_ready_message, info.local_port, gpu_label);
            ui.step(host::Step::Ready, host::StepState::Done, message, None);
        }
        SessionEvent::Failed { step, error } => {
            // Status first: a front end reacting to the step must already see the failure. The
            // host's connection is still up: back to choosing.
            let _ = sessions.with(id, |entry| {
                entry.summary.status = SessionStatus::Failed;
                entry.notebook = None;
            });
            let message = error.message.clone();
            ui.step(
                host_step(step),
                host::StepState::Failed,
                message,
                Some(error),
            );
        }
        SessionEvent::Reconnecting {
            attempt,
            next_try_in_secs,
            reason,
        } => {
            sessions.set_status(id, SessionStatus::Disconnected);
            banner(
                Some(&words::reconnecting_banner(&host_name, Some(attempt))),
                None,
            );
            let message = words::reconnecting_step(&reason, attempt, next_try_in_secs);
            ui.step(
                host::Step::OpenTunnel,
                host::StepState::Running,
                message,
                None,
            );
        }
        SessionEvent::Reconnected {
            attempts,
            outage_secs,
        } => {
            sessions.set_status(id, SessionStatus::Ready);
            banner(None, None);
            // JupyterLab's "Server Connection Error" from the outage is stale now; once more a
            // moment later for one raised by a request that failed just before.
            dismiss(sessions, id, ui);
            at.dismiss_at = Some(Instant::now() + DISMISS_AGAIN);
            let message = words::reconnected_step(outage_secs, attempts);
            ui.step(host::Step::OpenTunnel, host::StepState::Done, message, None);
        }
        SessionEvent::ServerGone { reason } => {
            // Core keeps the session for a restart or a close; so does the registry.
            sessions.set_status(id, SessionStatus::Failed);
            // The banner says what happened in words, with a Restart button; the details
            // (process, log on the host) go to the log and the main window's step, with core's
            // typed problem as it is (code `serverGone`: the UI offers Restart server on it).
            tracing::warn!(session = %id, reason = %reason.message, "the notebook server is gone");
            dismiss(sessions, id, ui);
            let restart = BannerButton {
                label: "Restart server",
                path: RESTART_PATH,
                pending: "Restarting the notebook server…",
            };
            banner(Some(&words::server_gone_banner(&host_name)), Some(restart));
            let message = reason.message.clone();
            ui.step(
                host::Step::Ready,
                host::StepState::Failed,
                message,
                Some(reason),
            );
        }
        SessionEvent::Disconnected { reason } => {
            sessions.set_status(id, SessionStatus::Disconnected);
            // The code says why (a changed host key, refused credentials, …).
            let error = Problem::new(reason.code, words::disconnected_error(&reason));
            banner(Some(&words::disconnected_banner(&host_name, &reason)), None);
            let message = error.message.clone();
            ui.step(
                host::Step::OpenTunnel,
                host::StepState::Failed,
                message,
                Some(error),
            );
        }
    }
}
