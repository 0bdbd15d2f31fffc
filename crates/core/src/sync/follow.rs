//! Following a project's saves on the host: bring back every few seconds, at once on request,
//! and once more at the end — through reconnects. `tunnelbook open` and the app's "Open
//! notebook…" both follow their project this way.

use std::{sync::Arc, time::Duration};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{BroughtBack, Project, SyncError};
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
