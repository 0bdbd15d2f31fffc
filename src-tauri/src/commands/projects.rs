//! "Open notebook…": a notebook from this computer runs on the connected host (core's
//! [`tunnelbook_core::project`]: up over SFTP, JupyterLab on the chosen GPU, saves back until
//! "Stop syncing"); the app opens its notebook windows and relays its events.

use std::sync::{LazyLock, Mutex};

use tauri::{AppHandle, Emitter, Manager, Runtime, State};
use tauri_plugin_dialog::DialogExt;
pub use tunnelbook_core::project::{ProjectEvent, ProjectPhase, ProjectSummary};
use tunnelbook_core::{
    error::Problem,
    gpu::GpuSelector,
    project::{OpenRequest, ProjectUi, notebook_path},
    session::{SessionHost, SessionSpec},
    sync::SyncSettings,
};

use crate::{
    error::{AppError, ErrorCode},
    launch,
    state::AppState,
};

/// Name of the event that carries a [`ProjectEvent`].
pub const PROJECT_EVENT: &str = "project";

/// Title of the notebook picker (tests find its window by it).
pub const PICK_TITLE: &str = "Open notebook on the host";

/// The app as core's projects see it: events to the windows, notebook windows.
struct Ui<R: Runtime>(AppHandle<R>);

impl<R: Runtime> Clone for Ui<R> {
    fn clone(&self) -> Self {
        Ui(self.0.clone())
    }
}

fn problem(e: AppError) -> Problem {
    Problem::new(e.code, e.message)
}

impl<R: Runtime> ProjectUi for Ui<R> {
    fn emit(&self, event: ProjectEvent) {
        let _ = self.0.emit(PROJECT_EVENT, event);
    }

    /// A window already on that server (a project opened on a server the app shows) is brought
    /// to the front on the notebook instead: one window per server.
    fn open_window(&self, url: &str, title: &str) -> Result<String, Problem> {
        let parsed = tunnelbook_core::jupyter::window::http_url(url)?;
        if let Some(label) = crate::commands::notebook::focus_open_window(&self.0, &parsed) {
            if let Some(window) = self.0.get_webview_window(&label) {
                window.navigate(parsed).map_err(|e| problem(e.into()))?;
            }
            return Ok(label);
        }
        let state = self.0.state::<AppState>();
        crate::commands::notebook::open_window(&self.0, &state, url, title).map_err(problem)
    }

    fn shown_server(&self, server_id: &str) -> Option<String> {
        let state = self.0.state::<AppState>();
        let public = state
            .sessions()
            .values()
            .find_map(|e| e.server_url(server_id))?;
        let full = crate::commands::notebook::full_url(&self.0, &public.parse().ok()?);
        Some(full.expose().to_string())
    }

    fn show_window(&self, label: &str, url: &str, navigate: bool) -> Result<bool, Problem> {
        let Some(window) = self.0.get_webview_window(label) else {
            return Ok(false);
        };
        crate::commands::notebook::to_front(&window);
        if navigate {
            let to = url
                .parse()
                .map_err(|e| Problem::new(ErrorCode::Validation, format!("not a URL: {e}")))?;
            window.navigate(to).map_err(|e| problem(e.into()))?;
        }
        Ok(true)
    }
}

/// Resumes following the projects of host `host` (its saved name) followed when the app last
/// ran, on session `session_id` just connected ([`tunnelbook_core::project::Projects::resume`]).
pub fn resume<R: Runtime>(app: &AppHandle<R>, session_id: &str, host: &str) {
    let state = app.state::<AppState>();
    if let Ok(host_session) = state.host(session_id) {
        let ui = Ui(app.clone());
        state
            .projects()
            .resume(&ui, state.home(), session_id, host, &host_session);
    }
}

/// Every project opened since the app started, oldest first: what a (re)loaded main window
/// shows.
#[tauri::command]
pub async fn projects(state: State<'_, AppState>) -> Result<Vec<ProjectSummary>, AppError> {
    Ok(state.projects().list())
}

/// Asks for a notebook (`.ipynb`) in a file picker; `None` when cancelled.
#[tauri::command]
pub async fn pick_notebook<R: Runtime>(app: AppHandle<R>) -> Result<Option<String>, AppError> {
    Ok(app
        .dialog()
        .file()
        .set_title(PICK_TITLE)
        .add_filter("Jupyter notebook", &["ipynb"])
        .blocking_pick_file()
        .and_then(|f| f.into_path().ok())
        .map(|p| p.display().to_string()))
}

/// Opens the local notebook `path` on session `session_id`'s host (GPU and environment as for a
/// launch: `None` takes the host's saved choices); returns the project's id at once. Progress
/// comes as [`PROJECT_EVENT`]s.
#[tauri::command]
pub async fn open_local_notebook<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    session_id: String,
    path: String,
    gpu: Option<String>,
    env: Option<String>,
) -> Result<String, AppError> {
    let notebook = notebook_path(&path).map_err(Problem::from)?;
    let gpu = match gpu.as_deref() {
        None => None,
        Some(crate::commands::jupyter::CPU_ONLY) => Some(GpuSelector::None),
        Some(s) => Some(s.parse::<GpuSelector>()?),
    };
    let ui = Ui(app.clone());
    let projects = state.projects();
    if let Some(id) = projects
        .reuse(&ui, &session_id, &notebook)
        .map_err(Problem::from)?
    {
        return Ok(id);
    }
    let connection = state.connection(&session_id)?;
    let (chain, profile) = {
        let sessions = state.sessions();
        let entry = sessions
            .get(&session_id)
            .ok_or_else(|| AppError::no_session(&session_id))?;
        (entry.chain.clone(), entry.profile())
    };
    let Some(chain) = chain else {
        return Err(AppError::new(
            ErrorCode::Validation,
            "on this computer, open the notebook in place",
        ));
    };
    let settings =
        SyncSettings::load(state.home()).map_err(|e| AppError::new(ErrorCode::Validation, e))?;
    let host = profile.name.clone();
    let context = launch::connect_context(&app, &state);
    let mut spec = SessionSpec::new(SessionHost::Ssh { chain, context }, profile);
    spec.gpu = gpu;
    spec.free_rule = tunnelbook_core::settings::SettingsStore::in_home(state.home())
        .load_or_default()
        .gpu_free;
    spec.env = env;
    spec.host_session = Some(state.host(&session_id)?);
    spec.secrets = state.secrets();
    spec.saved_forwards = false;
    let home = state.home().to_path_buf();
    let req = OpenRequest {
        session_id,
        notebook,
        home,
        host,
        connection,
        settings,
        spec,
    };
    Ok(projects.open(&ui, req))
}

/// "Bring back now": checks the host for saves at once.
#[tauri::command]
pub async fn bring_back_now(
    state: State<'_, AppState>,
    project_id: String,
) -> Result<(), AppError> {
    let r = state.projects().bring_back_now(&project_id);
    r.map_err(|e| Problem::from(e).into())
}

/// "Stop syncing": one last check, then no more (the notebook window and server stay).
#[tauri::command]
pub async fn stop_syncing(state: State<'_, AppState>, project_id: String) -> Result<(), AppError> {
    let r = state.projects().stop_syncing(&project_id);
    r.map_err(|e| Problem::from(e).into())
}

/// Name of the event that says the app was asked to open a notebook (its path).
pub const NOTEBOOK_REQUESTED_EVENT: &str = "notebook-requested";

static REQUESTED: LazyLock<Mutex<Option<String>>> = LazyLock::new(Default::default);

/// Keeps the notebook a command line names for the UI ([`take_requested_notebook`]) and tells
/// a running UI at once ([`NOTEBOOK_REQUESTED_EVENT`]). Called at start-up and when a second
/// launch hands its command line to the running app.
pub fn requested<R: Runtime>(app: &AppHandle<R>, args: &[String], cwd: &std::path::Path) {
    let Some(path) = tunnelbook_core::project::notebook_in_args(args, cwd) else {
        return;
    };
    let path = path.display().to_string();
    if let Ok(mut r) = REQUESTED.lock() {
        *r = Some(path.clone());
    }
    let _ = app.emit(NOTEBOOK_REQUESTED_EVENT, path);
}

/// The notebook the app was asked to open on its command line, once (`None` when none).
#[tauri::command]
pub async fn take_requested_notebook() -> Result<Option<String>, AppError> {
    Ok(REQUESTED.lock().ok().and_then(|mut r| r.take()))
}
