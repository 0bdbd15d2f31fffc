//! Progress of a transfer: bytes, files and rate, read by whoever shows it.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use serde::Serialize;

/// Counters a transfer updates as it goes; clones share them. Read with [`Progress::snapshot`].
#[derive(Debug, Clone)]
pub struct Progress {
    inner: Arc<Counters>,
}

#[derive(Debug)]
struct Counters {
    started: Instant,
    bytes_done: AtomicU64,
    bytes_total: AtomicU64,
    files_done: AtomicU64,
    files_total: AtomicU64,
}

/// Where a transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct TransferProgress {
    /// Bytes moved so far.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub bytes_done: u64,
    /// Bytes to move in all.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub bytes_total: u64,
    /// Files finished.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub files_done: u64,
    /// Files to move in all.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub files_total: u64,
    /// Average rate since the start, bytes per second.
    pub bytes_per_sec: f64,
}

impl Default for Progress {
    fn default() -> Self {
        Self::new(0, 0)
    }
}

impl Progress {
    /// Counters for `files_total` files of `bytes_total` bytes, starting now.
    pub fn new(files_total: u64, bytes_total: u64) -> Self {
        Self {
            inner: Arc::new(Counters {
                started: Instant::now(),
                bytes_done: AtomicU64::new(0),
                bytes_total: AtomicU64::new(bytes_total),
                files_done: AtomicU64::new(0),
                files_total: AtomicU64::new(files_total),
            }),
        }
    }

    /// Adds to the totals (work found while going).
    pub fn add_total(&self, files: u64, bytes: u64) {
        self.inner.files_total.fetch_add(files, Ordering::Relaxed);
        self.inner.bytes_total.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts `n` more bytes moved.
    pub fn add_bytes(&self, n: u64) {
        self.inner.bytes_done.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts one more file finished.
    pub fn file_done(&self) {
        self.inner.files_done.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> TransferProgress {
        let c = &self.inner;
        let bytes_done = c.bytes_done.load(Ordering::Relaxed);
        let secs = c.started.elapsed().as_secs_f64();
        TransferProgress {
            bytes_done,
            bytes_total: c.bytes_total.load(Ordering::Relaxed),
            files_done: c.files_done.load(Ordering::Relaxed),
            files_total: c.files_total.load(Ordering::Relaxed),
            bytes_per_sec: if secs > 0.0 {
                bytes_done as f64 / secs
            } else {
                0.0
            },
        }
    }
}

impl std::fmt::Display for TransferProgress {
    /// `12.3 / 40.0 MB, 3 / 10 files, 8.1 MB/s`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mb = |b: u64| b as f64 / 1e6;
        write!(
            f,
            "{:.1} / {:.1} MB, {} / {} files, {:.1} MB/s",
            mb(self.bytes_done),
            mb(self.bytes_total),
            self.files_done,
            self.files_total,
            self.bytes_per_sec / 1e6
        )
    }
}
