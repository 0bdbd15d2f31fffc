//! Tunnelbook against OpenSSH on the same sshd, cipher and machine, in one run.
//!
//! Run: `bash scripts/bench.sh` (builds the release CLI, then `cargo bench -p tunnelbook-testbed
//! --bench vs_openssh`). Prints medians and the Tunnelbook / OpenSSH ratio for: connect +
//! authenticate + `exec true`; throughput of a 1 GiB download through a local forward (with raw
//! loopback TCP as the ceiling) and the client process's CPU time per GiB of it (user + system,
//! from `/proc/PID/stat`); p50/p99 latency of 1,000 sequential small HTTP requests (the paths
//! taking turns, each request after the same pause); total time of 200 concurrent requests.
//! Lines starting `row\t` are the issue-19 summary rows `scripts/bench.sh` collects.
//! `TB_BENCH_CLI_B=PATH` adds another build of the CLI as a fourth path, measured in
//! turn with the others (an A/B of a change in one run).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    net::SocketAddr,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tunnelbook_testbed::{BENCH_CIPHER as CIPHER, BenchBed, Guard, median, wait_for_port};

const BIG: u64 = 1 << 30;

/// The pause before each sequential request (see `measure`).
const PAUSE: Duration = Duration::from_millis(10);

/// `TB_BENCH_QUICK=1`: forwards only, 200 sequential requests per path (for iterating on
/// the data path; record full runs only).
fn quick() -> bool {
    std::env::var_os("TB_BENCH_QUICK").is_some()
}

/// The `i`-th (modulo n!) ordering of `0..n`: taking every ordering in turn, each path follows
/// each other path as often (what ran just before leaves the caches and CPUs in its state).
fn nth_permutation(n: usize, mut i: usize) -> Vec<usize> {
    let mut left: Vec<usize> = (0..n).collect();
    let mut order = Vec::with_capacity(n);
    while !left.is_empty() {
        order.push(left.remove(i % left.len()));
        i /= left.len() + 1;
    }
    order
}

fn percentile(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// "GET /big" → 1 GiB body; anything else → a 2-byte body. Connection: close.
async fn http_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let chunk = vec![b'x'; 1 << 20];
        let chunk: &'static [u8] = Box::leak(chunk.into_boxed_slice());
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).await.unwrap_or(0);
                if buf[..n].starts_with(b"GET /big") {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {BIG}\r\nConnection: close\r\n\r\n"
                    );
                    s.write_all(head.as_bytes()).await.unwrap();
                    for _ in 0..(BIG >> 20) {
                        if s.write_all(chunk).await.is_err() {
                            return;
                        }
                    }
                } else {
                    let _ = s
                        .write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                        )
                        .await;
                }
            });
        }
    });
    addr
}

/// One request on a new connection. Returns the bytes received, when the response was complete
/// (headers plus `Content-Length` bytes: what an HTTP client waits for) and when the connection
/// closed (EOF after the server's close travelled back).
async fn request(addr: SocketAddr, path: &str) -> (u64, Duration, Duration) {
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = vec![0u8; 1 << 18];
    let mut head = Vec::new();
    let mut expected: Option<u64> = None;
    let mut complete = None;
    let mut total = 0u64;
    loop {
        let n = s.read(&mut buf).await.unwrap();
        if n == 0 {
            let closed = start.elapsed();
            return (total, complete.unwrap_or(closed), closed);
        }
        total += n as u64;
        if expected.is_none() && head.len() < 4096 {
            head.extend_from_slice(&buf[..n]);
            expected = response_length(&head);
        }
        if complete.is_none() && expected.is_some_and(|e| total >= e) {
            complete = Some(start.elapsed());
        }
    }
}

/// Headers plus body length of a response whose head is in `head`, once the head is complete.
fn response_length(head: &[u8]) -> Option<u64> {
    let end = head.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let text = std::str::from_utf8(&head[..end]).ok()?;
    let len = text
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(end as u64 + len)
}

struct Forward {
    name: &'static str,
    addr: SocketAddr,
    /// The client process doing the forwarding (none for raw TCP).
    pid: Option<u32>,
}

/// CPU seconds (user + system) process `pid` has used so far.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) start at index 2 of the split.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    // SAFETY: sysconf only reads a system constant.
    #[allow(unsafe_code)]
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks / hz
}

/// One path's results: MiB/s, latencies in ms.
struct Row {
    name: &'static str,
    mib_s: f64,
    /// Client CPU seconds per GiB downloaded (median of the rounds); 0 for raw TCP.
    cpu_per_gib: f64,
    p50: f64,
    p99: f64,
    close_p50: f64,
    close_p99: f64,
    concurrent: f64,
}

impl Row {
    const HEADER: &str = "| path | MiB/s | client CPU s/GiB | p50 ms | p99 ms | p50 to close ms | p99 to close ms | 200 concurrent ms |\n|---|---|---|---|---|---|---|---|";

    fn markdown(&self) -> String {
        format!(
            "| {} | {:.0} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.1} |",
            self.name,
            self.mib_s,
            self.cpu_per_gib,
            self.p50,
            self.p99,
            self.close_p50,
            self.close_p99,
            self.concurrent
        )
    }
}

async fn measure(forwards: &[Forward]) -> Vec<Row> {
    // Throughput: 1 GiB downloads, the paths taking turns round by round so that a change in the
    // machine's load hits every path alike; the best of each path's rounds, MiB/s.
    let mut mibs = vec![Vec::new(); forwards.len()];
    let mut cpus = vec![Vec::new(); forwards.len()];
    for _ in 0..3 {
        for ((f, mibs), cpus) in forwards.iter().zip(&mut mibs).zip(&mut cpus) {
            let cpu0 = f.pid.map(cpu_secs);
            let t = Instant::now();
            let (got, _, _) = request(f.addr, "/big").await;
            assert!(got > BIG, "{}: short download {got}", f.name);
            mibs.push(got as f64 / (1 << 20) as f64 / t.elapsed().as_secs_f64());
            if let (Some(pid), Some(cpu0)) = (f.pid, cpu0) {
                cpus.push((cpu_secs(pid) - cpu0) / (got as f64 / (1u64 << 30) as f64));
            }
        }
    }
    // Latency: 1,000 sequential requests per path, each on a new connection, until the response
    // is complete and until the connection has closed. The paths take turns request by request
    // (in every order in turn), as the echo bench types in pairs, so a change of load
    // weighs on every path alike; and each request starts after the same pause, so every path
    // starts from the same idle machine (docs/PERFORMANCE.md, stop 37: run back to back, a
    // path whose connections close at once met warm caches and busy CPUs, while `ssh -L`'s
    // requests each followed its own 40 ms close).
    let n = forwards.len();
    let (mut lat, mut lat_close) = (vec![Vec::new(); n], vec![Vec::new(); n]);
    for i in 0..if quick() { 200 } else { 1000 } {
        for k in nth_permutation(n, i) {
            tokio::time::sleep(PAUSE).await;
            let (got, complete, closed) = request(forwards[k].addr, "/").await;
            assert!(got > 0);
            lat[k].push(complete.as_secs_f64() * 1000.0);
            lat_close[k].push(closed.as_secs_f64() * 1000.0);
        }
    }
    let mut rows = Vec::new();
    for ((((f, mibs), cpus), lat), lat_close) in
        forwards.iter().zip(mibs).zip(cpus).zip(lat).zip(lat_close)
    {
        // 200 concurrent requests, median of 3 rounds, ms (until every connection closed).
        let mut conc = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            let reqs = (0..200).map(|_| {
                let addr = f.addr;
                tokio::spawn(async move { request(addr, "/").await })
            });
            for r in futures::future::join_all(reqs).await {
                assert!(r.unwrap().0 > 0);
            }
            conc.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let row = Row {
            name: f.name,
            mib_s: mibs.iter().copied().fold(0.0, f64::max),
            cpu_per_gib: if cpus.is_empty() { 0.0 } else { median(cpus) },
            p50: percentile(&lat, 0.5),
            p99: percentile(&lat, 0.99),
            close_p50: percentile(&lat_close, 0.5),
            close_p99: percentile(&lat_close, 0.99),
            concurrent: median(conc),
        };
        eprintln!("{}", row.markdown());
        rows.push(row);
    }
    rows
}

fn main() {
    let bed = BenchBed::start(|_| {});
    let ssh = |extra: &[&str]| bed.ssh(extra);
    let tb = || bed.tunnelbook();

    println!(
        "# Tunnelbook vs OpenSSH ({}), cipher {CIPHER}, sshd on 127.0.0.1",
        ssh_version()
    );
    // 1. connect + auth + exec true.
    let (mut t_tb, mut t_ssh) = (Vec::new(), Vec::new());
    for i in 0..if quick() { 0 } else { 32 } {
        let t = Instant::now();
        let out = tb().args(["exec", "box", "--", "true"]).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        let a = t.elapsed().as_secs_f64() * 1000.0;
        let t = Instant::now();
        let out = ssh(&[]).arg("true").output().unwrap();
        assert!(out.status.success(), "{out:?}");
        let b = t.elapsed().as_secs_f64() * 1000.0;
        if i >= 2 {
            t_tb.push(a);
            t_ssh.push(b);
        }
    }
    if !quick() {
        let (a, b) = (median(t_tb), median(t_ssh));
        println!("\n## connect + authenticate + exec true (median of 30, ms)");
        println!("| tunnelbook | openssh | ratio (target <= 1.0) |\n|---|---|---|");
        println!("| {a:.1} | {b:.1} | {:.2} |", a / b);
    }

    // 2. forwards.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(http_server());
    let ssh_port = tunnelbook_testbed::free_port();
    let ssh_fwd = Guard::spawn(
        ssh(&[
            "-N",
            "-L",
            &format!("127.0.0.1:{ssh_port}:127.0.0.1:{}", server.port()),
        ])
        .stdin(Stdio::null()),
    );
    wait_for_port(ssh_port, Duration::from_secs(10));
    // `tunnelbook forward` to the bench's HTTP server on a free port: the process and its address.
    let start_forward = |mut cmd: Command| {
        let mut fwd = Guard::spawn(
            cmd.args([
                "forward",
                "box",
                "-L",
                &format!("0:127.0.0.1:{}", server.port()),
            ])
            .stdout(Stdio::piped()),
        );
        let line = fwd.read_line();
        let addr: SocketAddr = line
            .trim_start_matches("forwarding ")
            .split(" -> ")
            .next()
            .unwrap()
            .parse()
            .unwrap();
        (fwd, addr)
    };
    let (tb_fwd, tb_addr) = start_forward(tb());
    let mut forwards = vec![
        Forward {
            name: "raw-tcp",
            addr: server,
            pid: None,
        },
        Forward {
            name: "openssh",
            addr: SocketAddr::from(([127, 0, 0, 1], ssh_port)),
            pid: Some(ssh_fwd.pid()),
        },
        Forward {
            name: "tunnelbook",
            addr: tb_addr,
            pid: Some(tb_fwd.pid()),
        },
    ];
    // `TB_BENCH_CLI_B=PATH`: another build of the CLI (a change under test) as a fourth path,
    // taking turns with the others in the same run, so an A/B is not at the mercy of the load.
    let _build_b = std::env::var_os("TB_BENCH_CLI_B").map(|path| {
        let (fwd, addr) = start_forward(bed.tunnelbook_at(path.as_ref()));
        forwards.push(Forward {
            name: "tunnelbook-b",
            addr,
            pid: Some(fwd.pid()),
        });
        fwd
    });
    let rows = rt.block_on(measure(&forwards));
    let (raw, os, tbk) = (&rows[0], &rows[1], &rows[2]);
    println!(
        "\n## local forward (1 GiB download best of 3, the paths taking turns; 1,000 sequential requests, each on a new \
         connection, the paths taking turns, each request after a {} ms pause, until the response is complete and until the connection closed; 200 \
         concurrent, median of 3)",
        PAUSE.as_millis()
    );
    println!("{}", Row::HEADER);
    for r in &rows {
        println!("{}", r.markdown());
    }
    if let Some(b) = rows.get(3) {
        println!(
            "\nbuild B / build A: client CPU per GiB {:.2}, throughput {:.2}, p50 latency {:.2}; \
             build B / openssh: client CPU per GiB {:.2}",
            b.cpu_per_gib / tbk.cpu_per_gib,
            b.mib_s / tbk.mib_s,
            b.p50 / tbk.p50,
            b.cpu_per_gib / os.cpu_per_gib
        );
    }
    println!(
        "\nratios tunnelbook/openssh: throughput {:.2} (target >= 1.0), p50 latency {:.2} (target <= 1.0), \
         p99 latency {:.2}, p50 to close {:.2}, 200 concurrent {:.2}; raw loopback ceiling {:.0} MiB/s",
        tbk.mib_s / os.mib_s,
        tbk.p50 / os.p50,
        tbk.p99 / os.p99,
        tbk.close_p50 / os.close_p50,
        tbk.concurrent / os.concurrent,
        raw.mib_s
    );
    // The issue-19 summary rows (tab separated: what, tunnelbook, openssh, ratio).
    println!(
        "row\tclient CPU per GiB through a local forward (aes256-gcm), `forward -L` vs `ssh -L` (s)\t{:.3}\t{:.3}\t{:.2}",
        tbk.cpu_per_gib,
        os.cpu_per_gib,
        tbk.cpu_per_gib / os.cpu_per_gib
    );
    println!(
        "row\tthroughput of that forward (MiB/s)\t{:.0}\t{:.0}\t{:.2}",
        tbk.mib_s,
        os.mib_s,
        tbk.mib_s / os.mib_s
    );
    println!(
        "row\tp50 of a small request through it, response complete, paths taking turns, each after a {} ms pause (ms)\t{:.3}\t{:.3}\t{:.2}",
        PAUSE.as_millis(),
        tbk.p50,
        os.p50,
        tbk.p50 / os.p50
    );
}

fn ssh_version() -> String {
    let out = Command::new("ssh").arg("-V").output().unwrap();
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}
