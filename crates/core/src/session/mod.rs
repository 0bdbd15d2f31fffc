//! One notebook session, start to finish: connect → GPUs → environment → launch → tunnel →
//! ready, run as a task that reports typed progress events and is cancellable; then held through
//! network trouble until it is closed.
//!
//! What it owns: the order of the steps, what each step reports, the cleanup when a session
//! is cancelled (a server that was launched but never became ready is stopped; a ready one is
//! kept unless the spec says otherwise), and surviving the network once ready. A lost connection
//! (found by the profile's SSH keepalives, or by [`Session::reconnect_now`]) is reported as
//! [`SessionEvent::Reconnecting`] and tried again with backoff ([`ReconnectPolicy`]: 1, 2, 4 … up
//! to 30 s, for as long as the session lives) by the host session the session runs on
//! ([`crate::host`], the one reconnect loop), asking for a secret only when none is remembered
//! (the [`ConnectContext`]'s prompter and keychain do that). The local listeners stay bound
//! meanwhile ([`Link`]), so the notebook and the saved forwards come back on the same ports and an
//! open JupyterLab page reconnects its kernels by itself; remote (`-R`) forwards are asked for
//! again. A server that died (killed, out of memory, host rebooted) is told apart from a network
//! problem — its process is gone, or it stops answering while SSH works — and reported as
//! [`SessionEvent::ServerGone`]; [`Session::restart_server`] starts a new one with the same
//! launch spec behind the same local port. A connection that cannot come back without the human
//! (changed host key, refused credentials) ends as [`SessionEvent::Disconnected`].
//!
//! What it leaves out: how each step is done ([`crate::ssh`], [`crate::gpu`], [`crate::jupyter`],
//! [`crate::tunnel`]), rendering the events (the CLI and the app), and noticing that the computer
//! woke up or changed networks ([`crate::wake`]; the front end then calls
//! [`Session::reconnect_now`] or [`SessionControl::reconnect_now`]).

use std::{
    fmt,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

pub use crate::host::{ReconnectPolicy, SessionHost};
use crate::{
    error::{ErrorCode, Problem},
    gpu::{self, FreeRule, GpuChoice, GpuSelector},
    host::{HostSession, HostSpec, Status},
    jupyter::{
        self, Attached, EndpointChoice, Host, JupyterServer, LaunchSpec, Launched, TokenStore, http,
    },
    profile::Profile,
    secret::{SecretStore, Sensitive},
    ssh::Connection,
    tunnel::{ForwardSpec, Link, Listen, Tunnel},
};

mod live;
mod steps;

use self::{
    live::Live,
    steps::{cleanup, steps},
};

/// The steps of a session, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum Step {
    /// SSH connect and authenticate.
    Connect,
    /// Read the GPUs and pick one.
    Gpus,
    /// Find the Python environment.
    Environment,
    /// Start Jupyter on the host.
    Launch,
    /// Open the local forward.
    Tunnel,
    /// Wait for Jupyter to answer with the token.
    Ready,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Connect => "connect",
            Step::Gpus => "gpus",
            Step::Environment => "environment",
            Step::Launch => "launch",
            Step::Tunnel => "tunnel",
            Step::Ready => "ready",
        })
    }
}

/// Where a step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum StepState {
    /// It began.
    Started,
    /// It finished.
    Done,
    /// Not needed (e.g. no SSH on this computer).
    Skipped,
}

/// Progress of one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// The step.
    pub step: Step,
    /// Its state.
    pub state: StepState,
    /// What happens, in words.
    pub message: String,
    /// Share of the whole session done, when known.
    pub percent: Option<u8>,
}

/// The session is ready: the notebook can be opened.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ReadyInfo {
    /// `http://127.0.0.1:PORT/lab?token=…` (holds the token: show it, never log it).
    pub url: String,
    /// The local port of the forward.
    pub local_port: u16,
    /// `CUDA_VISIBLE_DEVICES` of the server (`None`: CPU only).
    pub gpu: Option<String>,
    /// The GPU in words (`GPU 1`), when one was chosen.
    pub gpu_label: Option<String>,
    /// The server's pid on the host.
    pub remote_pid: u32,
    /// The environment it runs from.
    pub env: String,
    /// Tunnelbook's id of the server (for `attach` / `down`).
    pub server_id: String,
    /// The folder the server serves on the host (absolute), when known: notebook paths in its
    /// URLs are relative to it ([`ReadyInfo::path_in_root`]).
    pub root_dir: Option<String>,
    /// Whether the session reuses a server that was already running ([`SessionSpec::reuse_for`])
    /// instead of starting one.
    pub reused: bool,
}

impl ReadyInfo {
    /// `remote` (an absolute path on the host) as a `/`-separated path under the server's root,
    /// what [`jupyter::notebook_url`] takes; `None` when it is not under the root or the root is
    /// unknown.
    pub fn path_in_root(&self, remote: &str) -> Option<String> {
        jupyter::path_under(self.root_dir.as_deref()?, remote)
    }
}

impl fmt::Debug for ReadyInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadyInfo")
            .field("local_port", &self.local_port)
            .field("gpu", &self.gpu)
            .field("remote_pid", &self.remote_pid)
            .field("env", &self.env)
            .field("server_id", &self.server_id)
            .field("root_dir", &self.root_dir)
            .field("reused", &self.reused)
            .finish_non_exhaustive()
    }
}

/// What a session reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum SessionEvent {
    /// A step began or ended.
    Progress(Progress),
    /// Everything is up; the session now holds the tunnel until closed.
    Ready(ReadyInfo),
    /// A step failed; the session has cleaned up and ended.
    Failed {
        /// The step.
        step: Step,
        /// The error, with its code (e.g. `noFreeGpu` at the GPU step).
        error: Problem,
    },
    /// The connection was lost (or a reconnect attempt failed); the next attempt comes in
    /// `next_try_in_secs`. The local ports stay bound meanwhile.
    Reconnecting {
        /// 1 for the first attempt after the loss, then 2, 3, …
        attempt: u32,
        /// Seconds until that attempt (0: now).
        // `rename_all` renames variants only; fields of struct variants are renamed one by one.
        #[serde(rename = "nextTryInSecs")]
        next_try_in_secs: u64,
        /// Why the connection was lost, or why the last attempt failed, with its code.
        reason: Problem,
    },
    /// The connection is back; the tunnels forward again on the same local ports.
    Reconnected {
        /// Attempts it took.
        attempts: u32,
        /// Seconds without a connection.
        #[serde(rename = "outageSecs")]
        outage_secs: u64,
    },
    /// The Jupyter server itself is gone (killed, out of memory, host rebooted) or stopped
    /// answering while SSH works: not a network problem. [`Session::restart_server`] starts a
    /// new one behind the same local port (a [`SessionEvent::Ready`] follows), or close.
    ServerGone {
        /// Why, typed: code `serverGone` (the fronts offer the restart on it) and what was seen,
        /// in words.
        reason: Problem,
    },
    /// The connection is lost for good: reconnecting is off, or needs the human (a changed host
    /// key, refused credentials). The server keeps running; the session waits to be closed.
    Disconnected {
        /// Why, with its code (e.g. `hostKeyChanged` when the host came back with another key).
        reason: Problem,
    },
}

/// What to start.
#[derive(Clone)]
pub struct SessionSpec {
    /// Where.
    pub host: SessionHost,
    /// The profile whose defaults apply (GPU, environment, notebook dir, pre-launch lines) and
    /// whose name keys the tokens in the keychain. For [`SessionHost::Local`], any profile
    /// (e.g. `Profile { name: "local", .. }`).
    pub profile: Profile,
    /// GPU choice; `None` takes the profile's, else `auto`.
    pub gpu: Option<GpuSelector>,
    /// Environment path or name; `None` takes the profile's, else the first with JupyterLab.
    pub env: Option<String>,
    /// Lmod / Environment Modules modules to load before the launch; empty takes the profile's
    /// [`Profile::modules`].
    pub modules: Vec<String>,
    /// Notebook directory; `None` takes the profile's, else home.
    pub notebook_dir: Option<String>,
    /// Local port for the forward; `None` picks a free one.
    pub local_port: Option<u16>,
    /// Unix socket or TCP on the host.
    pub endpoint: EndpointChoice,
    /// How long Jupyter may take to answer.
    pub ready_timeout: Duration,
    /// Whether a ready server is stopped when the session is cancelled or dropped.
    pub stop_server_on_cancel: bool,
    /// Where the token is kept.
    pub secrets: Option<Arc<dyn SecretStore>>,
    /// Health checks once ready, and, for a host session the session starts itself, how a lost
    /// connection is dialed again.
    pub reconnect: ReconnectPolicy,
    /// Whether the profile's enabled forwarding rules start with the notebook (and live as long
    /// as the session). The CLI's `up` wants that; the app runs saved rules from its Tunnels view
    /// and turns this off so no rule runs twice.
    pub saved_forwards: bool,
    /// The host session to run on (the app's, opened when the user picked the host): nothing is
    /// asked twice and the launch skips a handshake. `None`: the session starts its own host
    /// session on [`SessionSpec::host`] with [`SessionSpec::reconnect`] (and closes it at the
    /// end). Either way a lost connection is the host session's to dial again — the one
    /// reconnect loop — and this session follows it to the new connection (its tunnels forward
    /// over the host session's [`Link`]). The session never closes a host session it was given.
    /// Ignored for [`SessionHost::Local`].
    pub host_session: Option<HostSession>,
    /// When a GPU counts as free for `auto` (the user's settings).
    pub free_rule: FreeRule,
    /// Start or reuse: `Some(dir)` (an absolute folder on the host) reuses a JupyterLab that
    /// Tunnelbook started earlier and that still runs, when it runs on the GPU chosen here
    /// (same `CUDA_VISIBLE_DEVICES`, or none for both), from the same environment, and serves a
    /// root folder that holds `dir` (so a notebook in `dir` opens there with its kernel working
    /// in its own folder). With `auto`, a GPU such a server already runs on is preferred when
    /// no one else's processes use it. A server on that GPU whose root does not hold `dir` is
    /// not reused: the launch step says why and a new server starts (in
    /// [`SessionSpec::notebook_dir`]). A reused server is never stopped by this session
    /// (whatever [`SessionSpec::stop_server_on_cancel`] says): others may use it. `None`
    /// always starts a new server.
    pub reuse_for: Option<String>,
}

impl SessionSpec {
    /// A spec with the defaults: profile's choices, free local port, 60 s to get ready, the
    /// server kept when the session ends, reconnecting with the default backoff.
    pub fn new(host: SessionHost, profile: Profile) -> Self {
        Self {
            host,
            profile,
            gpu: None,
            env: None,
            modules: Vec::new(),
            notebook_dir: None,
            local_port: None,
            endpoint: EndpointChoice::Auto,
            ready_timeout: Duration::from_secs(60),
            stop_server_on_cancel: false,
            secrets: None,
            reconnect: ReconnectPolicy::default(),
            saved_forwards: true,
            host_session: None,
            free_rule: FreeRule::default(),
            reuse_for: None,
        }
    }
}

enum Command {
    Close {
        stop_server: bool,
        done: oneshot::Sender<()>,
    },
    ReconnectNow,
    RestartServer,
}

/// A running session. Dropping it cancels: a server not yet ready is stopped, a ready one is
/// kept unless [`SessionSpec::stop_server_on_cancel`].
pub struct Session {
    events: mpsc::Receiver<SessionEvent>,
    control: SessionControl,
}

/// A cheap, cloneable handle to steer a running session from elsewhere (a tray menu, an OS
/// wake-up hook) while another task reads its events. Its requests are answered by events.
#[derive(Clone)]
pub struct SessionControl {
    commands: mpsc::Sender<Command>,
    cancel: CancellationToken,
    current: Arc<Mutex<Option<Connection>>>,
}

impl SessionControl {
    /// Asks for a reconnect attempt now: while connected, the connection is checked (a
    /// keepalive must be answered within 5 s) and replaced when it does not answer; while
    /// reconnecting, the backoff wait is cut short. For resume-from-sleep and network changes.
    pub fn reconnect_now(&self) {
        // A full queue already holds requests that wake the session.
        let _ = self.commands.try_send(Command::ReconnectNow);
    }

    /// After [`SessionEvent::ServerGone`]: starts a new server with the same launch spec behind
    /// the same local port (events: `Progress` of the launch, then `Ready`, or `ServerGone` again
    /// saying why it failed). Ignored while the server runs.
    pub fn restart_server(&self) {
        let _ = self.commands.try_send(Command::RestartServer);
    }

    /// Cancels the session (see [`Session`]).
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// The session's connection now, while it is open: the one it started on, or the one it
    /// dialed after a reconnect. `None` for this computer and while there is none.
    pub fn connection(&self) -> Option<Connection> {
        self.current
            .lock()
            .ok()
            .and_then(|c| c.clone())
            .filter(|c| !c.is_closed())
    }
}

impl Session {
    /// Starts the session's task.
    pub fn start(spec: SessionSpec) -> Session {
        let (tx, events) = mpsc::channel(64);
        let (commands, rx) = mpsc::channel(16);
        let cancel = CancellationToken::new();
        let current = Arc::new(Mutex::new(None));
        tokio::spawn(run(spec, tx, rx, cancel.clone(), current.clone()));
        Session {
            events,
            control: SessionControl {
                commands,
                cancel,
                current,
            },
        }
    }

    /// The next event; `None` once the session has ended.
    pub async fn next_event(&mut self) -> Option<SessionEvent> {
        self.events.recv().await
    }

    /// A handle to steer the session from another task.
    pub fn control(&self) -> SessionControl {
        self.control.clone()
    }

    /// See [`SessionControl::reconnect_now`].
    pub fn reconnect_now(&self) {
        self.control.reconnect_now();
    }

    /// See [`SessionControl::restart_server`].
    pub fn restart_server(&self) {
        self.control.restart_server();
    }

    /// Cancels the session (see the type's documentation for what is cleaned up).
    pub fn cancel(&self) {
        self.control.cancel();
    }

    /// Ends a session: closes the tunnel and the connection, stopping the server first when
    /// `stop_server`. Waits until that is done.
    pub async fn close(self, stop_server: bool) {
        let (done, wait) = oneshot::channel();
        if self
            .control
            .commands
            .send(Command::Close { stop_server, done })
            .await
            .is_ok()
        {
            let _ = wait.await;
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.control.cancel.cancel();
    }
}

/// What the steps have built so far, kept outside the step future so cancellation can clean up.
#[derive(Default)]
struct Built {
    host: Option<Host>,
    launched: Option<(JupyterServer, Sensitive<String>)>,
    attached: Option<Attached>,
    /// The host's saved local and dynamic forwards, which live as long as the session.
    forwards: Vec<Tunnel>,
    /// The saved remote forwards, started again on each new connection.
    remote: Vec<(ForwardSpec, Option<Tunnel>)>,
    /// The connection the tunnels forward over: the host session's, swapped on reconnect.
    link: Option<Link>,
    /// The host session the session runs on (SSH only): the spec's, or its own.
    host_session: Option<HostSession>,
    /// The host session the session started for itself (no [`SessionSpec::host_session`]):
    /// closed with it.
    own_host: Option<HostSession>,
    /// What was launched, for a restart.
    launch: Option<LaunchSpec>,
    /// What was last reported ready.
    info: Option<ReadyInfo>,
    ready: bool,
    /// Whether [`Built::launched`] was already running (reused): never stopped then.
    reused: bool,
    /// The connection now, as [`SessionControl::connection`] reads it.
    current: Arc<Mutex<Option<Connection>>>,
}

impl Built {
    /// Uses `conn` from now on, and shows it to [`SessionControl::connection`].
    fn connected(&mut self, conn: &Connection) {
        self.host = Some(Host::Ssh(conn.clone()));
        if let Ok(mut current) = self.current.lock() {
            *current = Some(conn.clone());
        }
    }
}

struct Reporter(mpsc::Sender<SessionEvent>);

impl Reporter {
    async fn event(&self, event: SessionEvent) {
        let _ = self.0.send(event).await;
    }

    async fn step(&self, step: Step, state: StepState, message: impl Into<String>, percent: u8) {
        let _ = self
            .0
            .send(SessionEvent::Progress(Progress {
                step,
                state,
                message: message.into(),
                percent: Some(percent),
            }))
            .await;
    }
}

async fn run(
    spec: SessionSpec,
    tx: mpsc::Sender<SessionEvent>,
    mut commands: mpsc::Receiver<Command>,
    cancel: CancellationToken,
    current: Arc<Mutex<Option<Connection>>>,
) {
    let tokens = TokenStore {
        store: spec.secrets.clone(),
        profile: spec.profile.name.clone(),
    };
    let report = Reporter(tx.clone());
    let mut built = Built {
        current,
        ..Built::default()
    };
    let outcome = tokio::select! {
        r = steps(&spec, &report, &tokens, &mut built) => Some(r),
        () = cancel.cancelled() => None,
    };
    match outcome {
        Some(Ok(info)) => {
            built.ready = true;
            built.info = Some(info.clone());
            let _ = tx.send(SessionEvent::Ready(info)).await;
        }
        Some(Err((step, error))) => {
            cleanup(&mut built, true, &tokens).await;
            let _ = tx.send(SessionEvent::Failed { step, error }).await;
            return;
        }
        None => {
            cleanup(&mut built, true, &tokens).await;
            return;
        }
    }
    let mut live = Live {
        spec: &spec,
        report,
        tokens: &tokens,
        built: &mut built,
        commands: &mut commands,
        cancel: &cancel,
        gone: false,
        unanswered: 0,
    };
    let (stop_server, done) = live.hold().await;
    cleanup(&mut built, stop_server, &tokens).await;
    if let Some(done) = done {
        let _ = done.send(());
    }
}

#[cfg(test)]
mod tests;
