//! The SLURM bed of the app's end-to-end suite (`tests/e2e-app/slurm.mjs`, issue 20): the real
//! single-node SLURM cluster of [`tunnelbook_testbed::slurm::SlurmBed`] (munge, slurmctld,
//! slurmd; 4 fake GPUs a100×2 + v100×2; partitions gpu and debug) behind a real sshd on
//! 127.0.0.1 whose sessions get the cluster's `SLURM_CONF`, login user `tbslurm` with a fresh key.
//!
//! Prints one JSON line — `{"host","port","user","key","venv"}` — then answers one line per
//! command on stdin with one JSON line:
//! - `blocker`: submits a job of the user's holding all 4 GPUs, waits until it runs →
//!   `{"blocker": ID}`;
//! - `cancel ID` → `{"cancelled": ID}`;
//! - `jobs` → `{"jobs": [ID, …]}`: the user's jobs in the queue;
//! - `processes` → `{"processes": ["PID ARGS", …]}`: the user's processes on this cluster (login
//!   sessions and jobs);
//! - `state ID` → `{"state": "RUNNING"}` (`scontrol`'s JobState; `""` when unknown);
//! - `job-gpus PID` → `{"jobGpus": …}`: `SLURM_JOB_GPUS` in process PID's environment (a
//!   kernel's), as SLURM set it for the job.
//!
//! When stdin closes it cancels every job of the user's, waits until none is left, and stops
//! the cluster and sshd.
//!
//!   target/debug/tunnelbook-e2e-slurm-bed

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{io::BufRead, time::Duration};

use tunnelbook_testbed::{
    Sshd, SshdOptions, jupyter_venv, make_key,
    slurm::{SLURM_USER, SlurmBed},
};

fn main() {
    let mut slurm = SlurmBed::start();
    let venv = jupyter_venv();
    let keys = tempfile::tempdir().unwrap();
    let key = make_key(keys.path(), "id_ed25519", "ed25519", None);
    let sshd = Sshd::start(
        &[&key],
        SshdOptions {
            extra: slurm.sshd_lines(),
            ..SshdOptions::default()
        },
    );
    // An earlier run's connection files and launch directories; its notebooks and JupyterLab's
    // saved layout (which would open them instead of the launcher).
    let home = format!("/home/{SLURM_USER}");
    let _ = std::fs::remove_dir_all(format!("{home}/.tunnelbook"));
    for entry in std::fs::read_dir(&home).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("Untitled") && name.ends_with(".ipynb") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let _ = std::fs::remove_dir_all(format!("{home}/.ipynb_checkpoints"));
    let _ = std::fs::remove_dir_all(format!("{home}/.jupyter/lab/workspaces"));
    println!(
        "{}",
        serde_json::json!({
            "host": "127.0.0.1",
            "port": sshd.port,
            "user": SLURM_USER,
            "key": key.path,
            "venv": venv,
        })
    );
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        let reply = match words.as_slice() {
            ["blocker"] => {
                let id = slurm.sbatch_as(
                    SLURM_USER,
                    &["--gres=gpu:4", "--time=5", "--wrap", "sleep 600"],
                );
                slurm.wait_state(&id, "RUNNING", Duration::from_secs(20));
                serde_json::json!({ "blocker": id })
            }
            ["cancel", id] => {
                slurm.command("scancel").arg(id).status().unwrap();
                serde_json::json!({ "cancelled": id })
            }
            ["jobs"] => {
                let out = slurm.output(&["squeue", "-h", "-u", SLURM_USER, "-o", "%i"]);
                serde_json::json!({ "jobs": out.split_whitespace().collect::<Vec<_>>() })
            }
            ["processes"] => serde_json::json!({ "processes": slurm.user_processes(SLURM_USER) }),
            ["state", id] => serde_json::json!({ "state": slurm.job_state(id) }),
            ["job-gpus", pid] => {
                let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
                let gpus = env
                    .split(|b| *b == 0)
                    .filter_map(|v| std::str::from_utf8(v).ok())
                    .find_map(|v| v.strip_prefix("SLURM_JOB_GPUS="))
                    .map(str::to_string);
                serde_json::json!({ "jobGpus": gpus })
            }
            _ => serde_json::json!({ "error": format!("unknown command {line:?}") }),
        };
        println!("{reply}");
    }
    // Nothing of the user's is left running: their jobs first, then the cluster.
    let _ = slurm.command("scancel").args(["-u", SLURM_USER]).status();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline
        && !slurm
            .output(&["squeue", "-h", "-u", SLURM_USER])
            .trim()
            .is_empty()
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(sshd);
    slurm.stop();
}
