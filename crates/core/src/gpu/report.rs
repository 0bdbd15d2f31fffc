//! The GPUs of a host as the app's picker shows them: a snapshot with its free ranking and the
//! choice to preselect.

use serde::Serialize;

use super::{FreeRule, GpuChoice, GpuSnapshot};

/// The GPUs of a session's host at one moment with core's ranking of them: what `gpu_snapshot`
/// returns and what each `gpus` event carries while the picker is open.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
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
