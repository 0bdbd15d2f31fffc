//! "Open notebook…": a notebook from this computer runs on the connected host. Its folder goes
//! up over SFTP (core's `sync`, over the host session's connection), JupyterLab starts in that
//! folder on the chosen GPU through core's session (as `tunnelbook open` does), the notebook opens
//! in a notebook window, and each save on the host comes back until "Stop syncing".

use std::{
    path::{Path, PathBuf},
    sync::{Arc, LazyLock, Mutex},
    time::Duration,
};

use serde::Serialize;
use tauri::{AppHandle, Emitter, Manager, Runtime, State};
use tauri_plugin_dialog::DialogExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use ts_rs::TS;
use tunnelbook_core::{
    gpu::GpuSelector,
    session::{Session, SessionEvent, SessionHost, SessionSpec},
    sftp::{self, Progress, Sftp, TransferProgress},
    sync::{BroughtBack, Follow, FollowEvent, Project, SyncSettings},
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

/// What an opened notebook's project does, for the main window.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum ProjectEvent {
    /// The folder is going up.
    Uploading {
        /// The project.
        #[serde(rename = "projectId")]
        project_id: String,
        /// The counters.
        progress: TransferProgress,
        /// Files over the size limit, left here.
        #[serde(rename = "leftOut")]
        left_out: Vec<String>,
    },
    /// JupyterLab is being started (a launch step, in words).
    Launching {
        /// The project.
        #[serde(rename = "projectId")]
        project_id: String,
        /// What happens.
        message: String,
    },
    /// The notebook is open in a notebook window; saves come back from now on.
    Syncing {
        /// The project.
        #[serde(rename = "projectId")]
        project_id: String,
        /// The folder on the host.
        #[serde(rename = "remoteDir")]
        remote_dir: String,
        /// The notebook window's label.
        window: String,
    },
    /// Following resumed on connect: the project was being synced when the app last ran (closed
    /// or disconnected, never stopped); saves made meanwhile come back from now on.
    Resumed {
        /// The project.
        #[serde(rename = "projectId")]
        project_id: String,
        /// The local notebook (absolute path).
        notebook: String,
        /// The folder on the host.
        #[serde(rename = "remoteDir")]
        remote_dir: String,
    },
    /// Files came back from the host.
    BroughtBack {
        /// The project.
        #[serde(rename = "projectId")]
        project_id: String,
        /// What came back, and where (`beside`: the local file had changed, so the host's
        /// version was written beside it).
        files: Vec<BroughtBack>,
    },
    /// Syncing stopped (the server and the window stay).
    Stopped {
        /// The project.
        #[serde(rename = "projectId")]
        project_id: String,
    },
    /// The upload or the launch failed.
    Failed {
        /// The project.
        #[serde(rename = "projectId")]
        project_id: String,
        /// Why, in words.
        error: String,
    },
}

/// Where a project is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum ProjectPhase {
    /// The folder is going up.
    Uploading,
    /// JupyterLab is being started or reused.
    Launching,
    /// Open in a notebook window; saves come back.
    Syncing,
    /// Syncing stopped (the server and the window stay).
    Stopped,
    /// The upload or the launch failed.
    Failed,
}

/// What the app knows of one opened notebook, built from its [`ProjectEvent`]s and kept in
/// [`AppState`] (not in the window): a reloaded main window shows it again, with its "Bring back
/// now" and "Stop syncing" ([`projects`]).
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ProjectSummary {
    /// The project's id (`project-N`).
    pub id: String,
    /// The app session whose host it runs on.
    pub session_id: String,
    /// The local notebook (absolute path).
    pub notebook: String,
    /// Where it is.
    pub phase: ProjectPhase,
    /// The upload's counters, once it began.
    pub upload: Option<TransferProgress>,
    /// Files over the size limit, left here.
    pub left_out: Vec<String>,
    /// The last launch step, in words (while launching).
    pub message: Option<String>,
    /// The folder on the host, once syncing.
    pub remote_dir: Option<String>,
    /// The notebook window's label, once open.
    pub window: Option<String>,
    /// What came back, newest first (the last [`LOG_LINES`]).
    pub log: Vec<BroughtBack>,
    /// Why it failed, in words.
    pub error: Option<String>,
}

/// How many brought-back files a [`ProjectSummary`] keeps.
pub const LOG_LINES: usize = 20;

impl ProjectSummary {
    /// Takes in one event of this project.
    pub fn apply(&mut self, event: &ProjectEvent) {
        match event {
            ProjectEvent::Uploading {
                progress, left_out, ..
            } => {
                self.upload = Some(*progress);
                self.left_out = left_out.clone();
            }
            ProjectEvent::Launching { message, .. } => {
                self.phase = ProjectPhase::Launching;
                self.message = Some(message.clone());
            }
            ProjectEvent::Syncing {
                remote_dir, window, ..
            } => {
                self.phase = ProjectPhase::Syncing;
                self.remote_dir = Some(remote_dir.clone());
                self.window = Some(window.clone());
                self.message = None;
            }
            ProjectEvent::Resumed { remote_dir, .. } => {
                self.phase = ProjectPhase::Syncing;
                self.remote_dir = Some(remote_dir.clone());
            }
            ProjectEvent::BroughtBack { files, .. } => {
                for f in files {
                    self.log.insert(0, f.clone());
                }
                self.log.truncate(LOG_LINES);
            }
            ProjectEvent::Stopped { .. } => self.phase = ProjectPhase::Stopped,
            ProjectEvent::Failed { error, .. } => {
                self.phase = ProjectPhase::Failed;
                self.error = Some(error.clone());
            }
        }
    }
}

/// One project in [`AppState`]: what it is, and how to steer it while its task runs.
pub struct ProjectEntry {
    /// What the UI shows.
    pub summary: ProjectSummary,
    now: Arc<Notify>,
    stop: CancellationToken,
    /// Whether its task ended (nothing to steer any more).
    ended: bool,
    /// Where its notebooks open, once JupyterLab is ready.
    server: Option<OpenServer>,
    /// Set by "Stop syncing": the project is then no longer resumed on the next connection.
    forget: Arc<std::sync::atomic::AtomicBool>,
}

impl ProjectEntry {
    /// A project of session `session_id` showing `notebook`, in `phase`, not yet steered.
    fn new(id: &str, session_id: &str, notebook: &Path, phase: ProjectPhase) -> ProjectEntry {
        ProjectEntry {
            summary: ProjectSummary {
                id: id.to_string(),
                session_id: session_id.to_string(),
                notebook: notebook.display().to_string(),
                phase,
                upload: None,
                left_out: Vec::new(),
                message: None,
                remote_dir: None,
                window: None,
                log: Vec::new(),
                error: None,
            },
            now: Arc::new(Notify::new()),
            stop: CancellationToken::new(),
            ended: false,
            server: None,
            forget: Arc::default(),
        }
    }
}

/// Follows `project`'s saves over `sftp` (reopened over `connection()` after a reconnect) until
/// the entry's stop, reporting as [`ProjectEvent`]s; remembers it as followed meanwhile, so the
/// next connection after a restart resumes ([`resume`]), and forgets it after "Stop syncing".
fn spawn_follow<R: Runtime>(
    app: AppHandle<R>,
    id: String,
    mut project: Project,
    notebook_rel: String,
    sftp: Sftp,
    connection: impl Fn() -> Option<tunnelbook_core::ssh::Connection> + Send + 'static,
    entry: (
        Arc<Notify>,
        CancellationToken,
        Arc<std::sync::atomic::AtomicBool>,
    ),
) -> tokio::task::JoinHandle<()> {
    let (now, stop, forget) = entry;
    tokio::spawn(async move {
        if let Err(e) = project.set_followed(Some(&notebook_rel)) {
            tracing::warn!(error = %e, "cannot remember the project for the next start");
        }
        let how = Follow {
            interval: Duration::from_secs(2),
            now,
            stop,
        };
        project
            .follow(sftp, connection, how, |e| match e {
                FollowEvent::Back(files) => emit(
                    &app,
                    ProjectEvent::BroughtBack {
                        project_id: id.clone(),
                        files,
                    },
                ),
                FollowEvent::Failed(e) => {
                    tracing::warn!(error = %e, "bringing back saves failed; trying again");
                }
            })
            .await;
        if forget.load(std::sync::atomic::Ordering::SeqCst)
            && let Err(e) = project.set_followed(None)
        {
            tracing::warn!(error = %e, "cannot forget the stopped project");
        }
        emit(&app, ProjectEvent::Stopped { project_id: id });
    })
}

/// Resumes following the projects of host `host` (its saved name) that were followed when the
/// app last ran, on session `session_id` just connected: each gets a project entry (the main
/// window's project panel shows it, [`ProjectEvent::Resumed`]) and brings back the saves made
/// meanwhile (a local file changed meanwhile is kept, the host's version written beside it).
/// Projects followed already in this run are skipped.
pub fn resume<R: Runtime>(app: &AppHandle<R>, session_id: &str, host: &str) {
    let state = app.state::<AppState>();
    let Ok(host_session) = state.host(session_id) else {
        return;
    };
    let settings = SyncSettings::load(state.home()).unwrap_or_default();
    for f in tunnelbook_core::sync::followed(state.home(), host) {
        let notebook = f.local_root.join(&f.notebook);
        let folder = f.local_root.clone();
        let already = state.projects().values().any(|e| {
            !e.ended
                && std::path::Path::new(&e.summary.notebook)
                    .parent()
                    .is_some_and(|p| p == folder)
        });
        if already {
            continue;
        }
        let project = match Project::open(
            state.home(),
            host,
            &f.local_root,
            &f.remote_root,
            settings.clone(),
        ) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "cannot resume syncing a project");
                continue;
            }
        };
        let id = format!(
            "project-{}",
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut entry = ProjectEntry::new(&id, session_id, &notebook, ProjectPhase::Syncing);
        entry.summary.remote_dir = Some(f.remote_root.clone());
        let steer = (entry.now.clone(), entry.stop.clone(), entry.forget.clone());
        state.projects().insert(id.clone(), entry);
        let (app, host_session) = (app.clone(), host_session.clone());
        tauri::async_runtime::spawn(async move {
            // The connect event comes before the session holds its connection: wait for it.
            let conn =
                tokio::time::timeout(Duration::from_secs(30), host_session.next_connection(None))
                    .await;
            let sftp = match conn {
                Ok(Ok(conn)) => Sftp::open(&conn).await.map_err(|e| e.to_string()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("the host did not connect within 30 s".to_string()),
            };
            let sftp = match sftp {
                Ok(s) => s,
                Err(error) => {
                    emit(
                        &app,
                        ProjectEvent::Failed {
                            project_id: id.clone(),
                            error,
                        },
                    );
                    if let Some(e) = app.state::<AppState>().projects().get_mut(&id) {
                        e.ended = true;
                    }
                    return;
                }
            };
            emit(
                &app,
                ProjectEvent::Resumed {
                    project_id: id.clone(),
                    notebook: notebook.display().to_string(),
                    remote_dir: f.remote_root.clone(),
                },
            );
            let follow = spawn_follow(
                app.clone(),
                id.clone(),
                project,
                f.notebook.clone(),
                sftp,
                move || host_session.connection(),
                steer,
            );
            let _ = follow.await;
            if let Some(e) = app.state::<AppState>().projects().get_mut(&id) {
                e.ended = true;
            }
        });
    }
}

/// Where a project's notebooks open: its JupyterLab (through this app's tunnel) and where that
/// server's root is on the host.
#[derive(Debug, Clone)]
struct OpenServer {
    /// The server's address here, as the session gave it.
    url: String,
    /// The server's root folder on the host (absolute), when known.
    root_dir: Option<String>,
    /// The project's folder on the host (absolute).
    remote_root: String,
    /// The window title after the notebook's name (` — HOST — GPU`).
    title_tail: String,
}

impl OpenServer {
    /// The address of the notebook `rel` (inside the project) on this server.
    fn notebook_url(&self, rel: &str) -> String {
        let remote = sftp::join(&self.remote_root, rel);
        let path = self
            .root_dir
            .as_deref()
            .and_then(|root| tunnelbook_core::jupyter::path_under(root, &remote))
            .unwrap_or_else(|| rel.to_string());
        tunnelbook_core::jupyter::notebook_url(&self.url, &path)
    }
}

/// The project of the local folder `folder` on session `session_id` whose task still runs (not
/// stopped, not failed): a second "Open notebook…" of a notebook in it reuses that project —
/// one sync per project, one window per server — instead of starting another.
fn running_project(
    projects: &std::collections::HashMap<String, ProjectEntry>,
    session_id: &str,
    folder: &std::path::Path,
) -> Option<String> {
    projects
        .values()
        .filter(|e| {
            !e.ended
                && e.summary.session_id == session_id
                && !matches!(
                    e.summary.phase,
                    ProjectPhase::Stopped | ProjectPhase::Failed
                )
                && std::path::Path::new(&e.summary.notebook).parent() == Some(folder)
        })
        .map(|e| e.summary.id.clone())
        .next()
}

/// Shows `notebook` of the running project `id` again: its window brought to the front (opened
/// anew on the same server when it was closed) on that notebook, and the host checked for saves
/// at once.
fn show_again<R: Runtime>(
    app: &AppHandle<R>,
    state: &AppState,
    id: &str,
    notebook: &std::path::Path,
) -> Result<(), AppError> {
    let rel = notebook
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (server, window, same_notebook) = {
        let projects = state.projects();
        let Some(entry) = projects.get(id) else {
            return Ok(());
        };
        entry.now.notify_one();
        (
            entry.server.clone(),
            entry.summary.window.clone(),
            std::path::Path::new(&entry.summary.notebook) == notebook,
        )
    };
    // Still uploading or launching: its window comes when the server is ready.
    let Some(server) = server else {
        return Ok(());
    };
    let url = server.notebook_url(&rel);
    let shown = window.and_then(|label| app.get_webview_window(&label));
    match shown {
        Some(window) => {
            crate::commands::notebook::to_front(&window);
            if !same_notebook {
                let to = url
                    .parse()
                    .map_err(|e| AppError::new(ErrorCode::Validation, format!("not a URL: {e}")))?;
                window.navigate(to)?;
            }
        }
        None => {
            let title = format!("{rel}{}", server.title_tail);
            let window = crate::commands::notebook::open_window(app, state, &url, &title)?;
            emit(
                app,
                ProjectEvent::Syncing {
                    project_id: id.to_string(),
                    remote_dir: server.remote_root.clone(),
                    window,
                },
            );
        }
    }
    Ok(())
}

static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Records `event` in the project's summary in [`AppState`], then tells the windows.
fn emit<R: Runtime>(app: &AppHandle<R>, event: ProjectEvent) {
    let id = match &event {
        ProjectEvent::Uploading { project_id, .. }
        | ProjectEvent::Launching { project_id, .. }
        | ProjectEvent::Syncing { project_id, .. }
        | ProjectEvent::Resumed { project_id, .. }
        | ProjectEvent::BroughtBack { project_id, .. }
        | ProjectEvent::Stopped { project_id }
        | ProjectEvent::Failed { project_id, .. } => project_id.clone(),
    };
    if let Some(entry) = app.state::<AppState>().projects().get_mut(&id) {
        entry.summary.apply(&event);
    }
    let _ = app.emit(PROJECT_EVENT, event);
}

/// Every project opened since the app started, oldest first: what a (re)loaded main window
/// shows.
#[tauri::command]
pub async fn projects(state: State<'_, AppState>) -> Result<Vec<ProjectSummary>, AppError> {
    let mut list: Vec<ProjectSummary> = state
        .projects()
        .values()
        .map(|e| e.summary.clone())
        .collect();
    list.sort_by_key(|p| {
        p.id.trim_start_matches("project-")
            .parse::<u64>()
            .unwrap_or(u64::MAX)
    });
    Ok(list)
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
    let notebook = std::fs::canonicalize(&path)
        .map_err(|e| AppError::new(ErrorCode::NotFound, format!("{path}: {e}")))?;
    if notebook.extension().and_then(|e| e.to_str()) != Some("ipynb") || !notebook.is_file() {
        return Err(AppError::new(
            ErrorCode::Validation,
            format!("{path} is not a notebook (.ipynb file)"),
        ));
    }
    let gpu = match gpu.as_deref() {
        None => None,
        Some(crate::commands::jupyter::CPU_ONLY) => Some(GpuSelector::None),
        Some(s) => Some(s.parse::<GpuSelector>()?),
    };
    let folder = notebook.parent().map(PathBuf::from).unwrap_or_default();
    let running = running_project(&state.projects(), &session_id, &folder);
    if let Some(id) = running {
        // Resumed on connect (no server of this run yet): it makes way for this opening, which
        // follows the project from now on — still one sync per project.
        let resumed = state
            .projects()
            .get(&id)
            .is_some_and(|e| e.server.is_none() && e.summary.phase == ProjectPhase::Syncing);
        if !resumed {
            show_again(&app, &state, &id, &notebook)?;
            return Ok(id);
        }
        if let Some(e) = state.projects().get(&id) {
            e.stop.cancel();
        }
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
    let id = format!(
        "project-{}",
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let mut spec = SessionSpec::new(
        SessionHost::Ssh {
            chain,
            context: launch::connect_context(&app, &state),
        },
        profile.clone(),
    );
    spec.gpu = gpu;
    spec.free_rule = tunnelbook_core::settings::SettingsStore::in_home(state.home())
        .load_or_default()
        .gpu_free;
    spec.env = env;
    spec.host_session = Some(state.host(&session_id)?);
    spec.secrets = state.secrets();
    spec.saved_forwards = false;
    let entry = ProjectEntry::new(&id, &session_id, &notebook, ProjectPhase::Uploading);
    let (now, stop, forget) = (entry.now.clone(), entry.stop.clone(), entry.forget.clone());
    state.projects().insert(id.clone(), entry);
    let home = state.home().to_path_buf();
    let task_id = id.clone();
    tauri::async_runtime::spawn(async move {
        let failed = |app: &AppHandle<R>, error: String| {
            emit(
                app,
                ProjectEvent::Failed {
                    project_id: task_id.clone(),
                    error,
                },
            );
        };
        let sftp = match Sftp::open(&connection).await {
            Ok(s) => s,
            Err(e) => return failed(&app, e.to_string()),
        };
        let (mut project, projects_dir) =
            match Project::on_host(&home, &profile.name, &folder, &sftp, None, settings) {
                Ok(p) => p,
                Err(e) => return failed(&app, e.to_string()),
            };
        let remote_root = project.remote_root().to_string();
        let plan = match project.plan_upload(&sftp).await {
            Ok(p) => p,
            Err(e) => return failed(&app, e.to_string()),
        };
        let left_out: Vec<String> = plan.too_large.iter().map(|f| f.rel.clone()).collect();
        let progress = Progress::default();
        let cancel = CancellationToken::new();
        let uploaded = {
            let upload = project.upload(&sftp, &plan, false, &progress, &cancel);
            let mut upload = std::pin::pin!(upload);
            loop {
                tokio::select! {
                    r = &mut upload => break r,
                    () = tokio::time::sleep(Duration::from_millis(200)) => emit(&app, ProjectEvent::Uploading {
                        project_id: task_id.clone(), progress: progress.snapshot(), left_out: left_out.clone(),
                    }),
                }
            }
        };
        emit(
            &app,
            ProjectEvent::Uploading {
                project_id: task_id.clone(),
                progress: progress.snapshot(),
                left_out,
            },
        );
        match uploaded {
            Ok(back) if !back.is_empty() => emit(
                &app,
                ProjectEvent::BroughtBack {
                    project_id: task_id.clone(),
                    files: back,
                },
            ),
            Ok(_) => {}
            Err(e) => return failed(&app, format!("upload failed: {e}")),
        }
        let mut spec = spec;
        // Start or reuse, as `tunnelbook open` does.
        spec.notebook_dir = Some(project.server_root(&projects_dir));
        spec.reuse_for = Some(remote_root.clone());
        let mut session = Session::start(spec);
        let rel = notebook
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Saves come back from Ready on, through reconnects, until "Stop syncing"; the session
        // (the notebook window's tunnel) runs on after that.
        let mut project = Some((project, sftp));
        let mut follow = None;
        loop {
            tokio::select! {
                event = session.next_event() => match event {
                    None => break,
                    Some(SessionEvent::Progress(p)) => emit(&app, ProjectEvent::Launching {
                        project_id: task_id.clone(), message: p.message,
                    }),
                    Some(SessionEvent::Failed { step, error }) => {
                        failed(&app, format!("{step} failed: {error}"));
                        break;
                    }
                    Some(SessionEvent::Ready(info)) if follow.is_none() => {
                        let Some((project, sftp)) = project.take() else { continue };
                        let path = info.path_in_root(&sftp::join(&remote_root, &rel)).unwrap_or_else(|| rel.clone());
                        let url = tunnelbook_core::jupyter::notebook_url(&info.url, &path);
                        let state = app.state::<AppState>();
                        let title_tail = format!(" — {} — {}", profile.name, info.gpu_label.as_deref().unwrap_or("CPU only"));
                        let title = format!("{rel}{title_tail}");
                        if let Some(entry) = state.projects().get_mut(&task_id) {
                            entry.server = Some(OpenServer {
                                url: info.url.clone(), root_dir: info.root_dir.clone(), remote_root: remote_root.clone(), title_tail,
                            });
                        }
                        match crate::commands::notebook::open_window(&app, &state, &url, &title) {
                            Ok(window) => emit(&app, ProjectEvent::Syncing {
                                project_id: task_id.clone(), remote_dir: remote_root.clone(), window,
                            }),
                            Err(e) => failed(&app, e.message),
                        }
                        let control = session.control();
                        follow = Some(spawn_follow(
                            app.clone(), task_id.clone(), project, rel.clone(), sftp,
                            move || control.connection(), (now.clone(), stop.clone(), forget.clone()),
                        ));
                    }
                    Some(_) => {}
                },
                () = stop.cancelled(), if follow.is_none() && project.is_some() => {
                    if let Some((_, sftp)) = project.take() {
                        sftp.close();
                    }
                    emit(&app, ProjectEvent::Stopped { project_id: task_id.clone() });
                }
            }
        }
        stop.cancel();
        if let Some(follow) = follow {
            let _ = follow.await;
        }
        if let Some((_, sftp)) = project {
            sftp.close();
        }
        // The summary stays for the window; there is nothing left to steer.
        if let Some(entry) = app.state::<AppState>().projects().get_mut(&task_id) {
            entry.ended = true;
        }
    });
    Ok(id)
}

fn with_project(state: &AppState, id: &str, f: impl FnOnce(&ProjectEntry)) -> Result<(), AppError> {
    let projects = state.projects();
    let entry = projects.get(id).filter(|e| !e.ended).ok_or_else(|| {
        AppError::new(
            ErrorCode::NotFound,
            format!(
                "project {id} is not running (its notebook session ended); open the notebook again"
            ),
        )
    })?;
    f(entry);
    Ok(())
}

/// "Bring back now": checks the host for saves at once.
#[tauri::command]
pub async fn bring_back_now(
    state: State<'_, AppState>,
    project_id: String,
) -> Result<(), AppError> {
    with_project(&state, &project_id, |h| h.now.notify_one())
}

/// "Stop syncing": one last check, then no more (the notebook window and server stay).
#[tauri::command]
pub async fn stop_syncing(state: State<'_, AppState>, project_id: String) -> Result<(), AppError> {
    with_project(&state, &project_id, |h| {
        h.forget.store(true, std::sync::atomic::Ordering::SeqCst);
        h.stop.cancel();
    })
}

/// Name of the event that says the app was asked to open a notebook (its path).
pub const NOTEBOOK_REQUESTED_EVENT: &str = "notebook-requested";

static REQUESTED: LazyLock<Mutex<Option<String>>> = LazyLock::new(Default::default);

/// The notebook a command line names (the desktop's "Open with Tunnelbook" passes the file as an
/// argument): the first argument after the program that is an existing `.ipynb` file, made
/// absolute against `cwd`.
pub fn notebook_in_args(args: &[String], cwd: &std::path::Path) -> Option<PathBuf> {
    args.iter().skip(1).find_map(|a| {
        let p = cwd.join(a);
        (p.extension().and_then(|e| e.to_str()) == Some("ipynb") && p.is_file())
            .then(|| std::fs::canonicalize(&p).unwrap_or(p))
    })
}

/// Keeps the notebook a command line names for the UI ([`take_requested_notebook`]) and tells
/// a running UI at once ([`NOTEBOOK_REQUESTED_EVENT`]). Called at start-up and when a second
/// launch hands its command line to the running app.
pub fn requested<R: Runtime>(app: &AppHandle<R>, args: &[String], cwd: &std::path::Path) {
    let Some(path) = notebook_in_args(args, cwd) else {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn entry(id: &str, session: &str, notebook: &str, phase: ProjectPhase) -> ProjectEntry {
        ProjectEntry::new(id, session, Path::new(notebook), phase)
    }

    /// Trial finding 4 (issue 21): "Open notebook…" of a notebook already open started a second
    /// sync of the same folder (and a second window). A running project of that folder on that
    /// session is found and reused; a stopped, failed or ended one, or another folder or session,
    /// is not.
    #[test]
    fn a_second_open_of_a_running_projects_folder_reuses_it() {
        let mut projects = std::collections::HashMap::new();
        let folder = std::path::Path::new("/home/me/proj");
        assert_eq!(running_project(&projects, "s1", folder), None);
        projects.insert(
            "project-1".into(),
            entry(
                "project-1",
                "s1",
                "/home/me/proj/analysis.ipynb",
                ProjectPhase::Stopped,
            ),
        );
        projects.insert(
            "project-2".into(),
            entry(
                "project-2",
                "s2",
                "/home/me/proj/analysis.ipynb",
                ProjectPhase::Syncing,
            ),
        );
        projects.insert(
            "project-3".into(),
            entry(
                "project-3",
                "s1",
                "/home/me/other/analysis.ipynb",
                ProjectPhase::Syncing,
            ),
        );
        let mut ended = entry(
            "project-4",
            "s1",
            "/home/me/proj/a.ipynb",
            ProjectPhase::Syncing,
        );
        ended.ended = true;
        projects.insert("project-4".into(), ended);
        assert_eq!(running_project(&projects, "s1", folder), None);
        projects.insert(
            "project-5".into(),
            entry(
                "project-5",
                "s1",
                "/home/me/proj/analysis.ipynb",
                ProjectPhase::Syncing,
            ),
        );
        assert_eq!(
            running_project(&projects, "s1", folder).as_deref(),
            Some("project-5")
        );
        // Still uploading: reused too (its window comes when the server is ready).
        projects.get_mut("project-5").unwrap().summary.phase = ProjectPhase::Uploading;
        assert_eq!(
            running_project(&projects, "s1", folder).as_deref(),
            Some("project-5")
        );
        let server = OpenServer {
            url: "http://127.0.0.1:8123/lab?token=t".into(),
            root_dir: Some("/home/u/tunnelbook".into()),
            remote_root: "/home/u/tunnelbook/proj".into(),
            title_tail: " — box — GPU 0".into(),
        };
        let url = server.notebook_url("second.ipynb");
        assert!(url.contains("proj/second.ipynb"), "{url}");
        assert!(url.starts_with("http://127.0.0.1:8123/"), "{url}");
    }

    #[test]
    fn the_command_line_notebook_is_the_first_existing_ipynb() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.ipynb"), "{}").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "").unwrap();
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let found = notebook_in_args(
            &args(&["tunnelbook-app", "notes.txt", "missing.ipynb", "a.ipynb"]),
            dir.path(),
        );
        assert_eq!(
            found,
            Some(std::fs::canonicalize(dir.path().join("a.ipynb")).unwrap())
        );
        assert_eq!(
            notebook_in_args(&args(&["tunnelbook-app", "--flag"]), dir.path()),
            None
        );
        // The program itself is never taken for the notebook.
        assert_eq!(notebook_in_args(&args(&["a.ipynb"]), dir.path()), None);
    }
}
