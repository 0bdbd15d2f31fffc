//! The GPU picker: one snapshot on demand, and a live refresh while the picker is open.

use tauri::{AppHandle, Emitter, Runtime, State};
use tokio::sync::mpsc;
use tunnelbook_core::{
    gpu::{self, FreeRule, GpuError, GpuSnapshot},
    settings::SettingsStore,
};

use crate::{
    error::AppError,
    state::AppState,
    wire::{GpuEvent, GpuReport},
};

/// Name of the event that carries a [`GpuEvent`].
pub const GPUS_EVENT: &str = "gpus";

/// The GPUs of session `session_id`'s host now, ranked, with the best free one recommended.
#[tauri::command]
pub async fn gpu_snapshot(
    state: State<'_, AppState>,
    session_id: String,
) -> Result<GpuReport, AppError> {
    let rule = free_rule(&state);
    Ok(GpuReport::new(
        state.host(&session_id)?.gpus().await?,
        &rule,
    ))
}

/// When a GPU counts as free: the user's settings (`gpuFree`).
fn free_rule(state: &AppState) -> FreeRule {
    SettingsStore::in_home(state.home())
        .load_or_default()
        .gpu_free
}

/// Starts emitting `gpus` events for session `session_id` (the first right away, then every
/// [`gpu::DEFAULT_INTERVAL`]) until [`unwatch_gpus`] or the session closes. Replaces an earlier
/// watch of the same session.
#[tauri::command]
pub async fn watch_gpus<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    session_id: String,
) -> Result<(), AppError> {
    // Each refresh reads over the host session's connection of the moment (and survives a
    // reconnect).
    let rx = gpu::watch(state.host(&session_id)?, gpu::DEFAULT_INTERVAL);
    let task = tauri::async_runtime::spawn(forward(app, session_id.clone(), rx, free_rule(&state)));
    Ok(state.set_gpu_watch(&session_id, task.inner().abort_handle())?)
}

/// Stops the `gpus` events of session `session_id` (the picker closed). Not an error when none run.
#[tauri::command]
pub async fn unwatch_gpus(state: State<'_, AppState>, session_id: String) -> Result<(), AppError> {
    state.stop_gpu_watch(&session_id);
    Ok(())
}

/// Emits every result of `rx` as a `gpus` event; ends (dropping `rx`, which stops core's
/// polling) when aborted or when events can no longer be delivered.
async fn forward<R: Runtime>(
    app: AppHandle<R>,
    session_id: String,
    mut rx: mpsc::Receiver<Result<GpuSnapshot, GpuError>>,
    rule: FreeRule,
) {
    while let Some(result) = rx.recv().await {
        let (report, error) = match result {
            Ok(snapshot) => (Some(GpuReport::new(snapshot, &rule)), None),
            // The picker keeps the last report on screen, marked stale, under the error.
            Err(e) => (None, Some(e.into())),
        };
        let event = GpuEvent {
            session_id: session_id.clone(),
            report,
            error,
        };
        if let Err(e) = app.emit(GPUS_EVENT, event) {
            tracing::warn!(error = %e, "cannot deliver a gpus event; stopping the GPU watch");
            break;
        }
    }
}
