//! Wire types that carry the app's own error ([`AppError`]): session progress and GPU refreshes;
//! and command output. Their TypeScript twins are generated into `ui/src/lib/bindings/`.
//!
//! The session event is core's [`HostEvent`] with the session id. The other wire types are
//! core's own (they derive `TS` behind core's `ts` feature), re-exported here.

use serde::Serialize;
use ts_rs::TS;
use tunnelbook_core::host::HostEvent;
pub use tunnelbook_core::{
    gpu::GpuReport,
    host::{SessionStatus, SessionSummary},
    jupyter::{EnvKind, EnvironmentView, InstallEvent, ServerView},
    profile::{HostEntry, HostKind},
};

use crate::error::AppError;

/// Id of the built-in "This computer" entry of the host list.
pub const LOCAL_HOST_ID: &str = tunnelbook_core::profile::LOCAL_NAME;

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

/// A finished remote command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ExecOutput {
    /// Exit status (`null` when the server sent none, e.g. killed by a signal).
    pub status: Option<u32>,
    pub stdout: String,
    pub stderr: String,
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
