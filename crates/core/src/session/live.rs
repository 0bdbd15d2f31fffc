//! A ready session held until it is closed: following the host session through lost connections
//! (it dials again; this reports it and picks up the new connection), watching the server and
//! restarting a gone one.

use super::*;

/// What woke a waiting session.
enum Wake {
    Close {
        stop_server: bool,
        done: Option<oneshot::Sender<()>>,
    },
    ReconnectNow,
    RestartServer,
}

/// A ready session being held until it is closed.
pub(super) struct Live<'a> {
    pub(super) spec: &'a SessionSpec,
    pub(super) report: Reporter,
    pub(super) tokens: &'a TokenStore,
    pub(super) built: &'a mut Built,
    pub(super) commands: &'a mut mpsc::Receiver<Command>,
    pub(super) cancel: &'a CancellationToken,
    /// The server is gone (reported); only a restart or closing helps.
    pub(super) gone: bool,
    /// Health checks in a row in which Jupyter did not answer.
    pub(super) unanswered: u32,
}

/// How long a check that the connection still answers may take.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// The next change of the host session's connection; never, for this computer.
async fn changed(status: &mut Option<watch::Receiver<Status>>) -> Status {
    match status {
        Some(rx) => match rx.changed().await {
            Ok(()) => rx.borrow_and_update().clone(),
            // The host session is gone without a word: it ended.
            Err(_) => Status::Ended(Problem::new(
                ErrorCode::Cancelled,
                "the host session was closed",
            )),
        },
        None => std::future::pending().await,
    }
}

impl Live<'_> {
    /// The next command, or a close when cancelled or every handle is gone.
    async fn wake(&mut self) -> Wake {
        let on_cancel = Wake::Close {
            stop_server: self.spec.stop_server_on_cancel,
            done: None,
        };
        tokio::select! {
            cmd = self.commands.recv() => match cmd {
                Some(Command::Close { stop_server, done }) => Wake::Close { stop_server, done: Some(done) },
                Some(Command::ReconnectNow) => Wake::ReconnectNow,
                Some(Command::RestartServer) => Wake::RestartServer,
                None => on_cancel,
            },
            () = self.cancel.cancelled() => on_cancel,
        }
    }

    /// Holds the session until it is closed; returns whether to stop the server, and whom to
    /// tell when the cleanup is done. The host session owns the connection and dials it again
    /// after a loss (the one reconnect loop, [`crate::host`]); this follows it: its attempts are
    /// reported as [`SessionEvent::Reconnecting`], its new connection as
    /// [`SessionEvent::Reconnected`] (the server checked, remote forwards asked for again), its
    /// end as [`SessionEvent::Disconnected`].
    pub(super) async fn hold(&mut self) -> (bool, Option<oneshot::Sender<()>>) {
        let host = self.built.host_session.clone();
        let mut status = host.as_ref().map(HostSession::status);
        // A change while the steps finished is read at once (the same connection reads as none).
        if let Some(rx) = status.as_mut() {
            rx.mark_changed();
        }
        // While lost: since when, and the attempt last reported.
        let mut outage: Option<(Instant, u32)> = None;
        let mut ended = false;
        let interval = self.spec.reconnect.health_interval;
        let mut health = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        health.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                wake = self.wake() => match wake {
                    Wake::Close { stop_server, done } => return (stop_server, done),
                    Wake::ReconnectNow => {
                        if let Some(host) = &host {
                            host.reconnect_now();
                        }
                    }
                    Wake::RestartServer if outage.is_some() || ended => {
                        tracing::debug!("restart asked while not connected; ignored");
                    }
                    Wake::RestartServer => self.restart().await,
                },
                now = changed(&mut status) => match now {
                    Status::Down(retry) => {
                        let since = outage.map_or_else(Instant::now, |(since, _)| since);
                        outage = Some((since, retry.attempt));
                        self.report
                            .event(SessionEvent::Reconnecting {
                                attempt: retry.attempt,
                                next_try_in_secs: u64::try_from(
                                    retry.delay.as_millis().div_ceil(1000),
                                )
                                .unwrap_or(u64::MAX),
                                reason: retry.cause,
                            })
                            .await;
                    }
                    Status::Up(Some(conn)) => {
                        let current = self.built.host.as_ref().and_then(Host::connection);
                        // A loss and a new connection in between two reads are a reconnect too.
                        if outage.is_some() || !current.is_some_and(|c| c.is_same(&conn)) {
                            let (since, attempts) = outage.take().unwrap_or((Instant::now(), 1));
                            self.reconnected(conn, attempts, since).await;
                            health.reset();
                        }
                    }
                    Status::Ended(reason) if !ended => {
                        ended = true;
                        outage = None;
                        self.end(reason).await;
                    }
                    Status::Ended(_) | Status::Up(None) | Status::Dialing => {}
                },
                _ = health.tick(), if !self.gone && outage.is_none() && !ended => {
                    if !self.check_health().await
                        && let Some(host) = &host
                    {
                        // The host session checks the connection again and dials anew.
                        host.reconnect_now();
                    }
                }
            }
        }
    }

    /// The connection is lost for good: the local ports are released, the server keeps running.
    async fn end(&mut self, reason: Problem) {
        self.built.attached = None;
        self.built.forwards.clear();
        self.built.remote.clear();
        self.report
            .event(SessionEvent::Disconnected { reason })
            .await;
    }

    /// The connection is back: the tunnels use it, remote forwards are asked for again, and the
    /// server is checked (it may have died meanwhile).
    async fn reconnected(&mut self, conn: Connection, attempts: u32, since: Instant) {
        self.built.connected(&conn);
        self.unanswered = 0;
        self.report
            .event(SessionEvent::Reconnected {
                attempts,
                outage_secs: since.elapsed().as_secs(),
            })
            .await;
        if let Some(link) = self.built.link.clone() {
            for (rule, tunnel) in &mut self.built.remote {
                *tunnel = None;
                // The server may still hold the port for the old, dying session for a moment.
                for attempt in 1..=3 {
                    match rule.start_over(&link).await {
                        Ok(t) => {
                            *tunnel = Some(t);
                            break;
                        }
                        Err(e) if attempt == 3 => {
                            tracing::warn!(error = %e, "a saved remote forward did not come back");
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
                    }
                }
            }
        }
        if !self.gone {
            let host = Host::Ssh(conn);
            if let Some(server) = self.server() {
                match jupyter::is_running(&host, &server).await {
                    Ok(false) => self.server_gone(gone_reason(&host, &server)).await,
                    Ok(true) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "cannot check the server after reconnecting")
                    }
                }
            }
        }
    }

    fn server(&self) -> Option<JupyterServer> {
        self.built.launched.as_ref().map(|(s, _)| s.clone())
    }

    async fn server_gone(&mut self, reason: String) {
        self.gone = true;
        let reason = Problem::new(
            ErrorCode::ServerGone,
            format!("the JupyterLab server is gone: {reason}"),
        );
        self.report.event(SessionEvent::ServerGone { reason }).await;
    }

    /// Is the server alive and answering? Its process gone, or `GET /api` unanswered
    /// `unanswered_max` checks in a row while SSH works, is reported as
    /// [`SessionEvent::ServerGone`]. Returns false when the connection itself stopped answering
    /// (the host ran no check and answered no keepalive). Each step is bounded by
    /// [`PING_TIMEOUT`], so a request such as [`Command::ReconnectNow`] waits little.
    async fn check_health(&mut self) -> bool {
        let (Some(host), Some(server)) = (self.built.host.clone(), self.server()) else {
            return true;
        };
        match tokio::time::timeout(PING_TIMEOUT, jupyter::is_running(&host, &server)).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                self.server_gone(gone_reason(&host, &server)).await;
                return true;
            }
            Ok(Err(_)) => return true,
            Err(_) => {
                return match host.connection() {
                    Some(conn) => conn.ping(PING_TIMEOUT).await,
                    None => true,
                };
            }
        }
        let Some(addr) = self.built.attached.as_ref().map(|a| a.local_addr) else {
            return true;
        };
        let api = format!("{}api", server.base_url);
        let answer = tokio::time::timeout(PING_TIMEOUT, http::request(addr, "GET", &api, None));
        match answer.await {
            Ok(Ok(r)) if r.status == 200 => self.unanswered = 0,
            _ => {
                self.unanswered = self.unanswered.saturating_add(1);
                if self.unanswered >= self.spec.reconnect.unanswered_max.max(1) {
                    self.server_gone(format!(
                        "the Jupyter server (pid {}) runs on {} but has not answered {} checks in a row",
                        server.pid,
                        host.name(),
                        self.unanswered
                    ))
                    .await;
                }
            }
        }
        true
    }

    /// Starts a new server with the same launch spec behind the same local port.
    async fn restart(&mut self) {
        if !self.gone {
            tracing::debug!("restart asked while the server runs; ignored");
            return;
        }
        let (Some(host), Some(launch)) = (self.built.host.clone(), self.built.launch.clone())
        else {
            return;
        };
        self.report
            .step(
                Step::Launch,
                StepState::Started,
                "starting JupyterLab again",
                45,
            )
            .await;
        // The old one may still hang around (not answering): stop it by signals (asking it over
        // HTTP would only wait for a timeout) and remove its record.
        if let Some((old, _)) = self.built.launched.take()
            && let Err(e) = jupyter::stop(&host, &old, None, self.tokens).await
        {
            tracing::debug!(error = %e, server = %old.id, "cannot clean up the gone server");
        }
        let Launched { server, token } = match jupyter::launch(&host, &launch).await {
            Ok(l) => l,
            Err(e) => {
                self.server_gone(format!("starting it again failed: {e}"))
                    .await;
                return;
            }
        };
        self.tokens.remember(&server.id, &token);
        self.built.launched = Some((server.clone(), Sensitive::new(token.expose().clone())));
        // The new server is this session's own, whoever started the old one.
        self.built.reused = false;
        self.report
            .step(
                Step::Launch,
                StepState::Done,
                format!("server {} started again — JupyterLab", server.id),
                60,
            )
            .await;
        let local_addr = match self.built.attached.as_ref() {
            Some(Attached {
                tunnel: Some(tunnel),
                local_addr,
                ..
            }) => {
                tunnel.retarget(server.endpoint.clone());
                *local_addr
            }
            // This computer: the browser goes to the server's own port.
            _ => match jupyter::attach(&host, &server, &token, Listen::loopback_any()).await {
                Ok(a) => {
                    let addr = a.local_addr;
                    self.built.attached = Some(a);
                    addr
                }
                Err(e) => {
                    self.server_gone(format!("starting it again failed: {e}"))
                        .await;
                    return;
                }
            },
        };
        self.report
            .step(
                Step::Ready,
                StepState::Started,
                "waiting for JupyterLab to answer",
                70,
            )
            .await;
        let version =
            match jupyter::wait_ready(&host, &server, local_addr, &token, self.spec.ready_timeout)
                .await
            {
                Ok(v) => v,
                Err(e) => {
                    self.server_gone(format!("starting it again failed: {e}"))
                        .await;
                    return;
                }
            };
        self.report
            .step(
                Step::Ready,
                StepState::Done,
                format!("Jupyter Server {version} is ready"),
                100,
            )
            .await;
        self.gone = false;
        self.unanswered = 0;
        let mut info = self.built.info.clone().unwrap_or_else(|| ReadyInfo {
            url: String::new(),
            local_port: 0,
            gpu: None,
            gpu_label: None,
            remote_pid: 0,
            env: String::new(),
            server_id: String::new(),
            root_dir: None,
            reused: false,
        });
        info.url = server.url(local_addr.port(), &token);
        info.local_port = local_addr.port();
        info.gpu = server.gpu.clone();
        info.remote_pid = server.pid;
        info.server_id = server.id.clone();
        info.root_dir = server.root_dir.clone();
        info.reused = false;
        self.built.info = Some(info.clone());
        self.report.event(SessionEvent::Ready(info)).await;
    }
}

fn gone_reason(host: &Host, server: &JupyterServer) -> String {
    format!(
        "the Jupyter server (pid {}) is no longer running on {}{}",
        server.pid,
        host.name(),
        server
            .log
            .as_deref()
            .map(|l| format!("; its log: {l}"))
            .unwrap_or_default()
    )
}
