//! One notebook session, start to finish: connect → GPUs → environment → launch → tunnel →
//! ready, run as a task that reports typed progress events and is cancellable; then held through
//! network trouble until it is closed.
//!
//! What it owns: the order of the steps, what each step reports, the cleanup when a session
//! is cancelled (a server that was launched but never became ready is stopped; a ready one is
//! kept unless the spec says otherwise), and surviving the network once ready. A lost connection
//! (found by the profile's SSH keepalives, or by [`Session::reconnect_now`]) is reported as
//! [`SessionEvent::Reconnecting`] and tried again with backoff ([`ReconnectPolicy`]: 1, 2, 4 … up
//! to 30 s, for as long as the session lives), asking for a secret only when none is remembered
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
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::{
    gpu::{self, FreeRule, GpuChoice, GpuSelector},
    jupyter::{
        self, Attached, EndpointChoice, Host, JupyterServer, LaunchSpec, Launched, TokenStore, http,
    },
    profile::Profile,
    secret::{SecretStore, Sensitive},
    ssh::{ConnectContext, Connection, SshError},
    tunnel::{ForwardSpec, Link, Listen, Tunnel},
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
}

impl fmt::Debug for ReadyInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadyInfo")
            .field("local_port", &self.local_port)
            .field("gpu", &self.gpu)
            .field("remote_pid", &self.remote_pid)
            .field("env", &self.env)
            .field("server_id", &self.server_id)
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
        /// The error, in words.
        error: String,
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
        /// Why the connection was lost, or why the last attempt failed.
        reason: String,
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
        /// What was seen, in words.
        reason: String,
    },
    /// The connection is lost for good: reconnecting is off, or needs the human (a changed host
    /// key, refused credentials). The server keeps running; the session waits to be closed.
    Disconnected {
        /// Why.
        reason: String,
    },
}

/// How a ready session survives the network. The keepalive that finds a dead connection is the
/// profile's (`keepalive_interval` × (`keepalive_max` + 1): 30 s by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// Whether a lost connection is reconnected; off, the session reports
    /// [`SessionEvent::Disconnected`] and waits to be closed.
    pub enabled: bool,
    /// Wait before the first attempt; it doubles after each failed one.
    pub first_delay: Duration,
    /// The longest wait between attempts.
    pub max_delay: Duration,
    /// How long a local connection made during an outage waits for the connection to come back
    /// before it is closed.
    pub hold: Duration,
    /// How often the server's health (process alive, Jupyter answering) is checked.
    pub health_interval: Duration,
    /// Health checks in a row in which the process runs and SSH works but Jupyter does not
    /// answer before the server counts as gone.
    pub unanswered_max: u32,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            hold: Duration::from_secs(20),
            health_interval: Duration::from_secs(10),
            unanswered_max: 3,
        }
    }
}

impl ReconnectPolicy {
    /// The wait before attempt `attempt` (1-based): `first_delay` doubled per failed attempt,
    /// at most `max_delay`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(20);
        self.first_delay
            .saturating_mul(1 << doublings)
            .min(self.max_delay)
    }
}

/// Where the session runs.
#[derive(Clone)]
pub enum SessionHost {
    /// Over SSH: the hops (jump hosts first, the target last) and the connect collaborators.
    Ssh {
        /// Jump hosts first, the target last.
        chain: Vec<Profile>,
        /// Prompter, known hosts, options.
        context: ConnectContext,
    },
    /// This computer: no SSH, local GPUs (NVML), a local Jupyter process.
    Local,
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
    /// Reconnecting and health checks once ready.
    pub reconnect: ReconnectPolicy,
    /// Whether the profile's enabled forwarding rules start with the notebook (and live as long
    /// as the session). The CLI's `up` wants that; the app runs saved rules from its Tunnels view
    /// and turns this off so no rule runs twice.
    pub saved_forwards: bool,
    /// An open, authenticated connection to the host to start on instead of dialing (the app's
    /// connection, opened when the user picked the host): nothing is asked twice and the launch
    /// skips a handshake. Its owner keeps owning it: the session does not close it, and after a
    /// reconnect (over a connection the session dials from [`SessionHost::Ssh`]'s chain) the
    /// session leaves its last connection open when it ends, for the owner to take over from
    /// [`SessionControl::connection`] and close. Ignored when closed or for
    /// [`SessionHost::Local`].
    pub connection: Option<Connection>,
    /// When a GPU counts as free for `auto` (the user's settings).
    pub free_rule: FreeRule,
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
            connection: None,
            free_rule: FreeRule::default(),
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
    /// The connection the tunnels forward over, swapped on reconnect.
    link: Option<Link>,
    /// What was launched, for a restart.
    launch: Option<LaunchSpec>,
    /// What was last reported ready.
    info: Option<ReadyInfo>,
    ready: bool,
    /// Whether the connection in `host` is [`SessionSpec::connection`], which its owner closes.
    borrowed: bool,
    /// Whether the session started on [`SessionSpec::connection`]: its last connection is then
    /// left open at the end, for the owner.
    leave_open: bool,
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

/// What woke a waiting session.
enum Wake {
    Close {
        stop_server: bool,
        done: Option<oneshot::Sender<()>>,
    },
    ReconnectNow,
    RestartServer,
}

/// Where the connection of a ready session is.
enum Phase {
    /// Connected (or no SSH at all).
    Up,
    /// Lost; `attempt` is the next attempt, made after the backoff (at once when `now`).
    Down {
        attempt: u32,
        reason: String,
        since: Instant,
        now: bool,
    },
    /// Lost for good; waiting to be closed.
    Ended,
}

/// A ready session being held until it is closed.
struct Live<'a> {
    spec: &'a SessionSpec,
    report: Reporter,
    tokens: &'a TokenStore,
    built: &'a mut Built,
    commands: &'a mut mpsc::Receiver<Command>,
    cancel: &'a CancellationToken,
    /// The server is gone (reported); only a restart or closing helps.
    gone: bool,
    /// Health checks in a row in which Jupyter did not answer.
    unanswered: u32,
}

/// How long a check that the connection still answers may take.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

impl Live<'_> {
    /// The next command, or a close when cancelled or every handle is gone.
    async fn wake(&mut self) -> Wake {
        let on_cancel = Wake::Close {
            stop_server: self.spec.stop_server_on_cancel,
            done: None,
        };
        tokio::select! {
            cmd = self.commands.recv() => match cmd {
                Some(Command::Close { stop_server, done }) => Wake::Close { stop_server, done: Some(done) },
                Some(Command::ReconnectNow) => Wake::ReconnectNow,
                Some(Command::RestartServer) => Wake::RestartServer,
                None => on_cancel,
            },
            () = self.cancel.cancelled() => on_cancel,
        }
    }

    /// Holds the session until it is closed; returns whether to stop the server, and whom to
    /// tell when the cleanup is done.
    async fn hold(&mut self) -> (bool, Option<oneshot::Sender<()>>) {
        let policy = self.spec.reconnect.clone();
        let mut phase = Phase::Up;
        let mut health = tokio::time::interval_at(
            tokio::time::Instant::now() + policy.health_interval,
            policy.health_interval,
        );
        health.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            phase = match phase {
                Phase::Up => {
                    let conn = self.built.host.as_ref().and_then(Host::connection).cloned();
                    let closed = async {
                        match &conn {
                            Some(c) => c.closed().await,
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        wake = self.wake() => match wake {
                            Wake::Close { stop_server, done } => return (stop_server, done),
                            Wake::ReconnectNow => match &conn {
                                Some(c) if !c.ping(PING_TIMEOUT).await => {
                                    self.lose_connection();
                                    self.down(1, "the connection did not answer".into(), true).await
                                }
                                _ => Phase::Up,
                            },
                            Wake::RestartServer => {
                                self.restart().await;
                                Phase::Up
                            }
                        },
                        reason = closed => {
                            self.lose_connection();
                            self.down(1, reason, false).await
                        }
                        _ = health.tick(), if !self.gone => {
                            if self.check_health().await {
                                Phase::Up
                            } else {
                                self.lose_connection();
                                self.down(1, "the connection did not answer".into(), true).await
                            }
                        }
                    }
                }
                Phase::Down {
                    attempt,
                    reason,
                    since,
                    now,
                } => {
                    let delay = if now {
                        Duration::ZERO
                    } else {
                        policy.delay(attempt)
                    };
                    self.report
                        .event(SessionEvent::Reconnecting {
                            attempt,
                            next_try_in_secs: u64::try_from(delay.as_millis().div_ceil(1000))
                                .unwrap_or(u64::MAX),
                            reason,
                        })
                        .await;
                    let sleep = tokio::time::sleep(delay);
                    tokio::pin!(sleep);
                    loop {
                        tokio::select! {
                            () = &mut sleep => break,
                            wake = self.wake() => match wake {
                                Wake::Close { stop_server, done } => return (stop_server, done),
                                Wake::ReconnectNow => break,
                                Wake::RestartServer => {
                                    tracing::debug!("restart asked while reconnecting; ignored");
                                }
                            },
                        }
                    }
                    // The attempt may wait on the human (a password prompt): closing must not.
                    let spec = self.spec;
                    let attempt_fut = connect(spec);
                    tokio::pin!(attempt_fut);
                    let result = loop {
                        tokio::select! {
                            r = &mut attempt_fut => break r,
                            wake = self.wake() => match wake {
                                Wake::Close { stop_server, done } => return (stop_server, done),
                                Wake::ReconnectNow | Wake::RestartServer => {}
                            },
                        }
                    };
                    match result {
                        Ok(conn) => {
                            self.reconnected(conn, attempt, since).await;
                            health.reset();
                            Phase::Up
                        }
                        Err(e) if e.is_transient() => Phase::Down {
                            attempt: attempt.saturating_add(1),
                            reason: e.to_string(),
                            since,
                            now: false,
                        },
                        Err(e) => {
                            self.end(e.to_string()).await;
                            Phase::Ended
                        }
                    }
                }
                Phase::Ended => match self.wake().await {
                    Wake::Close { stop_server, done } => return (stop_server, done),
                    Wake::ReconnectNow | Wake::RestartServer => Phase::Ended,
                },
            };
        }
    }

    /// The phase after losing the connection: reconnecting, or the end when that is off.
    async fn down(&mut self, attempt: u32, reason: String, now: bool) -> Phase {
        if self.spec.reconnect.enabled {
            Phase::Down {
                attempt,
                reason,
                since: Instant::now(),
                now,
            }
        } else {
            self.end(reason).await;
            Phase::Ended
        }
    }

    /// Forgets the dead connection: the tunnels hold new local connections until the next one.
    fn lose_connection(&mut self) {
        if let Some(link) = &self.built.link {
            link.set(None);
        }
        if self.built.borrowed {
            return;
        }
        if let Some(conn) = self.built.host.as_ref().and_then(Host::connection).cloned() {
            tokio::spawn(async move { conn.close().await });
        }
    }

    /// The connection is lost for good: the local ports are released, the server keeps running.
    async fn end(&mut self, reason: String) {
        self.built.attached = None;
        self.built.forwards.clear();
        self.built.remote.clear();
        self.report
            .event(SessionEvent::Disconnected { reason })
            .await;
    }

    /// The connection is back: the tunnels use it, remote forwards are asked for again, and the
    /// server is checked (it may have died meanwhile).
    async fn reconnected(&mut self, conn: Connection, attempts: u32, since: Instant) {
        self.built.connected(&conn);
        self.built.borrowed = false;
        if let Some(link) = &self.built.link {
            link.set(Some(conn.clone()));
        }
        self.unanswered = 0;
        self.report
            .event(SessionEvent::Reconnected {
                attempts,
                outage_secs: since.elapsed().as_secs(),
            })
            .await;
        if let Some(link) = self.built.link.clone() {
            for (rule, tunnel) in &mut self.built.remote {
                *tunnel = None;
                // The server may still hold the port for the old, dying session for a moment.
                for attempt in 1..=3 {
                    match rule.start_over(&link).await {
                        Ok(t) => {
                            *tunnel = Some(t);
                            break;
                        }
                        Err(e) if attempt == 3 => {
                            tracing::warn!(error = %e, "a saved remote forward did not come back");
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
                    }
                }
            }
        }
        if !self.gone {
            let host = Host::Ssh(conn);
            if let Some(server) = self.server() {
                match jupyter::is_running(&host, &server).await {
                    Ok(false) => self.server_gone(gone_reason(&host, &server)).await,
                    Ok(true) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "cannot check the server after reconnecting")
                    }
                }
            }
        }
    }

    fn server(&self) -> Option<JupyterServer> {
        self.built.launched.as_ref().map(|(s, _)| s.clone())
    }

    async fn server_gone(&mut self, reason: String) {
        self.gone = true;
        self.report.event(SessionEvent::ServerGone { reason }).await;
    }

    /// Is the server alive and answering? Its process gone, or `GET /api` unanswered
    /// `unanswered_max` checks in a row while SSH works, is reported as
    /// [`SessionEvent::ServerGone`]. Returns false when the connection itself stopped answering
    /// (the host ran no check and answered no keepalive). Each step is bounded by
    /// [`PING_TIMEOUT`], so a request such as [`Command::ReconnectNow`] waits little.
    async fn check_health(&mut self) -> bool {
        let (Some(host), Some(server)) = (self.built.host.clone(), self.server()) else {
            return true;
        };
        match tokio::time::timeout(PING_TIMEOUT, jupyter::is_running(&host, &server)).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                self.server_gone(gone_reason(&host, &server)).await;
                return true;
            }
            Ok(Err(_)) => return true,
            Err(_) => {
                return match host.connection() {
                    Some(conn) => conn.ping(PING_TIMEOUT).await,
                    None => true,
                };
            }
        }
        let Some(addr) = self.built.attached.as_ref().map(|a| a.local_addr) else {
            return true;
        };
        let api = format!("{}api", server.base_url);
        let answer = tokio::time::timeout(PING_TIMEOUT, http::request(addr, "GET", &api, None));
        match answer.await {
            Ok(Ok(r)) if r.status == 200 => self.unanswered = 0,
            _ => {
                self.unanswered = self.unanswered.saturating_add(1);
                if self.unanswered >= self.spec.reconnect.unanswered_max.max(1) {
                    self.server_gone(format!(
                        "the Jupyter server (pid {}) runs on {} but has not answered {} checks in a row",
                        server.pid,
                        host.name(),
                        self.unanswered
                    ))
                    .await;
                }
            }
        }
        true
    }

    /// Starts a new server with the same launch spec behind the same local port.
    async fn restart(&mut self) {
        if !self.gone {
            tracing::debug!("restart asked while the server runs; ignored");
            return;
        }
        let (Some(host), Some(launch)) = (self.built.host.clone(), self.built.launch.clone())
        else {
            return;
        };
        self.report
            .step(
                Step::Launch,
                StepState::Started,
                "starting JupyterLab again",
                45,
            )
            .await;
        // The old one may still hang around (not answering): stop it by signals (asking it over
        // HTTP would only wait for a timeout) and remove its record.
        if let Some((old, _)) = self.built.launched.take()
            && let Err(e) = jupyter::stop(&host, &old, None, self.tokens).await
        {
            tracing::debug!(error = %e, server = %old.id, "cannot clean up the gone server");
        }
        let Launched { server, token } = match jupyter::launch(&host, &launch).await {
            Ok(l) => l,
            Err(e) => {
                self.server_gone(format!("starting it again failed: {e}"))
                    .await;
                return;
            }
        };
        self.tokens.remember(&server.id, &token);
        self.built.launched = Some((server.clone(), Sensitive::new(token.expose().clone())));
        self.report
            .step(
                Step::Launch,
                StepState::Done,
                format!("server {} started (pid {})", server.id, server.pid),
                60,
            )
            .await;
        let local_addr = match self.built.attached.as_ref() {
            Some(Attached {
                tunnel: Some(tunnel),
                local_addr,
                ..
            }) => {
                tunnel.retarget(server.endpoint.clone());
                *local_addr
            }
            // This computer: the browser goes to the server's own port.
            _ => match jupyter::attach(&host, &server, &token, Listen::loopback_any()).await {
                Ok(a) => {
                    let addr = a.local_addr;
                    self.built.attached = Some(a);
                    addr
                }
                Err(e) => {
                    self.server_gone(format!("starting it again failed: {e}"))
                        .await;
                    return;
                }
            },
        };
        self.report
            .step(
                Step::Ready,
                StepState::Started,
                "waiting for JupyterLab to answer",
                70,
            )
            .await;
        let version =
            match jupyter::wait_ready(&host, &server, local_addr, &token, self.spec.ready_timeout)
                .await
            {
                Ok(v) => v,
                Err(e) => {
                    self.server_gone(format!("starting it again failed: {e}"))
                        .await;
                    return;
                }
            };
        self.report
            .step(
                Step::Ready,
                StepState::Done,
                format!("Jupyter Server {version} is ready"),
                100,
            )
            .await;
        self.gone = false;
        self.unanswered = 0;
        let mut info = self.built.info.clone().unwrap_or_else(|| ReadyInfo {
            url: String::new(),
            local_port: 0,
            gpu: None,
            gpu_label: None,
            remote_pid: 0,
            env: String::new(),
            server_id: String::new(),
        });
        info.url = server.url(local_addr.port(), &token);
        info.local_port = local_addr.port();
        info.gpu = server.gpu.clone();
        info.remote_pid = server.pid;
        info.server_id = server.id.clone();
        self.built.info = Some(info.clone());
        self.report.event(SessionEvent::Ready(info)).await;
    }
}

/// One reconnect attempt.
async fn connect(spec: &SessionSpec) -> Result<Connection, SshError> {
    match &spec.host {
        SessionHost::Ssh { chain, context } => Connection::open(chain, context).await,
        SessionHost::Local => Err(SshError::Protocol("this computer has no connection".into())),
    }
}

fn gone_reason(host: &Host, server: &JupyterServer) -> String {
    format!(
        "the Jupyter server (pid {}) is no longer running on {}{}",
        server.pid,
        host.name(),
        server
            .log
            .as_deref()
            .map(|l| format!("; its log: {l}"))
            .unwrap_or_default()
    )
}

/// Closes the tunnel, stops the server when it is not ready yet (or `stop_ready`), closes the
/// connection.
async fn cleanup(built: &mut Built, stop_ready: bool, tokens: &TokenStore) {
    for forward in built.forwards.drain(..) {
        forward.close().await;
    }
    for (_, forward) in built.remote.drain(..) {
        if let Some(f) = forward {
            f.close().await;
        }
    }
    if let Some(attached) = built.attached.take()
        && let Some(t) = attached.tunnel
    {
        t.close().await;
    }
    if let (Some(host), Some((server, token))) = (&built.host, built.launched.take())
        && (!built.ready || stop_ready)
        && let Err(e) = jupyter::stop(host, &server, Some(&token), tokens).await
    {
        tracing::warn!(error = %e, server = %server.id, "cannot stop the server while cleaning up");
    }
    if let Some(conn) = built.host.as_ref().and_then(Host::connection)
        && !built.leave_open
    {
        conn.close().await;
    }
}

type StepResult<T> = Result<T, (Step, String)>;

fn fail<E: fmt::Display>(step: Step) -> impl FnOnce(E) -> (Step, String) {
    move |e| (step, e.to_string())
}

async fn steps(
    spec: &SessionSpec,
    report: &Reporter,
    tokens: &TokenStore,
    built: &mut Built,
) -> StepResult<ReadyInfo> {
    let profile = &spec.profile;
    // Connect.
    let host = match &spec.host {
        SessionHost::Ssh { chain, context } => {
            let target = chain.last().map(|p| p.host.clone()).unwrap_or_default();
            report
                .step(
                    Step::Connect,
                    StepState::Started,
                    format!("connecting to {target}"),
                    0,
                )
                .await;
            let conn = match spec.connection.as_ref().filter(|c| !c.is_closed()) {
                Some(open) => {
                    built.borrowed = true;
                    built.leave_open = true;
                    open.clone()
                }
                None => Connection::open(chain, context)
                    .await
                    .map_err(fail(Step::Connect))?,
            };
            built.link = Some(Link::new(Some(conn.clone()), spec.reconnect.hold));
            built.connected(&conn);
            let how = if built.borrowed {
                "using the open connection to"
            } else {
                "connected to"
            };
            report
                .step(
                    Step::Connect,
                    StepState::Done,
                    format!("{how} {}", conn.destination()),
                    15,
                )
                .await;
            Host::Ssh(conn)
        }
        SessionHost::Local => {
            report
                .step(
                    Step::Connect,
                    StepState::Skipped,
                    "this computer: no SSH",
                    15,
                )
                .await;
            Host::Local
        }
    };
    built.host = Some(host.clone());

    // The GPUs, the environment and the server's forwarding policy (which the launch needs to
    // choose a Unix socket) do not depend on each other: asked for at the same time.
    // Both steps finish before a failure is reported, the GPUs' first: the same error each time.
    let forwarding = async {
        if let (Host::Ssh(conn), EndpointChoice::Auto) = (&host, spec.endpoint) {
            conn.forwarding().await;
        }
    };
    let (choice, env_and_modules, ()) = tokio::join!(
        gpu_step(spec, report, &host),
        environment_step(spec, report, &host),
        forwarding
    );
    let choice = choice?;
    let (env, modules) = env_and_modules?;

    // Launch.
    report
        .step(Step::Launch, StepState::Started, "starting JupyterLab", 45)
        .await;
    let launch = LaunchSpec {
        env: env.clone(),
        cuda_visible_devices: choice.as_ref().map(|c| c.cuda_visible_devices.clone()),
        notebook_dir: spec.notebook_dir.clone().or(profile.notebook_dir.clone()),
        modules,
        pre_launch: profile.pre_launch.clone(),
        endpoint: spec.endpoint,
    };
    built.launch = Some(launch.clone());
    let Launched { server, token } = jupyter::launch(&host, &launch)
        .await
        .map_err(fail(Step::Launch))?;
    tokens.remember(&server.id, &token);
    built.launched = Some((server.clone(), Sensitive::new(token.expose().clone())));
    report
        .step(
            Step::Launch,
            StepState::Done,
            format!("server {} started (pid {})", server.id, server.pid),
            60,
        )
        .await;

    // Tunnel.
    report
        .step(
            Step::Tunnel,
            StepState::Started,
            format!("forwarding to {}", server.endpoint),
            60,
        )
        .await;
    let listen = match spec.local_port {
        Some(port) => Listen::loopback(port),
        None => Listen::loopback_any(),
    };
    let attached = jupyter::attach_over(&host, built.link.as_ref(), &server, &token, listen)
        .await
        .map_err(fail(Step::Tunnel))?;
    let local_addr = attached.local_addr;
    let url = attached.url.clone();
    built.attached = Some(attached);
    // The host's saved forwarding rules start with the connection. One that cannot start (its
    // port taken, say) is reported and the notebook goes on: it is not what the user came for.
    let mut saved = Vec::new();
    if let Some(link) = built.link.clone().filter(|_| spec.saved_forwards) {
        for rule in profile.forwards.iter().filter(|r| r.enabled) {
            match rule.spec.start_over(&link).await {
                Ok(tunnel) => {
                    saved.push(tunnel.description().to_string());
                    if rule.spec.is_remote() {
                        built.remote.push((rule.spec.clone(), Some(tunnel)));
                    } else {
                        built.forwards.push(tunnel);
                    }
                }
                Err(e) => {
                    saved.push(format!("failed: {e}"));
                    // A remote forward is asked for again on the next connection.
                    if rule.spec.is_remote() {
                        built.remote.push((rule.spec.clone(), None));
                    }
                }
            }
        }
    }
    let saved = if saved.is_empty() {
        String::new()
    } else {
        format!("; saved forwards: {}", saved.join(", "))
    };
    report
        .step(
            Step::Tunnel,
            StepState::Done,
            format!("listening on {local_addr}{saved}"),
            70,
        )
        .await;

    // Ready.
    report
        .step(
            Step::Ready,
            StepState::Started,
            "waiting for JupyterLab to answer",
            70,
        )
        .await;
    let version = jupyter::wait_ready(&host, &server, local_addr, &token, spec.ready_timeout)
        .await
        .map_err(fail(Step::Ready))?;
    report
        .step(
            Step::Ready,
            StepState::Done,
            format!("Jupyter Server {version} is ready"),
            100,
        )
        .await;
    Ok(ReadyInfo {
        url,
        local_port: local_addr.port(),
        gpu: server.gpu.clone(),
        gpu_label: choice.map(|c| c.label()),
        remote_pid: server.pid,
        env: env.label(),
        server_id: server.id,
    })
}

/// The GPUs step: reads the host's GPUs and picks one (`None`: no GPU asked for or none found).
async fn gpu_step(
    spec: &SessionSpec,
    report: &Reporter,
    host: &Host,
) -> StepResult<Option<GpuChoice>> {
    let profile = &spec.profile;
    let selector = match &spec.gpu {
        Some(s) => s.clone(),
        None => profile
            .gpu
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(fail(Step::Gpus))?
            .unwrap_or(GpuSelector::Auto),
    };
    let choice: Option<GpuChoice> = if selector == GpuSelector::None {
        report
            .step(Step::Gpus, StepState::Skipped, "no GPU asked for", 30)
            .await;
        None
    } else {
        report
            .step(Step::Gpus, StepState::Started, "reading GPUs", 15)
            .await;
        let snapshot = match host {
            Host::Ssh(conn) => gpu::snapshot(conn).await,
            Host::Local => tokio::task::spawn_blocking(gpu::local)
                .await
                .map_err(fail(Step::Gpus))?,
        }
        .map_err(fail(Step::Gpus))?;
        let choice = snapshot
            .select_with(&selector, &spec.free_rule)
            .map_err(fail(Step::Gpus))?;
        let message = match (&choice, &snapshot.no_gpu_reason) {
            (Some(c), _) => format!("{} ({})", c.label(), c.cuda_visible_devices),
            (None, Some(reason)) => format!("{reason}; running without a GPU"),
            (None, None) => "running without a GPU".to_string(),
        };
        report.step(Step::Gpus, StepState::Done, message, 30).await;
        choice
    };
    Ok(choice)
}

/// The environment step: finds the Python environment to launch from and the modules to load.
async fn environment_step(
    spec: &SessionSpec,
    report: &Reporter,
    host: &Host,
) -> StepResult<(jupyter::Environment, Vec<String>)> {
    let profile = &spec.profile;
    report
        .step(
            Step::Environment,
            StepState::Started,
            "looking for Python environments",
            30,
        )
        .await;
    let wanted = spec.env.as_deref().or(profile.environment.as_deref());
    let mut modules = if spec.modules.is_empty() {
        profile.modules.clone()
    } else {
        spec.modules.clone()
    };
    let envs = jupyter::launch_candidates(host, wanted, &modules)
        .await
        .map_err(fail(Step::Environment))?;
    let env = jupyter::choose(&host.name(), &envs, wanted)
        .map_err(fail(Step::Environment))?
        .clone();
    // An environment a module provides runs with that module loaded.
    if env.kind == jupyter::EnvKind::Module
        && env.name != modules.join(" ")
        && !modules.contains(&env.name)
    {
        modules.push(env.name.clone());
    }
    report
        .step(
            Step::Environment,
            StepState::Done,
            format!(
                "{} (Python {})",
                env.label(),
                env.python_version.as_deref().unwrap_or("?")
            ),
            45,
        )
        .await;

    Ok((env, modules))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = ReconnectPolicy::default();
        let secs: Vec<u64> = (1..=8).map(|a| p.delay(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(p.delay(u32::MAX), Duration::from_secs(30));
    }

    #[cfg(feature = "ts")]
    #[test]
    fn typescript_twin_matches_the_wire_names() {
        use ts_rs::TS;
        let decl = SessionEvent::decl(&ts_rs::Config::new());
        for name in [
            "\"type\": \"reconnecting\"",
            "nextTryInSecs",
            "\"type\": \"reconnected\"",
            "outageSecs",
            "\"type\": \"serverGone\"",
            "\"type\": \"disconnected\"",
        ] {
            assert!(decl.contains(name), "{name} not in {decl}");
        }
    }

    #[test]
    fn new_events_serialize_camel_case_with_a_type_tag() {
        let ev = SessionEvent::Reconnecting {
            attempt: 2,
            next_try_in_secs: 4,
            reason: "x".into(),
        };
        assert_eq!(
            serde_json::to_value(&ev).unwrap(),
            serde_json::json!({"type": "reconnecting", "attempt": 2, "nextTryInSecs": 4, "reason": "x"})
        );
        let ev = SessionEvent::Reconnected {
            attempts: 3,
            outage_secs: 7,
        };
        assert_eq!(
            serde_json::to_value(&ev).unwrap(),
            serde_json::json!({"type": "reconnected", "attempts": 3, "outageSecs": 7})
        );
        let ev = SessionEvent::ServerGone { reason: "y".into() };
        assert_eq!(
            serde_json::to_value(&ev).unwrap(),
            serde_json::json!({"type": "serverGone", "reason": "y"})
        );
    }
}
