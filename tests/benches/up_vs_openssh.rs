//! Time from "start" to the first 200 from `/lab`: `tunnelbook up` against the same steps done by
//! hand with OpenSSH (`ssh host 'setsid nohup jupyter lab … &'`, `ssh -N -L`, poll), on the same
//! sshd, JupyterLab venv and machine, in one run, alternating.
//!
//! Run: `cargo build --release -p tunnelbook-cli && cargo bench -p tunnelbook-testbed --bench
//! up_vs_openssh` (as root, like the tests; the first run builds the test bed's JupyterLab venv).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    io::Write,
    net::SocketAddr,
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use tunnelbook_core::{jupyter::http, profile::ProfileStore, secret::Sensitive};
use tunnelbook_testbed::{
    Client, Guard, Sshd, SshdOptions, USER, free_port, jupyter_venv, key_only, make_key,
};

const CIPHER: &str = "aes256-gcm@openssh.com";
const ROUNDS: usize = 3;

fn release_cli() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(|p| p.parent())
        .unwrap()
        .join("tunnelbook");
    assert!(
        bin.exists(),
        "build the release CLI first: cargo build --release -p tunnelbook-cli"
    );
    bin
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Polls `GET /lab` on `port` until it answers 200.
fn first_200(rt: &tokio::runtime::Runtime, port: u16, token: &Sensitive<String>) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if let Ok(r) = rt.block_on(http::request(addr, "GET", "/lab", Some(token)))
            && r.status == 200
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no 200 from /lab on {port}");
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cli = release_cli();
    let venv = jupyter_venv();
    let keys = tempfile::tempdir().unwrap();
    let key = make_key(keys.path(), "id", "ed25519", None);
    let sshd = Sshd::start(&[&key], SshdOptions::default());
    let client = Client::new();
    client.trust(&sshd);
    let mut profile = key_only(sshd.profile("box", USER), &key);
    profile.environment = Some(venv.display().to_string());
    ProfileStore::in_home(&client.home())
        .save(&[profile])
        .unwrap();
    let known = client.home().join("known_hosts");
    let ssh = |extra: &[&str]| {
        let mut c = Command::new("ssh");
        c.env("HOME", client.dir.path())
            .env_remove("SSH_AUTH_SOCK")
            .args(["-F", "/dev/null", "-i"])
            .arg(&key.path)
            .args(["-p", &sshd.port.to_string(), "-c", CIPHER])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", known.display()))
            .args([
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
            ])
            .args(extra)
            .arg(format!("{USER}@127.0.0.1"));
        c
    };
    let tb = || {
        let mut c = Command::new(&cli);
        c.env("HOME", client.dir.path())
            .env("TUNNELBOOK_HOME", client.home())
            .env_remove("SSH_AUTH_SOCK");
        c
    };

    println!(
        "# tunnelbook up vs OpenSSH by hand: start to first 200 from /lab (JupyterLab in {})",
        venv.display()
    );
    let (mut t_tb, mut t_ssh) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        // Tunnelbook.
        let start = Instant::now();
        let mut up = Guard::spawn(
            tb().args(["up", "box", "--gpu", "none", "--json"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        );
        let ready: serde_json::Value = serde_json::from_str(&up.read_line()).unwrap();
        let url = ready["url"].as_str().unwrap();
        let token = Sensitive::new(url.split("token=").nth(1).unwrap().to_string());
        first_200(
            &rt,
            u16::try_from(ready["localPort"].as_u64().unwrap()).unwrap(),
            &token,
        );
        t_tb.push(start.elapsed().as_secs_f64());
        up.kill();
        let id = ready["serverId"].as_str().unwrap();
        assert!(tb().args(["down", "box", id]).status().unwrap().success());

        // OpenSSH by hand: launch detached with the token on stdin, forward, poll.
        let token = Sensitive::new(format!("{:032x}{:032x}", rand_u128(), rand_u128() ^ 7));
        let (remote_port, local_port) = (free_port(), free_port());
        let start = Instant::now();
        let launch = format!(
            "IFS= read -r JUPYTER_TOKEN; export JUPYTER_TOKEN; cd; setsid nohup {}/bin/jupyter lab --no-browser \
             --ServerApp.ip=127.0.0.1 --ServerApp.port={remote_port} --ServerApp.port_retries=0 \
             > /tmp/tb-bench-{remote_port}.log 2>&1 < /dev/null & echo $!",
            venv.display()
        );
        let mut child = ssh(&[])
            .arg(launch)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{}", token.expose()).unwrap();
        let out = child.wait_with_output().unwrap();
        let pid = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let mut fwd = Guard::spawn(
            ssh(&[
                "-N",
                "-L",
                &format!("127.0.0.1:{local_port}:127.0.0.1:{remote_port}"),
            ])
            .stdin(Stdio::null())
            .stderr(Stdio::null()),
        );
        first_200(&rt, local_port, &token);
        t_ssh.push(start.elapsed().as_secs_f64());
        fwd.kill();
        let _ = ssh(&[])
            .arg(format!("kill {pid}; rm -f /tmp/tb-bench-{remote_port}.log"))
            .status();
        println!(
            "round {round}: tunnelbook {:.2} s, openssh {:.2} s",
            t_tb[round], t_ssh[round]
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let (a, b) = (median(t_tb), median(t_ssh));
    println!(
        "median start→first 200 from /lab: tunnelbook {a:.2} s, openssh {b:.2} s, ratio tunnelbook/openssh {:.2}",
        a / b
    );
}

fn rand_u128() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}
