//! Keystroke echo latency through `tunnelbook shell` against `ssh -t`, on the same sshd, cipher
//! and machine, in one run (issue 23).
//!
//! Run: `bash scripts/bench.sh` (release CLI), or for a quick look with the debug CLI
//! `cargo bench -p tunnelbook-testbed --bench shell_echo --profile dev`. Both clients run at the
//! same time, each in a real pseudo-terminal (tests/pty/echo_pair.py); after their login shells
//! answer, single characters are typed one at a time, alternating between the two clients (and
//! which goes first), each timed until the remote line editor's echo comes back, so a machine
//! whose load changes weighs on both alike. Prints p50 and p90 per client and the Tunnelbook /
//! OpenSSH ratio of the p50s (goal ≤ 1.0×).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tunnelbook_testbed::{BenchBed, pty::echo_pair};

/// Keystrokes per client in one login; the line stays shorter than the terminal (no wrapping).
/// `TB_ECHO_KEYS` sets another count (e.g. to tell a client's per-keystroke work from its
/// login's, under `perf stat`, by the difference of two runs).
fn keys() -> usize {
    std::env::var("TB_ECHO_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}
/// Logins per client (fresh connections).
const ROUNDS: usize = 5;

fn percentile(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let bed = BenchBed::start(|_| {});
    let mut ssh = bed.ssh(&["-t", "-o", "LogLevel=ERROR"]);
    ssh.env("TERM", "xterm-256color");
    let mut tb = bed.tunnelbook();
    tb.args(["shell", "box"]).env("TERM", "xterm-256color");
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let (o, t) = echo_pair(&tb, &ssh, 400, 40, keys()).unwrap();
        ours.extend(o);
        theirs.extend(t);
    }
    let (o50, t50) = (percentile(&ours, 0.5), percentile(&theirs, 0.5));
    println!(
        "keystroke echo, {} keystrokes each, typed in pairs: tunnelbook shell p50 {o50:.3} ms \
         p90 {:.3} ms; ssh -t p50 {t50:.3} ms p90 {:.3} ms; ratio (p50) {:.2}x",
        ours.len(),
        percentile(&ours, 0.9),
        percentile(&theirs, 0.9),
        o50 / t50
    );
    println!(
        "row\tkeystroke echo p50, `tunnelbook shell` vs `ssh -t`, typed in pairs (ms)\t{o50:.3}\t{t50:.3}\t{:.2}",
        o50 / t50
    );
}
