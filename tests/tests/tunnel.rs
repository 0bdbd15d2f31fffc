//! Tunnels against a real sshd: big transfers both ways, many concurrent connections,
//! half-close, Unix-socket targets, remote forwards, SOCKS5 through curl, port conflicts, refused
//! targets, counters and shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{net::SocketAddr, sync::Arc, time::Duration};

use sha2::{Digest, Sha256};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tunnelbook_core::{
    profile::ProfileStore,
    ssh::{Connection, HostKeyPolicy, NoPrompter},
    tunnel::{ForwardSpec, Listen, Target, Tunnel, TunnelError},
};
use tunnelbook_testbed::{Client, Sshd, SshdOptions, key_only, make_key};

struct Bed {
    _keys: tempfile::TempDir,
    sshd: Sshd,
    client: Client,
    conn: Connection,
    key: tunnelbook_testbed::KeyFile,
}

async fn bed(user: &str) -> Bed {
    let keys = tempfile::tempdir().unwrap();
    let key = make_key(keys.path(), "id", "ed25519", None);
    let sshd = Sshd::start(&[&key], SshdOptions::default());
    let client = Client::new();
    client.trust(&sshd);
    let ctx = client.context(Arc::new(NoPrompter), HostKeyPolicy::Strict, None);
    let conn = Connection::open(&[key_only(sshd.profile("box", user), &key)], &ctx)
        .await
        .unwrap();
    Bed {
        _keys: keys,
        sshd,
        client,
        conn,
        key,
    }
}

/// Deterministic pseudo-random bytes (xorshift), so both ends can agree on content.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A server that answers each connection: "up" → read to EOF and reply with the SHA-256;
/// "dn" → send `size` pattern bytes and close; anything else → echo until EOF.
async fn test_server(size: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut mode = [0u8; 2];
                if s.read_exact(&mut mode).await.is_err() {
                    return;
                }
                match &mode {
                    b"up" => {
                        let mut hasher = Sha256::new();
                        let mut buf = vec![0u8; 1 << 16];
                        loop {
                            let n = s.read(&mut buf).await.unwrap();
                            if n == 0 {
                                break;
                            }
                            hasher.update(&buf[..n]);
                        }
                        s.write_all(&hasher.finalize()).await.unwrap();
                    }
                    b"dn" => {
                        let data = pattern(size, 7);
                        s.write_all(&data).await.unwrap();
                    }
                    _ => {
                        s.write_all(&mode).await.unwrap();
                        let (mut r, mut w) = s.split();
                        tokio::io::copy(&mut r, &mut w).await.unwrap();
                    }
                }
            });
        }
    });
    addr
}

fn target(addr: SocketAddr) -> Target {
    Target::Tcp {
        host: "127.0.0.1".into(),
        port: addr.port(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_mib_each_way_with_checksums_and_counters() {
    const SIZE: usize = 100 << 20;
    let bed = bed(tunnelbook_testbed::USER).await;
    let server = test_server(SIZE).await;
    let tunnel = Tunnel::local(&bed.conn, Listen::loopback_any(), target(server))
        .await
        .unwrap();
    let local = tunnel.local_addr().unwrap();
    assert!(local.ip().is_loopback());

    // Upload 100 MiB, half-close, receive the server's checksum of what arrived.
    let data = pattern(SIZE, 42);
    let mut s = TcpStream::connect(local).await.unwrap();
    s.write_all(b"up").await.unwrap();
    s.write_all(&data).await.unwrap();
    s.shutdown().await.unwrap();
    let mut digest = Vec::new();
    s.read_to_end(&mut digest).await.unwrap();
    assert_eq!(
        digest,
        Sha256::digest(&data).to_vec(),
        "upload arrived intact"
    );

    // Download 100 MiB.
    let mut s = TcpStream::connect(local).await.unwrap();
    s.write_all(b"dn").await.unwrap();
    let mut got = Vec::with_capacity(SIZE);
    s.read_to_end(&mut got).await.unwrap();
    assert_eq!(got.len(), SIZE);
    assert_eq!(
        Sha256::digest(&got),
        Sha256::digest(pattern(SIZE, 7)),
        "download arrived intact"
    );
    drop(s);

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while tunnel.stats().open_connections > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = tunnel.stats();
    assert_eq!(stats.total_connections, 2);
    assert_eq!(stats.open_connections, 0);
    assert_eq!(stats.bytes_up, (SIZE + 4) as u64);
    assert_eq!(stats.bytes_down, (SIZE + 32) as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_connections_all_complete_correctly() {
    let bed = bed(tunnelbook_testbed::USER).await;
    let server = test_server(0).await;
    let tunnel = Tunnel::local(&bed.conn, Listen::loopback_any(), target(server))
        .await
        .unwrap();
    let local = tunnel.local_addr().unwrap();
    let clients = (0..200u64).map(|i| {
        tokio::spawn(async move {
            let payload = pattern(64 * 1024, i + 1);
            let mut s = TcpStream::connect(local).await.unwrap();
            s.write_all(b"ec").await.unwrap();
            s.write_all(&payload).await.unwrap();
            s.shutdown().await.unwrap();
            let mut back = Vec::new();
            s.read_to_end(&mut back).await.unwrap();
            assert_eq!(&back[..2], b"ec");
            assert!(back[2..] == payload[..], "connection {i} got wrong data");
        })
    });
    for c in futures::future::join_all(clients).await {
        c.unwrap();
    }
    assert_eq!(tunnel.stats().total_connections, 200);
}

#[tokio::test]
async fn half_close_keeps_the_other_direction_open() {
    let bed = bed(tunnelbook_testbed::USER).await;
    // The remote side reads to EOF first, waits, then answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        s.write_all(format!("received {} bytes", got.len()).as_bytes())
            .await
            .unwrap();
    });
    let tunnel = Tunnel::local(&bed.conn, Listen::loopback_any(), target(addr))
        .await
        .unwrap();
    let mut s = TcpStream::connect(tunnel.local_addr().unwrap())
        .await
        .unwrap();
    s.write_all(b"hello").await.unwrap();
    s.shutdown().await.unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).await.unwrap();
    assert_eq!(reply, "received 5 bytes");
}

#[tokio::test]
async fn unix_socket_target() {
    let bed = bed("root").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jupyter.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        s.write_all(b"from unix socket").await.unwrap();
    });
    let tunnel = Tunnel::local(
        &bed.conn,
        Listen::loopback_any(),
        Target::UnixSocket {
            path: path.display().to_string(),
        },
    )
    .await
    .unwrap();
    let mut s = TcpStream::connect(tunnel.local_addr().unwrap())
        .await
        .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).await.unwrap();
    assert_eq!(reply, "from unix socket");
}

#[tokio::test]
async fn remote_forward_brings_connections_back() {
    let bed = bed(tunnelbook_testbed::USER).await;
    let local_service = test_server(0).await;
    let tunnel = Tunnel::remote(&bed.conn, "127.0.0.1", 0, "127.0.0.1", local_service.port())
        .await
        .unwrap();
    let server_port = tunnel.remote_port().unwrap();
    assert_ne!(server_port, 0);
    // The "server" is this machine: connect to where sshd now listens.
    let mut s = TcpStream::connect(("127.0.0.1", server_port))
        .await
        .unwrap();
    s.write_all(b"ec-remote").await.unwrap();
    s.shutdown().await.unwrap();
    let mut back = String::new();
    s.read_to_string(&mut back).await.unwrap();
    assert_eq!(back, "ec-remote");
    assert_eq!(tunnel.stats().total_connections, 1);
    tunnel.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        TcpStream::connect(("127.0.0.1", server_port))
            .await
            .is_err(),
        "sshd stopped listening"
    );
}

#[tokio::test]
async fn socks5_through_curl() {
    let bed = bed(tunnelbook_testbed::USER).await;
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http_port = http.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = http.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\nvia socks!")
                    .await;
            });
        }
    });
    let tunnel = ForwardSpec::parse_dynamic("0")
        .unwrap()
        .start(&bed.conn)
        .await
        .unwrap();
    let socks = tunnel.local_addr().unwrap();
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", "--socks5-hostname"])
        .arg(socks.to_string())
        .arg(format!("http://localhost:{http_port}/"))
        .output()
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "via socks!",
        "{out:?}"
    );
    // A destination nothing listens on: curl gets a SOCKS failure, not a hang.
    let dead = tunnelbook_testbed::free_port();
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", "--socks5-hostname"])
        .arg(socks.to_string())
        .arg(format!("http://localhost:{dead}/"))
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert_ne!(
        out.status.code(),
        Some(28),
        "must fail fast, not time out: {out:?}"
    );
}

#[tokio::test]
async fn port_in_use_is_named_or_replaced_when_only_preferred() {
    let bed = bed(tunnelbook_testbed::USER).await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let t = Target::Tcp {
        host: "127.0.0.1".into(),
        port: 9,
    };
    let err = Tunnel::local(&bed.conn, Listen::loopback(port), t.clone())
        .await
        .unwrap_err();
    assert!(matches!(err, TunnelError::PortInUse { .. }), "{err}");
    assert!(err.to_string().contains(&port.to_string()), "{err}");
    let preferred = Listen {
        port_is_preference: true,
        ..Listen::loopback(port)
    };
    let tunnel = Tunnel::local(&bed.conn, preferred, t).await.unwrap();
    assert_ne!(tunnel.local_addr().unwrap().port(), port);
}

#[tokio::test]
async fn refused_target_closes_the_client_and_the_tunnel_keeps_serving() {
    let bed = bed(tunnelbook_testbed::USER).await;
    let port = tunnelbook_testbed::free_port();
    let tunnel = Tunnel::local(
        &bed.conn,
        Listen::loopback_any(),
        Target::Tcp {
            host: "127.0.0.1".into(),
            port,
        },
    )
    .await
    .unwrap();
    let local = tunnel.local_addr().unwrap();
    let mut s = TcpStream::connect(local).await.unwrap();
    let mut buf = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .unwrap();
    assert!(n.map(|n| n == 0).unwrap_or(true), "closed without data");

    // The target comes up: the same tunnel now reaches it.
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    tokio::spawn(async move {
        let (mut c, _) = listener.accept().await.unwrap();
        c.write_all(b"up now").await.unwrap();
    });
    let mut s = TcpStream::connect(local).await.unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).await.unwrap();
    assert_eq!(reply, "up now");
}

#[tokio::test]
async fn close_stops_listening_and_ends_open_connections() {
    let bed = bed(tunnelbook_testbed::USER).await;
    let server = test_server(0).await;
    let tunnel = Tunnel::local(&bed.conn, Listen::loopback_any(), target(server))
        .await
        .unwrap();
    let local = tunnel.local_addr().unwrap();
    let mut open = TcpStream::connect(local).await.unwrap();
    open.write_all(b"ec").await.unwrap();
    let mut two = [0u8; 2];
    open.read_exact(&mut two).await.unwrap();
    tunnel.close().await;
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), open.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the open connection was closed");
    assert!(
        TcpStream::connect(local).await.is_err(),
        "no longer listening"
    );
}

#[test]
fn cli_forward_runs_until_interrupted_and_prints_addresses() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bed = rt.block_on(bed(tunnelbook_testbed::USER));
    let server = rt.block_on(test_server(0));
    ProfileStore::in_home(&bed.client.home())
        .save(&[key_only(
            bed.sshd.profile("box", tunnelbook_testbed::USER),
            &bed.key,
        )])
        .unwrap();
    let mut child = tunnelbook_testbed::Guard::spawn(
        bed.client
            .cli()
            .args(["forward", "box", "-L"])
            .arg(format!("0:127.0.0.1:{}", server.port()))
            .stdout(std::process::Stdio::piped()),
    );
    let line = child.read_line();
    let addr = line
        .strip_prefix("forwarding ")
        .and_then(|rest| rest.split(" -> ").next())
        .unwrap_or_else(|| panic!("unexpected line {line:?}"));
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    use std::io::{Read, Write};
    s.write_all(b"ec-cli").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut back = String::new();
    s.read_to_string(&mut back).unwrap();
    assert_eq!(back, "ec-cli");
}
