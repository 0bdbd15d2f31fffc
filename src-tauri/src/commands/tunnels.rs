//! The Tunnels view of a host (Bitvise's C2S / S2C lists): its saved forwarding rules with their
//! enable toggles (kept in the host's profile), the ones running now with live counters, and
//! one-off forwards that are not saved. Forwards run on the host session of a live session on
//! that host (core's [`HostSession::forward`]): they keep working across reconnects.

use std::{collections::HashMap, sync::Mutex};

use serde::Serialize;
use tauri::{AppHandle, Manager, Runtime, State};
use ts_rs::TS;
use tunnelbook_core::{
    host::{Forward, HostSession},
    tunnel::{ForwardRule, ForwardSpec},
};

use crate::{
    error::{AppError, ErrorCode},
    state::AppState,
    wire::LOCAL_HOST_ID,
};

/// Live counters of a running forward.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ForwardCounters {
    /// Connections being forwarded now.
    pub open_connections: u64,
    /// Connections forwarded since it started.
    pub total_connections: u64,
    /// Bytes towards the far side.
    pub bytes_up: u64,
    /// Bytes back from the far side.
    pub bytes_down: u64,
}

/// One forward as the Tunnels view shows it: a saved rule (running or not) or a one-off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ForwardView {
    /// Position in the host's saved rules; `null` for a one-off.
    pub index: Option<u32>,
    /// The rule (a one-off is always enabled).
    pub rule: ForwardRule,
    /// Id of the running forward (for `stop_forward`); `null` when not running.
    pub running_id: Option<String>,
    /// What it forwards, e.g. `127.0.0.1:43210 -> 127.0.0.1:6006`.
    pub description: Option<String>,
    /// The local address listened on (local and SOCKS forwards).
    pub local_addr: Option<String>,
    /// `http://` URL of the local end, for "Open" (local forwards only).
    pub url: Option<String>,
    /// Live counters (zero when not running).
    pub counters: ForwardCounters,
    /// Why it could not start, when it failed to.
    pub error: Option<String>,
}

/// A host's forwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct TunnelsView {
    pub host_id: String,
    /// The live session whose host session carries the forwards; `null` when the host is not
    /// connected (rules can still be edited).
    pub session_id: Option<String>,
    /// Saved rules, in saved order.
    pub rules: Vec<ForwardView>,
    /// Running one-off forwards.
    pub one_off: Vec<ForwardView>,
    /// What the server forbids, named by its `sshd_config` setting, when it forbids TCP forwarding
    /// (probed on connect, known within about 2 s); `null` when allowed, not connected, or not
    /// known yet.
    pub forwarding: Option<String>,
}

struct Running {
    host_id: String,
    session_id: String,
    /// `Some(i)` for saved rule `i`.
    index: Option<usize>,
    tunnel: Forward,
}

/// The forwards running now, managed by tauri next to [`AppState`].
#[derive(Default)]
pub struct Forwards {
    running: Mutex<HashMap<String, Running>>,
    errors: Mutex<HashMap<(String, usize), String>>,
    next: std::sync::atomic::AtomicU32,
}

impl Forwards {
    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn errors(&self) -> std::sync::MutexGuard<'_, HashMap<(String, usize), String>> {
        self.errors.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn new_id(&self) -> String {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        format!("f{n}")
    }

    /// Drops the forwards of sessions whose host session ended (closed, or lost for good).
    fn prune(&self, state: &AppState) -> Vec<Forward> {
        let live = state.sessions();
        let mut running = self.running();
        let dead: Vec<String> = running
            .iter()
            .filter(|(_, r)| live.get(&r.session_id).is_none_or(|e| e.host.is_ended()))
            .map(|(id, _)| id.clone())
            .collect();
        dead.iter()
            .filter_map(|id| running.remove(id))
            .map(|r| r.tunnel)
            .collect()
    }
}

fn counters(t: &Forward) -> ForwardCounters {
    let s = t.stats();
    ForwardCounters {
        open_connections: s.open_connections,
        total_connections: s.total_connections,
        bytes_up: s.bytes_up,
        bytes_down: s.bytes_down,
    }
}

fn running_view(id: &str, r: &Running) -> ForwardView {
    let local_addr = r.tunnel.local_addr().map(|a| a.to_string());
    let url = match (r.tunnel.spec(), r.tunnel.local_addr()) {
        (ForwardSpec::Local { .. }, Some(addr)) => Some(format!("http://{addr}/")),
        _ => None,
    };
    ForwardView {
        index: r.index.and_then(|i| u32::try_from(i).ok()),
        rule: ForwardRule {
            enabled: true,
            spec: r.tunnel.spec().clone(),
        },
        running_id: Some(id.to_string()),
        description: Some(r.tunnel.description().to_string()),
        local_addr,
        url,
        counters: counters(&r.tunnel),
        error: None,
    }
}

/// The newest session on `host_id` whose host session is connected (or reconnecting).
fn connection_of(state: &AppState, host_id: &str) -> Option<(String, HostSession)> {
    let sessions = state.sessions();
    sessions
        .values()
        .filter(|e| e.summary.host_id == host_id && !e.host.is_ended())
        .filter(|e| e.host.connection().is_some() || !e.host.is_local())
        .max_by_key(|e| {
            e.summary
                .id
                .trim_start_matches('s')
                .parse::<u32>()
                .unwrap_or(0)
        })
        .map(|e| (e.summary.id.clone(), e.host.clone()))
}

fn saved_rules(state: &AppState, host_id: &str) -> Result<Vec<ForwardRule>, AppError> {
    if host_id == LOCAL_HOST_ID {
        return Ok(Vec::new());
    }
    Ok(state.profiles.get(host_id)?.forwards)
}

/// The view of `host_id` now.
pub async fn view(
    state: &AppState,
    forwards: &Forwards,
    host_id: &str,
) -> Result<TunnelsView, AppError> {
    for t in forwards.prune(state) {
        t.close().await;
    }
    let rules = saved_rules(state, host_id)?;
    let connected = connection_of(state, host_id);
    // The host session probes the policy on connect: a forbidding server is named before any
    // rule is tried.
    let forwarding = connected
        .as_ref()
        .and_then(|(_, host)| host.forwarding())
        .filter(|f| !f.tcp)
        .map(|f| f.describe());
    let session_id = connected.map(|(id, _)| id);
    let running = forwards.running();
    let errors = forwards.errors();
    let rules = rules
        .into_iter()
        .enumerate()
        .map(|(i, rule)| {
            let found = running
                .iter()
                .find(|(_, r)| r.host_id == host_id && r.index == Some(i));
            match found {
                Some((id, r)) => ForwardView {
                    rule: rule.clone(),
                    ..running_view(id, r)
                },
                None => ForwardView {
                    index: u32::try_from(i).ok(),
                    rule,
                    running_id: None,
                    description: None,
                    local_addr: None,
                    url: None,
                    counters: ForwardCounters::default(),
                    error: errors.get(&(host_id.to_string(), i)).cloned(),
                },
            }
        })
        .collect();
    let mut one_off: Vec<(&String, &Running)> = running
        .iter()
        .filter(|(_, r)| r.host_id == host_id && r.index.is_none())
        .collect();
    one_off.sort_by_key(|(id, _)| id.trim_start_matches('f').parse::<u32>().unwrap_or(0));
    Ok(TunnelsView {
        host_id: host_id.to_string(),
        session_id,
        rules,
        forwarding,
        one_off: one_off
            .into_iter()
            .map(|(id, r)| running_view(id, r))
            .collect(),
    })
}

async fn start(
    state: &AppState,
    forwards: &Forwards,
    host_id: &str,
    index: Option<usize>,
    spec: ForwardSpec,
) -> Result<String, AppError> {
    let (session_id, host) = connection_of(state, host_id).ok_or_else(|| {
        AppError::new(
            ErrorCode::Unsupported,
            format!("{host_id} is not connected: connect first, then start the forward"),
        )
    })?;
    let result = host.forward(&spec).await;
    if let Some(i) = index {
        let key = (host_id.to_string(), i);
        match &result {
            Ok(_) => forwards.errors().remove(&key),
            Err(e) => forwards.errors().insert(key, e.to_string()),
        };
    }
    let tunnel = result?;
    let id = forwards.new_id();
    tracing::info!(
        host = host_id,
        forward = tunnel.description(),
        "forward started"
    );
    forwards.running().insert(
        id.clone(),
        Running {
            host_id: host_id.to_string(),
            session_id,
            index,
            tunnel,
        },
    );
    Ok(id)
}

async fn stop_rule(forwards: &Forwards, host_id: &str, index: usize) {
    let tunnel = {
        let mut running = forwards.running();
        let id = running
            .iter()
            .find(|(_, r)| r.host_id == host_id && r.index == Some(index))
            .map(|(id, _)| id.clone());
        id.and_then(|id| running.remove(&id))
    };
    if let Some(r) = tunnel {
        r.tunnel.close().await;
    }
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
    let wanted = index.map(|i| i as usize);
    let profile = state.profiles.edit(&host_id, |p| match wanted {
        Some(i) if i < p.forwards.len() => p.forwards[i] = rule.clone(),
        _ => p.forwards.push(rule.clone()),
    })?;
    let slot = match wanted {
        Some(i) if profile.forwards.get(i) == Some(&rule) => i,
        _ => profile.forwards.len().saturating_sub(1),
    };
    stop_rule(&forwards, &host_id, slot).await;
    let mut error = None;
    if rule.enabled && connection_of(&state, &host_id).is_some() {
        error = start(&state, &forwards, &host_id, Some(slot), rule.spec)
            .await
            .err();
    }
    let view = view(&state, &forwards, &host_id).await?;
    match error {
        Some(e) => Err(e),
        None => Ok(view),
    }
}

/// Removes saved rule `index` of host `host_id` (stopping it when running).
#[tauri::command]
pub async fn delete_forward(
    state: State<'_, AppState>,
    forwards: State<'_, Forwards>,
    host_id: String,
    index: u32,
) -> Result<TunnelsView, AppError> {
    let index = index as usize;
    state.profiles.edit(&host_id, |p| {
        if index < p.forwards.len() {
            p.forwards.remove(index);
        }
    })?;
    stop_rule(&forwards, &host_id, index).await;
    // Later rules move up one place.
    for r in forwards.running().values_mut() {
        if r.host_id == host_id
            && let Some(i) = r.index.as_mut()
            && *i > index
        {
            *i -= 1;
        }
    }
    forwards.errors().retain(|(h, _), _| h != &host_id);
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
    let i = index as usize;
    let profile = state.profiles.edit(&host_id, |p| {
        if let Some(r) = p.forwards.get_mut(i) {
            r.enabled = enabled;
        }
    })?;
    let rule = profile.forwards.get(i).cloned().ok_or_else(|| {
        AppError::new(ErrorCode::NotFound, format!("no rule {index} on {host_id}"))
    })?;
    if !enabled {
        stop_rule(&forwards, &host_id, i).await;
        forwards.errors().remove(&(host_id.clone(), i));
    } else if connection_of(&state, &host_id).is_some() {
        let running = forwards
            .running()
            .values()
            .any(|r| r.host_id == host_id && r.index == Some(i));
        if !running {
            start(&state, &forwards, &host_id, Some(i), rule.spec).await?;
        }
    }
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
    let rules = saved_rules(&state, &host_id)?;
    for (i, rule) in rules.into_iter().enumerate().filter(|(_, r)| r.enabled) {
        let running = forwards
            .running()
            .values()
            .any(|r| r.host_id == host_id && r.index == Some(i));
        if !running {
            let _ = start(&state, &forwards, &host_id, Some(i), rule.spec).await;
        }
    }
    view(&state, &forwards, &host_id).await
}

/// Starts a forward that is not saved (e.g. TensorBoard's remote port 6006 to a free local port).
#[tauri::command]
pub async fn start_one_off(
    state: State<'_, AppState>,
    forwards: State<'_, Forwards>,
    host_id: String,
    spec: ForwardSpec,
) -> Result<TunnelsView, AppError> {
    start(&state, &forwards, &host_id, None, spec).await?;
    view(&state, &forwards, &host_id).await
}

/// Stops running forward `id` (a saved rule stays saved and enabled).
#[tauri::command]
pub async fn stop_forward(
    state: State<'_, AppState>,
    forwards: State<'_, Forwards>,
    id: String,
) -> Result<TunnelsView, AppError> {
    let r = forwards
        .running()
        .remove(&id)
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, format!("no running forward {id}")))?;
    let host_id = r.host_id.clone();
    r.tunnel.close().await;
    view(&state, &forwards, &host_id).await
}

/// Stops every forward (on quit).
pub async fn stop_all<R: Runtime>(app: &AppHandle<R>) {
    let Some(forwards) = app.try_state::<Forwards>() else {
        return;
    };
    let all: Vec<Running> = forwards.running().drain().map(|(_, r)| r).collect();
    for r in all {
        r.tunnel.close().await;
    }
}
