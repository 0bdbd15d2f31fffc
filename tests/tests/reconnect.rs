//! Surviving the network (issue #9), against a real sshd and a real JupyterLab: a session whose
//! TCP connection is cut, whose sshd restarts, or whose packets vanish longer than the keepalive
//! window comes back on the same local port with the kernel's state intact; saved forwards come
//! back too; a killed server is reported as gone (not as a network problem) and restarts behind
//! the same port; and a soak of 10,000 requests across 3 forced reconnects fails only during the
//! outages and leaks neither file descriptors nor memory.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    io::{Read, Write},
    net::SocketAddr,
    process::{Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use tunnelbook_core::{
    gpu::GpuSelector,
    jupyter::http,
    profile::{Profile, ProfileStore},
    secret::Sensitive,
    session::{ReadyInfo, ReconnectPolicy, Session, SessionEvent, SessionHost, SessionSpec},
    ssh::{HostKeyPolicy, NoPrompter},
    tunnel::{ForwardRule, ForwardSpec},
};
use tunnelbook_testbed::{
    Client, Guard, KeyFile, Sshd, SshdOptions, USER, alive, free_port, jupyter_venv,
    kernel::{execute, start_kernel},
    key_only, make_key,
    proxy::Proxy,
};

struct Bed {
    sshd: Sshd,
    client: Client,
    key: KeyFile,
    _keys: tempfile::TempDir,
}

fn bed() -> Bed {
    jupyter_venv();
    let keys = tempfile::tempdir().unwrap();
    let key = make_key(keys.path(), "id", "ed25519", None);
    let sshd = Sshd::start(&[&key], SshdOptions::default());
    let client = Client::new();
    client.trust(&sshd);
    Bed {
        sshd,
        client,
        key,
        _keys: keys,
    }
}

impl Bed {
    /// The host `box` reached on `port` (sshd's own, or a proxy's), with a 1 s keepalive
    /// (a dead connection is found within 3 s) and the test bed's JupyterLab.
    fn profile(&self, port: u16) -> Profile {
        let mut p = key_only(self.sshd.profile("box", USER), &self.key);
        p.port = port;
        p.environment = Some(jupyter_venv().display().to_string());
        p.keepalive_interval = 1;
        p.keepalive_max = 2;
        p
    }

    /// A session on `profile` with short backoff and health checks, stopping its server at the
    /// end.
    fn spec(&self, profile: Profile) -> SessionSpec {
        let mut context = self
            .client
            .context(Arc::new(NoPrompter), HostKeyPolicy::Strict, None);
        context.options.connect_timeout = Duration::from_secs(3);
        let mut spec = SessionSpec::new(
            SessionHost::Ssh {
                chain: vec![profile.clone()],
                context,
            },
            profile,
        );
        spec.gpu = Some(GpuSelector::None);
        spec.stop_server_on_cancel = true;
        spec.reconnect = ReconnectPolicy {
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(1),
            health_interval: Duration::from_secs(1),
            ..ReconnectPolicy::default()
        };
        spec
    }
}

/// Reads events until one matches `want` (panics after `timeout`); returns every event seen.
async fn until(
    session: &mut Session,
    timeout: Duration,
    want: impl Fn(&SessionEvent) -> bool,
) -> Vec<SessionEvent> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, session.next_event()).await {
            Ok(Some(ev)) => {
                let done = want(&ev);
                seen.push(ev);
                if done {
                    return seen;
                }
            }
            Ok(None) => panic!("the session ended; events: {seen:#?}"),
            Err(_) => panic!("nothing wanted within {timeout:?}; events: {seen:#?}"),
        }
    }
}

async fn ready(session: &mut Session) -> ReadyInfo {
    let seen = until(session, Duration::from_secs(90), |e| {
        matches!(e, SessionEvent::Ready(_) | SessionEvent::Failed { .. })
    })
    .await;
    match seen.last() {
        Some(SessionEvent::Ready(info)) => info.clone(),
        other => panic!("not ready: {other:?}"),
    }
}

fn token_of(url: &str) -> Sensitive<String> {
    Sensitive::new(url.split("token=").nth(1).unwrap().to_string())
}

fn is_reconnected(e: &SessionEvent) -> bool {
    matches!(e, SessionEvent::Reconnected { .. })
}

fn is_reconnecting(e: &SessionEvent) -> bool {
    matches!(e, SessionEvent::Reconnecting { .. })
}

/// A kernel with `x = 42` defined, through the session's tunnel.
async fn kernel_with_x(info: &ReadyInfo) -> String {
    let token = token_of(&info.url);
    let kernel = start_kernel(info.local_port, &token).await;
    assert!(
        execute(info.local_port, &token, &kernel, "x = 41 + 1")
            .await
            .is_empty()
    );
    kernel
}

async fn x_is_still_42(info: &ReadyInfo, kernel: &str) {
    let token = token_of(&info.url);
    assert_eq!(
        execute(info.local_port, &token, kernel, "print(x)")
            .await
            .trim(),
        "42",
        "the kernel lost its state"
    );
}

/// A service on this machine answering every connection with `text`.
fn service(text: &'static str) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let _ = s.write_all(text.as_bytes());
        }
    });
    port
}

fn read_all(port: u16) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = String::new();
    let _ = s.read_to_string(&mut got);
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_cut_for_5_s_comes_back_on_the_same_port_with_the_kernel_and_saved_forwards() {
    let bed = bed();
    let proxy = Proxy::start(bed.sshd.port).await;
    bed.client.trust_port(&bed.sshd, proxy.port);
    let local_svc = service("tensorboard here");
    let remote_svc = service("from this computer");
    let (local_port, remote_port) = (free_port(), free_port());
    let mut profile = bed.profile(proxy.port);
    profile.forwards = vec![
        ForwardRule {
            last_port: None,
            enabled: true,
            spec: ForwardSpec::Local {
                bind: "127.0.0.1".into(),
                port: local_port,
                host: "127.0.0.1".into(),
                host_port: local_svc,
            },
        },
        ForwardRule {
            last_port: None,
            enabled: true,
            spec: ForwardSpec::Remote {
                bind: "127.0.0.1".into(),
                port: remote_port,
                host: "127.0.0.1".into(),
                host_port: remote_svc,
            },
        },
    ];
    let mut session = Session::start(bed.spec(profile));
    let info = ready(&mut session).await;
    let kernel = kernel_with_x(&info).await;
    assert_eq!(read_all(local_port), "tensorboard here");
    assert_eq!(read_all(remote_port), "from this computer");

    let cut = Instant::now();
    proxy.cut();
    let seen = until(&mut session, Duration::from_secs(10), is_reconnecting).await;
    assert!(
        matches!(
            seen.last(),
            Some(SessionEvent::Reconnecting { attempt: 1, .. })
        ),
        "{seen:#?}"
    );
    // The listener stays bound through the outage: the port is not free for anyone else.
    assert!(std::net::TcpListener::bind(("127.0.0.1", info.local_port)).is_err());
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(cut.elapsed())).await;
    proxy.restore();
    let seen = until(&mut session, Duration::from_secs(30), is_reconnected).await;
    assert!(
        seen.iter()
            .filter(|e| is_reconnecting(e))
            .any(|e| matches!(e, SessionEvent::Reconnecting { attempt, .. } if *attempt >= 2)),
        "attempts during a 5 s outage with a 200 ms backoff: {seen:#?}"
    );
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, SessionEvent::ServerGone { .. })),
        "{seen:#?}"
    );

    x_is_still_42(&info, &kernel).await;
    assert_eq!(read_all(local_port), "tensorboard here");
    assert_eq!(read_all(remote_port), "from this computer");
    session.close(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packets_dropped_longer_than_the_keepalive_window_are_survived() {
    let bed = bed();
    let proxy = Proxy::start(bed.sshd.port).await;
    bed.client.trust_port(&bed.sshd, proxy.port);
    let mut session = Session::start(bed.spec(bed.profile(proxy.port)));
    let info = ready(&mut session).await;
    let kernel = kernel_with_x(&info).await;

    let start = Instant::now();
    proxy.blackhole();
    until(&mut session, Duration::from_secs(10), is_reconnecting).await;
    let detected = start.elapsed();
    // keepalive 1 s × (2 + 1), plus a health check that may have been under way.
    assert!(
        detected < Duration::from_secs(9),
        "found after {detected:?}"
    );
    tokio::time::sleep(Duration::from_secs(6).saturating_sub(start.elapsed())).await;
    proxy.restore();
    until(&mut session, Duration::from_secs(30), is_reconnected).await;
    x_is_still_42(&info, &kernel).await;
    session.close(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_now_checks_a_silent_connection_and_skips_the_backoff() {
    let bed = bed();
    let proxy = Proxy::start(bed.sshd.port).await;
    bed.client.trust_port(&bed.sshd, proxy.port);
    // Keepalive and backoff far too slow to matter: only `reconnect_now` acts here.
    let mut profile = bed.profile(proxy.port);
    profile.keepalive_interval = 120;
    let mut spec = bed.spec(profile);
    spec.reconnect.first_delay = Duration::from_secs(60);
    spec.reconnect.max_delay = Duration::from_secs(60);
    spec.reconnect.health_interval = Duration::from_secs(600);
    let mut session = Session::start(spec);
    let info = ready(&mut session).await;
    let kernel = kernel_with_x(&info).await;

    // As after the computer slept: the connection looks open but nothing gets through.
    proxy.blackhole();
    let control = session.control();
    control.reconnect_now();
    let seen = until(&mut session, Duration::from_secs(10), is_reconnecting).await;
    assert!(
        matches!(seen.last(), Some(SessionEvent::Reconnecting { attempt: 1, next_try_in_secs: 0, reason }) if reason.message.contains("did not answer")),
        "{seen:#?}"
    );
    // The immediate attempt times out in the black hole; the next waits a minute…
    let seen = until(&mut session, Duration::from_secs(10), is_reconnecting).await;
    assert!(
        matches!(
            seen.last(),
            Some(SessionEvent::Reconnecting {
                attempt: 2,
                next_try_in_secs: 60,
                ..
            })
        ),
        "{seen:#?}"
    );
    // …unless the network is back and the app says so.
    proxy.restore();
    let asked = Instant::now();
    control.reconnect_now();
    until(&mut session, Duration::from_secs(10), is_reconnected).await;
    assert!(asked.elapsed() < Duration::from_secs(10));
    x_is_still_42(&info, &kernel).await;
    session.close(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_is_reported_gone_and_restarts_behind_the_same_port() {
    let bed = bed();
    let mut session = Session::start(bed.spec(bed.profile(bed.sshd.port)));
    let info = ready(&mut session).await;
    kernel_with_x(&info).await;

    // The server and its kernels die; SSH is fine.
    let status = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", info.remote_pid)])
        .status()
        .unwrap();
    assert!(status.success());
    let seen = until(&mut session, Duration::from_secs(20), |e| {
        matches!(e, SessionEvent::ServerGone { .. })
    })
    .await;
    assert!(
        !seen.iter().any(is_reconnecting),
        "a dead server is not a network problem: {seen:#?}"
    );
    let Some(SessionEvent::ServerGone { reason }) = seen.last() else {
        unreachable!()
    };
    // Typed: the code the fronts offer the restart on, and what was seen in words.
    assert_eq!(
        reason.code,
        tunnelbook_core::error::ErrorCode::ServerGone,
        "{reason}"
    );
    assert!(
        reason.message.contains(&info.remote_pid.to_string())
            && reason.message.contains("no longer running"),
        "{reason}"
    );

    session.restart_server();
    let again = ready(&mut session).await;
    assert_eq!(again.local_port, info.local_port, "the same local port");
    assert_ne!(again.remote_pid, info.remote_pid);
    assert_ne!(again.server_id, info.server_id);
    assert!(alive(again.remote_pid));
    let token = token_of(&again.url);
    let kernel = start_kernel(again.local_port, &token).await;
    assert_eq!(
        execute(again.local_port, &token, &kernel, "print(1 + 1)")
            .await
            .trim(),
        "2"
    );
    session.close(true).await;
    assert!(
        !alive(again.remote_pid),
        "close(true) stopped the new server"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_answering_while_ssh_works_is_gone_too() {
    let bed = bed();
    let mut spec = bed.spec(bed.profile(bed.sshd.port));
    spec.reconnect.unanswered_max = 1;
    let mut session = Session::start(spec);
    let info = ready(&mut session).await;

    // Frozen: the process exists, nothing answers.
    let status = Command::new("kill")
        .args(["-STOP", "--", &format!("-{}", info.remote_pid)])
        .status()
        .unwrap();
    assert!(status.success());
    let seen = until(&mut session, Duration::from_secs(30), |e| {
        matches!(e, SessionEvent::ServerGone { .. })
    })
    .await;
    assert!(!seen.iter().any(is_reconnecting), "{seen:#?}");
    assert!(
        matches!(seen.last(), Some(SessionEvent::ServerGone { reason })
            if reason.code == tunnelbook_core::error::ErrorCode::ServerGone
                && reason.message.contains("has not answered")),
        "{seen:#?}"
    );

    // A restart replaces the frozen server (stopped for good) behind the same port.
    session.restart_server();
    let again = ready(&mut session).await;
    assert_eq!(again.local_port, info.local_port);
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(info.remote_pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!alive(info.remote_pid), "the frozen server was stopped");
    session.close(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sshd_restart_is_survived_by_up_which_says_so() {
    let mut bed = bed();
    ProfileStore::in_home(&bed.client.home())
        .save(&[bed.profile(bed.sshd.port)])
        .unwrap();
    let (up, info, err_path) = spawn_up(&bed);
    let kernel = kernel_with_x(&info).await;

    bed.sshd.restart(Duration::from_secs(2));
    let deadline = Instant::now() + Duration::from_secs(40);
    let stderr = loop {
        let text = std::fs::read_to_string(&err_path).unwrap_or_default();
        if text.contains("tunnelbook: reconnected") || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        stderr.contains("tunnelbook: connection lost (")
            && stderr.contains("; reconnecting (attempt 1, next try in 1 s)")
            && stderr.contains("tunnelbook: reconnected"),
        "{stderr}"
    );
    assert!(alive(info.remote_pid), "the server outlived sshd");
    x_is_still_42(&info, &kernel).await;
    // Ctrl-C (SIGTERM) ends `up`, which stops the server (--stop-on-exit).
    let _ = Command::new("kill")
        .args(["-TERM", &up.pid().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while alive(info.remote_pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!alive(info.remote_pid));
}

/// `tunnelbook up box --json --stop-on-exit` with its stderr in a file, once it printed its line:
/// the process, what the line says, and the file.
fn spawn_up(bed: &Bed) -> (Guard, ReadyInfo, std::path::PathBuf) {
    let err_path = bed.client.dir.path().join("up-stderr");
    let mut up = Guard::spawn(
        bed.client
            .cli()
            .args(["up", "box", "--gpu", "none", "--json", "--stop-on-exit"])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&err_path).unwrap()),
    );
    let line = up.read_line();
    let ready: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|_| {
        panic!(
            "up printed {line:?}; stderr:\n{}",
            std::fs::read_to_string(&err_path).unwrap_or_default()
        )
    });
    (up, ready_info(&ready), err_path)
}

/// The parts of `up --json`'s line the tests use.
fn ready_info(ready: &serde_json::Value) -> ReadyInfo {
    ReadyInfo {
        url: ready["url"].as_str().unwrap().to_string(),
        local_port: u16::try_from(ready["localPort"].as_u64().unwrap()).unwrap(),
        gpu: None,
        gpu_label: None,
        remote_pid: u32::try_from(ready["remotePid"].as_u64().unwrap()).unwrap(),
        env: String::new(),
        server_id: ready["serverId"].as_str().unwrap().to_string(),
        root_dir: None,
        reused: false,
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

const SOAK_REQUESTS: usize = 10_000;
const SOAK_WORKERS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_10k_requests_across_3_reconnects_fail_only_in_outages_and_leak_nothing() {
    let bed = bed();
    let proxy = Arc::new(Proxy::start(bed.sshd.port).await);
    bed.client.trust_port(&bed.sshd, proxy.port);
    let mut session = Session::start(bed.spec(bed.profile(proxy.port)));
    let info = ready(&mut session).await;
    let kernel = kernel_with_x(&info).await;
    let addr = SocketAddr::from(([127, 0, 0, 1], info.local_port));

    // Warm up, then take the baseline.
    for _ in 0..200 {
        let r = http::request(addr, "GET", "/api", None).await.unwrap();
        assert_eq!(r.status, 200);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (fds_before, rss_before) = (open_fds(), rss_kib());

    let t0 = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    // (start, end) of each failed request, in ms since t0.
    let failures = Arc::new(Mutex::new(Vec::<(u128, u128)>::new()));
    let mut workers = Vec::new();
    for _ in 0..SOAK_WORKERS {
        let (next, failures) = (next.clone(), failures.clone());
        workers.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < SOAK_REQUESTS {
                let start = t0.elapsed().as_millis();
                let ok = matches!(
                    http::request(addr, "GET", "/api", None).await,
                    Ok(r) if r.status == 200
                );
                if !ok {
                    failures
                        .lock()
                        .unwrap()
                        .push((start, t0.elapsed().as_millis()));
                }
            }
        }));
    }
    // Three forced reconnects, spread over the run; each outage window lasts from the cut until
    // one second after the session says it is back.
    let mut outages = Vec::new();
    for k in 1..=3 {
        while next.load(Ordering::Relaxed) < k * SOAK_REQUESTS / 4 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let from = t0.elapsed().as_millis();
        proxy.cut();
        until(&mut session, Duration::from_secs(10), is_reconnecting).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        proxy.restore();
        until(&mut session, Duration::from_secs(30), is_reconnected).await;
        outages.push((from, t0.elapsed().as_millis() + 1000));
    }
    for w in workers {
        w.await.unwrap();
    }
    let elapsed = t0.elapsed();

    let failures = failures.lock().unwrap().clone();
    let outside: Vec<_> = failures
        .iter()
        .filter(|(s, e)| !outages.iter().any(|(from, to)| s <= to && e >= from))
        .collect();
    eprintln!(
        "{SOAK_REQUESTS} requests in {elapsed:?}; {} failed, all within the outages {outages:?}",
        failures.len()
    );
    assert!(
        outside.is_empty(),
        "failures outside the outages {outages:?}: {outside:?}"
    );
    assert!(failures.len() < SOAK_REQUESTS / 20, "{}", failures.len());

    x_is_still_42(&info, &kernel).await;
    // Measured with the session still up (its listener and its one SSH socket, as before).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (fds_after, rss_after) = (open_fds(), rss_kib());
    session.close(true).await;
    eprintln!("fds {fds_before} -> {fds_after}; RSS {rss_before} KiB -> {rss_after} KiB");
    assert!(
        fds_after <= fds_before + 8,
        "fds grew: {fds_before} -> {fds_after}"
    );
    assert!(
        rss_after <= rss_before + 32 * 1024,
        "RSS grew: {rss_before} KiB -> {rss_after} KiB"
    );
}

/// The CLI notices it was suspended (here: SIGSTOP, as a laptop's sleep looks to a process) and
/// checks its connection at once instead of waiting for the keepalives (30 s × 3 here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_checks_its_connection_at_once_after_a_suspend() {
    let bed = bed();
    let proxy = Proxy::start(bed.sshd.port).await;
    bed.client.trust_port(&bed.sshd, proxy.port);
    let mut profile = bed.profile(proxy.port);
    profile.keepalive_interval = 30;
    ProfileStore::in_home(&bed.client.home())
        .save(&[profile])
        .unwrap();
    let (up, info, err_path) = spawn_up(&bed);
    let kernel = kernel_with_x(&info).await;
    let pid = up.pid().to_string();

    // "Sleep": the process stops and the network goes silent; on "resume" the network is back
    // but the old connection is dead without a word.
    let _ = Command::new("kill").args(["-STOP", &pid]).status();
    proxy.blackhole();
    tokio::time::sleep(Duration::from_secs(10)).await;
    proxy.abandon_and_restore();
    let resumed = Instant::now();
    let _ = Command::new("kill").args(["-CONT", &pid]).status();
    let stderr = loop {
        let text = std::fs::read_to_string(&err_path).unwrap_or_default();
        if text.contains("tunnelbook: reconnected") || resumed.elapsed() > Duration::from_secs(30) {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        stderr.contains("tunnelbook: this computer woke up after ")
            && stderr.contains(": checking the connection")
            && stderr.contains("tunnelbook: reconnected"),
        "{stderr}"
    );
    // Tick (2 s) + one unanswered keepalive (5 s) + a new connection; the keepalives alone would
    // have taken 90 s.
    assert!(
        resumed.elapsed() < Duration::from_secs(20),
        "{:?}",
        resumed.elapsed()
    );
    x_is_still_42(&info, &kernel).await;
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
}

/// The app runs saved rules from its Tunnels view and asks the session to leave them alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_rules_stay_off_when_the_session_is_told_so() {
    let bed = bed();
    let local_port = free_port();
    let mut profile = bed.profile(bed.sshd.port);
    profile.forwards = vec![ForwardRule {
        last_port: None,
        enabled: true,
        spec: ForwardSpec::Local {
            bind: "127.0.0.1".into(),
            port: local_port,
            host: "127.0.0.1".into(),
            host_port: service("tensorboard here"),
        },
    }];
    let mut spec = bed.spec(profile);
    spec.saved_forwards = false;
    let mut session = Session::start(spec);
    let _info = ready(&mut session).await;
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", local_port)).is_err(),
        "the saved rule did not start"
    );
    session.close(true).await;
}
