//! Wire types that belong to the app rather than to core: the host list, session progress,
//! GPU cards, command output. Their TypeScript twins are generated into `ui/src/lib/bindings/`.
//!
//! The session and GPU types are the app's view of what core's `session` and `gpu` modules will
//! emit; when those land, the adapters in [`crate::adapter`] convert core's types into these (or
//! these become re-exports if core's types derive `TS` themselves).

use serde::Serialize;
use ts_rs::TS;
use tunnelbook_core::profile::Profile;

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

/// The steps of a notebook session, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum SessionStep {
    Connect,
    HostKey,
    Authenticate,
    ReadGpus,
    FindEnvironments,
    StartJupyter,
    OpenTunnel,
    Ready,
}

/// Where a step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum StepState {
    Running,
    Done,
    Skipped,
    Failed,
}

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
    /// Set when `state` is `failed`.
    pub error: Option<AppError>,
}

/// Overall state of a session, for the sessions list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum SessionStatus {
    Starting,
    /// SSH is up; later steps are not (yet) available.
    Connected,
    /// JupyterLab is reachable through the tunnel.
    Ready,
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

/// The GPUs of a host at one moment, emitted as the `gpus` event while the picker is open.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct GpuSnapshotView {
    pub session_id: String,
    pub gpus: Vec<GpuView>,
    /// Why the list is empty (no driver, no GPU, …).
    pub reason: Option<String>,
    /// UUID of the GPU core ranks best among the free ones.
    pub recommended: Option<String>,
}

/// One GPU card.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct GpuView {
    pub index: u32,
    /// GPU or MIG UUID: what a session pins to.
    pub uuid: String,
    pub name: String,
    pub memory_used_mib: u32,
    pub memory_total_mib: u32,
    pub utilization_pct: u32,
    pub temperature_c: Option<u32>,
    pub power_w: Option<f32>,
    pub power_limit_w: Option<f32>,
    /// Whether core counts it as free.
    pub free: bool,
    pub processes: Vec<GpuProcessView>,
}

/// A compute process on a GPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct GpuProcessView {
    pub pid: u32,
    pub user: String,
    pub name: String,
    pub memory_mib: u32,
}
