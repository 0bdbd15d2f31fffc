//! Wire types that belong to the app rather than to core: the host list, session progress,
//! GPU cards, command output. Their TypeScript twins are generated into `ui/src/lib/bindings/`.
//!
//! The session event is core's [`HostEvent`] with the session id; the GPU types are core's own
//! (they derive `TS` behind core's `ts` feature), wrapped with the session id.

use serde::Serialize;
use ts_rs::TS;
use tunnelbook_core::{
    gpu::{FreeRule, GpuChoice, GpuSnapshot},
    host::HostEvent,
    profile::Profile,
};

use crate::error::AppError;

/// Id of the built-in "This computer" entry of the host list.
pub const LOCAL_HOST_ID: &str = "local";

/// One entry of the host list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct HostEntry {
    /// `local` for this computer, otherwise the profile name.
    pub id: String,
    /// Which kind of entry.
    pub kind: HostKind,
    /// What the list shows.
    pub label: String,
    /// The saved profile (`null` for this computer).
    pub profile: Option<Profile>,
}

/// Kinds of host list entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum HostKind {
    /// This computer: no SSH, local GPUs.
    Local,
    /// A saved profile.
    Saved,
}

/// The steps of a session (core's host session and the notebook launched on it), in order.
pub use tunnelbook_core::host::{Step as SessionStep, StepState};

/// Progress of one session, emitted as the `session` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SessionEvent {
    /// The session (from `start_session`).
    pub session_id: String,
    /// The step this event is about.
    pub step: SessionStep,
    /// Its new state.
    pub state: StepState,
    /// One line for the details log.
    pub message: String,
    /// Set when `state` is `failed` (and, on `connect` running again, the cause of a lost
    /// connection being dialed again).
    pub error: Option<AppError>,
}

/// Name of the event that carries a [`SessionEvent`].
pub const SESSION_EVENT: &str = "session";

impl SessionEvent {
    /// Core's host event `event`, of session `session_id`.
    pub fn of(session_id: &str, event: HostEvent) -> Self {
        Self {
            session_id: session_id.to_string(),
            step: event.step,
            state: event.state,
            message: event.message,
            error: event.error.map(AppError::from),
        }
    }
}

/// Overall state of a session, for the sessions list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum SessionStatus {
    Starting,
    /// SSH is up: GPUs and environments can be read, a notebook launched.
    Connected,
    /// A notebook is being started (core's session runs).
    Launching,
    /// JupyterLab is reachable through the tunnel.
    Ready,
    /// The notebook's connection dropped after it was ready; the server keeps running.
    Disconnected,
    Failed,
    Closed,
}

/// One session, as the sessions list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SessionSummary {
    pub id: String,
    /// Host list id the session was started from.
    pub host_id: String,
    pub status: SessionStatus,
    /// The notebook URL once ready.
    pub url: Option<String>,
    /// The GPU it runs on (`null` for CPU only or not chosen yet).
    pub gpu: Option<String>,
    /// The environment the notebook runs from, once launched.
    #[serde(default)]
    pub env: Option<String>,
    /// Tunnelbook's id of the notebook server on the host (`tb-…`), once launched.
    #[serde(default)]
    pub server_id: Option<String>,
    /// Label of the notebook window, while one is open.
    #[serde(default)]
    pub window: Option<String>,
}

/// A finished remote command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ExecOutput {
    /// Exit status (`null` when the server sent none, e.g. killed by a signal).
    pub status: Option<u32>,
    pub stdout: String,
    pub stderr: String,
}

/// The GPUs of a session's host at one moment with core's ranking of them: what `gpu_snapshot`
/// returns and what each `gpus` event carries while the picker is open.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct GpuReport {
    /// What core read; `noGpuReason` says why `gpus` is empty ("no NVIDIA GPU" is not an error).
    pub snapshot: GpuSnapshot,
    /// Every GPU and MIG instance a notebook can be pinned to, best first (core's free ranking,
    /// the user's own processes counting as busy).
    pub choices: Vec<GpuChoice>,
    /// `cudaVisibleDevices` of the choice to preselect: the best one when it is free; `null`
    /// when nothing is free, so the picker preselects "CPU only".
    pub recommended: Option<String>,
}

impl From<GpuSnapshot> for GpuReport {
    fn from(snapshot: GpuSnapshot) -> Self {
        Self::new(snapshot, &FreeRule::default())
    }
}

impl GpuReport {
    /// The report of `snapshot` with GPUs judged free by `rule` (the user's settings).
    pub fn new(snapshot: GpuSnapshot, rule: &FreeRule) -> Self {
        let choices = snapshot.rank(rule);
        let recommended = choices
            .first()
            .filter(|c| c.free)
            .map(|c| c.cuda_visible_devices.clone());
        Self {
            snapshot,
            choices,
            recommended,
        }
    }
}

/// One refresh of the live GPU picker, emitted as the `gpus` event every couple of seconds
/// between `watch_gpus` and `unwatch_gpus`: a report, or why this refresh failed (polling goes
/// on, so a transient failure heals by itself).
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct GpuEvent {
    /// The session whose host was read.
    pub session_id: String,
    /// The GPUs, when this refresh worked.
    pub report: Option<GpuReport>,
    /// Why this refresh failed.
    pub error: Option<AppError>,
}

/// What kind of Python environment (core's `EnvKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum EnvKind {
    Conda,
    Venv,
    System,
    /// An Lmod / Environment Modules module (`name` is the module).
    Module,
}

/// One Python environment on a session's host (core's `jupyter::Environment`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentView {
    pub kind: EnvKind,
    /// The conda env name, the venv directory's name, or `python3`.
    pub name: String,
    /// What to pass as the environment when launching: the directory, or the interpreter.
    pub path: String,
    /// `3.11.2`, when the interpreter ran.
    pub python_version: Option<String>,
    /// Whether JupyterLab is importable.
    pub jupyter_lab: bool,
    /// Whether the classic notebook is importable.
    pub notebook: bool,
    /// Why the environment is unusable.
    pub problem: Option<String>,
    /// Whether it is the profile's environment.
    pub configured: bool,
}

impl From<tunnelbook_core::jupyter::Environment> for EnvironmentView {
    fn from(e: tunnelbook_core::jupyter::Environment) -> Self {
        use tunnelbook_core::jupyter::EnvKind as Core;
        Self {
            kind: match e.kind {
                Core::Conda => EnvKind::Conda,
                Core::Venv => EnvKind::Venv,
                Core::System => EnvKind::System,
                Core::Module => EnvKind::Module,
            },
            path: e.label(),
            name: e.name,
            python_version: e.python_version,
            jupyter_lab: e.jupyter_lab,
            notebook: e.notebook,
            problem: e.problem,
            configured: e.configured,
        }
    }
}

/// One line of installer output, emitted as the `install` event while `install_jupyter` runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct InstallEvent {
    /// The session whose host is being installed into.
    pub session_id: String,
    /// The line (pip's output).
    pub line: String,
}

/// A Jupyter server running on a session's host: started by this app, by the CLI, earlier, or
/// by hand (core's `jupyter::JupyterServer`, never with its token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ServerView {
    /// The session whose host runs it.
    pub session_id: String,
    /// `tb-…` for servers Tunnelbook started, `pid-N` otherwise.
    pub id: String,
    pub pid: u32,
    /// Where it listens on the host, e.g. `127.0.0.1:8890` or `unix:/run/…/tb-1.sock`.
    pub endpoint: String,
    /// The environment it runs from, when known.
    pub env: Option<String>,
    /// `CUDA_VISIBLE_DEVICES` it was started with, when known.
    pub gpu: Option<String>,
    /// Seconds since the Unix epoch it was started, when known.
    pub started: Option<u64>,
    /// Whether Tunnelbook started it.
    pub managed: bool,
    /// The local URL when this app has a tunnel to it (holds the token: show, never log).
    pub url: Option<String>,
}
