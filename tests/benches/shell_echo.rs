//! Keystroke echo latency through `tunnelbook shell` against `ssh -t`, on the same sshd, cipher
//! and machine, in one run (issue 23).
//!
//! Run: `bash scripts/bench.sh` (release CLI), or for a quick look with the debug CLI
//! `cargo bench -p tunnelbook-testbed --bench shell_echo --profile dev`. Each client runs in a
//! real pseudo-terminal (tests/pty/drive.py); after the login shell answers, 200 single
//! characters are typed one at a time and each is timed until the remote line editor's echo
//! comes back. Prints p50 and p90 per client and the Tunnelbook / OpenSSH ratio of the p50s
//! (goal ≤ 1.0×). The clients alternate in rounds so a busy machine weighs on both alike.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use tunnelbook_testbed::{
    BenchBed,
    pty::{Step, run_in_pty},
};

const KEYS: usize = 200;
const ROUNDS: usize = 3;

fn percentile(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Echo round trips (ms) of `KEYS` keystrokes typed into `cmd`'s remote shell.
fn echo_times(cmd: &Command) -> Vec<f64> {
    let run = run_in_pty(
        cmd,
        // Wide enough that the 200 characters stay on one line (no wrapping redraws).
        400,
        40,
        &[
            Step::Send("echo rea''dy\r".into()),
            Step::Expect("[\r\n]ready\r\n".into(), 30),
            Step::Sleep(0.3),
            Step::EchoBench(KEYS),
            Step::Send("\u{15}exit\r".into()),
        ],
    );
    assert_eq!(run.failed, None, "{}", run.output);
    assert_eq!(run.latencies_ms.len(), KEYS);
    run.latencies_ms
}

fn main() {
    let bed = BenchBed::start(|_| {});
    let mut ssh = bed.ssh(&["-t", "-o", "LogLevel=ERROR"]);
    ssh.env("TERM", "xterm-256color");
    let mut tb = bed.tunnelbook();
    tb.args(["shell", "box"]).env("TERM", "xterm-256color");
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        theirs.extend(echo_times(&ssh));
        ours.extend(echo_times(&tb));
    }
    let (o50, t50) = (percentile(&ours, 0.5), percentile(&theirs, 0.5));
    println!(
        "keystroke echo, {} keystrokes each: tunnelbook shell p50 {o50:.3} ms p90 {:.3} ms; \
         ssh -t p50 {t50:.3} ms p90 {:.3} ms; ratio (p50) {:.2}x",
        ours.len(),
        percentile(&ours, 0.9),
        percentile(&theirs, 0.9),
        o50 / t50
    );
}
