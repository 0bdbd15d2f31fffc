//! Notebooks: the host's Python environments, installing JupyterLab, launching a notebook through
//! core's session, and the Jupyter servers running on the host (listed, opened, stopped).

use std::time::Duration;

use tauri::{AppHandle, Emitter, Manager, Runtime, State};
use tunnelbook_core::{
    gpu::GpuSelector,
    jupyter::{self, Look, TokenStore},
    profile::Profile,
    session::{Session, SessionHost, SessionSpec},
};

use crate::{
    error::{AppError, ErrorCode},
    launch,
    state::{AppState, NotebookHandle},
    wire::{EnvironmentView, InstallEvent, ServerView, SessionStatus},
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
    let (host, profile, _) = host_parts(&state, &session_id)?;
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
    let (chain, profile, host_session) = {
        let sessions = state.sessions();
        let entry = sessions
            .get(&session_id)
            .ok_or_else(|| AppError::no_session(&session_id))?;
        let busy = match entry.summary.status {
            SessionStatus::Connected | SessionStatus::Failed | SessionStatus::Disconnected => None,
            SessionStatus::Launching | SessionStatus::Ready => {
                Some("a notebook already runs in this session; stop it first")
            }
            SessionStatus::Starting | SessionStatus::Closed => Some("the session is not connected"),
        };
        if let Some(why) = busy {
            return Err(AppError::new(ErrorCode::Validation, why));
        }
        (
            entry.chain.clone(),
            entry.launch_profile(&saved),
            entry.host.clone(),
        )
    };
    let host = match chain {
        Some(chain) => SessionHost::Ssh {
            chain,
            context: launch::connect_context(&app, &state),
        },
        None => SessionHost::Local,
    };
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
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let mut sessions = state.sessions();
    let entry = sessions
        .get_mut(&session_id)
        .ok_or_else(|| AppError::no_session(&session_id))?;
    entry.summary.status = SessionStatus::Launching;
    entry.summary.url = None;
    let session = Session::start(spec);
    let control = session.control();
    let task = tauri::async_runtime::spawn(launch::drive_notebook(
        app.clone(),
        session_id.clone(),
        session,
        stopped,
    ));
    entry.notebook = Some(NotebookHandle {
        stop,
        task,
        control,
    });
    Ok(())
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
    let (host, profile, _) = host_parts(&state, &session_id)?;
    let servers = jupyter::list(&host, profile.environment.as_deref()).await?;
    let sessions = state.sessions();
    let entry = sessions.get(&session_id);
    Ok(servers
        .into_iter()
        .map(|s| {
            let url = entry.and_then(|e| {
                if e.summary.server_id.as_deref() == Some(s.id.as_str()) {
                    e.summary.url.clone()
                } else {
                    e.attached.get(&s.id).map(|(_, url)| url.clone())
                }
            });
            ServerView {
                session_id: session_id.clone(),
                endpoint: s.endpoint.to_string(),
                id: s.id,
                pid: s.pid,
                env: s.env.or(s.root_dir),
                gpu: s.gpu,
                started: s.started,
                managed: s.managed,
                url,
            }
        })
        .collect())
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
    {
        let sessions = state.sessions();
        let entry = sessions
            .get(&session_id)
            .ok_or_else(|| AppError::no_session(&session_id))?;
        if entry.summary.server_id.as_deref() == Some(server_id.as_str())
            && let Some(url) = &entry.summary.url
        {
            return Ok(url.clone());
        }
        if let Some((_, url)) = entry.attached.get(&server_id) {
            return Ok(url.clone());
        }
    }
    let (host, profile, tokens) = host_parts(&state, &session_id)?;
    let configured = profile.environment;
    // The same local port as last time when it is free; over the host session's link: the local
    // port keeps forwarding after the host session reconnects (trial of #14 in s28, finding 1).
    let link = state.host(&session_id)?.link();
    let book = jupyter::PortBook::in_home(state.home());
    let id = Some(server_id.as_str());
    let (server, attached) = jupyter::reopen(
        &host,
        Some(&link),
        id,
        &tokens,
        configured.as_deref(),
        &book,
    )
    .await?;
    // The main window gets the URL without its token (notebook::public_url).
    let url = super::notebook::public_url(&app, &attached.url);
    // What it was launched with, from its record on the host: the session's row shows it.
    let gpu = reopened_gpu_label(&state, &session_id, server.gpu.as_deref()).await;
    let env = server.env.clone().or(server.root_dir.clone());
    let mut sessions = state.sessions();
    match sessions.get_mut(&session_id) {
        Some(entry) => {
            entry
                .attached
                .insert(server_id.clone(), (attached.tunnel, url.clone()));
            let (app, id) = (app.clone(), session_id.clone());
            tauri::async_runtime::spawn(watch_reopened(app, id, server_id));
            // A session running a notebook of its own shows that one.
            if server.managed && entry.summary.server_id.is_none() {
                entry.summary.gpu = gpu;
                entry.summary.env = env;
            }
            Ok(url)
        }
        None => Err(AppError::no_session(&session_id)),
    }
}

/// How often a reopened server is checked for being still there.
const REOPENED_CHECK: Duration = Duration::from_secs(3);

/// Watches server `server_id` that session `session_id` reopened, as core watches a fresh
/// launch's: while the host is connected, a server no longer running on the host (killed, out of
/// memory, stopped elsewhere) is gone — its windows get a banner saying so and what to do, its
/// forward closes, and [`NOTEBOOK_STOPPED_EVENT`] makes every view drop it (Connect's "Notebook
/// running … Reopened", the host card, Sessions). Ends when the session no longer has it
/// (stopped from the app, session closed).
async fn watch_reopened<R: Runtime>(app: AppHandle<R>, session_id: String, server_id: String) {
    let state = app.state::<AppState>();
    let look = || {
        let url = match state.sessions().get(&session_id) {
            Some(entry) => entry.attached.get(&server_id).map(|(_, url)| url.clone()),
            None => None,
        };
        // Only while the connection is up: an outage is the connection banner's, not this.
        match (url, state.host(&session_id)) {
            (Some(_), Ok(session)) if session.is_up() => match host_parts(&state, &session_id) {
                Ok((host, profile, _)) => Look::Check(host, profile.environment),
                Err(_) => Look::Later,
            },
            (Some(_), Ok(_)) => Look::Later,
            _ => Look::Stop,
        }
    };
    if !jupyter::wait_gone(&server_id, REOPENED_CHECK, look).await {
        return;
    }
    tracing::warn!(session = %session_id, server = %server_id, "the reopened notebook server is gone");
    let (attached, host_name) = {
        let mut sessions = state.sessions();
        let Some(e) = sessions.get_mut(&session_id) else {
            return;
        };
        let attached = e.attached.remove(&server_id);
        // The session's row showed the reopened notebook: it goes with it.
        if e.summary.server_id.is_none() && e.reopened_notebooks().next().is_none() {
            e.summary.gpu = None;
            e.summary.env = None;
        }
        (attached, e.summary.host_id.clone())
    };
    let Some((tunnel, url)) = attached else {
        return;
    };
    for w in super::notebook::windows_on(&app, &url) {
        super::notebook::dismiss_connection_errors(&w);
        super::notebook::set_banner(
            &w,
            Some(&jupyter::words::reopened_gone_banner(&host_name)),
            None,
        );
    }
    if let Some(tunnel) = tunnel {
        tunnel.close().await;
    }
    notebook_stopped(&app, &session_id, &server_id);
}

/// The GPU a reopened server runs on as a person knows it (`GPU 1`), from the
/// `CUDA_VISIBLE_DEVICES` in its record and the host's GPUs now; the recorded value itself when
/// the GPUs cannot be read or no longer list it; `None` for a server without a GPU.
async fn reopened_gpu_label(
    state: &AppState,
    session_id: &str,
    cuda_visible_devices: Option<&str>,
) -> Option<String> {
    let devices = cuda_visible_devices.filter(|d| !d.is_empty())?;
    let snapshot = match state.host(session_id) {
        Ok(host) => host.gpus().await.ok(),
        Err(_) => None,
    };
    Some(
        snapshot
            .and_then(|s| s.label_of(devices))
            .unwrap_or_else(|| devices.to_string()),
    )
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
    let (own, attached, server_url) = {
        let mut sessions = state.sessions();
        let entry = sessions
            .get_mut(&session_id)
            .ok_or_else(|| AppError::no_session(&session_id))?;
        if entry.summary.server_id.as_deref() == Some(server_id.as_str()) {
            let handle = entry.notebook.take();
            let window = entry.summary.window.take();
            let url = entry.summary.url.take();
            entry.summary.server_id = None;
            entry.summary.gpu = None;
            entry.summary.env = None;
            entry.summary.status = SessionStatus::Connected;
            (Some((handle, window)), None, url)
        } else {
            let attached = entry.attached.remove(&server_id);
            let url = attached.as_ref().map(|(_, url)| url.clone());
            (None, attached, url)
        }
    };
    // Every window on the server's address: what is unsaved there goes to the server, then the
    // windows close (never left behind on JupyterLab's "Server Connection Error").
    let mut windows = server_url
        .as_deref()
        .map(|url| super::notebook::windows_on(&app, url))
        .unwrap_or_default();
    if let Some((_, Some(label))) = &own
        && let Some(w) = app.get_webview_window(label)
        && !windows.iter().any(|x| x.label() == w.label())
    {
        windows.push(w);
    }
    super::notebook::save_documents(&windows, super::notebook::SAVE_WAIT).await;
    for w in &windows {
        close_window(&app, Some(w.label().to_string()));
    }
    if let Some((handle, _)) = own {
        if let Some(handle) = handle {
            end_notebook(handle, true).await;
        }
        notebook_stopped(&app, &session_id, &server_id);
        return Ok(());
    }
    if let Some((tunnel, _)) = attached {
        if let Some(tunnel) = tunnel {
            tunnel.close().await;
        }
        // The session's row showed the reopened notebook: it goes with it.
        let mut sessions = state.sessions();
        if let Some(entry) = sessions.get_mut(&session_id)
            && entry.summary.server_id.is_none()
            && entry.reopened_notebooks().next().is_none()
        {
            entry.summary.gpu = None;
            entry.summary.env = None;
        }
    }
    let (host, profile, tokens) = host_parts(&state, &session_id)?;
    jupyter::stop_by_id(&host, &server_id, &tokens, profile.environment.as_deref()).await?;
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

/// Ends a notebook: tells its task to stop (`stop_server`: the server too) and waits for core's
/// cleanup, at most 20 s.
pub async fn end_notebook(handle: NotebookHandle, stop_server: bool) {
    let NotebookHandle { stop, task, .. } = handle;
    let _ = stop.send(stop_server);
    if tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .is_err()
    {
        tracing::warn!("the notebook did not stop within 20 s");
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

/// Where session `id`'s servers run, the profile (its environment is the one discovery lists
/// first) and the tokens of the host's servers (the keychain, where launches keep them: the
/// app's and the CLI's; else `jupyter server list` on the host).
fn host_parts(
    state: &AppState,
    id: &str,
) -> Result<(jupyter::Host, Profile, TokenStore), AppError> {
    let profile = {
        let sessions = state.sessions();
        let entry = sessions.get(id).ok_or_else(|| AppError::no_session(id))?;
        entry.profile()
    };
    let tokens = TokenStore {
        store: state.secrets(),
        profile: profile.name.clone(),
    };
    Ok((state.jupyter_host(id)?, profile, tokens))
}
