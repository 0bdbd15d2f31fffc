//! Every remote command has a time limit and an output cap (issue 16): a hung `nvidia-smi`
//! stand-in and one that prints without end both end within the limit with a message naming the
//! command and host, the hung command is stopped on the host, and another host's GPU query is
//! not held up meanwhile.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    os::unix::fs::PermissionsExt,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use tunnelbook_core::{
    gpu,
    profile::ProfileStore,
    ssh::{Connection, ExecLimits, HostKeyPolicy, NoPrompter, SshError},
};
use tunnelbook_testbed::{
    Client, KeyFile, OTHER_USER, Sshd, SshdOptions, USER, key_only, make_key, user_bin_lock,
};

struct Bed {
    sshd: Sshd,
    client: Client,
    key: KeyFile,
    _keys: tempfile::TempDir,
}

fn bed() -> Bed {
    let keys = tempfile::tempdir().unwrap();
    let key = make_key(keys.path(), "id", "ed25519", None);
    let sshd = Sshd::start(&[&key], SshdOptions::default());
    let client = Client::new();
    client.trust(&sshd);
    ProfileStore::in_home(&client.home())
        .save(&[key_only(sshd.profile("box", USER), &key)])
        .unwrap();
    Bed {
        sshd,
        client,
        key,
        _keys: keys,
    }
}

impl Bed {
    async fn connect(&self, user: &str) -> Connection {
        let ctx = self
            .client
            .context(Arc::new(NoPrompter), HostKeyPolicy::Strict, None);
        Connection::open(&[key_only(self.sshd.profile("box", user), &self.key)], &ctx)
            .await
            .unwrap()
    }
}

/// `~user/bin/nvidia-smi` as a script `body`, holding the user's `~/bin` lock; removed on drop.
struct StandIn {
    path: PathBuf,
    _lock: std::fs::File,
}

impl StandIn {
    fn install(user: &str, body: &str) -> StandIn {
        let lock = user_bin_lock(user);
        let bin = PathBuf::from(format!("/home/{user}/bin"));
        std::fs::create_dir_all(&bin).unwrap();
        let path = bin.join("nvidia-smi");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        tunnelbook_testbed::run(
            std::process::Command::new("chown")
                .arg("-R")
                .arg(format!("{user}:"))
                .arg(&bin),
        );
        StandIn { path, _lock: lock }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_command_ends_at_its_limit_is_stopped_and_holds_up_nothing_else() {
    let bed = bed();
    let conn = bed.connect(USER).await;
    let other = bed.connect(OTHER_USER).await;
    let limits = ExecLimits {
        timeout: Some(Duration::from_secs(3)),
        ..ExecLimits::DEFAULT
    };
    let started = Instant::now();
    let hung = conn.exec_limited("sleep 537", &[], limits);
    // Meanwhile another host's command (here: another user's connection) answers at once, and
    // so does another command on the same connection.
    let quick = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let t = Instant::now();
        let a = other.exec("echo other").await.unwrap();
        let b = conn.exec("echo same").await.unwrap();
        assert_eq!(a.stdout_text(), "other\n");
        assert_eq!(b.stdout_text(), "same\n");
        t.elapsed()
    };
    let (hung, quick) = tokio::join!(hung, quick);
    let took = started.elapsed();
    assert!(quick < Duration::from_secs(2), "{quick:?}");
    assert!(took < Duration::from_secs(6), "{took:?}");
    let err = hung.unwrap_err();
    assert!(matches!(err, SshError::CommandTimedOut { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("sleep 537") && text.contains("tbtest@127.0.0.1") && text.contains("3 s"),
        "{text}"
    );
    // The hung command was stopped on the host, not just abandoned.
    let deadline = Instant::now() + Duration::from_secs(5);
    let still = || {
        tunnelbook_testbed::processes().into_iter().any(|(pid, _)| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.starts_with(b"sleep\x00537"))
        })
    };
    while still() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!still(), "`sleep 537` is still running on the host");
    // The connection still works.
    assert_eq!(conn.exec("echo ok").await.unwrap().stdout_text(), "ok\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_output_is_capped() {
    let bed = bed();
    let conn = bed.connect(USER).await;
    let limits = ExecLimits {
        max_output: 1 << 20,
        ..ExecLimits::DEFAULT
    };
    let started = Instant::now();
    let err = conn
        .exec_limited("yes tunnelbook", &[], limits)
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(matches!(err, SshError::OutputTooLarge { .. }), "{err:?}");
    assert!(err.to_string().contains("yes tunnelbook"), "{err}");
    assert_eq!(conn.exec("echo ok").await.unwrap().stdout_text(), "ok\n");
}

/// A hung and an endless `nvidia-smi` through `tunnelbook gpus` (limit from
/// `TUNNELBOOK_COMMAND_TIMEOUT`): a clear message within the limit; another host's GPU query
/// meanwhile answers at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpus_with_a_hung_or_endless_nvidia_smi() {
    let bed = bed();
    let other = bed.connect(OTHER_USER).await;
    {
        let _hung = StandIn::install(USER, "sleep 300");
        let started = Instant::now();
        let cli = bed
            .client
            .cli()
            .env("TUNNELBOOK_COMMAND_TIMEOUT", "3")
            .args(["gpus", "box"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        // Another host's GPU query while that one hangs.
        let t = Instant::now();
        let snapshot = gpu::snapshot(&other).await;
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        assert!(snapshot.is_ok(), "{snapshot:?}");
        let out = cli.wait_with_output().unwrap();
        let took = started.elapsed();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(took < Duration::from_secs(10), "{took:?}");
        assert!(
            err.contains("did not finish within 3 s") && err.contains("tbtest@127.0.0.1"),
            "{err}"
        );
    }
    {
        let _endless = StandIn::install(USER, "yes 'GPU 0: NVIDIA H100 (UUID: GPU-x)'");
        let started = Instant::now();
        let out = bed.client.cli().args(["gpus", "box"]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(started.elapsed() < Duration::from_secs(30));
        // The GPU query caps each nvidia-smi answer on the host (256 KiB), so endless output
        // ends as an unreadable answer quoting its start, not as a hung or oversized command.
        assert!(
            err.contains("cannot read the GPU query's answer")
                && err.contains("the output was: GPU 0: NVIDIA H100")
                && err.contains("tbtest@127.0.0.1"),
            "{err}"
        );
    }
}
