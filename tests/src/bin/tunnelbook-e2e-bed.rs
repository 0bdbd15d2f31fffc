//! The desktop app's end-to-end bed: a real sshd on 127.0.0.1 accepting a fresh key for the
//! login user `tbapp` (created on first use, so other suites' users are left alone), the
//! `nvidia-smi` shim with two H100s (GPU 0 busy with another user's process, GPU 1 free), and
//! the test bed's JupyterLab venv linked into the user's home as `~/jlab` so environment
//! discovery finds it.
//!
//! Options (for suites that run beside `run.mjs`): `--user NAME` logs in as NAME instead of
//! `tbapp` (created the same way), so two suites never share a home or the GPU shim's
//! `~/bin`; `--no-env-link` leaves the venv out of the home, so it is only reachable by its
//! shared path (`venv` in the JSON, under /opt, not on the login PATH), as a system-wide
//! JupyterLab is.
//!
//! Prints one JSON line — `{"host","port","user","key","venv","env","busyGpu","freeGpu"}` —
//! then keeps everything up until stdin closes (the e2e runner closes it), and cleans up.
//! A line `restart-sshd SECS` on stdin kills sshd and every SSH session under it (a network
//! outage or a server reboot, as the app sees it), keeps it down SECS seconds, starts it again
//! and prints `{"sshdRestarted":SECS}`; a line `kill-jupyter` stops the user's Jupyter servers
//! behind the app's back (as `kill` on the host would) and prints `{"jupyterKilled":true}`.
//!
//!   target/debug/tunnelbook-e2e-bed

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{io::BufRead, path::Path, process::Command, time::Duration};

use tunnelbook_testbed::{
    BUSY_GPU, FREE_GPU, NvidiaSmiShim, OTHER_USER, Sshd, SshdOptions, ensure_users, jupyter_venv,
    make_key, run, sleeper, two_gpu_scenario,
};

/// The login user of the app e2e, unless `--user` names another.
const USER: &str = "tbapp";

fn ensure_user(user: &str) {
    let exists = Command::new("id")
        .arg(user)
        .output()
        .is_ok_and(|o| o.status.success());
    if !exists {
        run(Command::new("useradd").args(["--create-home", "--shell", "/bin/bash", user]));
    }
    // useradd leaves the account locked ("!"), which sshd without PAM refuses even for keys;
    // "*" means "no password login" without locking it.
    run(Command::new("usermod").args(["-p", "*", user]));
    let profile = format!("/home/{user}/.profile");
    if !Path::new(&profile).exists() {
        run(Command::new("install").args([
            "-o",
            user,
            "-m",
            "0644",
            "/etc/skel/.profile",
            &profile,
        ]));
    }
}

/// Jupyter servers a failed run left behind: Tunnelbook's records on the host name their pids
/// (each leads its own process group, started under `setsid`).
fn stop_leftover_servers(user: &str) {
    let Ok(dir) = std::fs::read_dir(format!("/home/{user}/.tunnelbook/run")) else {
        return;
    };
    for entry in dir.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let record: Option<serde_json::Value> = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        if let Some(pid) = record.and_then(|r| r["pid"].as_u64()) {
            eprintln!("e2e bed: stopping leftover Jupyter server, process group {pid}");
            let _ = Command::new("kill")
                .args(["-TERM", "--", &format!("-{pid}")])
                .status();
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let user = args
        .iter()
        .position(|a| a == "--user")
        .and_then(|i| args.get(i + 1))
        .map_or(USER, String::as_str)
        .to_string();
    let env_link = !args.iter().any(|a| a == "--no-env-link");
    let user = user.as_str();
    ensure_users();
    ensure_user(user);
    let venv = jupyter_venv();
    let keys = tempfile::tempdir().unwrap();
    let key = make_key(keys.path(), "id_ed25519", "ed25519", None);
    let mut sshd = Sshd::start(&[&key], SshdOptions::default());
    let theirs = sleeper(OTHER_USER);
    let gpus = two_gpu_scenario(theirs.pid());
    let shim = NvidiaSmiShim::install(user, gpus.path());
    let link = format!("/home/{user}/jlab");
    let _ = std::fs::remove_file(&link);
    if env_link {
        std::os::unix::fs::symlink(&venv, &link).unwrap();
    }
    // The user's own Jupyter runtime files from an earlier run would list stale servers.
    let _ = std::fs::remove_dir_all(format!("/home/{user}/.tunnelbook"));
    // Notebooks an earlier run created (and JupyterLab's saved layout) would show up in this
    // run's screenshots.
    for entry in std::fs::read_dir(format!("/home/{user}"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("Untitled") && name.ends_with(".ipynb") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let _ = std::fs::remove_dir_all(format!("/home/{user}/.ipynb_checkpoints"));
    let _ = std::fs::remove_dir_all(format!("/home/{user}/.jupyter/lab/workspaces"));

    println!(
        "{}",
        serde_json::json!({
            "host": "127.0.0.1",
            "port": sshd.port,
            "user": user,
            "key": key.path,
            "venv": venv,
            "env": if env_link { link.clone() } else { venv.display().to_string() },
            "busyGpu": BUSY_GPU,
            "freeGpu": FREE_GPU,
        })
    );
    // Until the runner closes stdin (or dies: the pipe closes then too).
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if let Some(secs) = line.strip_prefix("restart-sshd ") {
            let secs: u64 = secs.trim().parse().unwrap_or(10);
            sshd.restart(Duration::from_secs(secs));
            println!("{}", serde_json::json!({ "sshdRestarted": secs }));
        } else if line.trim() == "kill-jupyter" {
            stop_leftover_servers(user);
            println!("{}", serde_json::json!({ "jupyterKilled": true }));
        }
    }
    let _ = std::fs::remove_file(&link);
    stop_leftover_servers(user);
    drop(shim);
    drop(theirs);
    drop(sshd);
}
