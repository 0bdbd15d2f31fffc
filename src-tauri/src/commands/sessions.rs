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
    // A SLURM notebook is stopped like a plain one: JupyterLab's shutdown, scancel, confirmed.
    let slurm = state
        .sessions()
        .get_mut(session_id)
        .and_then(|e| e.slurm.take().map(|h| (h, e.host.clone())));
    if let Some((handle, host)) = slurm
        && let Err(e) = super::slurm::stop(handle, &host).await
    {
        tracing::warn!(error = %e.message, "cannot stop the SLURM job");
    }
    if let Some(handle) = notebook {
        super::jupyter::end_notebook(handle, true).await;
    }
    // Jobs opened from Sessions keep running on the cluster; only their forwards end here.
    let opened = state
        .sessions()
        .get_mut(session_id)
        .map(|e| std::mem::take(&mut e.slurm_open))
        .unwrap_or_default();
    for o in opened.into_values() {
        o.forward.close().await;
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
