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
    process::Stdio,
    time::{Duration, Instant},
};

use tunnelbook_core::{jupyter::http, secret::Sensitive};
use tunnelbook_testbed::{BenchBed, Guard, free_port, jupyter_venv, median};

const ROUNDS: usize = 3;

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
    let venv = jupyter_venv();
    let bed = BenchBed::start(|p| p.environment = Some(venv.display().to_string()));
    let ssh = |extra: &[&str]| bed.ssh(extra);
    let tb = || bed.tunnelbook();

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
