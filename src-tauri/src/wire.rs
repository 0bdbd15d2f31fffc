//! Wire types that belong to the app rather than to core: the host list, session progress,
//! GPU cards, command output. Their TypeScript twins are generated into `ui/src/lib/bindings/`.
//!
//! The session types are the app's view of what core's `session` module will emit; when it lands,
//! [`crate::adapter`] converts core's types into these (or these become re-exports). The GPU types
//! are core's own (they derive `TS` behind core's `ts` feature), wrapped with the session id.

use serde::Serialize;
use ts_rs::TS;
use tunnelbook_core::{
    gpu::{GpuChoice, GpuSnapshot},
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
        let choices = snapshot.rank_free(false);
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
