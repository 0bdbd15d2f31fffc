//! What the tray tells the user as notifications: sessions that changed state or dropped, GPUs
//! that became free; and the GPU counts its menu shows. Pure functions over snapshots.

use std::collections::HashSet;

use super::GpuCount;
use crate::{
    gpu::{FreeRule, GpuSnapshot},
    host::{HostSession, SessionStatus, SessionSummary},
    jupyter::ServerView,
    profile::host_label,
    settings::SettingsStore,
    slurm::{JobLeftRunning, notebook::NotebookNews},
};

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
    /// The notification's title ("GPU free").
    pub title: String,
    /// One or two sentences: what happened and, where there is one, what to do.
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

/// What the tray says when its "Connect and open notebook" could not launch the notebook
/// (`why`: the error's message, which says what to do).
pub fn not_started_notice(why: &str) -> Notice {
    Notice {
        title: "Notebook not started".into(),
        body: why.to_string(),
    }
}

/// What the app says (once) when closing its main window left it running in the tray.
pub fn hidden_to_tray_notice() -> Notice {
    Notice {
        title: "Tunnelbook is still running".into(),
        body: "It keeps your sessions and tunnels open in the tray. Choose Quit there to stop."
            .into(),
    }
}

/// What closing the main window says when it left the app running in the tray: the notice the
/// first time only (that it was shown is kept in `store`'s settings), `None` after.
pub fn hidden_to_tray_once(store: &SettingsStore) -> Option<Notice> {
    let mut settings = store.load_or_default();
    if settings.tray_notice_shown {
        return None;
    }
    settings.tray_notice_shown = true;
    if let Err(e) = store.save(&settings) {
        tracing::warn!(error = %e, "cannot remember that the tray notice was shown");
    }
    Some(hidden_to_tray_notice())
}

/// The desktop notice a SLURM notebook's news gives (people walk away while it is queued): its
/// time-limit warnings (15 and 5 minutes before) and its end by itself; `None` for other news.
pub fn job_notice(news: &NotebookNews) -> Option<Notice> {
    let (title, body) = match news {
        NotebookNews::TimeLeft {
            warning: Some(body),
            ..
        } => ("Notebook time limit soon", body),
        NotebookNews::Ended {
            message,
            timed_out: true,
        } => ("Time limit reached", message),
        NotebookNews::Ended { message, .. } => ("Notebook job ended", message),
        _ => return None,
    };
    Some(Notice {
        title: title.into(),
        body: body.clone(),
    })
}

/// What the app says after quitting when SLURM jobs were left running (`left`): until when each
/// runs on, and how to get back to them. `None` when none was left.
pub fn left_running_notice(left: &[JobLeftRunning]) -> Option<Notice> {
    if left.is_empty() {
        return None;
    }
    let jobs: Vec<String> = left.iter().map(JobLeftRunning::words).collect();
    Some(Notice {
        title: "Notebooks left running".into(),
        body: format!(
            "{}. Reopen from Sessions, or `tunnelbook attach` on any computer.",
            jobs.join("; ")
        ),
    })
}

/// How a session's SSH connection stands (core's host session), for notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// The first dial runs: nothing can have dropped yet ("Trust and connect", Connect after a
    /// restart).
    Connecting,
    /// Open (this computer: always).
    Up,
    /// Lost, being dialed again.
    Down,
    /// Lost for good, or never opened.
    Ended,
}

impl LinkState {
    /// The state of host session `host` now.
    pub fn of(host: &HostSession) -> Self {
        if host.is_ended() {
            LinkState::Ended
        } else if host.is_reconnecting() {
            LinkState::Down
        } else if host.is_up() {
            LinkState::Up
        } else {
            LinkState::Connecting
        }
    }
}

/// One session at one look: what the sessions list shows, and its connection.
#[derive(Debug, Clone)]
pub struct SessionLook {
    /// The session as the sessions list shows it.
    pub summary: SessionSummary,
    /// How its connection stands.
    pub link: LinkState,
}

/// What the notices remember between looks: the sessions as last seen, which sessions' connections
/// were ever up (a first connect that fails dropped nothing), and whose outage was told (one
/// notice per outage, however many signs of it arrive).
#[derive(Debug, Default)]
pub struct NoticeMemory {
    before: Vec<SessionSummary>,
    was_up: HashSet<String>,
    told_outage: HashSet<String>,
}

/// Notifications for what changed since the last look at the sessions (`now`): a notebook became
/// ready, or ready again after an outage; a connection that was up dropped (once per outage: the
/// host's connection going down and the notebook's tunnel reconnecting are the same outage); a
/// notebook server stopped while the connection is fine ("server gone", never "Connection
/// dropped"). A session still connecting, or just connected, dropped nothing; a closed one is
/// not reported.
pub fn session_notices(now: &[SessionLook], memory: &mut NoticeMemory) -> Vec<Notice> {
    let mut out = Vec::new();
    for look in now {
        let s = &look.summary;
        let id = &s.id;
        if s.status == SessionStatus::Closed {
            memory.told_outage.remove(id);
            continue;
        }
        if look.link == LinkState::Up {
            memory.was_up.insert(id.clone());
        }
        let was = memory.before.iter().find(|b| &b.id == id).map(|b| b.status);
        let host = host_label(&s.host_id);
        let dropped = match look.link {
            LinkState::Down => true,
            LinkState::Ended => memory.was_up.contains(id),
            LinkState::Connecting => false,
            // The host's connection is back but the notebook's tunnel is still re-established.
            LinkState::Up => s.status == SessionStatus::Disconnected,
        } && s.status != SessionStatus::Starting;
        if dropped {
            if memory.told_outage.insert(id.clone()) {
                out.push(drop_notice(s));
            }
            continue;
        }
        let reconnected = Notice {
            title: "Reconnected".into(),
            body: format!("The connection to {host} is back; JupyterLab carries on."),
        };
        // The end of an outage that was told, however the notebook's own status went.
        if memory.told_outage.remove(id) && s.status == SessionStatus::Ready {
            out.push(reconnected);
            continue;
        }
        match (was, s.status) {
            (Some(w), SessionStatus::Ready) if w != SessionStatus::Ready => {
                out.push(if w == SessionStatus::Disconnected {
                    reconnected
                } else {
                    Notice {
                        title: "Notebook ready".into(),
                        body: format!("JupyterLab on {host} is ready."),
                    }
                })
            }
            // The connection is fine and the notebook failed after it was ready: its server
            // stopped (killed, out of memory).
            (Some(SessionStatus::Ready | SessionStatus::Disconnected), SessionStatus::Failed)
                if look.link == LinkState::Up =>
            {
                out.push(Notice {
                    title: "Notebook server stopped".into(),
                    body: format!(
                        "JupyterLab on {host} is gone (stopped or out of memory); the connection \
                         is fine. Restart it from Tunnelbook's Connect screen."
                    ),
                })
            }
            _ => {}
        }
    }
    memory.before = now.iter().map(|l| l.summary.clone()).collect();
    let live: HashSet<&String> = now.iter().map(|l| &l.summary.id).collect();
    memory.was_up.retain(|id| live.contains(id));
    memory.told_outage.retain(|id| live.contains(id));
    out
}

fn drop_notice(s: &SessionSummary) -> Notice {
    Notice {
        title: "Connection dropped".into(),
        body: format!(
            "The connection to {} was lost; Tunnelbook reconnects when it can.",
            host_label(&s.host_id)
        ),
    }
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
