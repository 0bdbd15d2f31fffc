//! A session's SLURM side, for a front that keeps sessions (the app): whether its host is a
//! SLURM login node, and its row in the sessions list as its job notebook
//! ([`crate::slurm::notebook::JobNotebook`]) changes.

use std::time::Duration;

use super::{HostSession, SessionStatus, SessionSummary};
use crate::{profile::scheduler::Scheduler, slurm::notebook::NotebookNews};

impl HostSession {
    /// Whether this session's host is a SLURM login node: `saved` (the profile's `scheduler`)
    /// when set, else what the session detected when it connected (`sbatch` on the login PATH
    /// and `scontrol ping`), waiting up to 15 s for that probe when it still runs. This computer,
    /// and a host not connected now, are not.
    pub async fn is_slurm(&self, saved: Option<Scheduler>) -> bool {
        if let Some(s) = saved {
            return s == Scheduler::Slurm;
        }
        if self.is_local() || self.connection().is_none() {
            return false;
        }
        self.detected_scheduler(Duration::from_secs(15)).await == Some(Scheduler::Slurm)
    }
}

impl SessionSummary {
    /// Changes this row as `news` of its SLURM notebook says, apart from a ready notebook's URL
    /// and window (the front opens the window and keeps the token): a failure marks it failed;
    /// ready, ready with the job's server id and `job 7 on n1 · …` as its GPU; an end brings it
    /// back to choosing ([`Self::notebook_gone`]). Returns whether the notebook is over (its
    /// [`crate::slurm::notebook::JobNotebook`] to drop).
    pub fn job_news(&mut self, news: &NotebookNews) -> bool {
        match news {
            NotebookNews::Failed(_) => {
                self.status = SessionStatus::Failed;
                true
            }
            NotebookNews::Ready { server_id, gpu, .. } => {
                self.status = SessionStatus::Ready;
                self.gpu = Some(gpu.clone());
                self.server_id = Some(server_id.clone());
                false
            }
            NotebookNews::Ended { .. } => {
                self.notebook_gone();
                true
            }
            NotebookNews::Step(_) | NotebookNews::TimeLeft { .. } => false,
        }
    }

    /// Back to choosing after its notebook stopped or ended: connected (the connection is
    /// fine), no notebook URL, server or GPU to show. The window's label stays (the window may
    /// stay open with a banner saying why).
    pub fn notebook_gone(&mut self) {
        self.status = SessionStatus::Connected;
        self.url = None;
        self.server_id = None;
        self.gpu = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> SessionSummary {
        SessionSummary {
            id: "s1".into(),
            host_id: "login".into(),
            status: SessionStatus::Launching,
            url: None,
            gpu: None,
            env: None,
            server_id: None,
            window: None,
        }
    }

    /// A SLURM notebook's row follows its job: ready names the job as its server and GPU, the
    /// end brings it back to connected with nothing to show (the window stays), a failure marks
    /// it failed; steps and time left change nothing.
    #[test]
    fn the_row_follows_the_job() {
        let mut r = row();
        assert!(!r.job_news(&NotebookNews::TimeLeft {
            secs: 60,
            warning: None
        }));
        assert_eq!(r, row());
        let ready = NotebookNews::Ready {
            url: "http://127.0.0.1:1/lab?token=t".into(),
            server_id: "slurm-7".into(),
            gpu: "job 7 on n1 · CUDA_VISIBLE_DEVICES=0".into(),
        };
        assert!(!r.job_news(&ready));
        assert_eq!(r.status, SessionStatus::Ready);
        assert_eq!(r.server_id.as_deref(), Some("slurm-7"));
        assert_eq!(r.url, None, "the front keeps the token and sets the URL");
        r.url = Some("http://127.0.0.1:1/lab".into());
        r.window = Some("jupyter-1".into());
        let ended = NotebookNews::Ended {
            message: "Job 7 ended: FAILED".into(),
            timed_out: false,
        };
        assert!(r.job_news(&ended));
        assert_eq!(r.status, SessionStatus::Connected);
        assert_eq!((r.url, r.gpu, r.server_id), (None, None, None));
        assert_eq!(r.window.as_deref(), Some("jupyter-1"));
        let mut f = row();
        assert!(f.job_news(&NotebookNews::Failed(
            crate::slurm::SlurmError::NotConnected
        )));
        assert_eq!(f.status, SessionStatus::Failed);
    }
}
