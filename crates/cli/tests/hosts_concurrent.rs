//! Two real `tunnelbook` processes writing the same hosts file at once lose nothing: each adds
//! 100 hosts with `tunnelbook hosts add`, and all 200 are there at the end.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{path::Path, process::Command, thread};

const WRITES: usize = 100;

fn writer(home: &Path, prefix: &'static str) -> thread::JoinHandle<()> {
    let home = home.to_path_buf();
    thread::spawn(move || {
        for i in 0..WRITES {
            let name = format!("{prefix}-{i}");
            let out = Command::new(env!("CARGO_BIN_EXE_tunnelbook"))
                .args([
                    "hosts",
                    "add",
                    &name,
                    "--host",
                    &format!("{name}.example.edu"),
                ])
                .env("TUNNELBOOK_HOME", &home)
                .output()
                .unwrap();
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
    let out = Command::new(env!("CARGO_BIN_EXE_tunnelbook"))
        .args(["hosts", "list", "--json"])
        .env("TUNNELBOOK_HOME", dir.path())
        .output()
        .unwrap();
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
