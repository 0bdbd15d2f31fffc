//! Two real `tunnelbook` processes writing the same hosts file at once lose nothing: each adds
//! 100 hosts with `tunnelbook hosts add`, and all 200 are there at the end.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    path::Path,
    process::{Command, Output},
    thread,
    time::Duration,
};

const WRITES: usize = 100;

/// Runs `cmd` to its end. Under Wine (the Windows build's tests), `CreateProcess` now and then
/// fails with ERROR_INTERNAL_ERROR (1359) when two threads start processes at once; the program
/// never ran then, so starting it again is what a user's retry would do. Any failure of the
/// program itself is returned, not retried.
fn output(cmd: &mut Command) -> Output {
    let mut tries = 0;
    loop {
        match cmd.output() {
            Ok(out) => return out,
            Err(e) if tries < 5 => {
                tries += 1;
                eprintln!("could not start {cmd:?} ({e}); starting it again");
                thread::sleep(Duration::from_millis(100 * tries));
            }
            Err(e) => panic!("could not start {cmd:?}: {e}"),
        }
    }
}

fn writer(home: &Path, prefix: &'static str) -> thread::JoinHandle<()> {
    let home = home.to_path_buf();
    thread::spawn(move || {
        for i in 0..WRITES {
            let name = format!("{prefix}-{i}");
            let out = output(
                Command::new(env!("CARGO_BIN_EXE_tunnelbook"))
                    .args([
                        "hosts",
                        "add",
                        &name,
                        "--host",
                        &format!("{name}.example.edu"),
                    ])
                    .env("TUNNELBOOK_HOME", &home),
            );
            assert!(
                out.status.success(),
                "{name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    })
}

#[test]
fn two_processes_writing_at_once_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (writer(dir.path(), "app"), writer(dir.path(), "cli"));
    a.join().unwrap();
    b.join().unwrap();
    let out = output(
        Command::new(env!("CARGO_BIN_EXE_tunnelbook"))
            .args(["hosts", "list", "--json"])
            .env("TUNNELBOOK_HOME", dir.path()),
    );
    assert!(out.status.success());
    let hosts: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(hosts.len(), 2 * WRITES);
    for prefix in ["app", "cli"] {
        for i in 0..WRITES {
            let name = format!("{prefix}-{i}");
            assert!(
                hosts.iter().any(|h| h["name"] == name.as_str()),
                "{name} was lost"
            );
        }
    }
}
