//! The exact remote GPU query ([`gpu::REMOTE_SCRIPT`]) run through the local `sh` with the
//! `tests/shims/nvidia-smi` stand-in first on PATH: checks the script and the shim agree, and that
//! real pids get their user from `ps`. (Over a real sshd: `tests/tests/gpu.rs`.)

// Unix only: the remote GPU script is POSIX `sh` run on the (Linux) server, with a `:`-joined
// PATH and `ps`; a Windows client never runs it locally (under Wine there is no `sh` at all).
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use tunnelbook_core::gpu::{self, GpuError};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A PATH directory holding only the shim, pointed at `scenario` through `nvidia-smi.dir`.
fn shim_bin(scenario: &Path) -> tempfile::TempDir {
    let bin = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo().join("tests/shims/nvidia-smi"),
        bin.path().join("nvidia-smi"),
    )
    .unwrap();
    std::fs::write(
        bin.path().join("nvidia-smi.dir"),
        scenario.display().to_string(),
    )
    .unwrap();
    bin
}

fn run_query(path_front: Option<&Path>) -> String {
    let path = std::env::var("PATH").unwrap_or_default();
    let path = match path_front {
        Some(front) => format!("{}:{path}", front.display()),
        None => path,
    };
    // The query reads its marker token and the fields to ask for on stdin (empty: all fields),
    // as `gpu::snapshot` sends them.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(gpu::REMOTE_SCRIPT)
        .env("PATH", path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"tunnelbook-gpu\n\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/nvidia-smi")
        .join(name)
}

#[test]
fn script_and_shim_agree_and_real_pids_get_their_user() {
    let scenario = tempfile::tempdir().unwrap();
    for f in ["query-gpu.csv", "list.txt"] {
        std::fs::copy(fixture("h100-two-users").join(f), scenario.path().join(f)).unwrap();
    }
    let mut sleeper = Command::new("sleep")
        .arg("300")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = sleeper.id();
    std::fs::write(
        scenario.path().join("apps.csv"),
        format!(
            "GPU-75cbcb3f-3580-af7a-4e6d-03d5aa80af6b, {pid}, /usr/bin/python3.12, 5288\n\
             GPU-75cbcb3f-3580-af7a-4e6d-03d5aa80af6b, 999999999, gone, 10\n"
        ),
    )
    .unwrap();
    let bin = shim_bin(scenario.path());
    let text = run_query(Some(bin.path()));
    let _ = sleeper.kill();
    let _ = sleeper.wait();

    let snap = gpu::parse_report("local-sh", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let me = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
    assert_eq!(snap.current_user.as_deref(), Some(me.trim()));
    assert_eq!(snap.gpus.len(), 1);
    assert_eq!(
        snap.gpus[0].uuid,
        "GPU-75cbcb3f-3580-af7a-4e6d-03d5aa80af6b"
    );
    let mine = snap.processes.iter().find(|p| p.pid == pid).unwrap();
    assert_eq!(mine.user.as_deref(), Some(me.trim()), "{text}");
    assert!(mine.own);
    assert!(mine.running_secs.is_some());
    assert_eq!(mine.command.as_deref(), Some("/usr/bin/python3.12"));
    // A pid that no longer exists keeps its nvidia-smi data, without a user.
    let gone = snap
        .processes
        .iter()
        .find(|p| p.pid == 999_999_999)
        .unwrap();
    assert_eq!((gone.user.as_deref(), gone.own), (None, false));
}

#[test]
fn shim_default_is_the_real_h100_capture() {
    let bin = tempfile::tempdir().unwrap();
    let shim = bin.path().join("nvidia-smi");
    // No nvidia-smi.dir and no env: the shim falls back to the repo's h100-busy fixture.
    std::fs::write(
        &shim,
        format!(
            "#!/bin/sh\nexec {}/tests/shims/nvidia-smi \"$@\"\n",
            repo().display()
        ),
    )
    .unwrap();
    Command::new("chmod").arg("+x").arg(&shim).status().unwrap();
    let snap = gpu::parse_report("h", &run_query(Some(bin.path()))).unwrap();
    assert_eq!(
        snap.gpus[0].uuid,
        "GPU-789e33c0-9106-33b3-da40-e9cddda27a31"
    );
    assert_eq!(snap.processes[0].pid, 433);
}

#[test]
fn broken_driver_through_the_shim_is_a_typed_error() {
    let scenario = tempfile::tempdir().unwrap();
    let line = "Failed to initialize NVML: Driver/library version mismatch";
    std::fs::write(scenario.path().join("fail.txt"), format!("{line}\n")).unwrap();
    let bin = shim_bin(scenario.path());
    match gpu::parse_report("h", &run_query(Some(bin.path()))) {
        Err(GpuError::Driver { message, .. }) => assert_eq!(message, line),
        other => panic!("{other:?}"),
    }
}

#[test]
fn host_without_nvidia_smi_is_an_empty_snapshot() {
    // A PATH with the basic tools but no nvidia-smi.
    let has_real = Command::new("sh")
        .args(["-c", "command -v nvidia-smi"])
        .output()
        .unwrap();
    if has_real.status.success() {
        eprintln!("this machine has nvidia-smi; skipping");
        return;
    }
    let snap = gpu::parse_report("box", &run_query(None)).unwrap();
    assert!(snap.gpus.is_empty());
    assert_eq!(
        snap.no_gpu_reason.as_deref(),
        Some("no NVIDIA GPU found on box (nvidia-smi is not installed)")
    );
}
