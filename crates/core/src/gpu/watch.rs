//! Polling: where snapshots come from ([`GpuSource`]) and the live stream ([`watch`]) the GPU
//! picker and `tunnelbook gpus --watch` read while they are open.

use std::{future::Future, time::Duration};

use tokio::sync::mpsc;

use super::{GpuError, GpuSnapshot, LocalGpus, snapshot};
use crate::ssh::Connection;

/// How often [`watch`] polls unless told otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);

/// Something that can take a [`GpuSnapshot`]: a remote host over SSH, or this computer.
pub trait GpuSource: Send + Sync + 'static {
    /// Takes one snapshot. Implementors must not hold locks or connections open between calls
    /// in a way that blocks other users of the source, and must report "no GPU" as a snapshot
    /// with a reason, not as an error.
    fn snapshot(&self) -> impl Future<Output = Result<GpuSnapshot, GpuError>> + Send;
}

impl GpuSource for Connection {
    fn snapshot(&self) -> impl Future<Output = Result<GpuSnapshot, GpuError>> + Send {
        snapshot(self)
    }
}

impl GpuSource for LocalGpus {
    fn snapshot(&self) -> impl Future<Output = Result<GpuSnapshot, GpuError>> + Send {
        let this = self.clone();
        async move {
            tokio::task::spawn_blocking(move || this.read())
                .await
                .map_err(|e| GpuError::Nvml(format!("the NVML reader stopped: {e}")))?
        }
    }
}

/// Polls `source` every `interval` (the first snapshot right away) and sends each result.
///
/// Errors are sent too and polling goes on, so a transient failure shows and then heals. Dropping
/// the receiver stops the polling at the next send or during the wait, and the source is dropped.
pub fn watch<S: GpuSource>(
    source: S,
    interval: Duration,
) -> mpsc::Receiver<Result<GpuSnapshot, GpuError>> {
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        loop {
            let result = tokio::select! {
                result = source.snapshot() => result,
                () = tx.closed() => break,
            };
            if tx.send(result).await.is_err() {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = tx.closed() => break,
            }
        }
        tracing::debug!("GPU watch stopped: the receiver was dropped");
    });
    rx
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use super::*;

    #[derive(Clone)]
    struct Counting(Arc<AtomicUsize>);

    impl GpuSource for Counting {
        fn snapshot(&self) -> impl Future<Output = Result<GpuSnapshot, GpuError>> + Send {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 1 {
                    Err(GpuError::Unreadable {
                        host: "t".into(),
                        detail: "flaky".into(),
                    })
                } else {
                    Ok(GpuSnapshot {
                        host: format!("poll {n}"),
                        ..GpuSnapshot::default()
                    })
                }
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn polls_until_the_receiver_is_dropped() {
        let calls = Arc::new(AtomicUsize::new(0));
        let mut rx = watch(Counting(calls.clone()), Duration::from_secs(2));
        let first = rx.recv().await.and_then(Result::ok).map(|s| s.host);
        assert_eq!(first.as_deref(), Some("poll 0"));
        // An error is reported and polling goes on.
        assert!(matches!(
            rx.recv().await,
            Some(Err(GpuError::Unreadable { .. }))
        ));
        let third = rx.recv().await.and_then(Result::ok).map(|s| s.host);
        assert_eq!(third.as_deref(), Some("poll 2"));
        drop(rx);
        tokio::time::sleep(Duration::from_secs(30)).await;
        let after_drop = calls.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            after_drop,
            "polling went on after the drop"
        );
        // The task ended and dropped its source: only our handle is left.
        assert_eq!(Arc::strong_count(&calls), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn waits_the_interval_between_polls() {
        let calls = Arc::new(AtomicUsize::new(0));
        let mut rx = watch(Counting(calls.clone()), Duration::from_secs(5));
        let start = tokio::time::Instant::now();
        let _ = rx.recv().await;
        let _ = rx.recv().await;
        assert!(start.elapsed() >= Duration::from_secs(5));
        assert!(start.elapsed() < Duration::from_secs(6));
    }
}
