//! A host session as the app's sessions list and tray show it: its overall status, what runs on
//! it, and its open connection or why there is none.

use serde::Serialize;

use super::HostSession;
use crate::{
    error::{ErrorCode, Problem},
    ssh::Connection,
};

impl HostSession {
    /// The open connection now (it changes after a reconnect: ask each time), or why there is
    /// none: the problem that ended the session, `unsupported` for this computer (no SSH), or
    /// `unreachable` while it is being dialed or re-established.
    pub fn open_connection(&self) -> Result<Connection, Problem> {
        self.connection().ok_or_else(|| match self.ended() {
            Some(problem) => problem,
            None if self.is_local() => Problem::new(
                ErrorCode::Unsupported,
                "this computer is used without SSH: there is no connection",
            ),
            None => Problem::new(
                ErrorCode::Unreachable,
                "the host is not connected right now; Tunnelbook is connecting to it — try again \
                 in a moment",
            ),
        })
    }
}

/// Overall state of a session, for the sessions list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum SessionStatus {
    Starting,
    /// SSH is up: GPUs and environments can be read, a notebook launched.
    Connected,
    /// A notebook is being started (core's session runs).
    Launching,
    /// JupyterLab is reachable through the tunnel.
    Ready,
    /// The notebook's connection dropped after it was ready; the server keeps running.
    Disconnected,
    Failed,
    Closed,
}

impl SessionStatus {
    /// Whether a session in this status holds (or is opening) a connection: not failed, not
    /// closed.
    pub fn is_live(self) -> bool {
        !matches!(self, SessionStatus::Failed | SessionStatus::Closed)
    }
}

/// One session, as the sessions list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct SessionSummary {
    pub id: String,
    /// Host list id the session was started from.
    pub host_id: String,
    pub status: SessionStatus,
    /// The notebook URL once ready.
    pub url: Option<String>,
    /// The GPU it runs on (`null` for CPU only or not chosen yet).
    pub gpu: Option<String>,
    /// The environment the notebook runs from, once launched.
    #[serde(default)]
    pub env: Option<String>,
    /// Tunnelbook's id of the notebook server on the host (`tb-…`), once launched.
    #[serde(default)]
    pub server_id: Option<String>,
    /// Label of the notebook window, while one is open.
    #[serde(default)]
    pub window: Option<String>,
}

/// The number in a session id (`s3` → 3), for ordering sessions oldest first; `None` for an id
/// of another form.
pub fn session_number(id: &str) -> Option<u32> {
    id.strip_prefix('s')?.parse().ok()
}

/// `sessions` sorted oldest first (ids are `s1`, `s2`, …; other ids last).
pub fn oldest_first(mut sessions: Vec<SessionSummary>) -> Vec<SessionSummary> {
    sessions.sort_by_key(|s| session_number(&s.id).unwrap_or(u32::MAX));
    sessions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(id: &str) -> SessionSummary {
        SessionSummary {
            id: id.into(),
            host_id: "h".into(),
            status: SessionStatus::Ready,
            url: None,
            gpu: None,
            env: None,
            server_id: None,
            window: None,
        }
    }

    #[test]
    fn sessions_are_listed_oldest_first_by_their_number() {
        let sorted = oldest_first(vec![summary("s10"), summary("x"), summary("s2")]);
        let ids: Vec<_> = sorted.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["s2", "s10", "x"]);
        assert!(!SessionStatus::Closed.is_live() && SessionStatus::Disconnected.is_live());
    }
}
