//! The connection lasting tunnels forward over, swapped when it is lost and comes back.

use std::{sync::Arc, time::Duration};

use tokio::sync::watch;

use crate::ssh::Connection;

/// The connection that lasting tunnels ([`super::Tunnel::local_over`],
/// [`super::Tunnel::dynamic_over`]) forward over. Its owner (the session) sets it to `None` when
/// the connection is lost and to the new connection when it is back; the tunnels keep their
/// listeners meanwhile, so their local ports stay the same and a browser page reconnects by
/// itself. A local connection accepted during an outage waits up to the link's hold time for the
/// connection to come back, then is closed (the client sees a reset, as with a refused forward).
/// Clones share one slot.
#[derive(Clone)]
pub struct Link {
    slot: Arc<watch::Sender<Option<Connection>>>,
    hold: Duration,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("connected", &self.slot.borrow().is_some())
            .field("hold", &self.hold)
            .finish()
    }
}

impl Link {
    /// A link starting with `conn`, holding connections accepted during an outage up to `hold`.
    pub fn new(conn: Option<Connection>, hold: Duration) -> Link {
        Link {
            slot: Arc::new(watch::Sender::new(conn)),
            hold,
        }
    }

    /// A link that never changes: `conn`, and no holding (what a plain forward uses).
    pub fn fixed(conn: &Connection) -> Link {
        Link::new(Some(conn.clone()), Duration::ZERO)
    }

    /// Swaps the connection (`None`: there is none now; new local connections wait).
    pub fn set(&self, conn: Option<Connection>) {
        self.slot.send_replace(conn);
    }

    /// The connection now, if any.
    pub fn current(&self) -> Option<Connection> {
        self.slot.borrow().clone()
    }

    /// An open connection: the current one, or, during an outage, the next one set within the
    /// hold time. `None` when there is none by then.
    pub async fn get(&self) -> Option<Connection> {
        let mut rx = self.slot.subscribe();
        let wait = async move {
            loop {
                let current = rx.borrow_and_update().clone();
                if let Some(conn) = current
                    && !conn.is_closed()
                {
                    return conn;
                }
                if rx.changed().await.is_err() {
                    // The owner dropped the link: nothing will come.
                    std::future::pending::<()>().await;
                }
            }
        };
        // `timeout` polls the future once before looking at the clock, so a zero hold still
        // returns a connection that is there now.
        tokio::time::timeout(self.hold, wait).await.ok()
    }
}
