//! Servers that forbid forwarding (issue 16, case 14): the policy is known within 2 s of
//! connecting and named by its `sshd_config` setting; `up` works on each (kernel code through
//! the tunnel: a Unix socket, TCP, or a relay over an exec channel where nothing is allowed);
//! `forward` reports a refused channel as OpenSSH does.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    io::Read,
    net::TcpStream,
    process::Stdio,
    sync::Arc,
    time::{Duration, Instant},
};

use tunnelbook_core::{
    gpu::FreeRule,
    host::{HostSession, HostSpec},
    secret::Sensitive,
    session::{ReconnectPolicy, SessionHost},
    ssh::{Forwarding, HostKeyPolicy, NoPrompter},
};
use tunnelbook_testbed::{
    Guard, USER, alive, free_port,
    jupyter_box::JupyterBox,
    kernel::{execute, start_kernel},
    key_only,
};

fn bed(extra: &[&str]) -> JupyterBox {
    JupyterBox::with_sshd_config(extra)
}

async fn policy(bed: &JupyterBox) -> (Forwarding, Duration) {
    let conn = bed.connect().await;
    let started = Instant::now();
    let policy = conn.forwarding().await;
    let took = started.elapsed();
    conn.close().await;
    (policy, took)
}

/// `up`, then code in a kernel through the tunnel, then `down` of that server.
async fn up_runs_kernel_code(bed: &JupyterBox, what: &str) {
    let err_path = bed.client.dir.path().join("up-stderr");
    let mut up = Guard::spawn(
        bed.client
            .cli()
            .args(["up", "box", "--gpu", "none", "--json"])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&err_path).unwrap()),
    );
    let line = up.read_line();
    let ready: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|_| {
        panic!(
            "{what}: up printed {line:?}; stderr:\n{}\nsshd:\n{}",
            std::fs::read_to_string(&err_path).unwrap_or_default(),
            bed.sshd.log()
        )
    });
    let url = ready["url"].as_str().unwrap();
    let port = u16::try_from(ready["localPort"].as_u64().unwrap()).unwrap();
    let pid = u32::try_from(ready["remotePid"].as_u64().unwrap()).unwrap();
    let token = Sensitive::new(url.split("token=").nth(1).unwrap().to_string());
    let kernel = start_kernel(port, &token).await;
    let seen = execute(port, &token, &kernel, "print(6 * 7)").await;
    assert_eq!(seen.trim(), "42", "{what}");
    up.kill();
    let out = bed
        .client
        .cli()
        .args(["down", "box", ready["serverId"].as_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{what}: {out:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!alive(pid), "{what}: server {pid} left running");
}

/// A host session probes the policy as soon as it connects — nobody asks for it — so the app's
/// Tunnels view knows within 2 s of connecting; `forward` names the setting before anyone
/// connects through its listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_known_within_2s_of_connecting_and_named_by_forward_first() {
    let bed = bed(&["AllowTcpForwarding no"]);
    let ctx = bed
        .client
        .context(Arc::new(NoPrompter), HostKeyPolicy::Strict, None);
    let (host, mut events) = HostSession::start(HostSpec {
        host: SessionHost::Ssh {
            chain: vec![key_only(bed.sshd.profile("box", USER), &bed.key)],
            context: ctx,
        },
        reconnect: ReconnectPolicy::default(),
        free_rule: FreeRule::default(),
        profiles: None,
        probe: true,
    });
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    let conn = host.next_connection(None).await.unwrap();
    let connected = Instant::now();
    let known = loop {
        if let Some(policy) = host.forwarding() {
            break policy;
        }
        assert!(
            connected.elapsed() < Duration::from_secs(2),
            "the policy is not known 2 s after connecting"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!known.tcp, "{known:?}");
    assert!(
        known.describe().contains("AllowTcpForwarding no"),
        "{known:?}"
    );
    assert_eq!(conn.forwarding_known(), Some(known));
    host.close().await;

    // `forward`: the setting is named on stderr right after connecting, before any connection.
    let local = free_port();
    let err_path = bed.client.dir.path().join("forward-policy-stderr");
    let mut forward = Guard::spawn(
        bed.client
            .cli()
            .args([
                "forward",
                "box",
                "-L",
                &format!("127.0.0.1:{local}:127.0.0.1:9"),
            ])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&err_path).unwrap()),
    );
    let line = forward.read_line();
    assert!(line.starts_with("forwarding"), "{line}");
    let err = std::fs::read_to_string(&err_path).unwrap();
    assert!(
        err.contains("box: the server forbids") && err.contains("AllowTcpForwarding no"),
        "{err}"
    );
    forward.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_server_allows_both() {
    let bed = bed(&[]);
    let (policy, took) = policy(&bed).await;
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(policy.tcp, "{policy:?}");
    assert_eq!(policy.streamlocal, Some(true), "{policy:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_tcp_forwarding_no_case_14a() {
    let bed = bed(&["AllowTcpForwarding no"]);
    let (policy, took) = policy(&bed).await;
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(!policy.tcp, "{policy:?}");
    assert_eq!(policy.streamlocal, Some(false), "{policy:?}");
    assert!(policy.relay_python.is_some(), "{policy:?}");
    assert!(
        policy.describe().contains("AllowTcpForwarding"),
        "{}",
        policy.describe()
    );
    up_runs_kernel_code(&bed, "AllowTcpForwarding no").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_off_case_14b_relays_and_forward_says_prohibited() {
    let bed = bed(&["AllowTcpForwarding no", "AllowStreamLocalForwarding no"]);
    let (policy, took) = policy(&bed).await;
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(
        !policy.tcp && policy.streamlocal == Some(false),
        "{policy:?}"
    );
    up_runs_kernel_code(&bed, "both off").await;

    // `forward -L` on this server: the connection is refused the way OpenSSH says it.
    let local = free_port();
    let err_path = bed.client.dir.path().join("forward-stderr");
    let mut forward = Guard::spawn(
        bed.client
            .cli()
            .args([
                "forward",
                "box",
                "-L",
                &format!("127.0.0.1:{local}:127.0.0.1:{}", bed.sshd.port),
            ])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&err_path).unwrap()),
    );
    let line = forward.read_line();
    assert!(line.starts_with("forwarding"), "{line}");
    let mut conn = TcpStream::connect(("127.0.0.1", local)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = Vec::new();
    let _ = conn.read_to_end(&mut buf);
    assert!(buf.is_empty(), "{buf:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut err = String::new();
    while Instant::now() < deadline {
        err = std::fs::read_to_string(&err_path).unwrap_or_default();
        if err.contains("administratively prohibited") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(err.contains("administratively prohibited"), "{err}");
    forward.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_stream_local_forwarding_no_case_14c_uses_tcp() {
    let bed = bed(&["AllowStreamLocalForwarding no"]);
    let (policy, took) = policy(&bed).await;
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(policy.tcp, "{policy:?}");
    assert_eq!(policy.streamlocal, Some(false), "{policy:?}");
    up_runs_kernel_code(&bed, "AllowStreamLocalForwarding no").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permit_open_none() {
    let bed = bed(&["PermitOpen none"]);
    let (policy, took) = policy(&bed).await;
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(!policy.tcp, "{policy:?}");
    up_runs_kernel_code(&bed, "PermitOpen none").await;
}
