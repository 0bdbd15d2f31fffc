//! The Tunnels view of a host (Bitvise's C2S / S2C lists): its saved forwarding rules with their
//! enable toggles (kept in the host's profile), the ones running now with live counters, and
//! one-off forwards that are not saved. Forwards run on the host session of a live session on
//! that host (core's [`HostSession::forward`]): they keep working across reconnects. Core's
//! [`Forwards`] keeps track of them; the commands here find the host session and save rules.

use tauri::{AppHandle, Manager, Runtime, State};
pub use tunnelbook_core::host::{ForwardCounters, ForwardView, Forwards, TunnelsView};
use tunnelbook_core::{
    host::{HostSession, session_number},
    tunnel::{ForwardRule, ForwardSpec},
};

use crate::{
    error::{AppError, ErrorCode},
    state::AppState,
    wire::LOCAL_HOST_ID,
};

/// The newest session on `host_id` whose host session is connected (or reconnecting).
fn connection_of(state: &AppState, host_id: &str) -> Option<(String, HostSession)> {
    let sessions = state.sessions();
    sessions
        .values()
        .filter(|e| e.summary.host_id == host_id && !e.host.is_ended())
        .filter(|e| e.host.connection().is_some() || !e.host.is_local())
        .max_by_key(|e| session_number(&e.summary.id).unwrap_or(0))
        .map(|e| (e.summary.id.clone(), e.host.clone()))
}

fn saved_rules(state: &AppState, host_id: &str) -> Result<Vec<ForwardRule>, AppError> {
    if host_id == LOCAL_HOST_ID {
        return Ok(Vec::new());
    }
    Ok(state.profiles.get(host_id)?.forwards)
}

/// The view of `host_id` now (forwards of sessions that ended are dropped first).
pub async fn view(
    state: &AppState,
    forwards: &Forwards,
    host_id: &str,
) -> Result<TunnelsView, AppError> {
    forwards
        .prune(|id| state.sessions().get(id).is_some_and(|e| !e.host.is_ended()))
        .await;
    let rules = saved_rules(state, host_id)?;
    Ok(forwards.view(host_id, rules, connection_of(state, host_id)))
}

/// The Tunnels view of `host_id`.
#[tauri::command]
pub async fn list_forwards(
    state: State<'_, AppState>,
    forwards: State<'_, Forwards>,
    host_id: String,
) -> Result<TunnelsView, AppError> {
    view(&state, &forwards, &host_id).await
}

/// Adds a saved rule (`index` null) or replaces rule `index` of host `host_id`. A running rule
/// restarts with its new settings; an enabled one starts when the host is connected.
#[tauri::command]
pub async fn save_forward(
    state: State<'_, AppState>,
    forwards: State<'_, Forwards>,
    host_id: String,
    index: Option<u32>,
    rule: ForwardRule,
) -> Result<TunnelsView, AppError> {
    let on = connection_of(&state, &host_id);
    let index = index.map(|i| i as usize);
    forwards
        .save_rule(&state.profiles, &host_id, index, rule, on)
        .await?;
    view(&state, &forwards, &host_id).await
}

/// Removes saved rule `index` of host `host_id` (stopping it when running).
#[tauri::command]
pub async fn delete_forward(
    state: State<'_, AppState>,
    forwards: State<'_, Forwards>,
    host_id: String,
    index: u32,
) -> Result<TunnelsView, AppError> {
    forwards
        .delete_rule(&state.profiles, &host_id, index as usize)
        .await?;
    view(&state, &forwards, &host_id).await
}

/// Turns saved rule `index` on or off (saved in the profile); when the host is connected the
/// forward starts or stops at once.
#[tauri::command]
pub async fn set_forward_enabled(
    state: State<'_, AppState>,
    forwards: State<'_, Forwards>,
    host_id: String,
    index: u32,
    enabled: bool,
) -> Result<TunnelsView, AppError> {
    let on = connection_of(&state, &host_id);
    forwards
        .set_rule_enabled(&state.profiles, &host_id, index as usize, enabled, on)
        .await?;
    view(&state, &forwards, &host_id).await
}

/// Starts every enabled saved rule of `host_id` that is not running (the host must be
/// connected). Rules that cannot start say why in their `error`.
#[tauri::command]
pub async fn start_forwards(
    state: State<'_, AppState>,
    forwards: State<'_, Forwards>,
    host_id: String,
) -> Result<TunnelsView, AppError> {
    start_enabled(&state, &forwards, &host_id, false).await;
    view(&state, &forwards, &host_id).await
}

/// Starts host `host_id`'s enabled saved rules once a session on it is connected (what the
/// Tunnels view promises: "rules start once the host is connected"); the view shows them on its
/// next refresh. Rules that cannot start keep why for the view.
pub async fn start_saved<R: Runtime>(app: &AppHandle<R>, host_id: &str) {
    if let Some(forwards) = app.try_state::<Forwards>() {
        start_enabled(&app.state(), &forwards, host_id, true).await;
    }
}

/// Starts `host_id`'s enabled saved rules that are not running on its live session (none: nothing
/// starts); `wait`: once the session's authentication is done (it calls itself up then).
async fn start_enabled(state: &AppState, forwards: &Forwards, host_id: &str, wait: bool) {
    let rules = match saved_rules(state, host_id) {
        Ok(rules) if rules.iter().any(|r| r.enabled) => rules,
        _ => return,
    };
    if let Some(on) = connection_of(state, host_id)
        && (!wait || on.1.next_connection(None).await.is_ok())
    {
        forwards
            .start_enabled(&state.profiles, host_id, rules, &on)
            .await;
    }
}

/// Starts a forward that is not saved (e.g. TensorBoard's remote port 6006 to a free local port).
#[tauri::command]
pub async fn start_one_off(
    state: State<'_, AppState>,
    forwards: State<'_, Forwards>,
    host_id: String,
    spec: ForwardSpec,
) -> Result<TunnelsView, AppError> {
    let (session_id, host) = connection_of(&state, &host_id).ok_or_else(|| {
        AppError::new(
            ErrorCode::Unsupported,
            format!("{host_id} is not connected: connect first, then start the forward"),
        )
    })?;
    forwards
        .start(&host_id, &session_id, &host, None, spec)
        .await?;
    view(&state, &forwards, &host_id).await
}

/// Stops running forward `id` (a saved rule stays saved and enabled).
#[tauri::command]
pub async fn stop_forward(
    state: State<'_, AppState>,
    forwards: State<'_, Forwards>,
    id: String,
) -> Result<TunnelsView, AppError> {
    let host_id = forwards
        .stop(&id)
        .await
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, format!("no running forward {id}")))?;
    view(&state, &forwards, &host_id).await
}
