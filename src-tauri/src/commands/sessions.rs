//! The sessions list.

use tauri::{AppHandle, Runtime, State};

use crate::{
    error::AppError,
    state::AppState,
    wire::{SessionStatus, SessionSummary},
};

/// Every session this app started, oldest first.
#[tauri::command]
pub async fn list_sessions(state: State<'_, AppState>) -> Result<Vec<SessionSummary>, AppError> {
    Ok(state.summaries())
}

/// Closes session `session_id`: stops its notebook (and the server), its tasks, its tunnels and
/// its connection.
#[tauri::command]
pub async fn close_session<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    session_id: String,
) -> Result<(), AppError> {
    close(&app, &state, &session_id).await
}

pub(crate) async fn close<R: Runtime>(
    app: &AppHandle<R>,
    state: &AppState,
    session_id: &str,
) -> Result<(), AppError> {
    let (notebook, window, attached) = {
        let mut sessions = state.sessions();
        let entry = sessions
            .get_mut(session_id)
            .ok_or_else(|| AppError::no_session(session_id))?;
        (
            entry.notebook.take(),
            entry.summary.window.take(),
            std::mem::take(&mut entry.attached),
        )
    };
    super::jupyter::close_window(app, window);
    // A SLURM job keeps running (until its time limit); only this app's side of it ends.
    let slurm = state
        .sessions()
        .get_mut(session_id)
        .and_then(|e| e.slurm.take());
    if let Some(h) = slurm {
        h.task.abort();
        let ready = h.ready.lock().ok().and_then(|mut r| r.take());
        if let Some((forward, _)) = ready {
            forward.close().await;
        }
    }
    if let Some(handle) = notebook {
        super::jupyter::end_notebook(handle, true).await;
    }
    for (tunnel, _) in attached.into_values() {
        if let Some(tunnel) = tunnel {
            tunnel.close().await;
        }
    }
    let (task, gpu_watch, host) = {
        let mut sessions = state.sessions();
        let entry = sessions
            .get_mut(session_id)
            .ok_or_else(|| AppError::no_session(session_id))?;
        entry.summary.status = SessionStatus::Closed;
        (
            entry.task.take(),
            entry.gpu_watch.take(),
            entry.host.clone(),
        )
    };
    // Aborting the GPU watch drops its receiver: core stops polling the host.
    for task in [task, gpu_watch].into_iter().flatten() {
        task.abort();
    }
    host.close().await;
    Ok(())
}
