//! Noticing that this computer woke from sleep or moved to another network, so open sessions
//! check their connection at once ([`crate::session::Session::reconnect_now`]) instead of waiting
//! for the SSH keepalives to give up.
//!
//! Portable, without OS hooks: a ticker compares how much wall-clock time passed with how long it
//! asked to sleep. Tokio's timers run on the monotonic clock, which stands still while the machine
//! is suspended, so the first tick after a resume comes late by the whole sleep on the wall clock.
//! Each tick also compares this computer's interface addresses (Wi-Fi → Ethernet, VPN up, a new
//! DHCP lease). A false alarm (the wall clock set forward, a process stopped in a debugger) costs
//! one keepalive round trip.

use std::{
    collections::BTreeSet,
    net::IpAddr,
    time::{Duration, SystemTime},
};

use tokio::sync::mpsc;

/// Why a check is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wake {
    /// The process did not run for about this long: the computer slept (or was suspended).
    Resumed {
        /// Wall-clock time missing between two ticks.
        gap: Duration,
    },
    /// This computer's network addresses changed.
    NetworkChanged,
}

impl std::fmt::Display for Wake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Wake::Resumed { gap } => write!(f, "this computer woke up after {} s", gap.as_secs()),
            Wake::NetworkChanged => f.write_str("the network changed"),
        }
    }
}

/// How often [`watch`] ticks by default.
pub const DEFAULT_TICK: Duration = Duration::from_secs(2);

/// Starts watching; events arrive on the receiver. The watcher stops when the receiver is
/// dropped.
pub fn watch(tick: Duration) -> mpsc::Receiver<Wake> {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut known = addresses().await;
        loop {
            let before = SystemTime::now();
            tokio::select! {
                () = tokio::time::sleep(tick) => {}
                () = tx.closed() => return,
            }
            let wall = SystemTime::now().duration_since(before).unwrap_or_default();
            if let Some(gap) = suspended(tick, wall)
                && tx.send(Wake::Resumed { gap }).await.is_err()
            {
                return;
            }
            let now = addresses().await;
            if now != known {
                known = now;
                if tx.send(Wake::NetworkChanged).await.is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// The wall-clock time missing when a sleep of `asked` took `wall`: `None` for ordinary delays
/// (a busy machine wakes a timer late by milliseconds to a few seconds, never by many ticks).
pub fn suspended(asked: Duration, wall: Duration) -> Option<Duration> {
    let slack = (asked * 2).max(Duration::from_secs(5));
    (wall > asked + slack).then(|| wall.saturating_sub(asked))
}

/// This computer's addresses other than loopback (empty when they cannot be read).
async fn addresses() -> BTreeSet<IpAddr> {
    tokio::task::spawn_blocking(|| {
        if_addrs::get_if_addrs()
            .map(|list| {
                list.into_iter()
                    .filter(|i| !i.is_loopback())
                    .map(|i| i.ip())
                    .collect()
            })
            .unwrap_or_default()
    })
    .await
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_ticks_are_told_from_suspends() {
        let s = Duration::from_secs;
        assert_eq!(suspended(s(2), s(2)), None);
        assert_eq!(suspended(s(2), Duration::from_millis(6_900)), None);
        assert_eq!(suspended(s(2), s(62)), Some(s(60)));
        // Long ticks allow twice their length before calling it a suspend.
        assert_eq!(suspended(s(10), s(29)), None);
        assert_eq!(suspended(s(10), s(31)), Some(s(21)));
    }
}
