//! Runtime state on the host (issue 16): records and sockets live in a 0700 directory under the
//! home, so a server outlives the deletion of `$XDG_RUNTIME_DIR` (systemd-logind removes it when
//! the user's last session ends) and `attach` still works; `down` never signals a process that
//! is not the recorded server any more.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    os::unix::fs::PermissionsExt,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use tunnelbook_core::secret::Sensitive;
use tunnelbook_testbed::{
    Guard, SshdOptions, USER, alive,
    jupyter_box::JupyterBox,
    kernel::{execute, start_kernel},
    run,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_runtime_dir_after_up_disconnects_leaves_attach_working() {
    // A $XDG_RUNTIME_DIR for the user, as logind makes one, that the test deletes later.
    let xdg = tempfile::Builder::new()
        .prefix("tb-xdg-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(xdg.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    run(Command::new("chown")
        .arg(format!("{USER}:"))
        .arg(xdg.path()));
    let setenv = format!("SetEnv XDG_RUNTIME_DIR={}", xdg.path().display());
    let bed = JupyterBox::with_sshd_config(&[&setenv]);
    let client = &bed.client;

    let (mut up, ready, _) = client.spawn_json(&["up", "box", "--gpu", "none"]);
    let id = ready["serverId"].as_str().unwrap().to_string();
    let pid = u32::try_from(ready["remotePid"].as_u64().unwrap()).unwrap();
    let url = ready["url"].as_str().unwrap();
    let port = u16::try_from(ready["localPort"].as_u64().unwrap()).unwrap();
    let token = Sensitive::new(url.split("token=").nth(1).unwrap().to_string());
    let kernel = start_kernel(port, &token).await;
    assert!(execute(port, &token, &kernel, "x = 42").await.is_empty());
    // The record is in ~/.tunnelbook/run (0700), not in the runtime dir.
    let run_dir = format!("/home/{USER}/.tunnelbook/run");
    assert!(
        std::path::Path::new(&format!("{run_dir}/{id}.json")).exists(),
        "no record in {run_dir}"
    );
    let mode = std::fs::metadata(&run_dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    up.kill();

    // logind ends the last session: the runtime directory goes.
    std::fs::remove_dir_all(xdg.path()).unwrap();
    assert!(alive(pid));

    let (mut attach, attached, _) = client.spawn_json(&["attach", "box", &id]);
    let port2 = u16::try_from(attached["localPort"].as_u64().unwrap()).unwrap();
    let seen = execute(port2, &token, &kernel, "print(x)").await;
    assert_eq!(seen.trim(), "42");
    attach.kill();
    let out = client.cli().args(["down", "box", &id]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(!alive(pid));
}

/// A record whose pid now belongs to another program of the user (the server died and the pid
/// was reused): `down` removes the record but does not signal that program.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_never_signals_a_process_that_is_not_the_recorded_server() {
    let bed = JupyterBox::start(SshdOptions::default());
    let client = &bed.client;
    // "jupyter" on its command line, like any Jupyter process, but not the recorded server.
    let mut other = Guard::spawn(
        Command::new("setpriv")
            .args([
                "--reuid",
                USER,
                "--regid",
                USER,
                "--init-groups",
                "/usr/bin/python3",
                "-c",
                "import time; time.sleep(600)",
                "jupyter-lab",
            ])
            .stdout(Stdio::null()),
    );
    let pid = other.pid();
    let id = format!("tb-reused{}", std::process::id());
    let dir = format!("/home/{USER}/.tunnelbook/run");
    std::fs::create_dir_all(&dir).unwrap();
    let record = serde_json::json!({
        "id": id, "pid": pid,
        "endpoint": {"kind": "unixSocket", "path": format!("{dir}/{id}.sock")},
        "baseUrl": "/", "env": null, "gpu": null, "started": 1, "rootDir": null,
        "log": format!("{dir}/{id}.log"), "app": "lab", "managed": true,
    });
    let path = format!("{dir}/{id}.json");
    std::fs::write(&path, record.to_string()).unwrap();
    run(Command::new("chown")
        .arg("-R")
        .arg(format!("{USER}:"))
        .arg(format!("/home/{USER}/.tunnelbook")));

    let started = Instant::now();
    let out = client.cli().args(["down", "box", &id]).output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(30));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        alive(pid),
        "down killed pid {pid}, which was not the server: {out:?}"
    );
    assert!(!std::path::Path::new(&path).exists(), "{out:?}");
    other.kill();
}

/// No race for the TCP port: the server binds a port the kernel picks and Tunnelbook learns it
/// from the server's own listening socket (another user listening on loopback meanwhile): the
/// recorded port is the one the server process itself holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tcp_port_is_the_one_the_server_itself_listens_on() {
    let bed = JupyterBox::with_sshd_config(&["AllowStreamLocalForwarding no"]);
    let client = &bed.client;
    // Another local user listening on loopback, counting connections.
    let mut other = Guard::spawn(
        Command::new("setpriv")
            .args([
                "--reuid",
                tunnelbook_testbed::OTHER_USER,
                "--regid",
                tunnelbook_testbed::OTHER_USER,
                "--init-groups",
                "/usr/bin/python3",
                "-c",
                "import socket, sys\ns = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(8)\n\
                 print(s.getsockname()[1], flush=True)\ns.settimeout(120)\n\
                 c, _ = s.accept(); print('got', c.recv(4096), flush=True)",
            ])
            .stdout(Stdio::piped()),
    );
    let _their_port: u16 = other.read_line().parse().unwrap();

    let (mut up, ready, _) = client.spawn_json(&["up", "box", "--gpu", "none"]);
    let pid = u32::try_from(ready["remotePid"].as_u64().unwrap()).unwrap();
    let url = ready["url"].as_str().unwrap();
    let port = u16::try_from(ready["localPort"].as_u64().unwrap()).unwrap();
    let token = Sensitive::new(url.split("token=").nth(1).unwrap().to_string());
    let kernel = start_kernel(port, &token).await;
    assert_eq!(
        execute(port, &token, &kernel, "print(42)").await.trim(),
        "42"
    );

    let listed = client.cli().args(["ls", "box", "--json"]).output().unwrap();
    let servers: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let server = servers
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["pid"] == pid)
        .unwrap();
    assert_eq!(server["endpoint"]["kind"], "tcp", "{server}");
    let remote_port = u16::try_from(server["endpoint"]["port"].as_u64().unwrap()).unwrap();
    // The listening socket on that port is one of the server process's own descriptors.
    let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let inode = tcp
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| {
            f[3] == "0A" && f[1].rsplit(':').next() == Some(&format!("{remote_port:04X}")[..])
        })
        .map(|f| f[9].to_string())
        .expect("nothing listens on the recorded port");
    let owned = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .any(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|l| l.to_string_lossy() == format!("socket:[{inode}]"))
        });
    assert!(owned, "port {remote_port} is not held by the server {pid}");
    up.kill();
    let out = client
        .cli()
        .args(["down", "box", server["id"].as_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // The tunnel led to the server's own socket, not to the other user's listener.
    other.kill();
}
