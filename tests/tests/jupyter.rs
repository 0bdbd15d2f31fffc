//! JupyterLab end to end over a real sshd with a real JupyterLab (the test bed's cached venv,
//! named as the profile's environment — what a user would do): `up` picks the free GPU (the
//! `nvidia-smi` shim plays two GPUs, one busy), a kernel reached through the tunnel (REST +
//! websocket) sees that GPU, the token is on no command line, the server outlives the connection,
//! `attach` gets back to the same kernel, `down` leaves nothing running. Plus the errors a user
//! meets and the install action.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    net::SocketAddr,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use tunnelbook_core::{
    jupyter::{self, Host, http},
    profile::ProfileStore,
    secret::Sensitive,
};
use tunnelbook_testbed::{
    Guard, NvidiaSmiShim, OTHER_USER, SshdOptions, USER, alive,
    jupyter_box::JupyterBox,
    jupyter_venv,
    kernel::{execute, start_kernel},
    processes, run, sleeper, user_bin_lock,
};

const BUSY: &str = "GPU-aaaaaaaa-0000-4000-8000-000000000000";
const FREE: &str = "GPU-bbbbbbbb-1111-4111-8111-111111111111";

/// sshd, a client that trusts it, and the saved host `box` (tbtest, key only) whose environment
/// is the test bed's JupyterLab venv.
fn bed() -> JupyterBox {
    JupyterBox::start(SshdOptions::default())
}

fn rand_suffix() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos() ^ u128::from(rand_u32())
    )
}

fn rand_u32() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

/// Installs the shim as `~tbtest/bin/nvidia-smi` with two H100s, GPU 0 busy with `busy_pid`.
struct Shim(
    #[allow(dead_code)] NvidiaSmiShim,
    #[allow(dead_code)] tempfile::TempDir,
);

impl Shim {
    fn two_gpus(busy_pid: u32) -> Shim {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(
            dir.path().join("query-gpu.csv"),
            format!(
                "0, {BUSY}, NVIDIA H100 80GB HBM3, 81559, 40000, 41559, 90, 10, 60, 300.00, 700.00, Disabled, 00000000:00:06.0, Default\n\
                 1, {FREE}, NVIDIA H100 80GB HBM3, 81559, 0, 81559, 0, 0, 30, 60.00, 700.00, Disabled, 00000000:00:07.0, Default\n"
            ),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("list.txt"),
            format!(
                "GPU 0: NVIDIA H100 80GB HBM3 (UUID: {BUSY})\nGPU 1: NVIDIA H100 80GB HBM3 (UUID: {FREE})\n"
            ),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("apps.csv"),
            format!("{BUSY}, {busy_pid}, python3, 39000\n"),
        )
        .unwrap();
        let shim = NvidiaSmiShim::install(USER, dir.path());
        Shim(shim, dir)
    }
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Live processes whose process group is `pgid`.
fn group_members(pgid: u32) -> Vec<u32> {
    let pgid = pgid.to_string();
    processes()
        .into_iter()
        // state ppid pgrp …
        .filter(|(_, f)| f.len() > 2 && f[0] != "Z" && f[2] == pgid)
        .map(|(pid, _)| pid)
        .collect()
}

/// Every process whose command line holds `needle`.
fn cmdlines_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(raw) = std::fs::read(entry.path().join("cmdline")) {
            let text = String::from_utf8_lossy(&raw).replace('\0', " ");
            if text.contains(needle) {
                found.push(format!("{}: {text}", entry.file_name().to_string_lossy()));
            }
        }
    }
    found
}

fn token_of(url: &str) -> Sensitive<String> {
    Sensitive::new(url.split("token=").nth(1).unwrap().to_string())
}

/// The JSON JupyterLab's `/lab` page carries in `<script id="jupyter-config-data">`.
fn page_config(html: &[u8]) -> serde_json::Value {
    let html = String::from_utf8_lossy(html);
    let start = html
        .find(r#"id="jupyter-config-data""#)
        .and_then(|i| html[i..].find('>').map(|j| i + j + 1))
        .unwrap_or_else(|| panic!("no page config in {html}"));
    let end = start + html[start..].find("</script>").unwrap();
    serde_json::from_str(&html[start..end]).unwrap()
}

fn record_path(id: &str) -> PathBuf {
    PathBuf::from(format!("/home/{USER}/.tunnelbook/run/{id}.json"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_on_the_free_gpu_survives_the_connection_and_down_cleans_up() {
    let bed = bed();
    let holder = sleeper(OTHER_USER);
    let shim = Shim::two_gpus(holder.pid());

    let (mut up, ready, up_err) = bed.client.spawn_json(&["up", "box", "--gpu", "auto"]);
    drop(shim);
    assert_eq!(ready["gpu"], FREE, "{ready}");
    let url = ready["url"].as_str().unwrap().to_string();
    let port = u16::try_from(ready["localPort"].as_u64().unwrap()).unwrap();
    let pid = u32::try_from(ready["remotePid"].as_u64().unwrap()).unwrap();
    let id = ready["serverId"].as_str().unwrap().to_string();
    assert!(
        url.starts_with(&format!("http://127.0.0.1:{port}/lab?token=")),
        "{url}"
    );
    assert_eq!(ready["env"], jupyter_venv().display().to_string());
    let token = token_of(&url);
    assert!(token.expose().len() >= 64);

    // The page itself answers through the tunnel.
    let lab = http::request(addr(port), "GET", "/lab", Some(&token))
        .await
        .unwrap();
    assert_eq!(lab.status, 200);
    // Jupyter's first-run "official Jupyter news?" question is answered before it is asked:
    // the page's own configuration disables the announcements plugin.
    let disabled = page_config(&lab.body)["disabledExtensions"].clone();
    let announcements = "@jupyterlab/apputils-extension:announcements";
    assert!(
        disabled
            .as_array()
            .is_some_and(|a| a.iter().any(|e| e == announcements))
            || disabled[announcements] == true,
        "announcements not disabled: {disabled}"
    );
    // The app object is on the window, so the app can save open documents before it closes it.
    assert_eq!(page_config(&lab.body)["exposeAppInBrowser"], true);

    // A kernel started through the tunnel sees the chosen GPU.
    let kernel = start_kernel(port, &token).await;
    let seen = execute(
        port,
        &token,
        &kernel,
        "import os; os.environ.get(\"CUDA_VISIBLE_DEVICES\")",
    )
    .await;
    assert!(seen.contains(FREE), "kernel saw {seen:?}");
    assert!(
        execute(port, &token, &kernel, "x = 41 + 1")
            .await
            .is_empty()
    );

    // The token is on no command line, and the record (0600) does not hold it.
    assert_eq!(cmdlines_with(token.expose()), Vec::<String>::new());
    let record = std::fs::read_to_string(record_path(&id)).unwrap();
    assert!(!record.contains(token.expose()));
    let mode = std::fs::metadata(record_path(&id))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(alive(pid));

    // The connection dies with the `up` process; the server does not.
    up.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(alive(pid), "the server died with the connection");
    let (code, listed, err) = bed.client.run_cli(&["ls", "box", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(listed.contains(&id), "{listed}");

    // attach reconnects to the same kernel, whose state is still there.
    let (mut attach, attached, _) = bed.client.spawn_json(&["attach", "box", &id]);
    let port2 = u16::try_from(attached["localPort"].as_u64().unwrap()).unwrap();
    // The port `up` had, free again: bookmarks and open tabs keep working.
    assert_eq!(port2, port, "attach did not come back on up's port");
    let token2 = token_of(attached["url"].as_str().unwrap());
    assert_eq!(token2.expose(), token.expose());
    assert_eq!(
        execute(port2, &token2, &kernel, "print(x)").await.trim(),
        "42"
    );
    attach.kill();

    // down stops it; nothing of it is left.
    let (code, _, err) = bed.client.run_cli(&["down", "box", &id]);
    assert_eq!(code, 0, "{err}");
    assert!(!alive(pid), "pid {pid} still alive");
    assert_eq!(group_members(pid), Vec::<u32>::new());
    assert!(!record_path(&id).exists());
    let (_, listed, _) = bed.client.run_cli(&["ls", "box", "--json"]);
    assert!(!listed.contains(&id), "{listed}");
    drop(up_err);
}

#[tokio::test]
async fn environments_are_listed_with_versions_and_jupyter() {
    let bed = bed();
    let conn = bed.connect().await;
    let host = Host::Ssh(conn);
    let venv = jupyter_venv().display().to_string();
    let envs = jupyter::environments(&host, Some(&venv)).await.unwrap();
    let ours = envs.iter().find(|e| e.configured).unwrap();
    assert_eq!(ours.prefix.as_deref(), Some(venv.as_str()));
    assert!(ours.jupyter_lab, "{envs:#?}");
    assert!(ours.python_version.as_deref().unwrap().starts_with("3."));
    assert!(
        envs.iter().any(|e| e.kind == jupyter::EnvKind::System),
        "{envs:#?}"
    );
    let (code, out, err) = bed.client.run_cli(&["envs", "box"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&venv) && out.contains("jupyterlab"), "{out}");
}

/// A directory in tbtest's home, removed on drop.
struct UserDir(PathBuf);

impl UserDir {
    fn new(name: &str) -> UserDir {
        let path = PathBuf::from(format!("/home/{USER}/{name}-{}", rand_suffix()));
        UserDir(path)
    }
}

impl Drop for UserDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn clear_errors_for_missing_jupyter_broken_env_unknown_gpu_and_busy_port() {
    let bed = bed();

    // A venv without Jupyter.
    let bare = UserDir::new("tb-bare");
    run(Command::new("setpriv")
        .args([
            "--reuid",
            USER,
            "--regid",
            USER,
            "--init-groups",
            "/usr/bin/python3",
            "-m",
            "venv",
            "--without-pip",
        ])
        .arg(&bare.0));
    let (code, _, err) = bed.client.run_cli(&[
        "up",
        "box",
        "--gpu",
        "none",
        "--env",
        &bare.0.display().to_string(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("JupyterLab is not installed in"), "{err}");
    assert!(err.contains("install-jupyter"), "{err}");

    // An environment whose interpreter does not start.
    let broken = UserDir::new("tb-broken");
    std::fs::create_dir_all(broken.0.join("bin")).unwrap();
    let py = broken.0.join("bin/python3");
    std::fs::write(
        &py,
        "#!/bin/sh\necho 'Fatal Python error: init_fs_encoding' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&py, std::fs::Permissions::from_mode(0o755)).unwrap();
    run(Command::new("chown")
        .arg("-R")
        .arg(format!("{USER}:"))
        .arg(&broken.0));
    let (code, _, err) = bed.client.run_cli(&[
        "up",
        "box",
        "--gpu",
        "none",
        "--env",
        &broken.0.display().to_string(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("is broken") && err.contains("init_fs_encoding"),
        "{err}"
    );

    // An environment that does not exist.
    let (code, _, err) =
        bed.client
            .run_cli(&["up", "box", "--gpu", "none", "--env", "no-such-env"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("no Python environment \"no-such-env\""),
        "{err}"
    );

    // A GPU the host does not have (this host has no nvidia-smi for the user without the shim:
    // the lock keeps other tests' shims out meanwhile).
    {
        let _lock = user_bin_lock(USER);
        let (code, _, err) = bed.client.run_cli(&["up", "box", "--gpu", "7"]);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("has no GPU 7"), "{err}");
        let (code, _, err) = bed.client.run_cli(&["up", "box", "--gpu", "banana"]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("not a GPU choice"), "{err}");
    }

    // A busy local port: the error names it, and the server started for it is stopped again.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (code, _, err) = bed
        .client
        .run_cli(&["up", "box", "--gpu", "none", "--port", &port]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("local port {port}")) && err.contains("already in use"),
        "{err}"
    );
    let launched = err
        .lines()
        .find_map(|l| {
            l.split("server ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
        })
        .unwrap()
        .to_string();
    assert!(!record_path(&launched).exists(), "{launched} left a record");
}

#[test]
fn hosts_edit_env_and_dir_are_what_up_launches_with() {
    let bed = bed();
    let venv = jupyter_venv().display().to_string();
    let dir = UserDir::new("tb-nbdir");
    run(Command::new("install")
        .args(["-d", "-o", USER, "-g", USER])
        .arg(&dir.0));
    let dir_text = dir.0.display().to_string();
    let (code, _, err) = bed.client.run_cli(&["hosts", "edit", "box", "--no-env"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = bed
        .client
        .run_cli(&["hosts", "edit", "box", "--env", &venv, "--dir", &dir_text]);
    assert_eq!(code, 0, "{err}");
    // No --env, no --dir: the profile's.
    let (mut up, ready, _) =
        bed.client
            .spawn_json(&["up", "box", "--gpu", "none", "--stop-on-exit"]);
    assert_eq!(ready["env"], venv.as_str());
    let id = ready["serverId"].as_str().unwrap().to_string();
    let (code, listed, err) = bed.client.run_cli(&["ls", "box", "--json"]);
    assert_eq!(code, 0, "{err}");
    let servers: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let server = servers
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} not in {listed}"));
    assert_eq!(server["rootDir"], dir_text.as_str(), "{listed}");
    let (code, _, err) = bed.client.run_cli(&["down", "box", &id]);
    assert_eq!(code, 0, "{err}");
    up.kill();
}

#[tokio::test]
async fn install_jupyter_into_a_fresh_venv_then_up() {
    let bed = bed();
    let venv = UserDir::new("tb-install");
    let path = venv.0.display().to_string();
    let out = bed
        .client
        .cli()
        .args(["install-jupyter", "box", "--venv", &path])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), path);
    assert!(err.contains("installing jupyterlab"), "{err}");
    assert!(
        err.contains("Successfully installed") || err.contains("already satisfied"),
        "{err}"
    );

    let (mut up, ready, _) = bed.client.spawn_json(&[
        "up",
        "box",
        "--gpu",
        "none",
        "--env",
        &path,
        "--stop-on-exit",
    ]);
    assert_eq!(ready["env"], path);
    assert_eq!(ready["gpu"], serde_json::Value::Null);
    let token = token_of(ready["url"].as_str().unwrap());
    let port = u16::try_from(ready["localPort"].as_u64().unwrap()).unwrap();
    let status = http::request(addr(port), "GET", "/api/status", Some(&token))
        .await
        .unwrap();
    assert_eq!(status.status, 200);
    let id = ready["serverId"].as_str().unwrap().to_string();
    let (code, _, err) = bed.client.run_cli(&["down", "box", &id]);
    assert_eq!(code, 0, "{err}");
    up.kill();
}

#[test]
fn saved_forwarding_rules_start_with_up() {
    use std::io::{Read, Write};

    use tunnelbook_core::tunnel::{ForwardRule, ForwardSpec};

    let bed = bed();
    // A service on the "server" side (this machine) that the saved rule reaches.
    let service = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let service_port = service.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in service.incoming() {
            let Ok(mut s) = stream else { return };
            let _ = s.write_all(b"tensorboard here");
        }
    });
    let local_port = tunnelbook_testbed::free_port();
    let disabled_port = tunnelbook_testbed::free_port();
    ProfileStore::in_home(&bed.client.home())
        .edit("box", |p| {
            p.forwards = vec![
                ForwardRule {
                    last_port: None,
                    enabled: true,
                    spec: ForwardSpec::Local {
                        bind: "127.0.0.1".into(),
                        port: local_port,
                        host: "127.0.0.1".into(),
                        host_port: service_port,
                    },
                },
                ForwardRule {
                    last_port: None,
                    enabled: false,
                    spec: ForwardSpec::Local {
                        bind: "127.0.0.1".into(),
                        port: disabled_port,
                        host: "127.0.0.1".into(),
                        host_port: service_port,
                    },
                },
            ];
        })
        .unwrap();
    let (_up, ready, _) = bed.client.spawn_json(&["up", "box", "--gpu", "none"]);
    let id = ready["serverId"].as_str().unwrap().to_string();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", local_port)).unwrap();
    let mut got = String::new();
    s.read_to_string(&mut got).unwrap();
    assert_eq!(got, "tensorboard here");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", disabled_port)).is_err(),
        "a disabled rule does not start"
    );
    let (code, _, err) = bed.client.run_cli(&["down", "box", &id]);
    assert_eq!(code, 0, "{err}");
}

/// `tunnelbook …` run as the unprivileged test user on this computer (Jupyter refuses root).
fn local_cli(home: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid",
        USER,
        "--regid",
        USER,
        "--init-groups",
        "env",
        "-i",
        "PATH=/usr/bin:/bin",
    ])
    .arg(format!("HOME={}", home.display()))
    .arg(format!("TUNNELBOOK_HOME={}", home.join("tb").display()))
    .arg(tunnelbook_testbed::cli_binary())
    .args(args)
    .stdin(Stdio::null());
    cmd
}

#[tokio::test]
async fn this_computer_up_answers_and_down_stops_it() {
    let venv = jupyter_venv().display().to_string();
    let home = tempfile::Builder::new()
        .prefix("tb-local-")
        .tempdir()
        .unwrap();
    run(Command::new("chown")
        .arg(format!("{USER}:"))
        .arg(home.path()));
    let mut up = Guard::spawn(
        local_cli(
            home.path(),
            &["up", "local", "--gpu", "none", "--env", &venv, "--json"],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null()),
    );
    let ready: serde_json::Value = serde_json::from_str(&up.read_line()).unwrap();
    let port = u16::try_from(ready["localPort"].as_u64().unwrap()).unwrap();
    let pid = u32::try_from(ready["remotePid"].as_u64().unwrap()).unwrap();
    let token = token_of(ready["url"].as_str().unwrap());
    let status = http::request(addr(port), "GET", "/api/status", Some(&token))
        .await
        .unwrap();
    assert_eq!(status.status, 200);
    assert!(
        cmdlines_with(token.expose()).is_empty(),
        "the token is on no command line"
    );
    up.kill();
    assert!(alive(pid), "the server outlives the `up` process");
    let out = local_cli(
        home.path(),
        &["down", "local", ready["serverId"].as_str().unwrap()],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    let deadline = Instant::now() + Duration::from_secs(15);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!alive(pid), "down stopped the local server");
}

/// Issue 16, "no race for the TCP port", on this computer (always TCP): another local user
/// listens first on Jupyter's usual ports (8888 and the 99 after it, where `port_retries` would
/// go) and on ports the kernel handed out. The launch still works, the port is the server's own
/// listening socket, and nothing — the token least of all — reaches the other user's listeners.
#[tokio::test]
async fn this_computer_launch_never_sends_the_token_to_another_users_listener() {
    let venv = jupyter_venv().display().to_string();
    let home = tempfile::Builder::new()
        .prefix("tb-local-race-")
        .tempdir()
        .unwrap();
    run(Command::new("chown")
        .arg(format!("{USER}:"))
        .arg(home.path()));
    // What the other user's listeners receive, written where they can write.
    let seen_dir = tempfile::Builder::new()
        .prefix("tb-other-seen-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(seen_dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let seen = seen_dir.path().join("seen");
    let listener = r#"
import socket, sys, threading
out = open(sys.argv[1], "a", buffering=1)
socks = []
for port in list(range(8888, 8988)) + [0] * 40:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    s.listen(16)
    socks.append(s)
def serve(s):
    while True:
        c, _ = s.accept()
        c.settimeout(2)
        try:
            data = c.recv(65536)
        except OSError:
            data = b""
        out.write("got %d %r\n" % (s.getsockname()[1], data))
for s in socks:
    threading.Thread(target=serve, args=(s,), daemon=True).start()
print(len(socks), flush=True)
threading.Event().wait(300)
"#;
    let mut other = Guard::spawn(
        Command::new("setpriv")
            .args([
                "--reuid",
                OTHER_USER,
                "--regid",
                OTHER_USER,
                "--init-groups",
                "/usr/bin/python3",
                "-c",
                listener,
            ])
            .arg(&seen)
            .stdout(Stdio::piped()),
    );
    let held: usize = other.read_line().trim().parse().unwrap();
    assert!(held >= 40, "the other user holds only {held} ports");

    let mut up = Guard::spawn(
        local_cli(
            home.path(),
            &["up", "local", "--gpu", "none", "--env", &venv, "--json"],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null()),
    );
    let ready: serde_json::Value = serde_json::from_str(&up.read_line()).unwrap();
    let port = u16::try_from(ready["localPort"].as_u64().unwrap()).unwrap();
    let pid = u32::try_from(ready["remotePid"].as_u64().unwrap()).unwrap();
    let token = token_of(ready["url"].as_str().unwrap());
    let kernel = start_kernel(port, &token).await;
    assert_eq!(
        execute(port, &token, &kernel, "print(6 * 7)").await.trim(),
        "42"
    );
    // The port the launch reported is a listening socket of the server process itself.
    let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let inode = tcp
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .find(|f| f[3] == "0A" && f[1].ends_with(&format!(":{port:04X}")))
        .map(|f| f[9].clone())
        .expect("nothing listens on the reported port");
    let owned = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .any(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|l| l.to_string_lossy() == format!("socket:[{inode}]"))
        });
    assert!(owned, "port {port} is not held by the server {pid}");

    up.kill();
    let out = local_cli(
        home.path(),
        &["down", "local", ready["serverId"].as_str().unwrap()],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    let deadline = Instant::now() + Duration::from_secs(15);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!alive(pid), "down stopped the local server");
    other.kill();
    let got = std::fs::read_to_string(&seen).unwrap_or_default();
    assert!(
        !got.contains(token.expose().as_str()),
        "the token reached the other user's listener"
    );
    assert!(
        got.is_empty(),
        "the launch connected to the other user's listeners:\n{got}"
    );
}

/// Tunnelbook's runners start Jupyter without compiling `rfc3987_syntax`'s parsers (0.8–2 s of
/// every start, jupyter_server#1559), and the "iri" format checks that use them still answer as
/// before, once asked. Without the stand-in the same imports do load the module (so this test
/// can tell).
#[test]
fn jupyter_starts_without_compiling_the_iri_parsers_and_iri_checks_still_work() {
    let python = jupyter_venv().join("bin/python3");
    let loaded = |prelude: &str| {
        let script = format!(
            "{prelude}import sys\nimport jupyterlab.labapp, jupyter_server.serverapp\n\
             print('rfc3987_syntax.syntax_helpers' in sys.modules)\n\
             import jsonschema\nc = jsonschema.Draft7Validator.FORMAT_CHECKER\n\
             print(c.conforms('http://exämple.org/ä?q=1', 'iri'), c.conforms('http://[bad', 'iri'), \
             c.conforms('a b', 'iri-reference'), c.conforms('../x#y', 'iri-reference'))\n"
        );
        let out = Command::new(&python)
            .arg("-c")
            .arg(script)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(loaded(""), "True\nTrue False False True\n");
    assert_eq!(
        loaded(jupyter::DEFER_SLOW_IMPORTS_PY),
        "False\nTrue False False True\n"
    );
}
