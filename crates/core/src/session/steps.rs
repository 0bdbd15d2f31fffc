//! The steps of a launch, in order (connect → GPUs → environment → launch → tunnel → ready), and
//! the cleanup when a session fails, is cancelled or closed.

use super::*;

/// Closes the tunnel, stops the server when it is not ready yet (or `stop_ready`), closes the
/// host session the session started itself (its connection).
pub(super) async fn cleanup(built: &mut Built, stop_ready: bool, tokens: &TokenStore) {
    for forward in built.forwards.drain(..) {
        forward.close().await;
    }
    for (_, forward) in built.remote.drain(..) {
        if let Some(f) = forward {
            f.close().await;
        }
    }
    if let Some(attached) = built.attached.take()
        && let Some(t) = attached.tunnel
    {
        t.close().await;
    }
    // A reused server was running before this session and others may use it: never stopped.
    if let (Some(host), Some((server, token))) = (&built.host, built.launched.take())
        && !built.reused
        && (!built.ready || stop_ready)
        && let Err(e) = jupyter::stop(host, &server, Some(&token), tokens).await
    {
        tracing::warn!(error = %e, server = %server.id, "cannot stop the server while cleaning up");
    }
    if let Some(host) = built.own_host.take() {
        host.close().await;
    }
}

pub(super) type StepResult<T> = Result<T, (Step, Problem)>;

fn fail<E: Into<Problem>>(step: Step) -> impl FnOnce(E) -> (Step, Problem) {
    move |e| (step, e.into())
}

pub(super) async fn steps(
    spec: &SessionSpec,
    report: &Reporter,
    tokens: &TokenStore,
    built: &mut Built,
) -> StepResult<ReadyInfo> {
    let profile = &spec.profile;
    // Connect.
    let host = match &spec.host {
        SessionHost::Ssh { chain, .. } => {
            let target = chain.last().map(|p| p.host.clone()).unwrap_or_default();
            report
                .step(
                    Step::Connect,
                    StepState::Started,
                    format!("connecting to {target}"),
                    0,
                )
                .await;
            let host = match &spec.host_session {
                Some(host) => host.clone(),
                None => {
                    let (host, mut events) = HostSession::start(HostSpec {
                        host: spec.host.clone(),
                        reconnect: spec.reconnect.clone(),
                        free_rule: spec.free_rule,
                        profiles: None,
                        probe: false,
                    });
                    // The session reports its own steps; the host session's events say the same.
                    tokio::spawn(async move { while events.recv().await.is_some() {} });
                    built.own_host = Some(host.clone());
                    host
                }
            };
            built.link = Some(host.link());
            built.host_session = Some(host.clone());
            let conn = host
                .next_connection(None)
                .await
                .map_err(|p| (Step::Connect, p))?;
            built.connected(&conn);
            let how = if built.own_host.is_some() {
                "connected to"
            } else {
                "using the open connection to"
            };
            report
                .step(
                    Step::Connect,
                    StepState::Done,
                    format!("{how} {}", conn.destination()),
                    15,
                )
                .await;
            Host::Ssh(conn)
        }
        SessionHost::Local => {
            report
                .step(
                    Step::Connect,
                    StepState::Skipped,
                    "this computer: no SSH",
                    15,
                )
                .await;
            Host::Local
        }
    };
    built.host = Some(host.clone());

    // The GPUs, the environment and the server's forwarding policy (which the launch needs to
    // choose a Unix socket) do not depend on each other: asked for at the same time.
    // Both steps finish before a failure is reported, the GPUs' first: the same error each time.
    let forwarding = async {
        if let (Host::Ssh(conn), EndpointChoice::Auto) = (&host, spec.endpoint) {
            conn.forwarding().await;
        }
    };
    let (choice_and_running, env_and_modules, ()) = tokio::join!(
        gpu_step(spec, report, &host),
        environment_step(spec, report, &host),
        forwarding
    );
    let (choice, running) = choice_and_running?;
    let (env, modules) = env_and_modules?;

    // Launch, or reuse a server already running on that GPU from that environment.
    let mut launch = LaunchSpec {
        env: env.clone(),
        cuda_visible_devices: choice.as_ref().map(|c| c.cuda_visible_devices.clone()),
        notebook_dir: spec.notebook_dir.clone().or(profile.notebook_dir.clone()),
        modules,
        pre_launch: profile.pre_launch.clone(),
        endpoint: spec.endpoint,
    };
    let reusable = match &spec.reuse_for {
        Some(dir) => reusable(&running, &launch, dir, choice.as_ref()),
        None => Reusable::None,
    };
    let reused = match reusable {
        Reusable::Server(server) => {
            report
                .step(
                    Step::Launch,
                    StepState::Started,
                    format!(
                        "reusing JupyterLab {} (pid {}), already running {} and serving {}",
                        server.id,
                        server.pid,
                        on_gpu(choice.as_ref()),
                        server.root_dir.as_deref().unwrap_or("?")
                    ),
                    45,
                )
                .await;
            match jupyter::find_with_token(&host, Some(&server.id), tokens, None).await {
                Ok(found) => Some(found),
                Err(e) => {
                    report
                        .step(
                            Step::Launch,
                            StepState::Started,
                            format!(
                                "cannot reuse {} ({e}): starting a new JupyterLab",
                                server.id
                            ),
                            45,
                        )
                        .await;
                    None
                }
            }
        }
        Reusable::Elsewhere(server) => {
            report
                .step(
                    Step::Launch,
                    StepState::Started,
                    format!(
                        "JupyterLab {} {} serves {}, which does not hold {}: starting a new one",
                        server.id,
                        on_gpu(choice.as_ref()),
                        server.root_dir.as_deref().unwrap_or("?"),
                        spec.reuse_for.as_deref().unwrap_or_default()
                    ),
                    45,
                )
                .await;
            None
        }
        Reusable::None => {
            report
                .step(Step::Launch, StepState::Started, "starting JupyterLab", 45)
                .await;
            None
        }
    };
    let (server, token, how) = match reused {
        Some((server, token)) => {
            // A restart after it dies starts the same kind of server in the same root.
            launch.notebook_dir = server.root_dir.clone();
            built.launch = Some(launch);
            built.reused = true;
            (server, token, "reused")
        }
        None => {
            built.launch = Some(launch.clone());
            let Launched { server, token } = jupyter::launch(&host, &launch)
                .await
                .map_err(fail(Step::Launch))?;
            tokens.remember(&server.id, &token);
            (server, token, "started")
        }
    };
    built.launched = Some((server.clone(), Sensitive::new(token.expose().clone())));
    report
        .step(
            Step::Launch,
            StepState::Done,
            launched_words(&server.id, how, choice.as_ref()),
            60,
        )
        .await;

    // Tunnel.
    report
        .step(
            Step::Tunnel,
            StepState::Started,
            format!("forwarding to {}", server.endpoint),
            60,
        )
        .await;
    let listen = match spec.local_port {
        Some(port) => Listen::loopback(port),
        None => Listen::loopback_any(),
    };
    let attached = jupyter::attach_over(&host, built.link.as_ref(), &server, &token, listen)
        .await
        .map_err(fail(Step::Tunnel))?;
    let local_addr = attached.local_addr;
    let url = attached.url.clone();
    built.attached = Some(attached);
    // The host's saved forwarding rules start with the connection. One that cannot start (its
    // port taken, say) is reported and the notebook goes on: it is not what the user came for.
    let mut saved = Vec::new();
    if let Some(link) = built.link.clone().filter(|_| spec.saved_forwards) {
        for rule in profile.forwards.iter().filter(|r| r.enabled) {
            match rule.spec.start_over(&link).await {
                Ok(tunnel) => {
                    saved.push(tunnel.description().to_string());
                    if rule.spec.is_remote() {
                        built.remote.push((rule.spec.clone(), Some(tunnel)));
                    } else {
                        built.forwards.push(tunnel);
                    }
                }
                Err(e) => {
                    saved.push(format!("failed: {e}"));
                    // A remote forward is asked for again on the next connection.
                    if rule.spec.is_remote() {
                        built.remote.push((rule.spec.clone(), None));
                    }
                }
            }
        }
    }
    let saved = if saved.is_empty() {
        String::new()
    } else {
        format!("; saved forwards: {}", saved.join(", "))
    };
    report
        .step(
            Step::Tunnel,
            StepState::Done,
            format!("listening on {local_addr}{saved}"),
            70,
        )
        .await;

    // Ready.
    report
        .step(
            Step::Ready,
            StepState::Started,
            "waiting for JupyterLab to answer",
            70,
        )
        .await;
    let version = jupyter::wait_ready(&host, &server, local_addr, &token, spec.ready_timeout)
        .await
        .map_err(fail(Step::Ready))?;
    report
        .step(
            Step::Ready,
            StepState::Done,
            format!("Jupyter Server {version} is ready"),
            100,
        )
        .await;
    Ok(ReadyInfo {
        url,
        local_port: local_addr.port(),
        gpu: server.gpu.clone(),
        gpu_label: choice.map(|c| c.label()),
        remote_pid: server.pid,
        env: env.label(),
        root_dir: server.root_dir.clone(),
        reused: built.reused,
        server_id: server.id,
    })
}

/// The launch step's closing line, in words: which server and what it runs on, without its pid
/// (the log has that) — `server tb-1a2b started — JupyterLab on GPU 3`. The id follows
/// "server" (what `tunnelbook down HOST ID` takes).
pub(super) fn launched_words(id: &str, how: &str, choice: Option<&GpuChoice>) -> String {
    format!("server {id} {how} — JupyterLab {}", on_gpu(choice))
}

/// "on GPU 1" / "without a GPU", for launch messages.
fn on_gpu(choice: Option<&GpuChoice>) -> String {
    choice
        .map(|c| format!("on {}", c.label()))
        .unwrap_or_else(|| "without a GPU".into())
}

/// What [`SessionSpec::reuse_for`] found among the running servers.
#[derive(Debug)]
enum Reusable<'a> {
    /// Nothing on that GPU from that environment.
    None,
    /// One on that GPU from that environment serving a folder that holds the directory.
    Server(&'a JupyterServer),
    /// Only ones whose root does not hold the directory (the newest of them).
    Elsewhere(&'a JupyterServer),
}

/// The newest of Tunnelbook's running servers (`running`) that serves `dir` on `launch`'s GPU from
/// its environment (see [`SessionSpec::reuse_for`]).
fn reusable<'a>(
    running: &'a [JupyterServer],
    launch: &LaunchSpec,
    dir: &str,
    choice: Option<&GpuChoice>,
) -> Reusable<'a> {
    let gpu = choice.map(|c| c.cuda_visible_devices.as_str());
    let env = launch.env.label();
    let mut same: Vec<&JupyterServer> = running
        .iter()
        .filter(|s| {
            s.managed
                && s.env.as_deref() == Some(env.as_str())
                && match (s.gpu.as_deref(), gpu) {
                    (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                    (None, None) => true,
                    _ => false,
                }
        })
        .collect();
    same.sort_by_key(|s| std::cmp::Reverse(s.started));
    match same.iter().find(|s| holds(s, dir)) {
        Some(s) => Reusable::Server(s),
        None => same
            .first()
            .map_or(Reusable::None, |s| Reusable::Elsewhere(s)),
    }
}

/// Whether `server`'s root folder holds `dir`.
fn holds(server: &JupyterServer, dir: &str) -> bool {
    server
        .root_dir
        .as_deref()
        .is_some_and(|root| jupyter::path_under(root, dir).is_some())
}

/// The GPUs step: reads the host's GPUs and picks one (`None`: no GPU asked for or none found).
/// With [`SessionSpec::reuse_for`] it also lists Tunnelbook's running servers at the same time
/// (returned; empty otherwise, or when they cannot be listed), and `auto` prefers a GPU one of
/// them already runs on for that folder when no one else uses it.
async fn gpu_step(
    spec: &SessionSpec,
    report: &Reporter,
    host: &Host,
) -> StepResult<(Option<GpuChoice>, Vec<JupyterServer>)> {
    let profile = &spec.profile;
    let selector = match &spec.gpu {
        Some(s) => s.clone(),
        None => profile
            .gpu
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(fail(Step::Gpus))?
            .unwrap_or(GpuSelector::Auto),
    };
    let running = async {
        if spec.reuse_for.is_none() {
            return Vec::new();
        }
        match jupyter::list(host, None).await {
            Ok(servers) => servers.into_iter().filter(|s| s.managed).collect(),
            Err(e) => {
                tracing::debug!(error = %e, "cannot list running servers; a new one starts");
                Vec::new()
            }
        }
    };
    if selector == GpuSelector::None {
        report
            .step(Step::Gpus, StepState::Skipped, "no GPU asked for", 30)
            .await;
        return Ok((None, running.await));
    }
    report
        .step(Step::Gpus, StepState::Started, "reading GPUs", 15)
        .await;
    let snapshot = async {
        match host {
            Host::Ssh(conn) => gpu::snapshot(conn).await.map_err(fail(Step::Gpus)),
            Host::Local => match tokio::task::spawn_blocking(gpu::local).await {
                Ok(s) => s.map_err(fail(Step::Gpus)),
                Err(e) => Err((
                    Step::Gpus,
                    Problem::new(ErrorCode::Internal, format!("the NVML reader stopped: {e}")),
                )),
            },
        }
    };
    let (snapshot, running) = tokio::join!(snapshot, running);
    let snapshot = snapshot?;
    // `auto` for a folder a server of ours already serves: that server's GPU, unless someone
    // else's processes use it (its own kernels do not count).
    let preferred = match (&selector, &spec.reuse_for) {
        (GpuSelector::Auto, Some(dir)) => {
            let own_as_free = FreeRule {
                own_as_free: true,
                ..spec.free_rule
            };
            let mut serving: Vec<&JupyterServer> =
                running.iter().filter(|s| holds(s, dir)).collect();
            serving.sort_by_key(|s| std::cmp::Reverse(s.started));
            serving.iter().find_map(|s| {
                let gpu = GpuSelector::Uuid(s.gpu.clone()?);
                snapshot
                    .select_with(&gpu, &own_as_free)
                    .ok()
                    .flatten()
                    .filter(|c| c.free)
            })
        }
        _ => None,
    };
    let choice = match preferred {
        Some(c) => Some(c),
        None => snapshot
            .select_with(&selector, &spec.free_rule)
            .map_err(fail(Step::Gpus))?,
    };
    let message = match (&choice, &snapshot.no_gpu_reason) {
        (Some(c), _) => format!("{} ({})", c.label(), c.cuda_visible_devices),
        (None, Some(reason)) => format!("{reason}; running without a GPU"),
        (None, None) => "running without a GPU".to_string(),
    };
    report.step(Step::Gpus, StepState::Done, message, 30).await;
    Ok((choice, running))
}

/// The environment step: finds the Python environment to launch from and the modules to load.
async fn environment_step(
    spec: &SessionSpec,
    report: &Reporter,
    host: &Host,
) -> StepResult<(jupyter::Environment, Vec<String>)> {
    let profile = &spec.profile;
    report
        .step(
            Step::Environment,
            StepState::Started,
            "looking for Python environments",
            30,
        )
        .await;
    let wanted = spec.env.as_deref().or(profile.environment.as_deref());
    let mut modules = if spec.modules.is_empty() {
        profile.modules.clone()
    } else {
        spec.modules.clone()
    };
    let envs = jupyter::launch_candidates(host, wanted, &modules)
        .await
        .map_err(fail(Step::Environment))?;
    let env = jupyter::choose(&host.name(), &envs, wanted)
        .map_err(fail(Step::Environment))?
        .clone();
    // An environment a module provides runs with that module loaded.
    if env.kind == jupyter::EnvKind::Module
        && env.name != modules.join(" ")
        && !modules.contains(&env.name)
    {
        modules.push(env.name.clone());
    }
    report
        .step(
            Step::Environment,
            StepState::Done,
            format!(
                "{} (Python {})",
                env.label(),
                env.python_version.as_deref().unwrap_or("?")
            ),
            45,
        )
        .await;
    Ok((env, modules))
}
