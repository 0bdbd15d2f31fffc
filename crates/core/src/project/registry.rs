//! [`Projects`]: every project opened since the front end started, and the handles that steer the
//! running ones.

use std::{
    collections::HashMap,
    path::Path,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{ProjectError, ProjectEvent, ProjectPhase, ProjectSummary, ProjectUi};

/// How long [`Projects::close`] waits for each project to end (its last bring-back and its
/// server's shutdown).
pub const END_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// The opened notebooks' projects, by id (`project-N`). Cheap to clone; clones share them.
#[derive(Clone, Default)]
pub struct Projects {
    map: Arc<Mutex<HashMap<String, Entry>>>,
    next: Arc<AtomicU64>,
}

impl std::fmt::Debug for Projects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projects").finish_non_exhaustive()
    }
}

/// One project: what it is, and how to steer it while its task runs.
pub(super) struct Entry {
    /// What the front end shows.
    pub summary: ProjectSummary,
    pub steer: Steer,
    /// Whether its task ended (nothing to steer any more).
    pub ended: bool,
    /// Where its notebooks open, once JupyterLab is ready.
    pub server: Option<OpenServer>,
    /// Its task, for [`Projects::close`] to wait on.
    pub task: Option<tokio::task::JoinHandle<()>>,
}

/// How a project's task is steered.
#[derive(Clone, Default)]
pub(super) struct Steer {
    /// Notified: check the host for saves now.
    pub now: Arc<Notify>,
    /// Cancelled: one last check, then stop following.
    pub stop: CancellationToken,
    /// Set by "Stop syncing": the project is then no longer resumed on the next connection.
    pub forget: Arc<AtomicBool>,
    /// Cancelled by [`Projects::close`]: the saves come back one last time, then the project's
    /// notebook session closes (its tunnel; its server too when [`Steer::stop_server`]).
    pub close: CancellationToken,
    /// Whether [`Steer::close`] stops the server the project started (never one it reused).
    pub stop_server: Arc<AtomicBool>,
}

/// Where a project's notebooks open: its JupyterLab (through the front end's tunnel) and where
/// that server's root is on the host.
#[derive(Debug, Clone)]
pub(super) struct OpenServer {
    /// The server's address here, as the session gave it.
    pub url: String,
    /// The server's root folder on the host (absolute), when known.
    pub root_dir: Option<String>,
    /// The project's folder on the host (absolute).
    pub remote_root: String,
    /// The window title after the notebook's name (` — HOST — GPU`).
    pub title_tail: String,
}

impl OpenServer {
    /// The address of the notebook `rel` (inside the project) on this server.
    pub fn notebook_url(&self, rel: &str) -> String {
        let remote = crate::sftp::join(&self.remote_root, rel);
        let path = self
            .root_dir
            .as_deref()
            .and_then(|root| crate::jupyter::path_under(root, &remote))
            .unwrap_or_else(|| rel.to_string());
        crate::jupyter::notebook_url(&self.url, &path)
    }
}

/// The file name of `notebook`, its path inside its project.
pub(super) fn file_name(notebook: &Path) -> String {
    notebook
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl Projects {
    pub(super) fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // Poisoning only means another thread panicked while holding the lock; the map is intact.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every project, oldest first: what a (re)loaded main window shows.
    pub fn list(&self) -> Vec<ProjectSummary> {
        let mut list: Vec<ProjectSummary> =
            self.lock().values().map(|e| e.summary.clone()).collect();
        list.sort_by_key(|p| {
            p.id.trim_start_matches("project-")
                .parse::<u64>()
                .unwrap_or(u64::MAX)
        });
        list
    }

    /// A new project of session `session_id` showing `notebook`, in `phase`: its id and steer.
    pub(super) fn add(
        &self,
        session_id: &str,
        notebook: &Path,
        phase: ProjectPhase,
        remote_dir: Option<String>,
    ) -> (String, Steer) {
        let id = format!("project-{}", self.next.fetch_add(1, Ordering::Relaxed) + 1);
        let mut summary = ProjectSummary::new(&id, session_id, notebook, phase);
        summary.remote_dir = remote_dir;
        let steer = Steer::default();
        let entry = Entry {
            summary,
            steer: steer.clone(),
            ended: false,
            server: None,
            task: None,
        };
        self.lock().insert(id.clone(), entry);
        (id, steer)
    }

    /// Records `event` in its project's summary, then tells the front end.
    pub(super) fn emit(&self, ui: &impl ProjectUi, event: ProjectEvent) {
        if let Some(entry) = self.lock().get_mut(event.project_id()) {
            entry.summary.apply(&event);
        }
        ui.emit(event);
    }

    /// Keeps `task` as project `id`'s task, for [`Projects::close`].
    pub(super) fn set_task(&self, id: &str, task: tokio::task::JoinHandle<()>) {
        match self.lock().get_mut(id) {
            Some(e) => e.task = Some(task),
            None => task.abort(),
        }
    }

    /// The notebook windows of the projects of session `session_id` whose task still runs.
    pub fn windows(&self, session_id: &str) -> Vec<String> {
        self.lock()
            .values()
            .filter(|e| !e.ended && e.summary.session_id == session_id)
            .filter_map(|e| e.summary.window.clone())
            .collect()
    }

    /// Ends the running projects of session `session_id` (every session's when `None`): the
    /// app quits, or the session closes. Each brings back the host's saves one last time, then
    /// its notebook session closes — stopping the JupyterLab it started when `stop_servers` (a
    /// server it reused was running before it and is left as it is). They stay remembered as
    /// followed (not "Stop syncing"), so the next connection brings back saves made meanwhile.
    /// Waits for them, at most [`END_WAIT`] each.
    pub async fn close(&self, session_id: Option<&str>, stop_servers: bool) {
        let tasks: Vec<(String, Option<tokio::task::JoinHandle<()>>)> = self
            .lock()
            .values_mut()
            .filter(|e| !e.ended && session_id.is_none_or(|s| e.summary.session_id == s))
            .map(|e| {
                e.steer.stop_server.store(stop_servers, Ordering::SeqCst);
                e.steer.close.cancel();
                e.steer.stop.cancel();
                (e.summary.id.clone(), e.task.take())
            })
            .collect();
        for (id, task) in tasks {
            let Some(task) = task else { continue };
            if tokio::time::timeout(END_WAIT, task).await.is_err() {
                tracing::warn!(project = %id, "the project did not end in time");
            }
        }
    }

    /// Marks project `id`'s task ended (its summary stays).
    pub(super) fn end(&self, id: &str) {
        if let Some(e) = self.lock().get_mut(id) {
            e.ended = true;
        }
    }

    fn running_steer(&self, id: &str) -> Result<Steer, ProjectError> {
        self.lock()
            .get(id)
            .filter(|e| !e.ended)
            .map(|e| e.steer.clone())
            .ok_or_else(|| ProjectError::NotRunning { id: id.to_string() })
    }

    /// "Bring back now": checks the host for project `id`'s saves at once.
    ///
    /// # Errors
    /// [`ProjectError::NotRunning`] when its task has ended.
    pub fn bring_back_now(&self, id: &str) -> Result<(), ProjectError> {
        self.running_steer(id)?.now.notify_one();
        Ok(())
    }

    /// "Stop syncing": one last check, then no more, and not resumed on the next connection
    /// (the notebook window and the server stay).
    ///
    /// # Errors
    /// [`ProjectError::NotRunning`] when its task has ended.
    pub fn stop_syncing(&self, id: &str) -> Result<(), ProjectError> {
        let steer = self.running_steer(id)?;
        steer.forget.store(true, Ordering::SeqCst);
        steer.stop.cancel();
        Ok(())
    }

    /// Whether a project of the local folder `folder` is still followed (its task not ended),
    /// on any session.
    pub(super) fn follows(&self, folder: &Path) -> bool {
        self.lock()
            .values()
            .any(|e| !e.ended && Path::new(&e.summary.notebook).parent() == Some(folder))
    }

    /// The project of the local folder `folder` on session `session_id` whose task still runs
    /// (not stopped, not failed): a second "Open notebook…" of a notebook in it reuses that
    /// project — one sync per project, one window per server — instead of starting another.
    pub(super) fn running(&self, session_id: &str, folder: &Path) -> Option<String> {
        self.lock()
            .values()
            .filter(|e| {
                !e.ended
                    && e.summary.session_id == session_id
                    && !matches!(
                        e.summary.phase,
                        ProjectPhase::Stopped | ProjectPhase::Failed
                    )
                    && Path::new(&e.summary.notebook).parent() == Some(folder)
            })
            .map(|e| e.summary.id.clone())
            .next()
    }

    /// "Open notebook…" of `notebook` on session `session_id` when a project of its folder runs
    /// there already: shows it again ([`Projects::show_again`]) and returns that project's id.
    /// A project resumed on connect (no server of this run yet) makes way instead — it stops,
    /// and `None` says to open anew, which follows the project from then on; `None` too when no
    /// project of the folder runs.
    ///
    /// # Errors
    /// [`ProjectError::Window`] when the window cannot be shown.
    pub fn reuse(
        &self,
        ui: &impl ProjectUi,
        session_id: &str,
        notebook: &Path,
    ) -> Result<Option<String>, ProjectError> {
        let folder = notebook.parent().unwrap_or(Path::new(""));
        let Some(id) = self.running(session_id, folder) else {
            return Ok(None);
        };
        let resumed = self
            .lock()
            .get(&id)
            .filter(|e| e.server.is_none() && e.summary.phase == ProjectPhase::Syncing)
            .map(|e| e.steer.stop.clone());
        match resumed {
            Some(stop) => {
                stop.cancel();
                Ok(None)
            }
            None => {
                self.show_again(ui, &id, notebook)?;
                Ok(Some(id))
            }
        }
    }

    /// Shows `notebook` of the running project `id` again: its window brought to the front
    /// (opened anew on the same server when it was closed) on that notebook, and the host
    /// checked for saves at once.
    fn show_again(
        &self,
        ui: &impl ProjectUi,
        id: &str,
        notebook: &Path,
    ) -> Result<(), ProjectError> {
        let rel = file_name(notebook);
        let (server, window, same_notebook) = {
            let projects = self.lock();
            let Some(entry) = projects.get(id) else {
                return Ok(());
            };
            entry.steer.now.notify_one();
            (
                entry.server.clone(),
                entry.summary.window.clone(),
                Path::new(&entry.summary.notebook) == notebook,
            )
        };
        // Still uploading or launching: its window comes when the server is ready.
        let Some(server) = server else {
            return Ok(());
        };
        let url = server.notebook_url(&rel);
        if let Some(label) = window
            && ui
                .show_window(&label, &url, !same_notebook)
                .map_err(ProjectError::Window)?
        {
            return Ok(());
        }
        let title = format!("{rel}{}", server.title_tail);
        let window = ui.open_window(&url, &title).map_err(ProjectError::Window)?;
        self.emit(
            ui,
            ProjectEvent::Syncing {
                project_id: id.to_string(),
                remote_dir: server.remote_root.clone(),
                window,
            },
        );
        Ok(())
    }
}
