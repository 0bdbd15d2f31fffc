//! The GPU picker's data.

use crate::{adapter, error::AppError, wire::GpuSnapshotView};

/// The GPUs of session `session_id`'s host, ranked, with the best free one recommended.
#[tauri::command]
pub async fn gpu_snapshot(session_id: String) -> Result<GpuSnapshotView, AppError> {
    adapter::gpu_snapshot(&session_id).await
}
