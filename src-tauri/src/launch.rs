//! The notebook of a session: core drives its [`Session`] to ready and says what to show
//! ([`sessions::drive_notebook`]); the app emits the step events and opens, reloads and banners
//! the notebook window ([`NotebookUi`]). Also how core connects from the app.
//!
//! Core's session starts on the host's open connection (the one the GPU picker, environments
//! and commands use), so nothing is asked twice; after a lost connection it dials its own from
//! the profile chain, as the CLI's `up` does.

use std::sync::Arc;

use tauri::{AppHandle, Emitter, Manager, Runtime, WebviewWindow};
use tokio::sync::oneshot;
use tunnelbook_core::{
    error::Problem,
    jupyter::{PortBook, window::BannerButton},
    session::Session,
    sessions::{self, NotebookUi},
    settings::SettingsStore,
    ssh::{ConnectContext, ConnectOptions, KnownHosts},
};

use crate::{
    commands::notebook,
    error::AppError,
    prompt::AppPrompter,
    state::AppState,
    wire::{SESSION_EVENT, SessionEvent, SessionStep, StepState},
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

/// The notebook window title of session `id` ([`notebook::window_title`]): host and GPU.
pub fn notebook_title(state: &AppState, id: &str) -> String {
    let look = state.with(id, |e| (e.host_name(), e.summary.gpu.clone()));
    let (host, gpu) = look.unwrap_or_default();
    notebook::window_title(&host, gpu.as_deref())
}

/// Every window on the servers at `urls` (token-free addresses) and window `label`, each once.
pub fn windows_of<'a, R: Runtime>(
    app: &AppHandle<R>,
    urls: impl IntoIterator<Item = &'a str>,
    label: Option<&str>,
) -> Vec<WebviewWindow<R>> {
    let mut windows: Vec<WebviewWindow<R>> = Vec::new();
    let on_servers = urls.into_iter().flat_map(|u| notebook::windows_on(app, u));
    for w in on_servers.chain(label.and_then(|l| app.get_webview_window(l))) {
        if !windows.iter().any(|x| x.label() == w.label()) {
            windows.push(w);
        }
    }
    windows
}

/// The app's side of a notebook core drives ([`sessions::drive_notebook`]): step events to the
/// main window, the notebook window opened, reloaded, bannered.
struct Windows<'a, R: Runtime> {
    app: &'a AppHandle<R>,
    id: &'a str,
}

impl<R: Runtime> NotebookUi for Windows<'_, R> {
    fn step(&self, step: SessionStep, state: StepState, message: String, error: Option<Problem>) {
        let event = SessionEvent {
            session_id: self.id.to_string(),
            step,
            state,
            message,
            error: error.map(AppError::from),
        };
        if let Err(e) = self.app.emit(SESSION_EVENT, event) {
            tracing::warn!(error = %e, "cannot deliver a session event");
        }
    }

    fn banner(&self, window: &str, text: Option<&str>, button: Option<BannerButton<'_>>) {
        if let Some(window) = self.app.get_webview_window(window) {
            notebook::set_banner(&window, text, button);
        }
    }

    fn dismiss_connection_errors(&self, window: Option<&str>, url: Option<&str>) {
        for w in &windows_of(self.app, url, window) {
            notebook::dismiss_connection_errors(w);
        }
    }

    fn show(&self, open: Option<&str>, url: &str, title: &str) -> (String, Option<String>) {
        let state = self.app.state::<AppState>();
        let window = match open.and_then(|label| self.app.get_webview_window(label)) {
            Some(window) => notebook::navigate(&window, url)
                .map(|()| window.label().to_string())
                .inspect_err(|e| tracing::warn!(error = %e, "cannot reload the notebook window")),
            None => notebook::open_window(self.app, &state, url, title)
                .inspect_err(|e| tracing::warn!(error = %e, "cannot open the notebook window")),
        };
        // The main window gets the URL without its token (notebook::public_url).
        (notebook::public_url(self.app, url), window.ok())
    }
}

/// Runs core's session for session `id` until it fails, or is ready and then told to `stop`
/// (`true`: stop the server too); what it shows is [`Windows`]'.
pub async fn drive_notebook<R: Runtime>(
    app: AppHandle<R>,
    id: String,
    session: Session,
    stop: oneshot::Receiver<bool>,
) {
    let state = app.state::<AppState>();
    let book = PortBook::in_home(state.home());
    let ui = Windows { app: &app, id: &id };
    sessions::drive_notebook(&state, &id, session, stop, &book, &ui).await;
}
