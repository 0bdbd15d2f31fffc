//! What the tray remembers between its looks at the sessions: the GPU counts its menu shows,
//! which GPUs were busy (to tell when one frees up), what its notices said, and the menu it
//! shows (rebuilt only when it changed).

use std::collections::{HashMap, HashSet};

use super::{
    GpuCount, Notice, NoticeMemory, SessionLook, TrayInput, TrayMenu, busy_gpus, freed_notices,
    gpu_count, menu_model, session_notices,
};
use crate::{gpu::GpuSnapshot, host::SessionSummary, profile::Profile, settings::Settings};

/// The tray's memory (see the module docs); one per app.
#[derive(Debug, Default)]
pub struct TrayMemory {
    gpus: HashMap<String, GpuCount>,
    busy: HashMap<String, HashSet<String>>,
    notices: NoticeMemory,
    menu: Option<TrayMenu>,
}

impl TrayMemory {
    /// The notifications for the sessions as they are `now` ([`session_notices`]); GPU counts
    /// of sessions no longer live are forgotten.
    pub fn look(&mut self, now: &[SessionLook]) -> Vec<Notice> {
        let notices = session_notices(now, &mut self.notices);
        let live: HashSet<&str> = now
            .iter()
            .filter(|l| l.summary.status.is_live())
            .map(|l| l.summary.id.as_str())
            .collect();
        self.gpus.retain(|id, _| live.contains(id.as_str()));
        self.busy.retain(|id, _| live.contains(id.as_str()));
        notices
    }

    /// Remembers session `session`'s GPUs as `snapshot` has them (free as `settings` says);
    /// returns a notification for each GPU freed since the last read, when the user watches the
    /// session's host (`settings.notify_gpu_free`).
    pub fn gpus_read(
        &mut self,
        session: &SessionSummary,
        snapshot: &GpuSnapshot,
        settings: &Settings,
    ) -> Vec<Notice> {
        let rule = &settings.gpu_free;
        self.gpus
            .insert(session.id.clone(), gpu_count(snapshot, rule));
        let before = self
            .busy
            .insert(session.id.clone(), busy_gpus(snapshot, rule));
        match before {
            Some(before) if settings.notify_gpu_free.contains(&session.host_id) => {
                freed_notices(&session.host_id, &before, snapshot, rule)
            }
            _ => Vec::new(),
        }
    }

    /// The menu for saved hosts `hosts` and the app's `sessions`, with the GPU counts read.
    pub fn model(&self, hosts: Vec<Profile>, sessions: Vec<SessionSummary>) -> TrayMenu {
        menu_model(&TrayInput {
            hosts,
            sessions,
            gpus: self.gpus.clone(),
        })
    }

    /// Remembers `model` as the menu shown; whether it differs from the one before (the desktop
    /// menu is rebuilt only then).
    pub fn shows(&mut self, model: &TrayMenu) -> bool {
        let changed = self.menu.as_ref() != Some(model);
        self.menu = Some(model.clone());
        changed
    }
}
