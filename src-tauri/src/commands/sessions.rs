//! The sessions list.

use tauri::{AppHandle, Manager, Runtime, State};

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

/// Closes session `session_id`: its notebook windows (its own notebook's and those on servers it
/// reopened) save their open documents and close, then it stops its notebook (and the server),
/// its tasks, its tunnels and its connection. Servers it reopened keep running.
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
    let (notebook, window, url, attached) = {
        let mut sessions = state.sessions();
        let entry = sessions
            .get_mut(session_id)
            .ok_or_else(|| AppError::no_session(session_id))?;
        (
            entry.notebook.take(),
            entry.summary.window.take(),
            entry.summary.url.clone(),
            std::mem::take(&mut entry.attached),
        )
    };
    // Every notebook window on the session's servers (its own notebook, servers it reopened)
    // saves what is unsaved and closes, as Stop's do: nothing is left on a dead address (trial
    // of #14 in s28, finding 3).
    let mut windows = Vec::new();
    let urls = url.iter().chain(attached.values().map(|(_, u)| u));
    for w in urls.flat_map(|u| super::notebook::windows_on(app, u)) {
        if !windows
            .iter()
            .any(|x: &tauri::WebviewWindow<R>| x.label() == w.label())
        {
            windows.push(w);
        }
    }
    if let Some(w) = window.as_deref().and_then(|l| app.get_webview_window(l))
        && !windows.iter().any(|x| x.label() == w.label())
    {
        windows.push(w);
    }
    super::notebook::save_documents(&windows, super::notebook::SAVE_WAIT).await;
    for w in &windows {
        super::jupyter::close_window(app, Some(w.label().to_string()));
    }
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
