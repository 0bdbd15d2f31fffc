//! The server zoo (issue 16; cases 05 and 06): for users whose login shell is tcsh, fish, zsh,
//! ksh or dash, whose `.bash_profile` execs zsh, or whose `.bashrc` prints a banner and calls
//! `stty`, `exec`, `gpus`, `envs` and `up` (kernel code run through the tunnel) work as for a
//! plain bash user, in the login environment the user's own startup files set up.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{process::Stdio, time::Duration};

use tunnelbook_core::{profile::ProfileStore, secret::Sensitive};
use tunnelbook_testbed::{
    Client, FREE_GPU, Guard, NvidiaSmiShim, Sshd, SshdOptions, alive, jupyter_venv,
    kernel::{execute, start_kernel},
    key_only, make_key, processes, two_gpu_scenario,
    zoo::{self, ZooUser},
};

struct Bed {
    _sshd: Sshd,
    client: Client,
    _keys: tempfile::TempDir,
}

/// sshd, a client trusting it, and the host `zoo` logging in as `user` (key only) with the test
/// bed's JupyterLab venv as its environment.
fn bed(user: ZooUser) -> Bed {
    zoo::ensure_zoo();
    let venv = jupyter_venv();
    let keys = tempfile::tempdir().unwrap();
    let key = make_key(keys.path(), "id", "ed25519", None);
    let sshd = Sshd::start(&[&key], SshdOptions::default());
    let client = Client::new();
    client.trust(&sshd);
    let mut profile = key_only(sshd.profile("zoo", user.name), &key);
    profile.environment = Some(venv.display().to_string());
    ProfileStore::in_home(&client.home())
        .save(&[profile])
        .unwrap();
    Bed {
        _sshd: sshd,
        client,
        _keys: keys,
    }
}

fn uid_of(user: &str) -> String {
    let out = std::process::Command::new("id")
        .args(["-u", user])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Live processes owned by `user`.
fn processes_of(user: &str) -> Vec<String> {
    let uid = uid_of(user);
    processes()
        .into_iter()
        .filter(|(pid, f)| {
            f.first().is_some_and(|s| s != "Z")
                && std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
                    s.lines().any(|l| {
                        l.strip_prefix("Uid:")
                            .and_then(|r| r.split_whitespace().next())
                            == Some(uid.as_str())
                    })
                })
        })
        .map(|(pid, _)| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            format!(
                "{pid}: {}",
                String::from_utf8_lossy(&cmd).replace('\0', " ")
            )
        })
        .collect()
}

async fn everything_works_for(user: ZooUser) {
    let bed = bed(user);
    let scenario = two_gpu_scenario(1);
    let shim = NvidiaSmiShim::install(user.name, scenario.path());

    // exec: output, the login environment (PATH and the probe from the user's own startup
    // files, in their shell's syntax), POSIX syntax whatever the shell, exit status.
    let (code, out, err) = bed.client.run_cli(&[
        "--host-key-policy",
        "accept-new",
        "exec",
        "zoo",
        "--",
        "echo hello; echo \"${TB_LOGIN_PROBE:-no-login-env}\" $(echo posix); nvidia-smi -L | head -1",
    ]);
    assert_eq!(code, 0, "{}: {out}{err}", user.name);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{}: {out:?}", user.name);
    assert_eq!(lines[0], "hello", "{}: {out:?}", user.name);
    assert_eq!(lines[1], format!("{} posix", user.probe), "{}", user.name);
    assert!(
        lines[2].starts_with("GPU 0: NVIDIA H100"),
        "{}: {out:?}",
        user.name
    );
    assert!(
        !err.contains("Welcome") && !err.contains("motd") && !err.contains("stty"),
        "{}: the startup files' noise leaked: {err:?}",
        user.name
    );
    let (code, _, _) = bed
        .client
        .run_cli(&["exec", "zoo", "--", "echo out; exit 7"]);
    assert_eq!(code, 7, "{}", user.name);

    // gpus: the query runs through the same wrapper and finds the free GPU.
    let (code, out, err) = bed.client.run_cli(&["gpus", "zoo", "--json"]);
    assert_eq!(code, 0, "{}: {err}", user.name);
    assert!(out.contains(FREE_GPU), "{}: {out}", user.name);
    drop(shim);

    // envs: the configured venv is found with JupyterLab.
    let (code, out, err) = bed.client.run_cli(&["envs", "zoo", "--json"]);
    assert_eq!(code, 0, "{}: {err}", user.name);
    let envs: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        envs.as_array()
            .unwrap()
            .iter()
            .any(|e| e["configured"] == true && e["jupyterLab"] == true),
        "{}: {out}",
        user.name
    );

    // up: a kernel reached through the tunnel runs code, in the login environment.
    let err_path = bed.client.dir.path().join("up-stderr");
    let mut up = Guard::spawn(
        bed.client
            .cli()
            .args(["up", "zoo", "--gpu", "none", "--json"])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&err_path).unwrap()),
    );
    let line = up.read_line();
    let ready: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|_| {
        panic!(
            "{}: up printed {line:?}; stderr:\n{}",
            user.name,
            std::fs::read_to_string(&err_path).unwrap_or_default()
        )
    });
    let url = ready["url"].as_str().unwrap();
    let port = u16::try_from(ready["localPort"].as_u64().unwrap()).unwrap();
    let pid = u32::try_from(ready["remotePid"].as_u64().unwrap()).unwrap();
    let token = Sensitive::new(url.split("token=").nth(1).unwrap().to_string());
    let kernel = start_kernel(port, &token).await;
    let seen = execute(
        port,
        &token,
        &kernel,
        "import os; print(6 * 7, os.environ.get('TB_LOGIN_PROBE'))",
    )
    .await;
    assert_eq!(seen.trim(), format!("42 {}", user.probe), "{}", user.name);
    up.kill();

    let (code, _, err) = bed
        .client
        .run_cli(&["down", "zoo", ready["serverId"].as_str().unwrap()]);
    assert_eq!(code, 0, "{}: {err}", user.name);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while alive(pid) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !alive(pid),
        "{}: the server {pid} is still alive",
        user.name
    );
    // Nothing of this user is left (the kernel, a wrapper shell, …).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut left = processes_of(user.name);
    while !left.is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        left = processes_of(user.name);
    }
    assert_eq!(left, Vec::<String>::new(), "{}", user.name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoo_tcsh_case_05() {
    everything_works_for(zoo::TCSH).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoo_fish_case_06() {
    everything_works_for(zoo::FISH).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoo_zsh() {
    everything_works_for(zoo::ZSH).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoo_ksh() {
    everything_works_for(zoo::KSH).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoo_dash() {
    everything_works_for(zoo::DASH).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoo_bash_profile_execs_zsh() {
    everything_works_for(zoo::EXEC_ZSH).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoo_bashrc_banner_and_stty() {
    everything_works_for(zoo::BANNER).await;
}
