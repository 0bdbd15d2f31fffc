//! Following a project's saves on the host: bring back every few seconds, at once on request,
//! and once more at the end — through reconnects. `tunnelbook open` and the app's "Open
//! notebook…" both follow their project this way.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{BroughtBack, Project, State, SyncError};
use crate::{
    sftp::{Sftp, SftpError},
    ssh::Connection,
};

/// When to bring back.
#[derive(Debug, Clone)]
pub struct Follow {
    /// Time between two checks of the host's folder.
    pub interval: Duration,
    /// Notified: check now ("Bring back now").
    pub now: Arc<Notify>,
    /// Cancelled: check once more, then stop.
    pub stop: CancellationToken,
}

/// What following found.
#[derive(Debug)]
pub enum FollowEvent {
    /// Files came back (never empty).
    Back(Vec<BroughtBack>),
    /// Bringing back failed, in words; reported once until it works again or fails otherwise.
    /// Following goes on.
    Failed(String),
}

impl Project {
    /// Remembers (`Some(notebook)`, inside the project) that the app follows this project's
    /// saves, so the next connection to the host resumes ([`followed`]); `None` forgets it
    /// ("Stop syncing").
    ///
    /// # Errors
    /// [`SyncError::Local`] when the state file cannot be written.
    pub fn set_followed(&mut self, notebook: Option<&str>) -> Result<(), SyncError> {
        self.state.followed = notebook.map(|n| Followed {
            host: self.label.clone(),
            local_root: self.local_root.clone(),
            remote_root: self.remote_root.clone(),
            notebook: n.to_string(),
        });
        self.save_state()
    }

    /// Brings back the host's saves over `sftp` as `how` says, until `how.stop` (then once
    /// more), reporting to `report`. When the SFTP session breaks (the connection dropped),
    /// it is reopened over `connection()` — the host's connection now, `None` while it is
    /// being re-established — so a save made during an outage comes back after the reconnect.
    pub async fn follow(
        &mut self,
        sftp: Sftp,
        connection: impl Fn() -> Option<Connection>,
        how: Follow,
        mut report: impl FnMut(FollowEvent),
    ) {
        let mut sftp = Some(sftp);
        let cancel = CancellationToken::new();
        let mut last_error = String::new();
        loop {
            let stopping = tokio::select! {
                () = how.stop.cancelled() => true,
                () = how.now.notified() => false,
                () = tokio::time::sleep(how.interval) => false,
            };
            if sftp.is_none()
                && let Some(conn) = connection()
            {
                sftp = Sftp::open(&conn).await.ok();
            }
            if let Some(s) = &sftp {
                match self.bring_back(s, &cancel).await {
                    Ok(back) => {
                        last_error.clear();
                        if !back.is_empty() {
                            report(FollowEvent::Back(back));
                        }
                    }
                    Err(e) => {
                        let text = e.to_string();
                        if text != last_error {
                            report(FollowEvent::Failed(text.clone()));
                            last_error = text;
                        }
                        if matches!(
                            e,
                            SyncError::Sftp(SftpError::Session { .. } | SftpError::Ssh(_))
                        ) {
                            s.close();
                            sftp = None;
                        }
                    }
                }
            }
            if stopping {
                break;
            }
        }
        if let Some(s) = sftp {
            s.close();
        }
    }
}

/// A project the app was following when it last ran (closed or disconnected since, never
/// stopped): what [`followed`] lists to resume on the next connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Followed {
    /// The host's saved name.
    pub host: String,
    /// The local folder (absolute).
    pub local_root: PathBuf,
    /// The remote folder (absolute).
    pub remote_root: String,
    /// The notebook opened in it, inside the project (`/`-separated).
    pub notebook: String,
}

/// The projects on host `host` still followed when the app last ran ([`Project::set_followed`]),
/// whose local folder still exists, in the state folder `home`. Unreadable state files are
/// skipped.
pub fn followed(home: &Path, host: &str) -> Vec<Followed> {
    let Ok(entries) = std::fs::read_dir(home.join("sync")) else {
        return Vec::new();
    };
    let mut found: Vec<Followed> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|b| serde_json::from_slice::<State>(&b).ok())
        .filter_map(|s| s.followed)
        .filter(|f| f.host == host && f.local_root.is_dir())
        .collect();
    found.sort_by(|a, b| a.local_root.cmp(&b.local_root));
    found
}
