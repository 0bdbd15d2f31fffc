//! Servers that forbid forwarding (issue 16, case 14): the policy is known within 2 s of
//! connecting and named by its `sshd_config` setting; `up` works on each (kernel code through
//! the tunnel: a Unix socket, TCP, or a relay over an exec channel where nothing is allowed);
//! `forward` reports a refused channel as OpenSSH does.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    io::Read,
    net::TcpStream,
    process::Stdio,
    time::{Duration, Instant},
};

use tunnelbook_core::{secret::Sensitive, ssh::Forwarding};
use tunnelbook_testbed::{
    Guard, alive, free_port,
    jupyter_box::JupyterBox,
    kernel::{execute, start_kernel},
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
