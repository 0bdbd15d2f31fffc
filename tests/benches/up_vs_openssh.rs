//! The notebook paths against the same work done by hand with OpenSSH, on the same sshd,
//! JupyterLab venv and machine, in one run, alternating (issue 19). Time is until `/api/status`
//! answers 200 with the token through the tunnel.
//!
//! - cold start: `tunnelbook up box --gpu auto` (connect, GPU query, environment check, detached
//!   launch, tunnel, readiness) against `ssh host 'nvidia-smi; setsid nohup jupyter lab … &'`,
//!   `ssh -N -L`, poll — with the `nvidia-smi` shim playing two GPUs on the host;
//! - reattach: `tunnelbook attach box ID` to the running server against `ssh -N -L` to its socket
//!   (OpenSSH has to be told where it is) and poll;
//! - listing: `tunnelbook ls box` against `ssh host true`.
//!
//! Prints each round, the medians, the step timeline (`up --timings`) of the median Tunnelbook
//! cold start, and `row\t…` summary lines that `scripts/bench.sh` collects.
//!
//! Run: `cargo build --release -p tunnelbook-cli && cargo bench -p tunnelbook-testbed --bench
//! up_vs_openssh` (as root, like the tests; the first run builds the test bed's JupyterLab
//! venv). `TB_BENCH_ROUNDS=N` changes the number of rounds (default 5).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    io::Write,
    net::SocketAddr,
    process::Stdio,
    time::{Duration, Instant},
};

use tunnelbook_core::{jupyter::http, secret::Sensitive};
use tunnelbook_testbed::{
    BenchBed, Guard, NvidiaSmiShim, OTHER_USER, USER, free_port, jupyter_venv, median, sleeper,
    two_gpu_scenario,
};

/// Polls `GET /api/status` with `token` on `port` until it answers 200.
fn first_200(rt: &tokio::runtime::Runtime, port: u16, token: &Sensitive<String>) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if let Ok(r) = rt.block_on(http::request(addr, "GET", "/api/status", Some(token)))
            && r.status == 200
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("no 200 from /api/status on {port}");
}

/// Server files of Jupyter servers that were killed (`jpserver-PID.json` whose process is
/// gone), as they pile up in a long-used account's runtime dir; removed on drop.
struct StaleServerFiles(Vec<std::path::PathBuf>);

impl StaleServerFiles {
    fn plant(n: u32) -> StaleServerFiles {
        let dir = std::path::Path::new("/home")
            .join(USER)
            .join(".local/share/jupyter/runtime");
        // Made by the user: folders this (root) process made would keep Jupyter from writing
        // next to them (its `notebook_secret`) in every later test on this machine.
        tunnelbook_testbed::run(
            std::process::Command::new("runuser")
                .args(["-u", USER, "--", "mkdir", "-p"])
                .arg(&dir),
        );
        let files: Vec<_> = (0..n)
            .map(|i| {
                // Near the top of the pid range, where no process of this short run will be.
                let pid = 4_190_000 + i;
                let file = dir.join(format!("jpserver-{pid}.json"));
                std::fs::write(
                    &file,
                    format!(
                        r#"{{"pid": {pid}, "port": {}, "hostname": "127.0.0.1", "token": "x"}}"#,
                        9000 + i
                    ),
                )
                .unwrap();
                file
            })
            .collect();
        tunnelbook_testbed::run(std::process::Command::new("chown").arg(USER).args(&files));
        StaleServerFiles(files)
    }
}

impl Drop for StaleServerFiles {
    fn drop(&mut self) {
        for f in &self.0 {
            let _ = std::fs::remove_file(f);
        }
    }
}

fn token_of(url: &str) -> Sensitive<String> {
    Sensitive::new(url.split("token=").nth(1).unwrap().to_string())
}

fn rounds() -> usize {
    std::env::var("TB_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5)
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let venv = jupyter_venv();
    let bed = BenchBed::start(|p| p.environment = Some(venv.display().to_string()));
    let ssh = |extra: &[&str]| bed.ssh(extra);
    let tb = || bed.tunnelbook();
    let holder = sleeper(OTHER_USER);
    let scenario = two_gpu_scenario(holder.pid());
    let _shim = NvidiaSmiShim::install(USER, scenario.path());

    let _stale = StaleServerFiles::plant(40);

    println!(
        "# notebook paths: tunnelbook vs OpenSSH by hand, until /api/status answers 200 (JupyterLab in {}; 40 stale jpserver files in the runtime dir)",
        venv.display()
    );
    let (mut up_tb, mut up_ssh) = (Vec::new(), Vec::new());
    let (mut at_tb, mut at_ssh) = (Vec::new(), Vec::new());
    let (mut ls_tb, mut ls_ssh) = (Vec::new(), Vec::new());
    let mut timelines = Vec::new();
    for round in 0..rounds() {
        // Tunnelbook, cold.
        let err_path = bed.client.dir.path().join(format!("up-{round}.err"));
        let start = Instant::now();
        let mut up = Guard::spawn(
            tb().args(["up", "box", "--gpu", "auto", "--json", "--timings"])
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(&err_path).unwrap()),
        );
        let ready: serde_json::Value = serde_json::from_str(&up.read_line()).unwrap();
        let port = u16::try_from(ready["localPort"].as_u64().unwrap()).unwrap();
        let token = token_of(ready["url"].as_str().unwrap());
        first_200(&rt, port, &token);
        up_tb.push(start.elapsed().as_secs_f64());
        let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
        timelines.push(
            stderr
                .split("step timeline")
                .nth(1)
                .map(|t| format!("step timeline{}", t.split("JupyterLab").next().unwrap_or(t)))
                .unwrap_or_default(),
        );
        up.kill();
        let id = ready["serverId"].as_str().unwrap().to_string();

        // Listing: `tunnelbook ls` vs a bare `ssh host true`.
        let start = Instant::now();
        let listed = tb().args(["ls", "box", "--json"]).output().unwrap();
        ls_tb.push(start.elapsed().as_secs_f64());
        assert!(listed.status.success(), "{listed:?}");
        let servers: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
        let server = servers
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id.as_str())
            .unwrap()
            .clone();
        let start = Instant::now();
        assert!(ssh(&[]).arg("true").status().unwrap().success());
        ls_ssh.push(start.elapsed().as_secs_f64());

        // Reattach: `tunnelbook attach` vs `ssh -N -L` to the known endpoint.
        let start = Instant::now();
        let mut attach = Guard::spawn(
            tb().args(["attach", "box", &id, "--json"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        );
        let attached: serde_json::Value = serde_json::from_str(&attach.read_line()).unwrap();
        let port = u16::try_from(attached["localPort"].as_u64().unwrap()).unwrap();
        first_200(&rt, port, &token_of(attached["url"].as_str().unwrap()));
        at_tb.push(start.elapsed().as_secs_f64());
        attach.kill();
        let target = match server["endpoint"]["kind"].as_str() {
            Some("unixSocket") => server["endpoint"]["path"].as_str().unwrap().to_string(),
            _ => format!("127.0.0.1:{}", server["endpoint"]["port"]),
        };
        let local = free_port();
        let start = Instant::now();
        let mut fwd = Guard::spawn(
            ssh(&["-N", "-L", &format!("127.0.0.1:{local}:{target}")])
                .stdin(Stdio::null())
                .stderr(Stdio::null()),
        );
        first_200(&rt, local, &token);
        at_ssh.push(start.elapsed().as_secs_f64());
        fwd.kill();
        assert!(
            tb().args(["down", "box", &id])
                .stderr(Stdio::null())
                .status()
                .unwrap()
                .success()
        );

        // OpenSSH by hand, cold: GPUs, launch detached with the token on stdin, forward, poll.
        // (The shim is in ~/bin, which only a login shell puts on PATH; a real nvidia-smi is in
        // /usr/bin.)
        let token = Sensitive::new(format!("{:032x}{:032x}", rand_u128(), rand_u128() ^ 7));
        let (remote_port, local_port) = (free_port(), free_port());
        let start = Instant::now();
        let launch = format!(
            "PATH=$HOME/bin:$PATH nvidia-smi -L >/dev/null; IFS= read -r JUPYTER_TOKEN; export JUPYTER_TOKEN; cd; setsid nohup {}/bin/jupyter lab --no-browser \
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
        up_ssh.push(start.elapsed().as_secs_f64());
        fwd.kill();
        let _ = ssh(&[])
            .arg(format!("kill {pid}; rm -f /tmp/tb-bench-{remote_port}.log"))
            .status();
        println!(
            "round {round}: cold up {:.2} / {:.2} s, attach {:.3} / {:.3} s, ls {:.3} / {:.3} s (tunnelbook / openssh)",
            up_tb[round], up_ssh[round], at_tb[round], at_ssh[round], ls_tb[round], ls_ssh[round]
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    // The timeline of the median Tunnelbook cold start.
    let mut order: Vec<usize> = (0..up_tb.len()).collect();
    order.sort_by(|a, b| up_tb[*a].total_cmp(&up_tb[*b]));
    println!(
        "\nTunnelbook's median cold start (round {}):\n{}",
        order[order.len() / 2],
        timelines[order[order.len() / 2]].trim_end()
    );
    let (a, b) = (median(up_tb), median(up_ssh));
    println!(
        "row\tcold: `up --gpu auto` vs `ssh host 'nvidia-smi -L; setsid nohup jupyter lab …'` + `ssh -N -L` + poll (s)\t{a:.2}\t{b:.2}\t{:.2}",
        a / b
    );
    let (a, b) = (median(at_tb), median(at_ssh));
    println!(
        "row\treattach: `attach` to a running server vs `ssh -N -L` to its known endpoint, until it answers (s)\t{a:.3}\t{b:.3}\t{:.2}",
        a / b
    );
    let (a, b) = (median(ls_tb), median(ls_ssh));
    println!(
        "row\t`ls` (servers on the host) vs `ssh host true` (s)\t{a:.3}\t{b:.3}\t{:.2}",
        a / b
    );
}

fn rand_u128() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}
