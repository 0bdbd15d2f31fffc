//! The tray: its menu as a plain model built from the saved hosts, the sessions and their GPU
//! counts by a pure function ([`menu_model`], readable through the app's `tray_menu` command),
//! the actions its items stand for ([`TrayAction`]), what it tells the user as notifications
//! ([`notices`]), and what it remembers between looks ([`TrayMemory`]).
//!
//! What it leaves out: building the desktop's menu from the model, carrying out the actions and
//! showing notifications — the app does those with tauri.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::{
    host::{SessionStatus, SessionSummary},
    profile::{LOCAL_NAME, Profile, host_label},
};

mod memory;
mod notices;
pub mod shown;
#[cfg(test)]
mod tests;

pub use self::{
    memory::TrayMemory,
    notices::{
        LinkState, Notice, NoticeMemory, SessionLook, already_running_notice, busy_gpus,
        freed_notices, gpu_count, hidden_to_tray_notice, hidden_to_tray_once, job_notice,
        left_running_notice, not_started_notice, session_notices,
    },
};

/// One entry of the tray menu.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum TrayEntry {
    /// A clickable item; `id` parses as a [`TrayAction`].
    Action { id: String, label: String },
    /// Information only (greyed out).
    Info { label: String },
    /// A line between groups.
    Separator,
    /// A submenu.
    Submenu {
        label: String,
        items: Vec<TrayEntry>,
    },
}

/// The whole tray menu, as `tray_menu` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct TrayMenu {
    pub items: Vec<TrayEntry>,
}

/// Free and total GPUs of a connected host at the last refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GpuCount {
    /// GPUs (and MIG instances) free by the user's rule.
    pub free: usize,
    /// GPUs (and MIG instances) a notebook can be pinned to.
    pub total: usize,
}

/// What the menu is built from.
#[derive(Debug, Clone, Default)]
pub struct TrayInput {
    /// Saved hosts, in their saved order ("This computer" is added by [`menu_model`]).
    pub hosts: Vec<Profile>,
    /// Every session the app started.
    pub sessions: Vec<SessionSummary>,
    /// GPU counts by session id, for connected sessions whose GPUs were read.
    pub gpus: HashMap<String, GpuCount>,
}

/// What a menu item does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrayAction {
    /// Start a session on a host (its saved defaults) and show it.
    Connect(String),
    /// Open a session's notebook in an app window.
    Open(String),
    /// Open a session's notebook in the browser.
    Browser(String),
    /// Stop a session.
    Stop(String),
    /// "Open notebook on GPU…": pick a local notebook, then run it on a session's host as the
    /// Files view's "Open notebook…" does.
    OpenLocalNotebook(String),
    /// Show the main window.
    Show,
    /// Quit (asking about remote notebooks when some run).
    Quit,
}

impl TrayAction {
    /// The menu item id of this action.
    pub fn id(&self) -> String {
        match self {
            TrayAction::Connect(h) => format!("connect:{h}"),
            TrayAction::Open(s) => format!("open:{s}"),
            TrayAction::Browser(s) => format!("browser:{s}"),
            TrayAction::Stop(s) => format!("stop:{s}"),
            TrayAction::OpenLocalNotebook(s) => format!("notebook:{s}"),
            TrayAction::Show => "show".into(),
            TrayAction::Quit => "quit".into(),
        }
    }

    /// The action of menu item `id`.
    pub fn parse(id: &str) -> Option<TrayAction> {
        match id {
            "show" => return Some(TrayAction::Show),
            "quit" => return Some(TrayAction::Quit),
            _ => {}
        }
        let (verb, arg) = id.split_once(':')?;
        let arg = arg.to_string();
        match verb {
            "connect" => Some(TrayAction::Connect(arg)),
            "open" => Some(TrayAction::Open(arg)),
            "browser" => Some(TrayAction::Browser(arg)),
            "stop" => Some(TrayAction::Stop(arg)),
            "notebook" => Some(TrayAction::OpenLocalNotebook(arg)),
            _ => None,
        }
    }
}

fn status_word(status: SessionStatus) -> &'static str {
    match status {
        SessionStatus::Starting => "starting",
        SessionStatus::Connected => "connected",
        SessionStatus::Launching => "launching notebook",
        SessionStatus::Disconnected => "connection lost",
        SessionStatus::Ready => "notebook ready",
        SessionStatus::Failed => "failed",
        SessionStatus::Closed => "closed",
    }
}

fn action(a: TrayAction, label: impl Into<String>) -> TrayEntry {
    TrayEntry::Action {
        id: a.id(),
        label: label.into(),
    }
}

fn info(label: impl Into<String>) -> TrayEntry {
    TrayEntry::Info {
        label: label.into(),
    }
}

fn session_items(s: &SessionSummary) -> Vec<TrayEntry> {
    let mut items = Vec::new();
    if s.url.is_some() {
        items.push(action(TrayAction::Open(s.id.clone()), "Open notebook"));
        items.push(action(TrayAction::Browser(s.id.clone()), "Open in browser"));
    }
    // A local notebook goes up over the session's connection: a host with one open.
    if s.host_id != LOCAL_NAME
        && matches!(s.status, SessionStatus::Connected | SessionStatus::Ready)
    {
        items.push(action(
            TrayAction::OpenLocalNotebook(s.id.clone()),
            "Open notebook on GPU…",
        ));
    }
    items.push(action(TrayAction::Stop(s.id.clone()), "Stop"));
    items
}

/// What a session is, in the user's words ("Notebook ready, GPU 3"), never its internal id.
pub fn session_label(s: &SessionSummary) -> String {
    let gpu = s
        .gpu
        .as_ref()
        // Already in words ("GPU 3"), or a UUID when core had no label for it.
        .map(|g| format!(", {g}"))
        .unwrap_or_default();
    let word = status_word(s.status);
    let mut chars = word.chars();
    let word = chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect::<String>())
        .unwrap_or_default();
    format!("{word}{gpu}")
}

/// `labels` made unique for a menu: the second "Connected" becomes "Connected (2)".
pub fn numbered(labels: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(labels.len());
    for label in labels {
        let seen = out
            .iter()
            .filter(|l| *l == &label || l.starts_with(&format!("{label} (")))
            .count();
        out.push(if seen == 0 {
            label
        } else {
            format!("{label} ({})", seen + 1)
        });
    }
    out
}

/// The tray menu for `input`: one submenu per host (connect with its defaults, or its running
/// sessions, a running notebook among them, each listed once), a free-GPU line per connected
/// host, then Show and Quit.
pub fn menu_model(input: &TrayInput) -> TrayMenu {
    let mut items = Vec::new();
    let local = Profile {
        name: LOCAL_NAME.into(),
        ..Profile::default()
    };
    for host in std::iter::once(&local).chain(input.hosts.iter()) {
        let label = host_label(&host.name);
        let live: Vec<&SessionSummary> = input
            .sessions
            .iter()
            .filter(|s| s.host_id == host.name && s.status.is_live())
            .collect();
        let mut sub = Vec::new();
        if live.is_empty() {
            sub.push(action(
                TrayAction::Connect(host.name.clone()),
                "Connect and open notebook",
            ));
            if host.name != LOCAL_NAME {
                let gpu = host.gpu.as_deref().unwrap_or("auto");
                let user = host
                    .user
                    .as_ref()
                    .map(|u| format!("{u}@"))
                    .unwrap_or_default();
                sub.push(info(format!(
                    "{user}{}:{} · GPU {gpu}",
                    host.host, host.port
                )));
            }
        } else {
            // One connection per host: no second session. A connected host without a notebook
            // starts one on its open connection with the saved defaults (Connect reuses it).
            let notebook = live
                .iter()
                .any(|s| matches!(s.status, SessionStatus::Launching | SessionStatus::Ready));
            let labels = numbered(live.iter().map(|s| session_label(s)).collect());
            for (s, label) in live.into_iter().zip(labels) {
                sub.push(TrayEntry::Submenu {
                    label,
                    items: session_items(s),
                });
            }
            if !notebook {
                sub.push(TrayEntry::Separator);
                sub.push(action(
                    TrayAction::Connect(host.name.clone()),
                    "Start a notebook",
                ));
            }
        }
        items.push(TrayEntry::Submenu { label, items: sub });
    }

    // A running notebook is listed once: in its host's submenu (trial of #14, finding 18 — a
    // "Running notebooks" list repeated it).

    // One line per connected host, in session order, each host once.
    let mut seen = HashSet::new();
    let mut gpu_lines = Vec::new();
    for s in input.sessions.iter().filter(|s| s.status.is_live()) {
        if let Some(count) = input.gpus.get(&s.id)
            && seen.insert(s.host_id.clone())
        {
            gpu_lines.push(info(if count.total == 0 {
                format!("{}: no GPU", host_label(&s.host_id))
            } else {
                format!(
                    "{}: {} of {} GPUs free",
                    host_label(&s.host_id),
                    count.free,
                    count.total
                )
            }));
        }
    }
    if !gpu_lines.is_empty() {
        items.push(TrayEntry::Separator);
        items.extend(gpu_lines);
    }

    items.push(TrayEntry::Separator);
    items.push(action(TrayAction::Show, "Show Tunnelbook"));
    items.push(action(TrayAction::Quit, "Quit"));
    TrayMenu { items }
}

/// Whether the tray follows session `s`'s GPUs (its connection is open: connected, launching or
/// ready).
pub fn reads_gpus(s: &SessionSummary) -> bool {
    matches!(
        s.status,
        SessionStatus::Connected | SessionStatus::Launching | SessionStatus::Ready
    )
}
