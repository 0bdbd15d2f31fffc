//! The sessions list.

use tauri::{AppHandle, Manager, Runtime, State};

use crate::{error::AppError, state::AppState, wire::SessionSummary};

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
    let closing = state.begin_close(session_id)?;
    // Every notebook window on the session's servers (its own notebook, servers it reopened)
    // saves what is unsaved and closes, as Stop's do: nothing is left on a dead address (trial
    // of #14 in s28, finding 3).
    let urls = closing.urls().map(String::as_str);
    let mut windows = crate::launch::windows_of(app, urls, closing.window.as_deref());
    // And those of the notebooks "Open notebook…" opened over the session: their tunnels go
    // with its connection.
    for label in state.projects().windows(session_id) {
        if !windows.iter().any(|w| w.label() == label)
            && let Some(w) = app.get_webview_window(&label)
        {
            windows.push(w);
        }
    }
    super::notebook::save_documents(&windows, super::notebook::SAVE_WAIT).await;
    for w in &windows {
        super::jupyter::close_window(app, Some(w.label().to_string()));
    }
    // Those notebooks bring back their last saves, then the servers they started stop, as the
    // session's own notebook's does.
    state.projects().close(Some(session_id), true).await;
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
    // Then its notebook, the forwards to what it reopened (those keep running), its tasks and
    // its connection.
    Ok(state.finish_close(session_id, closing).await?)
}
