//! What a session does with the Jupyter servers on its host and with itself: list them as the
//! front end shows them, reopen one, stop one, follow a reopened one until it is gone, close the
//! session; and how the host session's events move the session's status.

use std::{sync::Arc, time::Duration};

use super::{NotebookHandle, SessionEntry, Sessions, SessionsError, end_notebook};
use crate::{
    host::{HostEvent, HostSession, SessionStatus, Step, StepState},
    jupyter::{self, Host, JupyterServer, Look, PortBook, ServerView, TokenStore},
    profile::Profile,
    secret::SecretStore,
    tunnel::Tunnel,
};

/// How often a reopened server is checked for being still there.
pub const REOPENED_CHECK: Duration = Duration::from_secs(3);

/// What [`Sessions::reopen`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reopen {
    /// The session shows the server already (its own notebook, or reopened before): its URL.
    Shown(String),
    /// A forward to the server now runs (kept until the session closes): its URL (token-free).
    /// The front end follows it with [`Sessions::wait_reopened_gone`].
    Opened(String),
}

/// What stopping one server took from its session ([`Sessions::take_server`]), for
/// [`Sessions::stop_server`] once the front end closed the server's windows.
pub struct StopServer {
    /// The session's own notebook (and its window's label), when the server was it.
    pub own: Option<(Option<NotebookHandle>, Option<String>)>,
    /// The forward to a server the session had reopened, when it was one.
    pub attached: Option<Option<Tunnel>>,
    /// The URL the session showed the server under (token-free), if any.
    pub url: Option<String>,
}

/// What closing a session took from it ([`Sessions::begin_close`]), for
/// [`Sessions::finish_close`] once the front end closed its windows.
pub struct Closing {
    /// Its own notebook.
    pub notebook: Option<NotebookHandle>,
    /// Its notebook window's label.
    pub window: Option<String>,
    /// Its own notebook's URL (token-free).
    pub url: Option<String>,
    /// The servers it reopened: their forwards and URLs.
    pub attached: Vec<(Option<Tunnel>, String)>,
}

impl Closing {
    /// Every URL (token-free) under which the session showed a server.
    pub fn urls(&self) -> impl Iterator<Item = &String> {
        self.url.iter().chain(self.attached.iter().map(|(_, u)| u))
    }
}

/// Follows whether the host session's connection is lost (`down`) through its events: `Some(true)`
/// when `event` says it was lost and is being dialed again, `Some(false)` when it is back,
/// `None` when nothing changed. Windows on reopened servers show a banner meanwhile.
pub fn reconnect_change(event: &HostEvent, down: &mut bool) -> Option<bool> {
    match (event.step, event.state, event.error.is_some()) {
        (Step::Connect, StepState::Running, true) => {
            *down = true;
            Some(true)
        }
        (Step::Connect, StepState::Done, _) if *down => {
            *down = false;
            Some(false)
        }
        _ => None,
    }
}

impl Sessions {
    /// Keeps session `id`'s status in step with its host session's `event` (before the event
    /// goes out, so a front end reacting to it already sees it). Returns the saved host's name
    /// when the session just connected: the front end then resumes what it follows there.
    pub fn follow_host_event(&self, id: &str, event: &HostEvent) -> Option<String> {
        let mut sessions = self.sessions();
        let entry = sessions.get_mut(id)?;
        let host = entry.chain.as_ref().map(|_| entry.profile().name);
        let status = &mut entry.summary.status;
        match (event.step, event.state) {
            (Step::Authenticate, StepState::Done | StepState::Skipped)
                if *status == SessionStatus::Starting =>
            {
                *status = SessionStatus::Connected;
                host
            }
            (Step::Connect | Step::HostKey | Step::Authenticate, StepState::Failed)
            | (Step::ReadGpus, StepState::Failed)
                if matches!(*status, SessionStatus::Starting | SessionStatus::Connected) =>
            {
                *status = SessionStatus::Failed;
                None
            }
            _ => None,
        }
    }

    /// Where session `id`'s servers run, the profile (its environment is the one discovery
    /// lists first) and the tokens of the host's servers (`secrets`, the keychain, where launches
    /// keep them: the app's and the CLI's; else `jupyter server list` on the host).
    pub fn server_parts(
        &self,
        id: &str,
        secrets: Option<Arc<dyn SecretStore>>,
    ) -> Result<(Host, Profile, TokenStore), SessionsError> {
        let profile = self.with(id, |e| e.profile())?;
        let tokens = TokenStore {
            store: secrets,
            profile: profile.name.clone(),
        };
        Ok((self.jupyter_host(id)?, profile, tokens))
    }

    /// The Jupyter servers running on session `id`'s host as the front end lists them: this
    /// session's notebook, servers the CLI or an earlier run started, ones started by hand; each
    /// with the URL the session shows it under.
    pub async fn servers(&self, id: &str) -> Result<Vec<ServerView>, SessionsError> {
        let (host, profile, _) = self.server_parts(id, None)?;
        let servers = jupyter::list(&host, profile.environment.as_deref()).await?;
        let sessions = self.sessions();
        let entry = sessions.get(id);
        Ok(servers
            .into_iter()
            .map(|s| server_view(id, entry.and_then(|e| e.server_url(&s.id)), s))
            .collect())
    }

    /// Makes server `server_id` on session `id`'s host reachable here: a tunnel over the host
    /// session's link (it keeps working across reconnects), on the same local port as last time
    /// when it is free (`book`). `public` turns the server's URL into the one the main window
    /// gets (token-free). The session's row shows a Tunnelbook server's GPU and environment
    /// when it runs no notebook of its own.
    pub async fn reopen(
        &self,
        id: &str,
        server_id: &str,
        secrets: Option<Arc<dyn SecretStore>>,
        book: &PortBook,
        public: impl FnOnce(&str) -> String,
    ) -> Result<Reopen, SessionsError> {
        if let Some(url) = self.with(id, |e| e.server_url(server_id))? {
            return Ok(Reopen::Shown(url));
        }
        let (host, profile, tokens) = self.server_parts(id, secrets)?;
        let session = self.host(id)?;
        let configured = profile.environment.as_deref();
        let (server, attached) = jupyter::reopen(
            &host,
            Some(&session.link()),
            Some(server_id),
            &tokens,
            configured,
            book,
        )
        .await?;
        let url = public(&attached.url);
        // What it was launched with, from its record on the host: the session's row shows it.
        let gpu = gpu_label(&session, server.gpu.as_deref()).await;
        let env = server.env.clone().or(server.root_dir.clone());
        self.with(id, |entry| {
            let shown = (attached.tunnel, url.clone());
            entry.attached.insert(server_id.to_string(), shown);
            // A session running a notebook of its own shows that one.
            if server.managed && entry.summary.server_id.is_none() {
                entry.summary.gpu = gpu;
                entry.summary.env = env;
            }
        })?;
        Ok(Reopen::Opened(url))
    }

    /// Watches server `server_id` that session `id` reopened, as core watches a fresh launch's:
    /// while the host is connected, a server no longer running on the host (killed, out of
    /// memory, stopped elsewhere) is gone — its forward closes and the session forgets it.
    /// Returns its URL (token-free) and the host's name then, for the front end to say so; `None`
    /// when the session no longer has it (stopped from the front end, session closed).
    pub async fn wait_reopened_gone(&self, id: &str, server_id: &str) -> Option<(String, String)> {
        let look = || {
            let shown = self.with(id, |e| e.attached.contains_key(server_id));
            // Only while the connection is up: an outage is the connection banner's, not this.
            match (shown, self.host(id)) {
                (Ok(true), Ok(session)) if session.is_up() => match self.server_parts(id, None) {
                    Ok((host, profile, _)) => Look::Check(host, profile.environment),
                    Err(_) => Look::Later,
                },
                (Ok(true), Ok(_)) => Look::Later,
                _ => Look::Stop,
            }
        };
        if !jupyter::wait_gone(server_id, REOPENED_CHECK, look).await {
            return None;
        }
        tracing::warn!(session = %id, server = %server_id, "the reopened notebook server is gone");
        let (attached, host_name) = self
            .with(id, |e| {
                let attached = e.attached.remove(server_id);
                e.forget_reopened_look();
                (attached, e.summary.host_id.clone())
            })
            .ok()?;
        let (tunnel, url) = attached?;
        if let Some(tunnel) = tunnel {
            tunnel.close().await;
        }
        Some((url, host_name))
    }

    /// Takes server `server_id` from session `id` before it is stopped: its own notebook (the
    /// session is then `connected` again, showing no server) or a server it reopened.
    pub fn take_server(&self, id: &str, server_id: &str) -> Result<StopServer, SessionsError> {
        self.with(id, |entry| {
            if entry.summary.server_id.as_deref() == Some(server_id) {
                let own = (entry.notebook.take(), entry.summary.window.take());
                let url = entry.summary.url.take();
                entry.summary.server_id = None;
                entry.summary.gpu = None;
                entry.summary.env = None;
                entry.summary.status = SessionStatus::Connected;
                StopServer {
                    own: Some(own),
                    attached: None,
                    url,
                }
            } else {
                let attached = entry.attached.remove(server_id);
                let url = attached.as_ref().map(|(_, url)| url.clone());
                StopServer {
                    own: None,
                    attached: attached.map(|(tunnel, _)| tunnel),
                    url,
                }
            }
        })
    }

    /// Stops server `server_id` on session `id`'s host after [`Self::take_server`]: the
    /// session's own notebook through core's session (the connection stays), any other through
    /// JupyterLab's shutdown (its token from `secrets` or the host), its forward closed.
    pub async fn stop_server(
        &self,
        id: &str,
        server_id: &str,
        taken: StopServer,
        secrets: Option<Arc<dyn SecretStore>>,
    ) -> Result<(), SessionsError> {
        if let Some((handle, _)) = taken.own {
            if let Some(handle) = handle {
                end_notebook(handle, true).await;
            }
            return Ok(());
        }
        if let Some(tunnel) = taken.attached {
            if let Some(tunnel) = tunnel {
                tunnel.close().await;
            }
            if let Some(entry) = self.sessions().get_mut(id) {
                entry.forget_reopened_look();
            }
        }
        let (host, profile, tokens) = self.server_parts(id, secrets)?;
        jupyter::stop_by_id(&host, server_id, &tokens, profile.environment.as_deref()).await?;
        Ok(())
    }

    /// Takes what session `id` shows (its notebook, its window, the servers it reopened) before
    /// it closes; [`Self::finish_close`] ends them.
    pub fn begin_close(&self, id: &str) -> Result<Closing, SessionsError> {
        self.with(id, |entry| Closing {
            notebook: entry.notebook.take(),
            window: entry.summary.window.take(),
            url: entry.summary.url.clone(),
            attached: std::mem::take(&mut entry.attached).into_values().collect(),
        })
    }

    /// Closes session `id` after [`Self::begin_close`]: stops its notebook (and the server),
    /// ends the forwards to what it reopened (those servers and SLURM jobs keep running), marks
    /// it closed, stops its tasks and closes its connection.
    pub async fn finish_close(&self, id: &str, closing: Closing) -> Result<(), SessionsError> {
        if let Some(handle) = closing.notebook {
            end_notebook(handle, true).await;
        }
        let opened = self
            .sessions()
            .get_mut(id)
            .map(|e| std::mem::take(&mut e.slurm_open))
            .unwrap_or_default();
        for o in opened.into_values() {
            o.forward.close().await;
        }
        for (tunnel, _) in closing.attached {
            if let Some(tunnel) = tunnel {
                tunnel.close().await;
            }
        }
        let host = self.with(id, |entry: &mut SessionEntry| {
            entry.summary.status = SessionStatus::Closed;
            // Aborting the GPU watch drops its receiver: core stops polling the host.
            for task in [entry.task.take(), entry.gpu_watch.take()]
                .into_iter()
                .flatten()
            {
                task.abort();
            }
            entry.host.clone()
        })?;
        host.close().await;
        Ok(())
    }
}

/// Server `s` as session `session_id` lists it, shown under `url` (if at all).
fn server_view(session_id: &str, url: Option<String>, s: JupyterServer) -> ServerView {
    ServerView {
        session_id: session_id.to_string(),
        endpoint: s.endpoint.to_string(),
        id: s.id,
        pid: s.pid,
        env: s.env.or(s.root_dir),
        gpu: s.gpu,
        started: s.started,
        managed: s.managed,
        url,
    }
}

/// The GPU a server runs on as a person knows it (`GPU 1`), from the `CUDA_VISIBLE_DEVICES` in
/// its record and `host`'s GPUs now; the recorded value itself when the GPUs cannot be read or
/// no longer list it; `None` for a server without a GPU.
pub async fn gpu_label(host: &HostSession, cuda_visible_devices: Option<&str>) -> Option<String> {
    let devices = cuda_visible_devices.filter(|d| !d.is_empty())?;
    let snapshot = host.gpus().await.ok();
    Some(
        snapshot
            .and_then(|s| s.label_of(devices))
            .unwrap_or_else(|| devices.to_string()),
    )
}
