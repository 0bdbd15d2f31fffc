//! Following a ready job: what each poll means to the person waiting on it — time left, the
//! warnings before the time limit (15 and 5 minutes), and how it ended. The app and the CLI
//! both follow a job through [`JobWatch`]; they differ only in how they say it.

use std::time::Duration;

use super::{job::JobPhase, reason_in_words};

/// How often a front polls a ready job (time left, its end).
pub const RUNNING_POLL: Duration = Duration::from_secs(5);

/// Minutes before the time limit at which a running job warns, largest first.
pub const WARN_AT_MINUTES: [u64; 2] = [15, 5];

/// What one poll of a running job means ([`JobWatch::observe`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobNews {
    /// The job runs.
    Running {
        /// Seconds left before its time limit, if SLURM knows.
        time_left_secs: Option<u64>,
        /// The warning mark (minutes, one of [`WARN_AT_MINUTES`]) reached with this poll; each
        /// mark once, the smallest one reached (a short job warns once, at 5).
        warn_at_minutes: Option<u64>,
    },
    /// The job ended.
    Ended(JobEnd),
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobEnd {
    /// Its final state (`TIMEOUT`, `CANCELLED`, `COMPLETED`, …).
    pub state: String,
    /// SLURM's reason, if any.
    pub reason: Option<String>,
    /// SLURM ended it at its time limit.
    pub timed_out: bool,
}

impl JobEnd {
    /// The state and, when SLURM gave one, the reason in words: `FAILED (a node it needs is
    /// down)`.
    pub fn words(&self) -> String {
        let why = self
            .reason
            .as_deref()
            .map(|r| format!(" ({})", reason_in_words(r)))
            .unwrap_or_default();
        format!("{}{why}", self.state)
    }
}

/// Follows one job's polls ([`super::job::poll`]) and says what is news.
#[derive(Debug, Clone, Default)]
pub struct JobWatch {
    /// The smallest warning mark given so far.
    warned: Option<u64>,
}

impl JobWatch {
    /// A watch that has warned of nothing yet.
    pub fn new() -> JobWatch {
        JobWatch::default()
    }

    /// Polls job `job_id` over `conn` once ([`super::job::poll`]) and says what its state means
    /// ([`JobWatch::observe`]); a failed poll (a dropped connection, a slow `squeue`) tells
    /// nothing and is logged.
    pub async fn poll(&mut self, conn: &crate::ssh::Connection, job_id: &str) -> Option<JobNews> {
        match super::job::poll(conn, job_id).await {
            Ok(phase) => self.observe(phase),
            Err(e) => {
                tracing::debug!(error = %e, "poll failed");
                None
            }
        }
    }

    /// What `phase` means: `None` for nothing to tell (queued, starting, or the first step of
    /// SLURM's two-step end: `COMPLETING` while its processes are killed, unless the reason
    /// already says the time limit ended it).
    pub fn observe(&mut self, phase: JobPhase) -> Option<JobNews> {
        match phase {
            JobPhase::Running { time_left_secs, .. } => {
                let mark = time_left_secs.and_then(|left| {
                    WARN_AT_MINUTES
                        .iter()
                        .rev()
                        .copied()
                        .find(|m| left <= m * 60)
                });
                let warn_at_minutes = mark.filter(|&m| self.warned.is_none_or(|w| w > m));
                if warn_at_minutes.is_some() {
                    self.warned = warn_at_minutes;
                }
                Some(JobNews::Running {
                    time_left_secs,
                    warn_at_minutes,
                })
            }
            JobPhase::Ended { state, reason } => {
                let timed_out = state == "TIMEOUT" || reason.as_deref() == Some("TimeLimit");
                if state == "COMPLETING" && !timed_out {
                    return None;
                }
                Some(JobNews::Ended(JobEnd {
                    state,
                    reason,
                    timed_out,
                }))
            }
            JobPhase::Queued { .. } | JobPhase::Starting { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(left: Option<u64>) -> JobPhase {
        JobPhase::Running {
            connection: super::super::job::ConnectionFile {
                job_id: "7".into(),
                node: "n1".into(),
                host: "127.0.0.1".into(),
                port: 8888,
                pid: 1,
                cuda_visible_devices: "0".into(),
                launch_dir: String::new(),
            },
            time_left_secs: left,
        }
    }

    fn warns(watch: &mut JobWatch, left: Option<u64>) -> Option<u64> {
        match watch.observe(running(left)) {
            Some(JobNews::Running {
                warn_at_minutes, ..
            }) => warn_at_minutes,
            other => panic!("{other:?}"),
        }
    }

    /// Each mark warns once, the smallest reached; a short job warns once, at 5 minutes.
    #[test]
    fn time_left_warns_once_per_mark() {
        let mut w = JobWatch::new();
        assert_eq!(warns(&mut w, None), None);
        assert_eq!(warns(&mut w, Some(3600)), None);
        assert_eq!(warns(&mut w, Some(15 * 60)), Some(15));
        assert_eq!(warns(&mut w, Some(14 * 60)), None);
        assert_eq!(warns(&mut w, Some(5 * 60)), Some(5));
        assert_eq!(warns(&mut w, Some(60)), None);
        let mut short = JobWatch::new();
        assert_eq!(warns(&mut short, Some(240)), Some(5));
        assert_eq!(warns(&mut short, Some(200)), None);
    }

    /// COMPLETING is not the end unless the time limit is the reason; TIMEOUT is timed out.
    #[test]
    fn the_end_is_told_once_with_its_reason() {
        let mut w = JobWatch::new();
        let ended = |state: &str, reason: Option<&str>| JobPhase::Ended {
            state: state.into(),
            reason: reason.map(str::to_string),
        };
        assert_eq!(w.observe(ended("COMPLETING", None)), None);
        let Some(JobNews::Ended(end)) = w.observe(ended("COMPLETING", Some("TimeLimit"))) else {
            panic!("a time-limit COMPLETING is the end");
        };
        assert!(end.timed_out);
        let Some(JobNews::Ended(end)) = w.observe(ended("FAILED", Some("NodeDown"))) else {
            panic!("FAILED is the end");
        };
        assert!(!end.timed_out);
        assert_eq!(end.words(), "FAILED (a node it needs is down)");
        assert_eq!(w.observe(JobPhase::Starting { node: "n1".into() }), None);
    }
}
