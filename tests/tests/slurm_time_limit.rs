//! A SLURM job's time limit (issue 20), against the real SLURM test bed behind a real sshd: a
//! 2-minute `up --slurm` job warns about the time left before its end (with the command that
//! relaunches it with the same settings), then says "time limit reached" — not "connection
//! lost" — when SLURM ends it. Its own binary (one bed) so its ~3 minutes run beside the other
//! SLURM scenarios.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use tunnelbook_core::profile::ProfileStore;
use tunnelbook_testbed::{
    Client, Guard, Sshd, SshdOptions, jupyter_venv, key_only, make_key,
    slurm::{SLURM_USER, SlurmBed},
};

#[test]
fn two_minute_job_warns_then_says_time_limit_reached() {
    let slurm = SlurmBed::start();
    let keys = tempfile::tempdir().unwrap();
    let key = make_key(keys.path(), "id", "ed25519", None);
    let sshd = Sshd::start(
        &[&key],
        SshdOptions {
            extra: slurm.sshd_lines(),
            ..SshdOptions::default()
        },
    );
    let client = Client::new();
    client.trust(&sshd);
    let mut profile = key_only(sshd.profile("box", SLURM_USER), &key);
    profile.environment = Some(jupyter_venv().display().to_string());
    ProfileStore::in_home(&client.home())
        .save(&[profile])
        .unwrap();
    let err_path = client.dir.path().join("up-stderr");
    let mut up = Guard::spawn(
        client
            .cli()
            .args([
                "up", "box", "--slurm", "--gpus", "1", "--time", "2", "--json",
            ])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&err_path).unwrap()),
    );
    let stderr = || std::fs::read_to_string(&err_path).unwrap_or_default();
    let line = up.read_line();
    let ready: serde_json::Value = serde_json::from_str(&line)
        .unwrap_or_else(|_| panic!("up printed {line:?}; stderr:\n{}", stderr()));
    let job = ready["jobId"].as_str().unwrap().to_string();
    let left = ready["timeLeftSecs"].as_u64().unwrap();
    assert!((60..=120).contains(&left), "time left {left}");
    assert!(
        stderr().contains("left before its time limit"),
        "{}",
        stderr()
    );
    let started = Instant::now();
    let deadline = started + Duration::from_secs(240);
    let mut warned_at = None;
    loop {
        let text = stderr();
        if warned_at.is_none() && text.contains("5 minutes or less left") {
            warned_at = Some(started.elapsed());
        }
        if text.contains("time limit reached") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no 'time limit reached' after 4 min; stderr:\n{text}\n{}",
            slurm.logs()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let text = stderr();
    let warned_at = warned_at.unwrap_or_else(|| panic!("no time-left warning:\n{text}"));
    assert!(
        warned_at < Duration::from_secs(60),
        "warned {warned_at:?} after ready:\n{text}"
    );
    assert!(
        text.contains(
            "relaunch with the same settings: tunnelbook up box --slurm --gpus 1 --time 0:02:00"
        ),
        "{text}"
    );
    assert!(!text.contains("connection lost"), "{text}");
    assert_eq!(text.matches("minutes or less left").count(), 1, "{text}");
    // SLURM reports COMPLETING while it kills the job's processes, then TIMEOUT.
    let deadline = Instant::now() + Duration::from_secs(30);
    while slurm.job_state(&job) != "TIMEOUT" {
        assert!(
            Instant::now() < deadline,
            "job {job} is {}",
            slurm.job_state(&job)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !slurm.user_processes(SLURM_USER).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(slurm.user_processes(SLURM_USER), Vec::<String>::new());
}
