//! The sessions a front end started (the app's Connect, Sessions and host cards): one
//! [`SessionEntry`] per session — core's [`HostSession`] on the host, the notebook launched on it,
//! the servers and SLURM jobs it reopened — kept in a [`Sessions`] registry with the questions
//! the commands ask of it (which session is live on a host, the summaries, a session's connection).
//!
//! No window and no event here: what the front end shows is its own; [`drive`] turns a notebook's
//! session events into the few things a notebook window does ([`NotebookUi`]).

use std::{
    collections::HashMap,
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use tokio::{
    sync::{mpsc, oneshot},
    task::AbortHandle,
};

use crate::{
    error::{ErrorCode, Problem},
    host::{
        HostEvent, HostSession, HostSpec, SessionStatus, SessionSummary, oldest_first,
        session_number,
    },
    jupyter::{Host, window::window_label},
    profile::{LOCAL_NAME, Profile, with_saved_launch_defaults},
    session::{Session, SessionControl},
    slurm::notebook::{JobNotebook, OpenedJob},
    ssh::Connection,
    tunnel::Tunnel,
};

mod drive;
mod servers;
#[cfg(test)]
mod tests;

pub use self::drive::{DISMISS_AGAIN, NotebookUi, drive_notebook, host_step};
pub use self::servers::{Closing, REOPENED_CHECK, Reopen, StopServer, gpu_label, reconnect_change};

/// Why a question about a session cannot be answered.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SessionsError {
    /// The front end named a session that does not exist (any more).
    #[error("no session {0}")]
    NoSession(String),
    /// Restart or reconnect asked of a session that runs no notebook.
    #[error("no notebook runs in this session; launch one first")]
    NoNotebook,
    /// A launch asked while a notebook runs or is being launched.
    #[error("a notebook already runs in this session; stop it first")]
    NotebookRuns,
    /// A launch asked before the session connected, or after it closed.
    #[error("the session is not connected")]
    NotConnected,
    /// The host session cannot do it now (not connected, ended, no SSH on this computer), or a
    /// Jupyter server on it could not be reached; the problem says which.
    #[error(transparent)]
    Host(#[from] Problem),
}

impl From<SessionsError> for Problem {
    fn from(e: SessionsError) -> Self {
        match e {
            SessionsError::NoSession(_) => Problem::new(ErrorCode::NotFound, e.to_string()),
            SessionsError::NoNotebook
            | SessionsError::NotebookRuns
            | SessionsError::NotConnected => Problem::new(ErrorCode::Validation, e.to_string()),
            SessionsError::Host(p) => p,
        }
    }
}

impl From<crate::jupyter::JupyterError> for SessionsError {
    fn from(e: crate::jupyter::JupyterError) -> Self {
        Self::Host(e.into())
    }
}

/// One session a front end started.
pub struct SessionEntry {
    /// What the sessions list shows.
    pub summary: SessionSummary,
    /// Core's host session: owns the connection from the first dial through every reconnect.
    pub host: HostSession,
    /// The task forwarding the host session's events, so Cancel can stop it.
    pub task: Option<AbortHandle>,
    /// The task forwarding live GPU snapshots while the picker is open; aborting it drops core's
    /// `gpu::watch` receiver, which stops the polling.
    pub gpu_watch: Option<AbortHandle>,
    /// The hops to the host (`None` for this computer): core's session opens its own
    /// connection with them, as the CLI's `up` does.
    pub chain: Option<Vec<Profile>>,
    /// The notebook core's session runs, once launched.
    pub notebook: Option<NotebookHandle>,
    /// Tunnels this session opened to servers it did not launch (Sessions → Open), by server id,
    /// with their URL as the main window knows it (token-free).
    pub attached: HashMap<String, (Option<Tunnel>, String)>,
    /// A SLURM notebook (issue 20): its launch, then its job, once started.
    pub slurm: Option<JobNotebook>,
    /// SLURM jobs started elsewhere that this session opened from Sessions, by job id.
    pub slurm_open: HashMap<String, OpenedJob>,
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
                name: LOCAL_NAME.into(),
                ..Profile::default()
            })
    }

    /// The host as a person knows it: the saved host's name, or "This computer".
    pub fn host_name(&self) -> String {
        match self.summary.host_id.as_str() {
            LOCAL_NAME => "This computer".into(),
            name => name.into(),
        }
    }

    /// The URL (token-free) under which this session shows server `server_id`: its own
    /// notebook's, or one it reopened; `None` when it shows it nowhere.
    pub fn server_url(&self, server_id: &str) -> Option<String> {
        if self.summary.server_id.as_deref() == Some(server_id) {
            self.summary.url.clone()
        } else {
            self.attached.get(server_id).map(|(_, url)| url.clone())
        }
    }

    /// The session's row showed a reopened notebook's GPU and environment: once it runs no
    /// notebook of its own and has no reopened one left, they go.
    fn forget_reopened_look(&mut self) {
        if self.summary.server_id.is_none() && self.reopened_notebooks().next().is_none() {
            self.summary.gpu = None;
            self.summary.env = None;
        }
    }
}

/// A running notebook: the task that drives core's [`Session`](crate::session::Session) and the
/// way to end it.
pub struct NotebookHandle {
    /// Ends the notebook; `true` also stops the server on the host.
    pub stop: oneshot::Sender<bool>,
    /// The driving task; it ends once core's session has cleaned up.
    pub task: tokio::task::JoinHandle<()>,
    /// Reconnect now, restart the server: answered by the session's events.
    pub control: SessionControl,
}

/// How long [`end_notebook`] waits for a notebook's cleanup.
pub const END_WAIT: Duration = Duration::from_secs(20);

/// Ends a notebook: tells its task to stop (`stop_server`: the server too) and waits for core's
/// cleanup, at most [`END_WAIT`].
pub async fn end_notebook(handle: NotebookHandle, stop_server: bool) {
    let NotebookHandle { stop, task, .. } = handle;
    let _ = stop.send(stop_server);
    if tokio::time::timeout(END_WAIT, task).await.is_err() {
        tracing::warn!("the notebook did not stop within {} s", END_WAIT.as_secs());
    }
}

/// The sessions a front end started, by id (`s1`, `s2`, …).
#[derive(Default)]
pub struct Sessions {
    sessions: Mutex<HashMap<String, SessionEntry>>,
    next_session: AtomicU32,
    next_notebook: AtomicU32,
}

impl Sessions {
    /// Starts a session on host `host_id` (`chain`: its hops, `None` for this computer): core's
    /// host session as `spec` says, registered (status `starting`) before its first event.
    /// Returns the session's id and the host session's events.
    pub fn start(
        &self,
        host_id: String,
        chain: Option<Vec<Profile>>,
        spec: HostSpec,
    ) -> (String, mpsc::Receiver<HostEvent>) {
        let id = self.new_session_id();
        let summary = SessionSummary {
            id: id.clone(),
            host_id,
            status: SessionStatus::Starting,
            url: None,
            gpu: None,
            env: None,
            server_id: None,
            window: None,
        };
        let (host, events) = HostSession::start(spec);
        let entry = SessionEntry::new(summary, chain, host);
        self.sessions().insert(id.clone(), entry);
        (id, events)
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

    /// Runs `f` on session `id`'s entry.
    pub fn with<T>(
        &self,
        id: &str,
        f: impl FnOnce(&mut SessionEntry) -> T,
    ) -> Result<T, SessionsError> {
        let mut sessions = self.sessions();
        let entry = sessions
            .get_mut(id)
            .ok_or_else(|| SessionsError::NoSession(id.into()))?;
        Ok(f(entry))
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
    pub fn host(&self, id: &str) -> Result<HostSession, SessionsError> {
        self.with(id, |e| e.host.clone())
    }

    /// The open connection of session `id` now (it changes after a reconnect: ask each time).
    pub fn connection(&self, id: &str) -> Result<Connection, SessionsError> {
        Ok(self.host(id)?.open_connection()?)
    }

    /// The running notebook of session `id`, to steer.
    pub fn notebook_control(&self, id: &str) -> Result<SessionControl, SessionsError> {
        self.with(id, |e| e.notebook.as_ref().map(|n| n.control.clone()))?
            .ok_or(SessionsError::NoNotebook)
    }

    /// Where session `id`'s Jupyter servers run: this computer, or over its open connection.
    pub fn jupyter_host(&self, id: &str) -> Result<Host, SessionsError> {
        Ok(self.host(id)?.jupyter_host()?)
    }

    /// Makes `task` session `id`'s GPU watch, stopping the one before. When the session is gone
    /// (closed meanwhile), `task` is stopped and the answer is [`SessionsError::NoSession`].
    pub fn set_gpu_watch(&self, id: &str, task: AbortHandle) -> Result<(), SessionsError> {
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
                Err(SessionsError::NoSession(id.into()))
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

    /// What a notebook launch in session `id` starts from — the hops, the profile with the
    /// launch defaults as `saved` has them now, the host session — once the session is connected
    /// and runs no notebook; [`SessionsError::NotebookRuns`] or
    /// [`SessionsError::NotConnected`] otherwise.
    pub fn launch_parts(
        &self,
        id: &str,
        saved: &[Profile],
    ) -> Result<(Option<Vec<Profile>>, Profile, HostSession), SessionsError> {
        self.with(id, |e| match e.summary.status {
            SessionStatus::Connected | SessionStatus::Failed | SessionStatus::Disconnected => {
                Ok((e.chain.clone(), e.launch_profile(saved), e.host.clone()))
            }
            SessionStatus::Launching | SessionStatus::Ready => Err(SessionsError::NotebookRuns),
            SessionStatus::Starting | SessionStatus::Closed => Err(SessionsError::NotConnected),
        })?
    }

    /// Session `id` now launches core's `session` (status `launching`, no URL yet): `drive`
    /// spawns the task that runs it until told to stop (the receiver: `true` stops the server
    /// too), with the session's entry in place before the task first looks. A session gone
    /// meanwhile drops `session`, which cancels it.
    pub fn launch(
        &self,
        id: &str,
        session: Session,
        drive: impl FnOnce(Session, oneshot::Receiver<bool>) -> tokio::task::JoinHandle<()>,
    ) -> Result<(), SessionsError> {
        let mut sessions = self.sessions();
        let entry = sessions
            .get_mut(id)
            .ok_or_else(|| SessionsError::NoSession(id.into()))?;
        let (stop, stopped) = oneshot::channel();
        let control = session.control();
        let task = drive(session, stopped);
        entry.summary.status = SessionStatus::Launching;
        entry.summary.url = None;
        entry.notebook = Some(NotebookHandle {
            stop,
            task,
            control,
        });
        Ok(())
    }
}
