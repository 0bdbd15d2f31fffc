//! Notebooks: the host's Python environments, installing JupyterLab, launching a notebook through
//! core's session, and the Jupyter servers running on the host (listed, opened, stopped).

use tauri::{AppHandle, Emitter, Manager, Runtime, State};
pub use tunnelbook_core::sessions::end_notebook;
use tunnelbook_core::{
    gpu::GpuSelector,
    jupyter::{self, PortBook},
    session::{Session, SessionHost, SessionSpec},
    sessions::Reopen,
};

use crate::{
    error::AppError,
    launch,
    state::AppState,
    wire::{EnvironmentView, InstallEvent, ServerView},
};

/// Name of the event that carries an [`InstallEvent`].
pub const INSTALL_EVENT: &str = "install";

/// What the UI sends for "CPU only".
pub const CPU_ONLY: &str = "cpu";

/// The Python environments on session `session_id`'s host, the profile's first.
#[tauri::command]
pub async fn list_environments(
    state: State<'_, AppState>,
    session_id: String,
) -> Result<Vec<EnvironmentView>, AppError> {
    let (host, profile, _) = state.server_parts(&session_id, None)?;
    // The profile's saved Lmod modules are loaded first, as the launch will.
    let (configured, modules) = (profile.environment.as_deref(), &profile.modules);
    let envs = jupyter::environments_with_modules(&host, configured, modules).await?;
    Ok(envs.into_iter().map(EnvironmentView::from).collect())
}

/// Checks the environment at `path` on session `session_id`'s host ("Add environment path…",
/// e.g. a shared `/srv/jlab` outside the places discovery looks): its Python version and whether
/// JupyterLab is installed; `problem` says why it cannot be used.
#[tauri::command]
pub async fn check_environment(
    state: State<'_, AppState>,
    session_id: String,
    path: String,
) -> Result<EnvironmentView, AppError> {
    let host = state.jupyter_host(&session_id)?;
    Ok(jupyter::check_environment(&host, &path).await?.into())
}

/// Creates a venv with JupyterLab on the host (`path`, default `~/.tunnelbook/venv`), emitting
/// each installer line as an `install` event; returns the new environment.
#[tauri::command]
pub async fn install_jupyter<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    session_id: String,
    path: Option<String>,
) -> Result<EnvironmentView, AppError> {
    let host = state.jupyter_host(&session_id)?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let id = session_id.clone();
    let forward = tauri::async_runtime::spawn(async move {
        while let Some(line) = rx.recv().await {
            let event = InstallEvent {
                session_id: id.clone(),
                line,
            };
            if let Err(e) = app.emit(INSTALL_EVENT, event) {
                tracing::warn!(error = %e, "cannot deliver an install event");
            }
        }
    });
    let result = jupyter::install(&host, path.as_deref(), tx).await;
    let _ = forward.await;
    Ok(result?.into())
}

/// Starts JupyterLab in session `session_id` through core's session: on `gpu` (a
/// `cudaVisibleDevices` from the picker, `cpu` for CPU only, `null` for the best free one) from
/// `env` (an environment's `path`; `null`: the profile's, else the first with JupyterLab).
/// Progress arrives as `session` events; on ready the notebook window opens.
#[tauri::command]
pub async fn launch_notebook<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    session_id: String,
    gpu: Option<String>,
    env: Option<String>,
) -> Result<(), AppError> {
    let gpu = gpu.map(|g| match g.as_str() {
        CPU_ONLY => Ok(GpuSelector::None),
        s => s.parse::<GpuSelector>(),
    });
    let gpu = gpu.transpose()?;
    // Never JupyterLab on a SLURM login node: there it runs as a batch job (issue 20).
    super::slurm::refuse_login_node(&state, &session_id).await?;
    // The launch defaults as saved now (an environment kept by this connection's earlier launch).
    let saved = state.profiles.load().unwrap_or_default();
    let (chain, profile, host_session) = state.launch_parts(&session_id, &saved)?;
    let host = SessionHost::of(chain, || launch::connect_context(&app, &state));
    let mut spec = SessionSpec::new(host, profile);
    spec.gpu = gpu;
    spec.free_rule = tunnelbook_core::settings::SettingsStore::in_home(state.home())
        .load_or_default()
        .gpu_free;
    spec.env = env;
    // The host session: nothing is asked again, the launch skips a handshake, and a lost
    // connection is the host session's to dial again.
    spec.host_session = Some(host_session).filter(|h| !h.is_local());
    // The server's token goes to the keychain, so `tunnelbook attach` / `down` find it too.
    spec.secrets = state.secrets();
    // Saved forwarding rules are the Tunnels view's (started there, over the host's connection).
    spec.saved_forwards = false;
    let session = Session::start(spec);
    Ok(state.launch(&session_id, session, |session, stop| {
        let drive = launch::drive_notebook(app.clone(), session_id.clone(), session, stop);
        let tauri::async_runtime::JoinHandle::Tokio(task) = tauri::async_runtime::spawn(drive);
        task
    })?)
}

/// Starts session `session_id`'s notebook server again after it stopped (`serverGone`), behind
/// the same local port; the notebook window follows. Progress arrives as `session` events.
#[tauri::command]
pub async fn restart_notebook(
    state: State<'_, AppState>,
    session_id: String,
) -> Result<(), AppError> {
    state.notebook_control(&session_id)?.restart_server();
    Ok(())
}

/// Checks session `session_id`'s notebook connection now and reconnects at once when it does
/// not answer, instead of waiting for the next try. Progress arrives as `session` events.
#[tauri::command]
pub async fn reconnect_notebook(
    state: State<'_, AppState>,
    session_id: String,
) -> Result<(), AppError> {
    state.notebook_control(&session_id)?.reconnect_now();
    Ok(())
}

/// The Jupyter servers running on session `session_id`'s host: this app's notebook, servers
/// the CLI or an earlier run started, and ones started by hand.
#[tauri::command]
pub async fn list_servers(
    state: State<'_, AppState>,
    session_id: String,
) -> Result<Vec<ServerView>, AppError> {
    Ok(state.servers(&session_id).await?)
}

/// Makes server `server_id` on session `session_id`'s host reachable here (a tunnel over the
/// host session's link, so it keeps working across reconnects; kept until the session closes);
/// returns its URL.
#[tauri::command]
pub async fn attach_server<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    session_id: String,
    server_id: String,
) -> Result<String, AppError> {
    let book = PortBook::in_home(state.home());
    // The main window gets the URL without its token (notebook::public_url).
    let public = |url: &str| super::notebook::public_url(&app, url);
    let secrets = state.secrets();
    match state
        .reopen(&session_id, &server_id, secrets, &book, public)
        .await?
    {
        Reopen::Shown(url) => Ok(url),
        Reopen::Opened(url) => {
            tauri::async_runtime::spawn(watch_reopened(app.clone(), session_id, server_id));
            Ok(url)
        }
    }
}

/// Follows server `server_id` that session `session_id` reopened until it is gone on the host
/// (core's [`Sessions::wait_reopened_gone`](tunnelbook_core::sessions::Sessions)): its windows
/// then get a banner saying so and what to do, and [`NOTEBOOK_STOPPED_EVENT`] makes every view
/// drop it (Connect's "Notebook running … Reopened", the host card, Sessions).
async fn watch_reopened<R: Runtime>(app: AppHandle<R>, session_id: String, server_id: String) {
    let state = app.state::<AppState>();
    let Some((url, host)) = state.wait_reopened_gone(&session_id, &server_id).await else {
        return;
    };
    let banner = jupyter::words::reopened_gone_banner(&host);
    for w in super::notebook::windows_on(&app, &url) {
        super::notebook::dismiss_connection_errors(&w);
        super::notebook::set_banner(&w, Some(&banner), None);
    }
    notebook_stopped(&app, &session_id, &server_id);
}

/// Name of the event that says a Jupyter server was stopped from the app (Sessions' or
/// Connect's Stop): payload `{ sessionId, serverId }`. Every view showing that server (the host
/// card, Connect's ready notebook or its Reopen offer, Sessions) drops it.
pub const NOTEBOOK_STOPPED_EVENT: &str = "notebook-stopped";

/// Payload of [`NOTEBOOK_STOPPED_EVENT`].
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotebookStopped {
    /// The session whose host ran the server.
    pub session_id: String,
    /// The server stopped (`tb-…`, `pid-N`).
    pub server_id: String,
}

/// Stops server `server_id` on session `session_id`'s host: its notebook windows (every app
/// window showing that server's address: this session's own notebook, or one reopened after a
/// restart) save their open documents and close first, then the server stops. For this
/// session's own notebook it also ends core's session; the connection stays. Emits
/// [`NOTEBOOK_STOPPED_EVENT`] once the server is stopped.
#[tauri::command]
pub async fn stop_server<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    session_id: String,
    server_id: String,
) -> Result<(), AppError> {
    let taken = state.take_server(&session_id, &server_id)?;
    // Every window on the server's address: what is unsaved there goes to the server, then the
    // windows close (never left behind on JupyterLab's "Server Connection Error").
    let own = taken.own.as_ref().and_then(|(_, label)| label.as_deref());
    let windows = launch::windows_of(&app, taken.url.as_deref(), own);
    super::notebook::save_documents(&windows, super::notebook::SAVE_WAIT).await;
    for w in &windows {
        close_window(&app, Some(w.label().to_string()));
    }
    let secrets = state.secrets();
    state
        .stop_server(&session_id, &server_id, taken, secrets)
        .await?;
    notebook_stopped(&app, &session_id, &server_id);
    Ok(())
}

/// Emits [`NOTEBOOK_STOPPED_EVENT`].
fn notebook_stopped<R: Runtime>(app: &AppHandle<R>, session_id: &str, server_id: &str) {
    let payload = NotebookStopped {
        session_id: session_id.into(),
        server_id: server_id.into(),
    };
    if let Err(e) = app.emit(NOTEBOOK_STOPPED_EVENT, payload) {
        tracing::warn!(error = %e, "cannot deliver a notebook-stopped event");
    }
    // The tray's menu follows (absent in tests on tauri's mock runtime).
    if app.try_state::<crate::tray::TrayState>().is_some() {
        crate::tray::refresh(app);
    }
}

/// Closes notebook window `label`, if it is still open.
pub fn close_window<R: Runtime>(app: &AppHandle<R>, label: Option<String>) {
    if let Some(window) = label.and_then(|l| app.get_webview_window(&l))
        && let Err(e) = window.close()
    {
        tracing::warn!(error = %e, "cannot close the notebook window");
    }
}
