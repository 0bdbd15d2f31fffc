//! What the tray tells the user as notifications: sessions that changed state or dropped, GPUs
//! that became free; and the GPU counts its menu shows. Pure functions over snapshots.

use super::*;

/// Free and total GPUs of a snapshot (MIG instances count as what a notebook can be pinned to),
/// free as `rule` (the settings) says.
pub fn gpu_count(snapshot: &GpuSnapshot, rule: &FreeRule) -> GpuCount {
    let choices = snapshot.rank(rule);
    GpuCount {
        free: choices.iter().filter(|c| c.free).count(),
        total: choices.len(),
    }
}

/// A desktop notification to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub title: String,
    pub body: String,
}

/// What the tray says instead of launching when `servers` (on host `host_id`) include a
/// Tunnelbook server: the notebook runs already and the window offers Reopen. `None` when none
/// of them is Tunnelbook's (servers started by hand are listed in the window, not reused).
pub fn already_running_notice(host_id: &str, servers: &[ServerView]) -> Option<Notice> {
    let managed: Vec<&ServerView> = servers.iter().filter(|s| s.managed).collect();
    let first = managed.first()?;
    let on = match &first.gpu {
        Some(gpu) if gpu.chars().all(|c| c.is_ascii_digit()) => format!(" on GPU {gpu}"),
        // A UUID says nothing to a person; the window names the GPU as "GPU 3".
        Some(_) => String::new(),
        None => " (CPU only)".into(),
    };
    let more = match managed.len() {
        1 => String::new(),
        n => format!(" ({n} Tunnelbook notebooks run there)"),
    };
    Some(Notice {
        title: format!("Notebook already running on {}", host_label(host_id)),
        body: format!(
            "A notebook runs{on}{more}; none was started. Reopen it from the window (same address), or start another there."
        ),
    })
}

/// Notifications for what changed between two looks at the sessions: a notebook became ready,
/// a connected session dropped.
pub fn session_notices(before: &[SessionSummary], now: &[SessionSummary]) -> Vec<Notice> {
    let mut out = Vec::new();
    for s in now {
        let was = before.iter().find(|b| b.id == s.id).map(|b| b.status);
        let host = host_label(&s.host_id);
        match (was, s.status) {
            (Some(w), SessionStatus::Ready) if w != SessionStatus::Ready => out.push(Notice {
                title: "Notebook ready".into(),
                body: format!("JupyterLab on {host} is ready."),
            }),
            (
                Some(SessionStatus::Connected | SessionStatus::Launching | SessionStatus::Ready),
                SessionStatus::Failed | SessionStatus::Disconnected,
            ) => out.push(drop_notice(s)),
            _ => {}
        }
    }
    out
}

pub(super) fn drop_notice(s: &SessionSummary) -> Notice {
    Notice {
        title: "Connection dropped".into(),
        body: format!(
            "The connection to {} was lost; Tunnelbook reconnects when it can.",
            host_label(&s.host_id)
        ),
    }
}

/// Notifications for live sessions whose SSH connection closed under them (`closed`), each
/// session once (`told` remembers which were reported). A session still starting has no
/// connection yet: nothing dropped.
pub fn closed_notices(closed: &[SessionSummary], told: &mut HashSet<String>) -> Vec<Notice> {
    closed
        .iter()
        .filter(|s| s.status != SessionStatus::Starting)
        .filter(|s| told.insert(s.id.clone()))
        .map(drop_notice)
        .collect()
}

/// Busy GPUs (by `cudaVisibleDevices`) of a snapshot, by `rule`.
pub fn busy_gpus(snapshot: &GpuSnapshot, rule: &FreeRule) -> HashSet<String> {
    snapshot
        .rank(rule)
        .into_iter()
        .filter(|c| !c.free)
        .map(|c| c.cuda_visible_devices)
        .collect()
}

/// A notification for each GPU that was busy before and is free now, on a watched host.
pub fn freed_notices(
    host: &str,
    busy_before: &HashSet<String>,
    snapshot: &GpuSnapshot,
    rule: &FreeRule,
) -> Vec<Notice> {
    let mut freed: Vec<_> = snapshot
        .rank(rule)
        .into_iter()
        .filter(|c| c.free && busy_before.contains(&c.cuda_visible_devices))
        .map(|c| c.label())
        .collect();
    freed.sort();
    freed
        .into_iter()
        .map(|label| Notice {
            title: "GPU free".into(),
            body: format!("{label} on {} is free now.", host_label(host)),
        })
        .collect()
}
