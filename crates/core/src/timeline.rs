//! The step timeline of a session: when each step began and how long it took, built from the
//! session's [`SessionEvent::Progress`] events as they arrive (the session sends each one as its
//! step begins or ends), so a slow start shows which step it was. `tunnelbook up --timings` and
//! the benchmarks print it.

use std::{
    fmt::Write as _,
    time::{Duration, Instant},
};

use serde::Serialize;

use crate::session::{SessionEvent, Step, StepState};

/// One step on the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepTime {
    /// The step.
    pub step: Step,
    /// When it began, in milliseconds since the timeline started.
    pub began_ms: u64,
    /// How long it took, in milliseconds; `None` while it runs (or when it failed).
    pub took_ms: Option<u64>,
    /// Whether it was skipped (not needed).
    pub skipped: bool,
}

/// Progress events turned into step times. Start it when the session is started.
#[derive(Debug, Clone)]
pub struct Timeline {
    start: Instant,
    steps: Vec<StepTime>,
    ready_ms: Option<u64>,
}

impl Default for Timeline {
    fn default() -> Self {
        Self::new()
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Timeline {
    /// A timeline starting now.
    pub fn new() -> Self {
        Self::starting_at(Instant::now())
    }

    /// A timeline starting at `start`.
    pub fn starting_at(start: Instant) -> Self {
        Self {
            start,
            steps: Vec::new(),
            ready_ms: None,
        }
    }

    /// Notes `event`, seen now.
    pub fn record(&mut self, event: &SessionEvent) {
        self.record_at(event, Instant::now());
    }

    /// Notes `event`, seen at `at`. A step started again (a server restarted after
    /// [`SessionEvent::ServerGone`]) gets a new entry; [`SessionEvent::Ready`] ends the total.
    pub fn record_at(&mut self, event: &SessionEvent, at: Instant) {
        let now = ms(at.saturating_duration_since(self.start));
        match event {
            SessionEvent::Progress(p) => match p.state {
                StepState::Started => self.steps.push(StepTime {
                    step: p.step,
                    began_ms: now,
                    took_ms: None,
                    skipped: false,
                }),
                StepState::Done => {
                    match self
                        .steps
                        .iter_mut()
                        .rev()
                        .find(|s| s.step == p.step && s.took_ms.is_none() && !s.skipped)
                    {
                        Some(s) => s.took_ms = Some(now.saturating_sub(s.began_ms)),
                        // Done without a start: an instant step.
                        None => self.steps.push(StepTime {
                            step: p.step,
                            began_ms: now,
                            took_ms: Some(0),
                            skipped: false,
                        }),
                    }
                }
                StepState::Skipped => self.steps.push(StepTime {
                    step: p.step,
                    began_ms: now,
                    took_ms: Some(0),
                    skipped: true,
                }),
            },
            SessionEvent::Ready(_) => self.ready_ms = Some(now),
            _ => {}
        }
    }

    /// The steps in the order they began.
    pub fn steps(&self) -> &[StepTime] {
        &self.steps
    }

    /// Milliseconds from the start until the session was ready, once it is.
    pub fn ready_ms(&self) -> Option<u64> {
        self.ready_ms
    }

    /// A table: each step, when it began and how long it took (ms), then the total.
    pub fn render(&self) -> String {
        let mut out = String::from("step timeline (ms since start):\n");
        let _ = writeln!(out, "  {:<12} {:>7} {:>7}", "step", "began", "took");
        for s in &self.steps {
            let took = match (s.skipped, s.took_ms) {
                (true, _) => "skipped".to_string(),
                (false, Some(t)) => t.to_string(),
                (false, None) => "-".to_string(),
            };
            let _ = writeln!(
                out,
                "  {:<12} {:>7} {:>7}",
                s.step.to_string(),
                s.began_ms,
                took
            );
        }
        if let Some(total) = self.ready_ms {
            let _ = writeln!(out, "  {:<12} {:>7} {:>7}", "ready (total)", "", total);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Progress;

    fn progress(step: Step, state: StepState) -> SessionEvent {
        SessionEvent::Progress(Progress {
            step,
            state,
            message: String::new(),
            percent: None,
        })
    }

    #[test]
    fn steps_get_their_start_and_duration_also_when_they_overlap() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut tl = Timeline::starting_at(t0);
        tl.record_at(&progress(Step::Connect, StepState::Started), at(1));
        tl.record_at(&progress(Step::Connect, StepState::Done), at(101));
        tl.record_at(&progress(Step::Gpus, StepState::Started), at(102));
        tl.record_at(&progress(Step::Environment, StepState::Started), at(103));
        tl.record_at(&progress(Step::Environment, StepState::Done), at(403));
        tl.record_at(&progress(Step::Gpus, StepState::Done), at(202));
        tl.record_at(&progress(Step::Tunnel, StepState::Skipped), at(404));
        let got: Vec<(Step, u64, Option<u64>)> = tl
            .steps()
            .iter()
            .map(|s| (s.step, s.began_ms, s.took_ms))
            .collect();
        assert_eq!(
            got,
            [
                (Step::Connect, 1, Some(100)),
                (Step::Gpus, 102, Some(100)),
                (Step::Environment, 103, Some(300)),
                (Step::Tunnel, 404, Some(0)),
            ]
        );
        assert!(tl.steps()[3].skipped);
        assert_eq!(tl.ready_ms(), None);
        let table = tl.render();
        assert!(table.contains("environment      103     300"), "{table}");
        assert!(table.contains("skipped"), "{table}");
    }
}
