//! What the app keeps between commands: where its files are, the open questions, the sessions.
//!
//! Runtime-agnostic (no `AppHandle` inside) so the same state serves the real app and tests on
//! tauri's mock runtime.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU32, Ordering},
    },
};

use tunnelbook_core::{
    host::{HostSession, oldest_first, session_number},
    jupyter::{Host, window::window_label},
    profile::{Profile, ProfileStore, with_saved_launch_defaults},
    secret::{KeychainStore, SecretStore},
    ssh::Connection,
    tunnel::Tunnel,
};

use crate::{
    error::{AppError, ErrorCode},
    prompt::PromptBroker,
    wire::{LOCAL_HOST_ID, SessionStatus, SessionSummary},
};

/// The app's state, managed by tauri.
pub struct AppState {
    home: PathBuf,
    /// Saved hosts.
    pub profiles: ProfileStore,
    /// Questions waiting for the human.
    pub prompts: Arc<PromptBroker>,
    sessions: Mutex<HashMap<String, SessionEntry>>,
    next_session: AtomicU32,
    next_notebook: AtomicU32,
    /// The OS keychain, opened on first use (`None` inside: there is none).
    secrets: std::sync::OnceLock<Option<Arc<dyn SecretStore>>>,
    /// Local notebooks opened on a host ("Open notebook…"), by project id: they outlive the
    /// main window's page.
    projects: tunnelbook_core::project::Projects,
}

/// One session the app started.
pub struct SessionEntry {
    /// What the sessions list shows.
    pub summary: SessionSummary,
    /// Core's host session: owns the connection from the first dial through every reconnect.
    pub host: HostSession,
    /// The task forwarding the host session's events, so Cancel can stop it.
    pub task: Option<tauri::async_runtime::JoinHandle<()>>,
    /// The task forwarding live GPU snapshots while the picker is open; aborting it drops core's
    /// `gpu::watch` receiver, which stops the polling.
    pub gpu_watch: Option<tauri::async_runtime::JoinHandle<()>>,
    /// The hops to the host (`None` for this computer): core's session opens its own
    /// connection with them, as the CLI's `up` does.
    pub chain: Option<Vec<Profile>>,
    /// The notebook core's session runs, once launched.
    pub notebook: Option<NotebookHandle>,
    /// Tunnels this app opened to servers it did not launch (Sessions → Open), by server id,
    /// with their URL.
    pub attached: HashMap<String, (Option<Tunnel>, String)>,
    /// A SLURM notebook (issue 20): its launch, then its job, once started.
    pub slurm: Option<crate::commands::slurm::SlurmHandle>,
    /// SLURM jobs started elsewhere that this app opened from Sessions, by job id.
    pub slurm_open: HashMap<String, crate::commands::slurm::OpenedJob>,
}

impl SessionEntry {
    /// A fresh entry for a session just started.
    pub fn new(summary: SessionSummary, chain: Option<Vec<Profile>>, host: HostSession) -> Self {
        Self {
            summary,
            host,
            task: None,
            gpu_watch: None,
            chain,
            notebook: None,
            attached: HashMap::new(),
            slurm: None,
            slurm_open: HashMap::new(),
        }
    }

    /// Ids of the Tunnelbook servers (`tb-…`) this session reopened from an earlier run: the
    /// app's notebooks too (servers started by hand, `pid-N`, are only looked at).
    pub fn reopened_notebooks(&self) -> impl Iterator<Item = &String> {
        self.attached.keys().filter(|id| id.starts_with("tb-"))
    }

    /// [`Self::profile`] with the launch defaults as `saved` has them now (environment, notebook
    /// folder, GPU, modules, pre-launch lines): an environment kept by an earlier launch on this
    /// same connection, or set with `tunnelbook hosts edit`, counts for the next launch. The
    /// connection's own fields stay as connected.
    pub fn launch_profile(&self, saved: &[Profile]) -> Profile {
        with_saved_launch_defaults(self.profile(), saved)
    }

    /// The profile whose defaults the notebook takes (a bare `local` one for this computer).
    pub fn profile(&self) -> Profile {
        self.chain
            .as_ref()
            .and_then(|c| c.last().cloned())
            .unwrap_or_else(|| Profile {
                name: LOCAL_HOST_ID.into(),
                ..Profile::default()
            })
    }
}

/// A running notebook: the task that drives core's `Session` and the way to end it.
pub struct NotebookHandle {
    /// Ends the notebook; `true` also stops the server on the host.
    pub stop: tokio::sync::oneshot::Sender<bool>,
    /// The driving task; it ends once core's session has cleaned up.
    pub task: tauri::async_runtime::JoinHandle<()>,
    /// Reconnect now, restart the server: answered by the session's events.
    pub control: tunnelbook_core::session::SessionControl,
}

impl AppState {
    /// State whose files live under `home` (Tunnelbook's config directory).
    pub fn new(home: &Path) -> Self {
        Self {
            home: home.to_path_buf(),
            profiles: ProfileStore::in_home(home),
            prompts: Arc::new(PromptBroker::default()),
            sessions: Mutex::new(HashMap::new()),
            next_session: AtomicU32::new(0),
            next_notebook: AtomicU32::new(0),
            secrets: std::sync::OnceLock::new(),
            projects: Default::default(),
        }
    }

    /// The OS keychain, where remembered passwords, passphrases and Jupyter tokens live; opened
    /// on first use. `None` when the system has none (no Secret Service, say): secrets are then
    /// asked each time and never written anywhere else.
    pub fn secrets(&self) -> Option<Arc<dyn SecretStore>> {
        self.secrets
            .get_or_init(|| match KeychainStore::open() {
                Ok(store) => {
                    let store = store.with_index_lock(self.home.join("keychain-index.lock"));
                    Some(Arc::new(store) as Arc<dyn SecretStore>)
                }
                Err(e) => {
                    tracing::info!("{e}; secrets will be asked each time");
                    None
                }
            })
            .clone()
    }

    /// Tunnelbook's home directory (hosts, settings, known hosts, logs).
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Tunnelbook's own known_hosts file.
    pub fn known_hosts_file(&self) -> PathBuf {
        self.home.join("known_hosts")
    }

    /// A fresh session id.
    pub fn new_session_id(&self) -> String {
        format!("s{}", self.next_session.fetch_add(1, Ordering::Relaxed) + 1)
    }

    /// A fresh notebook window label; always `jupyter-<n>`, which no capability matches.
    pub fn new_notebook_label(&self) -> String {
        window_label(self.next_notebook.fetch_add(1, Ordering::Relaxed) + 1)
    }

    /// The sessions, locked.
    pub fn sessions(&self) -> MutexGuard<'_, HashMap<String, SessionEntry>> {
        // Poisoning only means another thread panicked while holding the lock; the map is intact.
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The opened notebooks' projects.
    pub fn projects(&self) -> &tunnelbook_core::project::Projects {
        &self.projects
    }

    /// Every session's summary, oldest first (ids are `s1`, `s2`, …).
    pub fn summaries(&self) -> Vec<SessionSummary> {
        oldest_first(
            self.sessions()
                .values()
                .map(|e| e.summary.clone())
                .collect(),
        )
    }

    /// The session whose connection to host `host_id` is open, being dialed or being
    /// re-established — not closed and not given up (a failed connect ends it) — the newest
    /// when several. One connection per host: Connect shows this session instead of dialing
    /// a second one.
    pub fn live_session(&self, host_id: &str) -> Option<String> {
        let sessions = self.sessions();
        sessions
            .values()
            .filter(|e| {
                e.summary.host_id == host_id
                    && e.summary.status != SessionStatus::Closed
                    && !e.host.is_ended()
            })
            .map(|e| e.summary.id.clone())
            .max_by_key(|id| session_number(id).unwrap_or(0))
    }

    /// Changes the status of session `id`, if it still exists.
    pub fn set_status(&self, id: &str, status: SessionStatus) {
        if let Some(entry) = self.sessions().get_mut(id) {
            entry.summary.status = status;
        }
    }

    /// The host session of session `id`.
    pub fn host(&self, id: &str) -> Result<HostSession, AppError> {
        let sessions = self.sessions();
        let entry = sessions.get(id).ok_or_else(|| AppError::no_session(id))?;
        Ok(entry.host.clone())
    }

    /// The open connection of session `id` now (it changes after a reconnect: ask each time).
    pub fn connection(&self, id: &str) -> Result<Connection, AppError> {
        Ok(self.host(id)?.open_connection()?)
    }

    /// The running notebook of session `id`, to steer.
    pub fn notebook_control(
        &self,
        id: &str,
    ) -> Result<tunnelbook_core::session::SessionControl, AppError> {
        let sessions = self.sessions();
        let entry = sessions.get(id).ok_or_else(|| AppError::no_session(id))?;
        entry
            .notebook
            .as_ref()
            .map(|n| n.control.clone())
            .ok_or_else(|| {
                AppError::new(
                    ErrorCode::Validation,
                    "no notebook runs in this session; launch one first",
                )
            })
    }

    /// Where session `id`'s Jupyter servers run: this computer, or over its open connection.
    pub fn jupyter_host(&self, id: &str) -> Result<Host, AppError> {
        Ok(self.host(id)?.jupyter_host()?)
    }

    /// Makes `task` session `id`'s GPU watch, stopping the one before. When the session is gone
    /// (closed meanwhile), `task` is stopped and the answer is `NotFound`.
    pub fn set_gpu_watch(
        &self,
        id: &str,
        task: tauri::async_runtime::JoinHandle<()>,
    ) -> Result<(), AppError> {
        let mut sessions = self.sessions();
        match sessions.get_mut(id) {
            Some(entry) if entry.summary.status != SessionStatus::Closed => {
                if let Some(previous) = entry.gpu_watch.replace(task) {
                    previous.abort();
                }
                Ok(())
            }
            _ => {
                task.abort();
                Err(AppError::no_session(id))
            }
        }
    }

    /// Stops session `id`'s GPU watch, if one runs.
    pub fn stop_gpu_watch(&self, id: &str) {
        let task = self.sessions().get_mut(id).and_then(|e| e.gpu_watch.take());
        if let Some(task) = task {
            task.abort();
        }
    }
}
