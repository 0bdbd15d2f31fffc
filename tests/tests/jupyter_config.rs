//! The user's own Jupyter configuration wins nothing it must not (issue 16, case 12): a fixed
//! token, an empty token, a password, `base_url`, `ip`, `port`, `root_dir` and `open_browser` in
//! `~/.jupyter/jupyter_server_config.py`, or in a `JUPYTER_CONFIG_DIR` set by the login profile
//! together with `JUPYTER_TOKEN` / `JUPYTER_PORT`: `up` still gives a working URL with
//! Tunnelbook's token, the user's token is refused, nothing answers without a token, and a TCP
//! server listens on loopback only.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    net::SocketAddr,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use tunnelbook_core::{jupyter::http, profile::ProfileStore, secret::Sensitive};
use tunnelbook_testbed::{
    Client, Guard, Sshd, SshdOptions, alive, jupyter_venv,
    kernel::{execute, start_kernel},
    key_only, make_key, run,
    zoo::{self, JUPYTER_CONFIG},
};

const USER: &str = JUPYTER_CONFIG.name;

fn home() -> String {
    format!("/home/{USER}")
}

fn write(rel: &str, text: &str) {
    let path = format!("{}/{rel}", home());
    std::fs::create_dir_all(std::path::Path::new(&path).parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    run(Command::new("chown")
        .arg("-R")
        .arg(format!("{USER}:"))
        .arg(home()));
}

fn clean() {
    for rel in [".jupyter", "jcfg", ".jupyter-env"] {
        let path = format!("{}/{rel}", home());
        let _ = std::fs::remove_dir_all(&path);
        let _ = std::fs::remove_file(&path);
    }
}

/// Whether something listens on TCP `port` on an address other than 127.0.0.1.
fn listens_beyond_loopback(port: u16) -> Vec<String> {
    let mut found = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state)) = (f.get(1), f.get(3)) else {
                continue;
            };
            let Some((addr, p)) = local.rsplit_once(':') else {
                continue;
            };
            if *state == "0A"
                && u16::from_str_radix(p, 16) == Ok(port)
                && addr != "0100007F"
                && addr != "00000000000000000000000001000000"
            {
                found.push(format!("{table}: {line}"));
            }
        }
    }
    found
}

struct Up {
    guard: Guard,
    port: u16,
    pid: u32,
    /// The server id `up --json` printed (`down` stops exactly this one: other tests share the user).
    server_id: String,
    token: Sensitive<String>,
}

fn up(client: &Client, what: &str) -> Up {
    let err_path = client
        .dir
        .path()
        .join(format!("up-{}", what.replace(' ', "-")));
    let mut guard = Guard::spawn(
        client
            .cli()
            .args(["up", "jc", "--gpu", "none", "--json"])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&err_path).unwrap()),
    );
    let line = guard.read_line();
    let ready: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|_| {
        panic!(
            "{what}: up printed {line:?}; stderr:\n{}",
            std::fs::read_to_string(&err_path).unwrap_or_default()
        )
    });
    let url = ready["url"].as_str().unwrap();
    Up {
        guard,
        port: u16::try_from(ready["localPort"].as_u64().unwrap()).unwrap(),
        pid: u32::try_from(ready["remotePid"].as_u64().unwrap()).unwrap(),
        server_id: ready["serverId"].as_str().unwrap().to_string(),
        token: Sensitive::new(url.split("token=").nth(1).unwrap().to_string()),
    }
}

async fn down(client: &Client, mut up: Up) {
    up.guard.kill();
    let out = client
        .cli()
        .args(["down", "jc", &up.server_id])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(up.pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!alive(up.pid));
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_users_jupyter_config_cannot_take_over_token_address_or_base_url() {
    zoo::ensure_zoo();
    let venv = jupyter_venv();
    let _lock = tunnelbook_testbed::user_bin_lock(USER);
    clean();
    let keys = tempfile::tempdir().unwrap();
    let key = make_key(keys.path(), "id", "ed25519", None);
    // TCP forwarding only: the server listens on TCP, where `ip` and an empty token matter.
    let sshd = Sshd::start(
        &[&key],
        SshdOptions {
            extra: vec!["AllowStreamLocalForwarding no".into()],
            ..SshdOptions::default()
        },
    );
    let client = Client::new();
    client.trust(&sshd);
    let mut profile = key_only(sshd.profile("jc", USER), &key);
    profile.environment = Some(venv.display().to_string());
    ProfileStore::in_home(&client.home())
        .save(&[profile])
        .unwrap();

    // A: a fixed token, a password, and every address setting, in ~/.jupyter (case 12).
    let hashed = run(Command::new(venv.join("bin/python")).args([
        "-c",
        "from jupyter_server.auth import passwd; print(passwd('user-pw'))",
    ]));
    let hashed = String::from_utf8_lossy(&hashed.stdout).trim().to_string();
    write(
        ".jupyter/jupyter_server_config.py",
        &format!(
            "c = get_config()\n\
             c.IdentityProvider.token = 'team-fixed-token-123'\n\
             c.PasswordIdentityProvider.hashed_password = '{hashed}'\n\
             c.ServerApp.ip = '0.0.0.0'\n\
             c.ServerApp.port = 8899\n\
             c.ServerApp.base_url = '/custom/'\n\
             c.ServerApp.root_dir = '/tmp'\n\
             c.ServerApp.open_browser = True\n"
        ),
    );
    let a = up(&client, "fixed token");
    let kernel = start_kernel(a.port, &a.token).await;
    let seen = execute(
        a.port,
        &a.token,
        &kernel,
        "import os; print(6 * 7, os.getcwd())",
    )
    .await;
    assert_eq!(
        seen.trim(),
        format!("42 {}", home()),
        "root_dir is the home"
    );
    let lab = http::request(addr(a.port), "GET", "/lab", Some(&a.token))
        .await
        .unwrap();
    assert_eq!(lab.status, 200, "base_url is / again");
    let theirs = Sensitive::new("team-fixed-token-123".to_string());
    let refused = http::request(addr(a.port), "GET", "/api/kernels", Some(&theirs))
        .await
        .unwrap();
    assert_eq!(refused.status, 403, "the config's token must not work");
    let listed = client.cli().args(["ls", "jc", "--json"]).output().unwrap();
    let servers: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let remote_port = servers[0]["endpoint"]["port"].as_u64().unwrap();
    let remote_port = u16::try_from(remote_port).unwrap();
    assert_eq!(listens_beyond_loopback(remote_port), Vec::<String>::new());
    assert_eq!(listens_beyond_loopback(8899), Vec::<String>::new());
    down(&client, a).await;

    // B: an empty token in a JUPYTER_CONFIG_DIR set by the profile, with JUPYTER_TOKEN and
    // JUPYTER_PORT in the environment too.
    clean();
    write(
        ".jupyter-env",
        "export JUPYTER_CONFIG_DIR=$HOME/jcfg JUPYTER_TOKEN=env-token JUPYTER_PORT=8898\n",
    );
    write(
        "jcfg/jupyter_server_config.json",
        r#"{"IdentityProvider": {"token": ""}, "ServerApp": {"ip": "0.0.0.0", "base_url": "/b/", "password": ""}}"#,
    );
    let b = up(&client, "empty token");
    let kernel = start_kernel(b.port, &b.token).await;
    let seen = execute(b.port, &b.token, &kernel, "print(6 * 7)").await;
    assert_eq!(seen.trim(), "42");
    let anonymous = http::request(addr(b.port), "GET", "/api/kernels", None)
        .await
        .unwrap();
    assert_eq!(anonymous.status, 403, "no token, no access");
    let env_token = Sensitive::new("env-token".to_string());
    let refused = http::request(addr(b.port), "GET", "/api/kernels", Some(&env_token))
        .await
        .unwrap();
    assert_eq!(
        refused.status, 403,
        "JUPYTER_TOKEN from the profile must not work"
    );
    assert_eq!(listens_beyond_loopback(8898), Vec::<String>::new());
    down(&client, b).await;
    clean();
}

/// A classic-only install (Notebook 6, no JupyterLab) starts too, with Tunnelbook's token in
/// force, and runs kernel code through the tunnel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_classic_notebook_6_install_starts_too() {
    let venv = zoo::classic_notebook_venv();
    let keys = tempfile::tempdir().unwrap();
    let key = make_key(keys.path(), "id", "ed25519", None);
    let sshd = Sshd::start(&[&key], SshdOptions::default());
    let client = Client::new();
    client.trust(&sshd);
    let mut profile = key_only(sshd.profile("jc", tunnelbook_testbed::USER), &key);
    profile.environment = Some(venv.display().to_string());
    ProfileStore::in_home(&client.home())
        .save(&[profile])
        .unwrap();
    let up = up(&client, "classic");
    let kernel = start_kernel(up.port, &up.token).await;
    let seen = execute(up.port, &up.token, &kernel, "print(6 * 7)").await;
    assert_eq!(seen.trim(), "42");
    let tree = http::request(addr(up.port), "GET", "/tree", Some(&up.token))
        .await
        .unwrap();
    assert_eq!(tree.status, 200);
    let anonymous = http::request(addr(up.port), "GET", "/api/kernels", None)
        .await
        .unwrap();
    assert_eq!(anonymous.status, 403);
    down(&client, up).await;
}
