//! The task that owns a host's connection: the first dial (its progress as step events), the
//! first GPU read, then watching the connection and dialing again after a loss.

use super::*;

pub(super) struct Actor {
    pub(super) spec: HostSpec,
    pub(super) shared: Arc<Shared>,
    pub(super) events: mpsc::Sender<HostEvent>,
    pub(super) commands: mpsc::UnboundedReceiver<Command>,
}

impl Actor {
    async fn emit(&self, event: HostEvent) {
        let _ = self.events.send(event).await;
    }

    fn set(&self, status: Status) {
        if let Status::Up(conn) = &status {
            // The server's forwarding policy, probed at once (about 2 s, in the background): the
            // Tunnels view and `forward` name a forbidding setting before anything is tried, and
            // a launch finds it known.
            if let Some(c) = conn.clone() {
                let probe = c.clone();
                tokio::spawn(async move {
                    probe.forwarding().await;
                });
                // A SLURM login node is known on connect, not when the GPU step first opens: the
                // GPU step shows the cluster view at once and a plain launch is refused there.
                if self.spec.probe && self.shared.scheduler.borrow().is_none() {
                    tokio::spawn(detect_scheduler(
                        self.shared.clone(),
                        c,
                        self.spec.profiles.clone(),
                        self.target_name(),
                    ));
                }
            }
            self.shared.link.set(conn.clone());
        } else {
            self.shared.link.set(None);
        }
        self.shared.status.send_replace(status);
    }

    /// The saved name of the host dialed (the chain's last hop).
    fn target_name(&self) -> Option<String> {
        match &self.spec.host {
            SessionHost::Ssh { chain, .. } => chain.last().map(|p| p.name.clone()),
            SessionHost::Local => None,
        }
    }

    pub(super) async fn run(mut self) {
        let cancel = self.shared.cancel.clone();
        tokio::select! {
            () = self.live() => {}
            () = cancel.cancelled() => {}
        }
        let last = self.shared.status.borrow().clone();
        if let Status::Up(Some(conn)) = last {
            conn.close().await;
        }
        if !matches!(&*self.shared.status.borrow(), Status::Ended(_)) {
            self.set(Status::Ended(closed()));
        }
    }

    async fn live(&mut self) {
        let (chain, context) = match &self.spec.host {
            SessionHost::Local => {
                for step in [Step::Connect, Step::HostKey, Step::Authenticate] {
                    self.emit(HostEvent::new(
                        step,
                        StepState::Skipped,
                        "this computer: no SSH needed",
                    ))
                    .await;
                }
                self.set(Status::Up(None));
                if self.spec.probe {
                    self.read_gpus().await;
                }
                self.until_closed().await;
                return;
            }
            SessionHost::Ssh { chain, context } => (chain.clone(), context.clone()),
        };
        let mut conn = match self.dial(&chain, &context).await {
            Ok(conn) => conn,
            Err((step, problem)) => {
                self.set(Status::Ended(problem.clone()));
                self.emit(HostEvent::failed(step, problem)).await;
                return;
            }
        };
        self.emit(HostEvent::new(
            Step::Authenticate,
            StepState::Done,
            format!("connected to {}", conn.destination()),
        ))
        .await;
        self.set(Status::Up(Some(conn.clone())));
        if self.spec.probe {
            self.read_gpus().await;
        }
        loop {
            // Up: until the connection ends, or a check finds it silent.
            let cause = tokio::select! {
                reason = conn.closed() => reason,
                cmd = self.commands.recv() => match cmd {
                    Some(Command::ReconnectNow) => {
                        if conn.ping(PING_TIMEOUT).await {
                            continue;
                        }
                        "the connection did not answer".to_string()
                    }
                    Some(Command::Close) | None => return,
                },
            };
            tracing::info!(host = conn.destination(), %cause, "connection lost; reconnecting");
            let old = conn.clone();
            tokio::spawn(async move { old.close().await });
            let cause = Problem::new(
                ErrorCode::Unreachable,
                format!("the connection to {} was lost: {cause}", conn.destination()),
            );
            match self.reconnect(&chain, &context, cause).await {
                Some(new) => conn = new,
                None => return,
            }
        }
    }

    /// Waits for close.
    async fn until_closed(&mut self) {
        while let Some(cmd) = self.commands.recv().await {
            if matches!(cmd, Command::Close) {
                return;
            }
        }
    }

    /// Dials again with backoff until it works (`Some`), the error needs the human (reported,
    /// `None`), or the session is closed (`None`).
    async fn reconnect(
        &mut self,
        chain: &[Profile],
        context: &ConnectContext,
        mut cause: Problem,
    ) -> Option<Connection> {
        let policy = self.spec.reconnect.clone();
        let since = Instant::now();
        let mut attempt: u32 = 1;
        let mut now = cause.message.ends_with("did not answer");
        loop {
            if !policy.enabled {
                self.set(Status::Ended(cause.clone()));
                self.emit(HostEvent::failed(Step::Connect, cause)).await;
                return None;
            }
            let delay = if now {
                Duration::ZERO
            } else {
                policy.delay(attempt)
            };
            self.set(Status::Down(Retry {
                attempt,
                delay,
                cause: cause.clone(),
            }));
            self.emit(reconnecting(attempt, delay, &cause)).await;
            // A `ReconnectNow` cuts the wait short.
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                cmd = self.commands.recv() => if matches!(cmd, Some(Command::Close) | None) {
                    return None;
                },
            }
            let result = tokio::select! {
                r = Connection::open(chain, context) => r,
                cmd = wait_close(&mut self.commands) => { let () = cmd; return None; }
            };
            match result {
                Ok(conn) => {
                    self.set(Status::Up(Some(conn.clone())));
                    self.ask_remote_forwards_again().await;
                    self.emit(HostEvent::new(
                        Step::Connect,
                        StepState::Done,
                        format!(
                            "reconnected to {} after {} s ({})",
                            conn.destination(),
                            since.elapsed().as_secs(),
                            crate::jupyter::words::attempts_phrase(attempt)
                        ),
                    ))
                    .await;
                    return Some(conn);
                }
                Err(e) if e.is_transient() => {
                    // The host worked before: no advice to check its name and port.
                    cause = Problem::new(crate::error::ssh_code(&e), crate::error::retry_words(&e));
                    attempt = attempt.saturating_add(1);
                    now = false;
                }
                Err(e) => {
                    let step = failed_step(&e);
                    let problem = Problem::from(e);
                    self.set(Status::Ended(problem.clone()));
                    self.emit(HostEvent::failed(step, problem)).await;
                    return None;
                }
            }
        }
    }

    /// The first dial, its progress as step events.
    async fn dial(
        &mut self,
        chain: &[Profile],
        context: &ConnectContext,
    ) -> Result<Connection, (Step, Problem)> {
        let (tx, mut rx) = broadcast::channel(64);
        let open = Connection::open_with_events(chain, context, tx);
        tokio::pin!(open);
        let mut current = Step::Connect;
        let result = loop {
            tokio::select! {
                result = &mut open => break result,
                Ok(event) = rx.recv() => {
                    for e in steps_of(&event) {
                        current = e.step;
                        self.emit(e).await;
                    }
                }
                cmd = wait_close(&mut self.commands) => {
                    let () = cmd;
                    return Err((current, closed()));
                }
            }
        };
        while let Ok(event) = rx.try_recv() {
            for e in steps_of(&event) {
                self.emit(e).await;
            }
        }
        result.map_err(|e| {
            let step = match failed_step(&e) {
                Step::Authenticate | Step::HostKey => failed_step(&e),
                _ if matches!(
                    e,
                    SshError::Unreachable { .. }
                        | SshError::Timeout { .. }
                        | SshError::HandshakeFailed { .. }
                ) =>
                {
                    Step::Connect
                }
                _ => current,
            };
            (step, Problem::from(e))
        })
    }

    /// The "reading GPUs" step after the first connect. A host without NVIDIA GPUs is done, with
    /// the reason as its message; a broken driver or a failed query fails the step (the session
    /// stays connected: the notebook can still run without a GPU).
    async fn read_gpus(&self) {
        self.emit(HostEvent::new(
            Step::ReadGpus,
            StepState::Running,
            "reading GPUs",
        ))
        .await;
        match gpus(&self.shared).await {
            Ok(snapshot) => {
                let message = gpu_summary(&snapshot, &self.spec.free_rule);
                self.emit(HostEvent::new(Step::ReadGpus, StepState::Done, message))
                    .await;
            }
            Err(e) => {
                self.emit(HostEvent::failed(Step::ReadGpus, e.into())).await;
            }
        }
    }

    async fn ask_remote_forwards_again(&self) {
        let remote: Vec<Forward> = self
            .shared
            .forwards
            .lock()
            .map(|r| {
                r.iter()
                    .filter(|f| f.spec.is_remote() && !f.is_closed())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for forward in remote {
            // The server may still hold the port for the old, dying session for a moment.
            for attempt in 1..=3 {
                match forward.spec.start_over(&self.shared.link).await {
                    Ok(t) => {
                        if let Ok(mut slot) = forward.tunnel.lock() {
                            // Closed meanwhile: the new one is dropped (and stops) right here.
                            if slot.is_some() {
                                *slot = Some(t);
                            }
                        }
                        break;
                    }
                    Err(e) if attempt == 3 => {
                        tracing::warn!(error = %e, forward = forward.description(), "a remote forward did not come back");
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
                }
            }
        }
    }
}

/// Resolves when a `Close` arrives (or every handle is gone); other commands are dropped.
async fn wait_close(commands: &mut mpsc::UnboundedReceiver<Command>) {
    loop {
        match commands.recv().await {
            Some(Command::Close) | None => return,
            Some(Command::ReconnectNow) => {}
        }
    }
}

/// The step an SSH failure belongs to.
pub(super) fn failed_step(e: &SshError) -> Step {
    match e {
        SshError::HostKeyChanged { .. }
        | SshError::HostKeyRevoked { .. }
        | SshError::HostCertificateInvalid { .. }
        | SshError::HostKeyNotTrusted { .. }
        | SshError::KnownHosts { .. }
        | SshError::NoCommonHostKeyAlgorithm { .. } => Step::HostKey,
        SshError::AuthFailed { .. } | SshError::KeyFile { .. } => Step::Authenticate,
        _ => Step::Connect,
    }
}

/// One line for the details log: "2 GPUs, 1 free (best: GPU 1)" (", 1 unreadable" when
/// nvidia-smi cannot read one) or why there are none.
pub fn gpu_summary(snapshot: &GpuSnapshot, rule: &FreeRule) -> String {
    if let Some(reason) = &snapshot.no_gpu_reason {
        return reason.clone();
    }
    let choices = snapshot.rank(rule);
    let gpus = snapshot.gpus.len();
    let free = choices.iter().filter(|c| c.free).count();
    let plural = if gpus == 1 { "" } else { "s" };
    let best = choices
        .first()
        .filter(|c| c.free)
        .map(|c| format!(" (best: {})", c.label()))
        .unwrap_or_default();
    let unreadable = match snapshot.unreadable.len() {
        0 => String::new(),
        n => format!(", {n} unreadable"),
    };
    format!("{gpus} GPU{plural}, {free} free{best}{unreadable}")
}

/// The step events one connection event stands for.
fn steps_of(event: &ConnectionState) -> Vec<HostEvent> {
    match event {
        ConnectionState::Connecting { hop } => vec![HostEvent::new(
            Step::Connect,
            StepState::Running,
            format!("connecting to {hop}"),
        )],
        ConnectionState::Authenticating {
            destination,
            method,
        } => vec![
            HostEvent::new(Step::Connect, StepState::Done, "SSH handshake done"),
            HostEvent::new(Step::HostKey, StepState::Done, "host key verified"),
            HostEvent::new(
                Step::Authenticate,
                StepState::Running,
                format!("trying {method} as {destination}"),
            ),
        ],
        ConnectionState::Authenticated { destination } => vec![HostEvent::new(
            Step::Authenticate,
            StepState::Done,
            format!("authenticated as {destination}"),
        )],
        // The dial's own result reports how it ended.
        ConnectionState::Disconnected { .. } => Vec::new(),
    }
}

/// Detects a SLURM login node over `conn` (`sbatch` on the login PATH and `scontrol ping`) and
/// records it in the session; a SLURM host is saved as `scheduler: slurm` in `profiles` unless
/// the user set a scheduler meanwhile. A failed probe (the connection dropped) leaves it unknown
/// for the next connect.
async fn detect_scheduler(
    shared: Arc<Shared>,
    conn: Connection,
    profiles: Option<ProfileStore>,
    name: Option<String>,
) {
    let found = match slurm::detect(&conn).await {
        Ok(Ok(())) => Scheduler::Slurm,
        Ok(Err(why)) => {
            tracing::debug!(%why, "not a SLURM login node");
            Scheduler::None
        }
        Err(e) => {
            tracing::debug!(error = %e, "cannot probe for a batch scheduler");
            return;
        }
    };
    if found == Scheduler::Slurm
        && let (Some(store), Some(name)) = (profiles, name)
    {
        let saved = store.edit(&name, |p| {
            if p.scheduler.is_none() {
                p.scheduler = Some(Scheduler::Slurm);
            }
        });
        if let Err(e) = saved {
            tracing::debug!(error = %e, "cannot save the detected scheduler");
        }
    }
    shared.scheduler.send_if_modified(|s| {
        if s.is_none() {
            *s = Some(found);
            true
        } else {
            false
        }
    });
}

/// The `connect` step's event while a lost connection is dialed again: what Tunnelbook is doing,
/// in words ("Connection lost — reconnecting (attempt 2, next try in 4 s)"), then the last
/// try's outcome. Its error keeps the cause's code and says the same, never the first connect's
/// advice (the host's name and port worked: it is down or unreachable for now).
pub(super) fn reconnecting(attempt: u32, delay: Duration, cause: &Problem) -> HostEvent {
    let secs = delay.as_millis().div_ceil(1000);
    let when = if secs == 0 {
        "trying now".to_string()
    } else {
        format!("next try in {secs} s")
    };
    let doing = format!("Connection lost — reconnecting (attempt {attempt}, {when})");
    HostEvent {
        step: Step::Connect,
        state: StepState::Running,
        message: format!("{doing}; last: {}", cause.message),
        error: Some(Problem::new(
            cause.code,
            format!(
                "{doing}: {}. Tunnelbook keeps trying; the notebook carries on when the host \
                 answers again.",
                cause.message.trim_end_matches('.')
            ),
        )),
    }
}
