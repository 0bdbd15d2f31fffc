//! One notebook session, start to finish: connect → GPUs → environment → launch → tunnel →
//! ready, run as a task that reports typed progress events and is cancellable.
//!
//! What it owns: the order of the steps, what each step reports, and the cleanup when a session
//! is cancelled (a server that was launched but never became ready is stopped; a ready one is
//! kept unless the spec says otherwise). What it leaves out: how each step is done
//! ([`crate::ssh`], [`crate::gpu`], [`crate::jupyter`], [`crate::tunnel`]) and rendering the
//! events (the CLI and the app). Reconnecting after a network drop is not done here yet: the
//! session reports [`SessionEvent::Disconnected`] and the front end reattaches
//! ([`crate::jupyter::attach`]).

use std::{fmt, sync::Arc, time::Duration};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::{
    gpu::{self, GpuChoice, GpuSelector},
    jupyter::{
        self, Attached, EndpointChoice, Host, JupyterServer, LaunchSpec, Launched, TokenStore,
    },
    profile::Profile,
    secret::{SecretStore, Sensitive},
    ssh::{ConnectContext, Connection, ConnectionState},
    tunnel::{Listen, Tunnel},
};

/// The steps of a session, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
    /// The SSH connection dropped after the session was ready. The server keeps running.
    Disconnected {
        /// Why.
        reason: String,
    },
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
}

impl SessionSpec {
    /// A spec with the defaults: profile's choices, free local port, 60 s to get ready, the
    /// server kept when the session ends.
    pub fn new(host: SessionHost, profile: Profile) -> Self {
        Self {
            host,
            profile,
            gpu: None,
            env: None,
            notebook_dir: None,
            local_port: None,
            endpoint: EndpointChoice::Auto,
            ready_timeout: Duration::from_secs(60),
            stop_server_on_cancel: false,
            secrets: None,
        }
    }
}

enum Command {
    Close {
        stop_server: bool,
        done: oneshot::Sender<()>,
    },
}

/// A running session. Dropping it cancels: a server not yet ready is stopped, a ready one is
/// kept unless [`SessionSpec::stop_server_on_cancel`].
pub struct Session {
    events: mpsc::Receiver<SessionEvent>,
    commands: mpsc::Sender<Command>,
    cancel: CancellationToken,
}

impl Session {
    /// Starts the session's task.
    pub fn start(spec: SessionSpec) -> Session {
        let (tx, events) = mpsc::channel(64);
        let (commands, rx) = mpsc::channel(4);
        let cancel = CancellationToken::new();
        tokio::spawn(run(spec, tx, rx, cancel.clone()));
        Session {
            events,
            commands,
            cancel,
        }
    }

    /// The next event; `None` once the session has ended.
    pub async fn next_event(&mut self) -> Option<SessionEvent> {
        self.events.recv().await
    }

    /// Cancels the session (see the type's documentation for what is cleaned up).
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Ends a session: closes the tunnel and the connection, stopping the server first when
    /// `stop_server`. Waits until that is done.
    pub async fn close(self, stop_server: bool) {
        let (done, wait) = oneshot::channel();
        if self
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
        self.cancel.cancel();
    }
}

/// What the steps have built so far, kept outside the step future so cancellation can clean up.
#[derive(Default)]
struct Built {
    host: Option<Host>,
    launched: Option<(JupyterServer, Sensitive<String>)>,
    attached: Option<Attached>,
    /// The host's saved forwarding rules, which live as long as the session.
    forwards: Vec<Tunnel>,
    ready: bool,
}

struct Reporter(mpsc::Sender<SessionEvent>);

impl Reporter {
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
) {
    let tokens = TokenStore {
        store: spec.secrets.clone(),
        profile: spec.profile.name.clone(),
    };
    let report = Reporter(tx.clone());
    let mut built = Built::default();
    let outcome = tokio::select! {
        r = steps(&spec, &report, &tokens, &mut built) => Some(r),
        () = cancel.cancelled() => None,
    };
    match outcome {
        Some(Ok(info)) => {
            built.ready = true;
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
    // Ready: hold the tunnel until closed, cancelled, or the connection drops.
    let mut conn_events = built
        .host
        .as_ref()
        .and_then(Host::connection)
        .map(Connection::events);
    let disconnected = async {
        match conn_events.as_mut() {
            None => std::future::pending::<String>().await,
            Some(rx) => loop {
                match rx.recv().await {
                    Ok(ConnectionState::Disconnected { reason }) => break reason,
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => break "the connection closed".to_string(),
                }
            },
        }
    };
    tokio::select! {
        cmd = commands.recv() => {
            let (stop_server, done) = match cmd {
                Some(Command::Close { stop_server, done }) => (stop_server, Some(done)),
                None => (spec.stop_server_on_cancel, None),
            };
            cleanup(&mut built, stop_server, &tokens).await;
            if let Some(done) = done {
                let _ = done.send(());
            }
        }
        () = cancel.cancelled() => {
            cleanup(&mut built, spec.stop_server_on_cancel, &tokens).await;
        }
        reason = disconnected => {
            built.attached = None;
            let _ = tx.send(SessionEvent::Disconnected { reason }).await;
            // The server lives on; wait for the front end to close the session.
            if let Some(Command::Close { done, .. }) = commands.recv().await {
                let _ = done.send(());
            }
        }
    }
}

/// Closes the tunnel, stops the server when it is not ready yet (or `stop_ready`), closes the
/// connection.
async fn cleanup(built: &mut Built, stop_ready: bool, tokens: &TokenStore) {
    for forward in built.forwards.drain(..) {
        forward.close().await;
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
    if let Some(conn) = built.host.as_ref().and_then(Host::connection) {
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
            let conn = Connection::open(chain, context)
                .await
                .map_err(fail(Step::Connect))?;
            report
                .step(
                    Step::Connect,
                    StepState::Done,
                    format!("connected to {}", conn.destination()),
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

    // GPUs.
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
        let snapshot = match &host {
            Host::Ssh(conn) => gpu::snapshot(conn).await,
            Host::Local => tokio::task::spawn_blocking(gpu::local)
                .await
                .map_err(fail(Step::Gpus))?,
        }
        .map_err(fail(Step::Gpus))?;
        let choice = snapshot
            .select(&selector, false)
            .map_err(fail(Step::Gpus))?;
        let message = match (&choice, &snapshot.no_gpu_reason) {
            (Some(c), _) => format!("{} ({})", c.label(), c.cuda_visible_devices),
            (None, Some(reason)) => format!("{reason}; running without a GPU"),
            (None, None) => "running without a GPU".to_string(),
        };
        report.step(Step::Gpus, StepState::Done, message, 30).await;
        choice
    };

    // Environment.
    report
        .step(
            Step::Environment,
            StepState::Started,
            "looking for Python environments",
            30,
        )
        .await;
    let wanted = spec.env.as_deref().or(profile.environment.as_deref());
    let envs = jupyter::environments(&host, wanted)
        .await
        .map_err(fail(Step::Environment))?;
    let env = jupyter::choose(&host.name(), &envs, wanted)
        .map_err(fail(Step::Environment))?
        .clone();
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

    // Launch.
    report
        .step(Step::Launch, StepState::Started, "starting JupyterLab", 45)
        .await;
    let launch = LaunchSpec {
        env: env.clone(),
        cuda_visible_devices: choice.as_ref().map(|c| c.cuda_visible_devices.clone()),
        notebook_dir: spec.notebook_dir.clone().or(profile.notebook_dir.clone()),
        pre_launch: profile.pre_launch.clone(),
        endpoint: spec.endpoint,
    };
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
    let attached = jupyter::attach(&host, &server, &token, listen)
        .await
        .map_err(fail(Step::Tunnel))?;
    let local_addr = attached.local_addr;
    let url = attached.url.clone();
    built.attached = Some(attached);
    // The host's saved forwarding rules start with the connection. One that cannot start (its
    // port taken, say) is reported and the notebook goes on: it is not what the user came for.
    let mut saved = Vec::new();
    if let Some(conn) = host.connection() {
        for rule in profile.forwards.iter().filter(|r| r.enabled) {
            match rule.spec.start(conn).await {
                Ok(tunnel) => {
                    saved.push(tunnel.description().to_string());
                    built.forwards.push(tunnel);
                }
                Err(e) => saved.push(format!("failed: {e}")),
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
