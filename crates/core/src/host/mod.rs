//! One host's session: owns its SSH connection from the first dial through every reconnect (an
//! actor, like warpgate's `RemoteClient`), reports what happens as typed [`HostEvent`]s, and
//! serves what runs over the connection — GPU snapshots, the [`jupyter::Host`] that environments,
//! launches and servers use, and forwards that survive a reconnect.
//!
//! A lost connection (the profile's keepalives, or [`HostSession::reconnect_now`] finding it
//! silent) is dialed again with backoff ([`ReconnectPolicy`]); local and dynamic forwards keep
//! their listeners meanwhile (they forward over the session's [`Link`]) and remote forwards are
//! asked for again on the new connection. A connection that cannot come back without the human
//! (a changed host key, refused credentials) ends the session with that error.
//!
//! What it leaves out: the steps of a notebook launch ([`crate::session`], which runs on a host
//! session through [`crate::session::SessionSpec::host_session`]), and rendering the events (the
//! app forwards them one to one; the CLI prints them).

use std::{
    future::Future,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde::Serialize;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::{
    error::{ErrorCode, Problem},
    gpu::{self, FreeRule, GpuError, GpuSnapshot},
    jupyter,
    profile::{Profile, ProfileStore, scheduler::Scheduler},
    slurm,
    ssh::{ConnectContext, Connection, ConnectionState, Forwarding, SshError},
    tunnel::{ForwardSpec, Link, Tunnel, TunnelError, TunnelStats},
};

mod actor;
// A session on a SLURM login node: is its host one, its row as its job notebook changes.
mod cluster;
mod forwards;
mod summary;

use self::actor::Actor;
pub use self::actor::gpu_summary;
#[cfg(test)]
use self::actor::{failed_step, reconnecting};
pub use self::forwards::{ForwardCounters, ForwardView, Forwards, TunnelsView};
pub use self::summary::{SessionStatus, SessionSummary, oldest_first, session_number};

/// The steps a host session and a notebook launch on it report, in the order the UI lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "SessionStep"))]
#[serde(rename_all = "camelCase")]
pub enum Step {
    /// TCP and the SSH handshake (also: the connection lost and dialed again).
    Connect,
    /// The server's host key checked against known_hosts.
    HostKey,
    /// Logging in.
    Authenticate,
    /// Reading the GPUs.
    ReadGpus,
    /// Finding the Python environment of a launch.
    FindEnvironments,
    /// Starting Jupyter.
    StartJupyter,
    /// Opening (or, after a reconnect, holding) the notebook's local forward.
    OpenTunnel,
    /// Jupyter answers through the forward.
    Ready,
}

/// Where a step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum StepState {
    /// It runs (or runs again: reconnecting).
    Running,
    /// It finished.
    Done,
    /// Not needed (e.g. no SSH on this computer).
    Skipped,
    /// It failed; the event's `error` says why, with a code.
    Failed,
}

/// What a host session reports: one step changing state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostEvent {
    /// The step.
    pub step: Step,
    /// Its new state.
    pub state: StepState,
    /// One line for a details log.
    pub message: String,
    /// Why it failed (`state` is `failed`), or why it runs again (a lost connection being
    /// dialed again: the cause, with its code).
    pub error: Option<Problem>,
}

impl HostEvent {
    /// An event without an error.
    pub fn new(step: Step, state: StepState, message: impl Into<String>) -> Self {
        Self {
            step,
            state,
            message: message.into(),
            error: None,
        }
    }

    /// A failed step.
    pub fn failed(step: Step, error: Problem) -> Self {
        Self {
            step,
            state: StepState::Failed,
            message: error.message.clone(),
            error: Some(error),
        }
    }
}

/// How a ready session survives the network. The keepalive that finds a dead connection is the
/// profile's (`keepalive_interval` × (`keepalive_max` + 1): 30 s by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// Whether a lost connection is reconnected; off, the session reports
    /// [`crate::session::SessionEvent::Disconnected`] and waits to be closed.
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

impl SessionHost {
    /// Over SSH through `chain` (jump hosts first, the target last) with the collaborators
    /// `context` makes; this computer when there is no chain.
    pub fn of(chain: Option<Vec<Profile>>, context: impl FnOnce() -> ConnectContext) -> Self {
        match chain {
            Some(chain) => SessionHost::Ssh {
                chain,
                context: context(),
            },
            None => SessionHost::Local,
        }
    }
}

/// What to start a host session on.
#[derive(Clone)]
pub struct HostSpec {
    /// Where: the hops to dial and how, or this computer.
    pub host: SessionHost,
    /// How a lost connection is dialed again.
    pub reconnect: ReconnectPolicy,
    /// When a GPU counts as free, for the summary of the first GPU read.
    pub free_rule: FreeRule,
    /// Where a batch scheduler detected on connect is saved (the target profile's
    /// `scheduler: slurm`, only when the user has not set one); `None`: kept in the session only.
    pub profiles: Option<ProfileStore>,
    /// Whether the first connection is followed by a GPU read (its step events) and each one by
    /// a probe for a batch scheduler: what a host view shows. A notebook session that starts its
    /// own host session ([`crate::session::SessionSpec::host_session`] `None`) reads the GPUs in
    /// its own step and leaves both out.
    pub probe: bool,
}

/// Where the connection is; a notebook session on the host session follows it
/// ([`HostSession::status`]).
#[derive(Clone)]
pub(crate) enum Status {
    /// The first dial runs.
    Dialing,
    /// Connected (`None`: this computer, no SSH).
    Up(Option<Connection>),
    /// Lost; being dialed again: the attempt coming next.
    Down(Retry),
    /// Lost for good (or never opened): the error says why.
    Ended(Problem),
}

/// The next attempt to dial a lost connection again.
#[derive(Clone)]
pub(crate) struct Retry {
    /// 1 for the first attempt after the loss, then 2, 3, …
    pub(crate) attempt: u32,
    /// The wait before it (zero: now).
    pub(crate) delay: Duration,
    /// Why the connection was lost, or why the last attempt failed.
    pub(crate) cause: Problem,
}

enum Command {
    ReconnectNow,
    Close,
}

/// A forward started on a host session: its local listener (local and dynamic forwards) outlives
/// a lost connection; a remote forward is asked for again on the next one. Cheap to clone.
#[derive(Clone)]
pub struct Forward {
    spec: ForwardSpec,
    tunnel: Arc<Mutex<Option<Tunnel>>>,
    description: String,
    local_addr: Option<std::net::SocketAddr>,
}

impl Forward {
    /// What it forwards, e.g. `127.0.0.1:43210 -> 127.0.0.1:6006`.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The local address listened on (local and dynamic forwards).
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.local_addr
    }

    /// The rule it runs.
    pub fn spec(&self) -> &ForwardSpec {
        &self.spec
    }

    /// Live counters (of the current remote listener, for a remote forward); zero while a remote
    /// forward waits for the connection to come back.
    pub fn stats(&self) -> TunnelStats {
        self.tunnel
            .lock()
            .ok()
            .and_then(|t| t.as_ref().map(Tunnel::stats))
            .unwrap_or_default()
    }

    /// Stops it (its listener closes; it is not started again after a reconnect).
    pub async fn close(&self) {
        let tunnel = self.tunnel.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = tunnel {
            t.close().await;
        }
    }

    fn is_closed(&self) -> bool {
        self.tunnel.lock().map(|t| t.is_none()).unwrap_or(true)
    }
}

struct Shared {
    host: SessionHost,
    link: Link,
    status: watch::Sender<Status>,
    cancel: CancellationToken,
    /// The forwards started on the session: closed with it; the remote ones are asked for
    /// again after a reconnect.
    forwards: Mutex<Vec<Forward>>,
    /// The host's batch scheduler: the profile's when set, else detected on connect (`None`
    /// until known).
    scheduler: watch::Sender<Option<Scheduler>>,
}

/// A running host session; clones share it. It ends with [`HostSession::close`] (or when every
/// clone is dropped), closing its connection and forwards.
#[derive(Clone)]
pub struct HostSession {
    shared: Arc<Shared>,
    // Only handles hold senders: when the last handle is dropped the actor sees the channel
    // closed and ends.
    commands: mpsc::UnboundedSender<Command>,
}

/// How long a check that the connection still answers may take.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

impl HostSession {
    /// Starts the session's task: it dials at once (for this computer, reports the connection
    /// steps as skipped), then reads the GPUs once. Events arrive on the receiver, which ends
    /// when the session does.
    pub fn start(spec: HostSpec) -> (HostSession, mpsc::Receiver<HostEvent>) {
        let (tx, rx) = mpsc::channel(64);
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            host: spec.host.clone(),
            link: Link::new(None, spec.reconnect.hold),
            status: watch::Sender::new(Status::Dialing),
            cancel: CancellationToken::new(),
            forwards: Mutex::new(Vec::new()),
            scheduler: watch::Sender::new(match &spec.host {
                SessionHost::Local => Some(Scheduler::None),
                // The user's choice stands; detection only fills in a host never set.
                SessionHost::Ssh { chain, .. } => chain.last().and_then(|p| p.scheduler),
            }),
        });
        let actor = Actor {
            spec,
            shared: shared.clone(),
            events: tx,
            commands: commands_rx,
        };
        tokio::spawn(actor.run());
        (HostSession { shared, commands }, rx)
    }

    /// Whether the session has ended: closed, or lost for good (see [`HostSession::ended`]).
    pub fn is_ended(&self) -> bool {
        matches!(&*self.shared.status.borrow(), Status::Ended(_))
    }

    /// Whether the connection was lost and is being dialed again now (not while the first dial
    /// runs, and not once the session ended).
    pub fn is_reconnecting(&self) -> bool {
        matches!(&*self.shared.status.borrow(), Status::Down(_))
    }

    /// Whether the connection is open now (for this computer: always, there is none to open).
    /// `false` while the first dial runs, while reconnecting and once ended.
    pub fn is_up(&self) -> bool {
        matches!(&*self.shared.status.borrow(), Status::Up(_))
    }

    /// Why the session ended, once it has.
    pub fn ended(&self) -> Option<Problem> {
        match &*self.shared.status.borrow() {
            Status::Ended(p) => Some(p.clone()),
            _ => None,
        }
    }

    /// Where the connection is now, and every change from here on (the changes in between two
    /// reads may be skipped).
    pub(crate) fn status(&self) -> watch::Receiver<Status> {
        self.shared.status.subscribe()
    }

    /// Whether this is the computer Tunnelbook runs on (no SSH).
    pub fn is_local(&self) -> bool {
        matches!(self.shared.host, SessionHost::Local)
    }

    /// The open connection now; `None` for this computer, while dialing, and while lost.
    pub fn connection(&self) -> Option<Connection> {
        match &*self.shared.status.borrow() {
            Status::Up(Some(c)) if !c.is_closed() => Some(c.clone()),
            _ => None,
        }
    }

    /// The server's forwarding policy for the open connection, once probed (the session probes
    /// it on every connect; known within about 2 s). `None` for this computer, while dialing or
    /// lost, and while the probe runs.
    pub fn forwarding(&self) -> Option<Forwarding> {
        self.connection()?.forwarding_known()
    }

    /// The server's forwarding policy for the open connection, waiting for the probe the
    /// session started on connect (about 2 s at most). `None` for this computer and while the
    /// connection is not open.
    pub async fn forwarding_policy(&self) -> Option<Forwarding> {
        Some(self.connection()?.forwarding().await)
    }

    /// The host's batch scheduler as known now: the profile's `scheduler` when the user set
    /// one, else what the session detected when it connected (`sbatch` on the login PATH and
    /// `scontrol ping`); `None` while the probe runs or before the first connection.
    pub fn scheduler(&self) -> Option<Scheduler> {
        *self.shared.scheduler.borrow()
    }

    /// [`HostSession::scheduler`], waiting for the probe the session started on connect (one
    /// round trip; at most `timeout`). `None` when still unknown then (not connected).
    pub async fn detected_scheduler(&self, timeout: Duration) -> Option<Scheduler> {
        let mut rx = self.shared.scheduler.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(Option::is_some))
            .await
            .ok()
            .and_then(|r| r.ok().and_then(|s| *s))
    }

    /// The link lasting tunnels of this host forward over (swapped on reconnect).
    pub fn link(&self) -> Link {
        self.shared.link.clone()
    }

    /// Where scripts (environments, launches, servers) run now: this computer, or over the open
    /// connection. Errors: the connection is not open (code `unreachable`, or the error that
    /// ended the session).
    pub fn jupyter_host(&self) -> Result<jupyter::Host, Problem> {
        jupyter_host(&self.shared)
    }

    /// One snapshot of the host's GPUs (NVML on this computer).
    pub async fn gpus(&self) -> Result<GpuSnapshot, GpuError> {
        gpus(&self.shared).await
    }

    /// Starts forward `spec` over the session: it keeps working across reconnects (see
    /// [`Forward`]). Errors: the port is taken, the server refused it, or the host is not
    /// connected now.
    pub async fn forward(&self, spec: &ForwardSpec) -> Result<Forward, TunnelError> {
        if self.connection().is_none() {
            // Reads "the connection to the host (not connected right now) is closed".
            return Err(TunnelError::Ssh(SshError::Closed(
                "the host (not connected right now)".into(),
            )));
        }
        let tunnel = spec.start_over(&self.shared.link).await?;
        let forward = Forward {
            spec: spec.clone(),
            description: tunnel.description().to_string(),
            local_addr: tunnel.local_addr(),
            tunnel: Arc::new(Mutex::new(Some(tunnel))),
        };
        if let Ok(mut forwards) = self.shared.forwards.lock() {
            forwards.retain(|f| !f.is_closed());
            forwards.push(forward.clone());
        }
        Ok(forward)
    }

    /// The next open connection that is not `old`: at once when there is one, else after the
    /// session dials again. Errors: the session ended (the error that ended it).
    pub async fn next_connection(&self, old: Option<&Connection>) -> Result<Connection, Problem> {
        let mut rx = self.shared.status.subscribe();
        loop {
            match &*rx.borrow_and_update() {
                Status::Up(Some(c)) if !c.is_closed() && !old.is_some_and(|o| o.is_same(c)) => {
                    return Ok(c.clone());
                }
                Status::Up(None) => {
                    return Err(Problem::new(
                        ErrorCode::Unsupported,
                        "this computer has no connection",
                    ));
                }
                Status::Ended(p) => return Err(p.clone()),
                _ => {}
            }
            if rx.changed().await.is_err() {
                return Err(closed());
            }
        }
    }

    /// Checks the connection now (a keepalive must be answered within 5 s) and dials again at
    /// once when it does not answer; while reconnecting, cuts the backoff wait short. For
    /// resume-from-sleep, network changes, and a notebook that stopped hearing from its host.
    pub fn reconnect_now(&self) {
        let _ = self.commands.send(Command::ReconnectNow);
    }

    /// Ends the session: closes its forwards (their listeners too) and its connection. Servers
    /// keep running.
    pub async fn close(&self) {
        let _ = self.commands.send(Command::Close);
        self.shared.cancel.cancel();
        let forwards: Vec<Forward> = self
            .shared
            .forwards
            .lock()
            .map(|mut r| r.drain(..).collect())
            .unwrap_or_default();
        for f in forwards {
            f.close().await;
        }
        let mut rx = self.shared.status.subscribe();
        let _ = tokio::time::timeout(
            Duration::from_secs(3),
            rx.wait_for(|s| matches!(s, Status::Ended(_))),
        )
        .await;
    }
}

/// A live GPU picker follows the host session: each refresh reads over the connection of the
/// moment, so it heals by itself after a reconnect.
impl gpu::GpuSource for HostSession {
    fn snapshot(&self) -> impl Future<Output = Result<GpuSnapshot, GpuError>> + Send {
        let shared = self.shared.clone();
        async move { gpus(&shared).await }
    }
}

fn jupyter_host(shared: &Shared) -> Result<jupyter::Host, Problem> {
    if matches!(shared.host, SessionHost::Local) {
        return Ok(jupyter::Host::Local);
    }
    match &*shared.status.borrow() {
        Status::Up(Some(c)) if !c.is_closed() => Ok(jupyter::Host::Ssh(c.clone())),
        Status::Ended(p) => Err(p.clone()),
        _ => Err(Problem::new(
            ErrorCode::Unreachable,
            "the host is not connected right now; Tunnelbook is connecting to it — try again \
             in a moment",
        )),
    }
}

async fn gpus(shared: &Shared) -> Result<GpuSnapshot, GpuError> {
    match jupyter_host(shared) {
        Ok(jupyter::Host::Ssh(conn)) => gpu::snapshot(&conn).await,
        Ok(jupyter::Host::Local) => tokio::task::spawn_blocking(gpu::local)
            .await
            .map_err(|e| GpuError::Nvml(format!("the NVML reader stopped: {e}")))?,
        Err(p) => Err(GpuError::Ssh(SshError::Closed(p.message))),
    }
}

fn closed() -> Problem {
    Problem::new(ErrorCode::Cancelled, "the host session was closed")
}

#[cfg(test)]
mod tests;
