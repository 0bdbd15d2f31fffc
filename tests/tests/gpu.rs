//! GPUs over a real sshd: the `tests/shims/nvidia-smi` stand-in sits in the login user's `~/bin`
//! (on PATH in Debian's login shells), answers with fixture data, and reports processes that the
//! test really started as two different users, so the user mapping is the real `ps`'s.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
    sync::Arc,
    time::Duration,
};

use tunnelbook_core::{
    gpu::{self, GpuError, GpuSelector},
    ssh::{Connection, HostKeyPolicy, NoPrompter},
};
use tunnelbook_testbed::{
    CONTAINER_BUSY_GPU, Client, IDLE_GPU, NvidiaSmiShim, OTHER_USER, Sshd, SshdOptions, THEIR_GPU,
    USER, key_only, lost_and_container_busy_scenario, make_key, sleeper,
};

const UUID: &str = "GPU-75cbcb3f-3580-af7a-4e6d-03d5aa80af6b";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A scenario directory every user can read, from a fixture plus an `apps.csv`.
fn scenario(fixture: &str, apps: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let src = repo()
        .join("crates/core/tests/fixtures/nvidia-smi")
        .join(fixture);
    for f in ["query-gpu.csv", "list.txt"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    std::fs::write(dir.path().join("apps.csv"), apps).unwrap();
    dir
}

/// Both tests install the shim for [`USER`]: one at a time.
static SHIM_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn connect(
    sshd: &Sshd,
    client: &Client,
    key: &tunnelbook_testbed::KeyFile,
    user: &str,
) -> Connection {
    let ctx = client.context(Arc::new(NoPrompter), HostKeyPolicy::Strict, None);
    Connection::open(&[key_only(sshd.profile("box", user), key)], &ctx)
        .await
        .unwrap()
}

#[tokio::test]
async fn processes_of_two_users_are_mapped_over_ssh() {
    let keys = tempfile::tempdir().unwrap();
    let key = make_key(keys.path(), "id", "ed25519", None);
    let sshd = Sshd::start(&[&key], SshdOptions::default());
    let client = Client::new();
    client.trust(&sshd);

    let mine = sleeper(USER);
    let theirs = sleeper(OTHER_USER);
    let (mine_pid, their_pid) = (mine.pid(), theirs.pid());
    let dir = scenario(
        "h100-two-users",
        &format!(
            "{UUID}, {their_pid}, python3, 3380\n{UUID}, {mine_pid}, /usr/bin/python3.12, 5288\n"
        ),
    );
    let _lock = SHIM_LOCK.lock().await;
    let _shim = NvidiaSmiShim::install(USER, dir.path());
    let conn = connect(&sshd, &client, &key, USER).await;

    let snap = gpu::snapshot(&conn).await.unwrap();
    assert_eq!(snap.host, conn.destination());
    assert_eq!(snap.current_user.as_deref(), Some(USER));
    assert_eq!(snap.no_gpu_reason, None);
    assert_eq!(snap.gpus.len(), 1);
    assert_eq!(snap.gpus[0].memory_used_mib, Some(8683));
    let p = |pid| snap.processes.iter().find(|p| p.pid == pid).unwrap();
    assert_eq!(p(mine_pid).user.as_deref(), Some(USER), "{snap:#?}");
    assert!(p(mine_pid).own);
    assert_eq!(p(mine_pid).command.as_deref(), Some("/usr/bin/python3.12"));
    assert!(p(mine_pid).running_secs.is_some());
    assert_eq!(p(their_pid).user.as_deref(), Some(OTHER_USER), "{snap:#?}");
    assert!(!p(their_pid).own);

    // Someone else's process keeps the GPU busy even when one's own count as free.
    let ranked = snap.rank_free(true);
    assert_eq!(ranked[0].cuda_visible_devices, UUID);
    assert!(!ranked[0].free);
    let err = snap.select(&GpuSelector::Auto, true).unwrap_err();
    assert!(matches!(err, GpuError::NoFreeGpu { .. }), "{err}");

    // The live stream over the same connection; dropping it stops the polling.
    let mut rx = gpu::watch(conn.clone(), Duration::from_millis(100));
    for _ in 0..2 {
        let s = rx.recv().await.unwrap().unwrap();
        assert_eq!(s.processes.len(), 2);
    }
    drop(rx);
}

#[tokio::test]
async fn broken_driver_and_missing_nvidia_smi_over_ssh() {
    let keys = tempfile::tempdir().unwrap();
    let key = make_key(keys.path(), "id", "ed25519", None);
    let sshd = Sshd::start(&[&key], SshdOptions::default());
    let client = Client::new();
    client.trust(&sshd);

    // OTHER_USER has no shim in ~/bin: no nvidia-smi at all on this "host".
    if !Command::new("sh")
        .args(["-c", "command -v nvidia-smi"])
        .status()
        .unwrap()
        .success()
    {
        let conn = connect(&sshd, &client, &key, OTHER_USER).await;
        let snap = gpu::snapshot(&conn).await.unwrap();
        assert!(snap.gpus.is_empty());
        let reason = snap.no_gpu_reason.unwrap();
        assert!(reason.starts_with("no NVIDIA GPU found on "), "{reason}");
        assert_eq!(snap.current_user.as_deref(), Some(OTHER_USER));
    }

    let dir = scenario("h100-busy", "");
    let line = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. \
                Make sure that the latest NVIDIA driver is installed and running.";
    std::fs::write(dir.path().join("fail.txt"), format!("{line}\n\n")).unwrap();
    let _lock = SHIM_LOCK.lock().await;
    let _shim = NvidiaSmiShim::install(USER, dir.path());
    let conn = connect(&sshd, &client, &key, USER).await;
    match gpu::snapshot(&conn).await {
        Err(GpuError::Driver { message, .. }) => assert_eq!(message, line),
        other => panic!("{other:?}"),
    }
}

/// `gpus --json` and the table over a real sshd for that box, and `up --gpu auto` starting
/// JupyterLab on the one truly idle GPU.
#[tokio::test]
async fn gpus_and_up_auto_over_ssh_on_a_box_with_a_lost_and_a_container_busy_gpu() {
    let venv = tunnelbook_testbed::jupyter_venv();
    let keys = tempfile::tempdir().unwrap();
    let key = make_key(keys.path(), "id", "ed25519", None);
    let sshd = Sshd::start(&[&key], SshdOptions::default());
    let client = Client::new();
    client.trust(&sshd);
    let mut profile = key_only(sshd.profile("box", USER), &key);
    profile.environment = Some(venv.display().to_string());
    tunnelbook_core::profile::ProfileStore::in_home(&client.home())
        .save(&[profile])
        .unwrap();
    let theirs = sleeper(OTHER_USER);
    let dir = lost_and_container_busy_scenario(theirs.pid());
    let _lock = SHIM_LOCK.lock().await;
    let _shim = NvidiaSmiShim::install(USER, dir.path());
    let cli = |args: &[&str]| {
        let out = client.cli().args(args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    let (code, json, err) = cli(&["gpus", "box", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let indexes: Vec<u64> = v["gpus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, [0, 2, 3], "{json}");
    assert_eq!(v["unreadable"][0]["pciBusId"], "0000:0B:00.0", "{json}");
    assert!(
        v["unreadable"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("Unable to determine the device handle"),
        "{json}"
    );
    let choice = |uuid: &str| {
        v["choices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["cudaVisibleDevices"] == uuid)
            .cloned()
            .unwrap_or_else(|| panic!("{uuid} missing: {json}"))
    };
    assert_eq!(choice(CONTAINER_BUSY_GPU)["free"], false);
    assert!(
        choice(CONTAINER_BUSY_GPU)["why"]
            .as_str()
            .unwrap()
            .starts_with("in use (processes not visible: another container or namespace)"),
        "{json}"
    );
    assert_eq!(choice(IDLE_GPU)["free"], true);
    assert_eq!(choice(THEIR_GPU)["free"], false);
    assert_eq!(
        choice(THEIR_GPU)["why"].as_str().unwrap(),
        format!("in use by {OTHER_USER} (/tmp/NVIDIA-SMI has failed/@@tunnelbook-gpu end@@)")
    );
    let procs = v["processes"].as_array().unwrap();
    assert_eq!(procs.len(), 1, "{json}");
    assert_eq!(procs[0]["user"], OTHER_USER);

    // The table: the lost GPU with nvidia-smi's words, the reasons, no escape sequence.
    let (code, table, err) = cli(&["gpus", "box"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        table.contains(
            "[0000:0B:00.0] unreadable: Unable to determine the device handle for GPU 0000:0B:00.0: Unknown Error"
        ),
        "{table}"
    );
    assert!(
        table.contains("-> in use (processes not visible"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("[2] ") && l.ends_with("free *")),
        "{table}"
    );
    assert!(!table.contains('\u{1b}'), "{table:?}");

    // `up --gpu auto` starts JupyterLab on GPU 2, the truly idle one; `down` stops it.
    let mut up = tunnelbook_testbed::Guard::spawn(
        client
            .cli()
            .args(["up", "box", "--gpu", "auto", "--json"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null()),
    );
    let ready: serde_json::Value = serde_json::from_str(&up.read_line()).unwrap();
    assert_eq!(ready["gpu"], IDLE_GPU, "{ready}");
    up.kill();
    let id = ready["serverId"].as_str().unwrap().to_string();
    let (code, _, err) = cli(&["down", "box", &id]);
    assert_eq!(code, 0, "{err}");
}

/// MIG over a real sshd: the instances of an A100 in MIG mode (NVIDIA's documented `nvidia-smi
/// -L` format, see the fixture's README) are listed under their GPU by `gpus --json`, and
/// `up --gpu MIG-…` starts JupyterLab pinned to that instance.
#[tokio::test]
async fn up_pins_to_a_mig_instance_over_ssh() {
    const INSTANCE: &str = "MIG-1a2b3c4d-5e6f-5a7b-8c9d-0e1f2a3b4c5d";
    let venv = tunnelbook_testbed::jupyter_venv();
    let keys = tempfile::tempdir().unwrap();
    let key = make_key(keys.path(), "id", "ed25519", None);
    let sshd = Sshd::start(&[&key], SshdOptions::default());
    let client = Client::new();
    client.trust(&sshd);
    let mut profile = key_only(sshd.profile("box", USER), &key);
    profile.environment = Some(venv.display().to_string());
    tunnelbook_core::profile::ProfileStore::in_home(&client.home())
        .save(&[profile])
        .unwrap();
    let dir = scenario("a100-mig-4x", "");
    let _lock = SHIM_LOCK.lock().await;
    let _shim = NvidiaSmiShim::install(USER, dir.path());

    let out = client
        .cli()
        .args(["gpus", "box", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mig: Vec<&str> = v["gpus"][0]["mig"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["uuid"].as_str().unwrap())
        .collect();
    assert_eq!(mig.len(), 3, "{v}");
    assert!(mig.contains(&INSTANCE));

    let mut up = tunnelbook_testbed::Guard::spawn(
        client
            .cli()
            .args(["up", "box", "--gpu", INSTANCE, "--json"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null()),
    );
    let ready: serde_json::Value = serde_json::from_str(&up.read_line()).unwrap();
    assert_eq!(ready["gpu"], INSTANCE, "{ready}");
    up.kill();
    let id = ready["serverId"].as_str().unwrap().to_string();
    let down = client.cli().args(["down", "box", &id]).output().unwrap();
    assert!(down.status.success(), "{down:?}");
}
