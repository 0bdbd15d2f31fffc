//! JupyterLab on a SLURM compute node (issue 20), against the real SLURM test bed (slurm-wlm
//! 22.05, 4 fake GPUs) behind a real sshd acting as the login node, with the test bed's real
//! JupyterLab venv. One bed for the whole binary: the scenarios run in order in one test.
//!
//! - `tunnelbook gpus` detects the login node and shows per partition and type what
//!   `scontrol show node -d` says while two jobs hold GPUs;
//! - a time over MaxTime or an unknown GPU type is refused before anything is queued;
//! - with a blocker holding every GPU, `up --slurm --gpus v100:1` says Queued with the reason
//!   and expected start within 5 s, and becomes Ready by itself once the blocker is cancelled;
//! - a kernel through the tunnel sees the job's GPU (`CUDA_VISIBLE_DEVICES` = `SLURM_JOB_GPUS`);
//! - the login node's sshd restarting: `up` reconnects, the same port reaches the same kernel;
//! - the token is on no command line, in no process environment and not in SLURM's stored job
//!   script or environment;
//! - Ctrl-C leaves the job RUNNING; a second `TUNNELBOOK_HOME` attaches to it; `down` ends it
//!   CANCELLED with no process of the user left;
//! - Ctrl-C while queued cancels the job (scancel);
//! - the host's GPU flag style `--gpus-per-node` gets the job its two a100s;
//! - JupyterLab missing on the node: the job log's tail within one poll, and `up` stops;
//! - a dependency that can never be satisfied (saved as an extra `#SBATCH` line) ends the wait
//!   with what to change, and the job is cancelled.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use tunnelbook_core::{profile::ProfileStore, secret::Sensitive};
use tunnelbook_testbed::{
    Client, Guard, KeyFile, Sshd, SshdOptions, jupyter_venv,
    kernel::{execute, start_kernel},
    key_only, make_key, processes,
    slurm::{SLURM_USER, SlurmBed, user_processes},
};

struct Bed {
    slurm: SlurmBed,
    sshd: std::sync::Mutex<Sshd>,
    client: Client,
    other: Client,
    _keys: tempfile::TempDir,
}

fn client_for(sshd: &Sshd, key: &KeyFile) -> Client {
    let client = Client::new();
    client.trust(sshd);
    let mut profile = key_only(sshd.profile("box", SLURM_USER), key);
    profile.environment = Some(jupyter_venv().display().to_string());
    ProfileStore::in_home(&client.home())
        .save(&[profile])
        .unwrap();
    client
}

fn cli(client: &Client, args: &[&str]) -> (i32, String, String) {
    let out = client.cli().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A running `tunnelbook` with stdout piped and stderr in a file.
struct Running {
    guard: Guard,
    err: std::path::PathBuf,
}

impl Running {
    fn start(client: &Client, args: &[&str], name: &str) -> Running {
        let err = client.dir.path().join(format!("{name}-stderr"));
        let guard = Guard::spawn(
            client
                .cli()
                .args(args)
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(&err).unwrap()),
        );
        Running { guard, err }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Waits until stderr holds a line with every one of `words`; returns that line.
    fn wait_line(&self, words: &[&str], timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self
                .stderr()
                .lines()
                .find(|l| words.iter().all(|w| l.contains(w)))
            {
                return l.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "no line with {words:?} after {timeout:?}; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The JSON line `up --json` / `attach --json` prints when ready.
    fn ready(&mut self, bed: &Bed) -> serde_json::Value {
        let line = self.guard.read_line();
        serde_json::from_str(&line).unwrap_or_else(|_| {
            panic!(
                "printed {line:?}; stderr:\n{}\n{}",
                self.stderr(),
                bed.slurm.logs()
            )
        })
    }

    /// SIGINT (Ctrl-C) and wait for the exit.
    fn interrupt(&mut self) {
        unsafe_sigint(self.guard.pid());
        let deadline = Instant::now() + Duration::from_secs(20);
        while tunnelbook_testbed::alive(self.guard.pid()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn unsafe_sigint(pid: u32) {
    Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
}

fn queue_is_empty(bed: &Bed) -> bool {
    bed.slurm
        .output(&["squeue", "-h", "-o", "%i"])
        .trim()
        .is_empty()
}

fn env_of(pid: &str) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|e| {
            e.split(|b| *b == 0)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn grep_dir(dir: &std::path::Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            hits.extend(grep_dir(&p, needle));
        } else if std::fs::read(&p)
            .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
        {
            hits.push(p.display().to_string());
        }
    }
    hits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slurm_jupyter_end_to_end() {
    let t0 = Instant::now();
    let slurm = SlurmBed::start();
    eprintln!("slurm bed up in {:?}", t0.elapsed());
    let keys = tempfile::tempdir().unwrap();
    let key = make_key(keys.path(), "id", "ed25519", None);
    let sshd = Sshd::start(
        &[&key],
        SshdOptions {
            extra: slurm.sshd_lines(),
            ..SshdOptions::default()
        },
    );
    let bed = Bed {
        client: client_for(&sshd, &key),
        other: client_for(&sshd, &key),
        slurm,
        sshd: std::sync::Mutex::new(sshd),
        _keys: keys,
    };
    let t = Instant::now();
    gpu_view_equals_scontrol(&bed);
    eprintln!("gpu_view_equals_scontrol: {:?}", t.elapsed());
    let t = Instant::now();
    bad_requests_are_refused_before_queueing(&bed);
    eprintln!(
        "bad_requests_are_refused_before_queueing: {:?}",
        t.elapsed()
    );
    let t = Instant::now();
    queued_then_ready_kernel_sees_the_jobs_gpu(&bed).await;
    eprintln!(
        "queued_then_ready_kernel_sees_the_jobs_gpu: {:?}",
        t.elapsed()
    );
    let t = Instant::now();
    jupyter_missing_shows_the_log_tail(&bed);
    eprintln!("jupyter_missing_shows_the_log_tail: {:?}", t.elapsed());
    let t = Instant::now();
    ctrl_c_while_queued_cancels_the_job(&bed);
    eprintln!("ctrl_c_while_queued_cancels_the_job: {:?}", t.elapsed());
    let t = Instant::now();
    gpus_per_node_flag_style(&bed);
    eprintln!("gpus_per_node_flag_style: {:?}", t.elapsed());
    let t = Instant::now();
    reason_that_never_clears_ends_the_wait(&bed);
    eprintln!("reason_that_never_clears_ends_the_wait: {:?}", t.elapsed());
    eprintln!("whole SLURM scenario: {:?}", t0.elapsed());
}

/// Two jobs hold GPUs: `gpus box` (the host not yet known as SLURM: detected and saved) shows
/// per partition and type the totals and idle counts `scontrol show node -d` gives.
fn gpu_view_equals_scontrol(bed: &Bed) {
    let a = bed
        .slurm
        .sbatch_as(SLURM_USER, &["--gres=gpu:a100:1", "--wrap", "sleep 300"]);
    let b = bed
        .slurm
        .sbatch_as(SLURM_USER, &["--gres=gpu:v100:2", "--wrap", "sleep 300"]);
    bed.slurm.wait_state(&a, "RUNNING", Duration::from_secs(20));
    bed.slurm.wait_state(&b, "RUNNING", Duration::from_secs(20));
    let node = bed.slurm.output(&["scontrol", "show", "node", "-d", "-o"]);
    let field = |k: &str| {
        node.split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .unwrap()
            .to_string()
    };
    // What scontrol says, read here on its own: per type, total and in use.
    let count = |list: &str, ty: &str| -> u32 {
        list.split("),")
            .chain(std::iter::once(""))
            .flat_map(|e| e.split(','))
            .find_map(|e| e.strip_prefix(&format!("gpu:{ty}:")))
            .map(|n| n.split('(').next().unwrap().parse().unwrap())
            .unwrap_or(0)
    };
    let (gres, used) = (field("Gres="), field("GresUsed="));
    let (code, out, err) = cli(&bed.client, &["gpus", "box"]);
    assert_eq!(code, 0, "{out}\n{err}");
    for part in ["gpu*", "debug"] {
        for ty in ["a100", "v100"] {
            let (total, used) = (count(&gres, ty), count(&used, ty));
            let row: Vec<&str> = out
                .lines()
                .find(|l| l.starts_with(part) && l.split_whitespace().nth(1) == Some(ty))
                .unwrap_or_else(|| panic!("no row {part} {ty} in:\n{out}"))
                .split_whitespace()
                .collect();
            assert_eq!(
                (row[2], row[3]),
                (
                    total.to_string().as_str(),
                    (total - used).to_string().as_str()
                ),
                "{part} {ty}: scontrol Gres={gres} GresUsed={used}; view:\n{out}"
            );
        }
    }
    assert!(out.contains("hint"), "{out}");
    assert!(
        out.contains(&format!("  {a} ")) && out.contains(&format!("  {b} ")),
        "{out}"
    );
    let (_, shown, _) = cli(&bed.client, &["hosts", "show", "box", "--json"]);
    assert!(shown.contains("\"scheduler\": \"slurm\""), "{shown}");
    bed.slurm
        .command("scancel")
        .args([&a, &b])
        .status()
        .unwrap();
    while !queue_is_empty(bed) {
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Over MaxTime, an unknown GPU type, too many GPUs for a node: refused, nothing queued.
fn bad_requests_are_refused_before_queueing(bed: &Bed) {
    for (args, says) in [
        (
            vec!["--partition", "debug", "--time", "60"],
            "over partition debug's limit of 0:30:00",
        ),
        (vec!["--gpus", "h100:1"], "no GPU of type \"h100\""),
        (vec!["--gpus", "v100:3"], "at most 2"),
    ] {
        let mut a = vec!["up", "box", "--slurm"];
        a.extend(args.iter().copied());
        let (code, out, err) = cli(&bed.client, &a);
        assert_eq!(code, 2, "{a:?}: {out}\n{err}");
        assert!(
            err.contains("refused before submitting") && err.contains(says),
            "{a:?}: {err}"
        );
        assert!(queue_is_empty(bed), "{a:?} queued a job");
    }
}

async fn queued_then_ready_kernel_sees_the_jobs_gpu(bed: &Bed) {
    let blocker = bed.slurm.sbatch_as(
        SLURM_USER,
        &["--gres=gpu:4", "--time=5", "--wrap", "sleep 600"],
    );
    bed.slurm
        .wait_state(&blocker, "RUNNING", Duration::from_secs(20));
    let started = Instant::now();
    let mut up = Running::start(
        &bed.client,
        &["up", "box", "--slurm", "--gpus", "v100:1", "--json"],
        "up",
    );
    let queued = up.wait_line(
        &["Queued", "Resources", "expected start ≈"],
        Duration::from_secs(5),
    );
    eprintln!("queued after {:?}: {queued}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(5), "{queued}");
    // The blocker ends: the launch goes on by itself.
    bed.slurm.command("scancel").arg(&blocker).status().unwrap();
    let ready = up.ready(bed);
    let job = ready["jobId"].as_str().unwrap().to_string();
    let port = u16::try_from(ready["localPort"].as_u64().unwrap()).unwrap();
    let url = ready["url"].as_str().unwrap();
    let token = Sensitive::new(url.split("token=").nth(1).unwrap().to_string());
    let err = up.stderr();
    assert!(err.contains("Starting"), "{err}");

    // The kernel sees the job's GPU, and code runs through the tunnel.
    let kernel = start_kernel(port, &token).await;
    let seen = execute(
        port,
        &token,
        &kernel,
        "import os; print(os.environ.get('CUDA_VISIBLE_DEVICES'), os.getpid(), 6 * 7)",
    )
    .await;
    let words: Vec<&str> = seen.split_whitespace().collect();
    assert_eq!(words.len(), 3, "{seen}");
    assert_eq!(words[2], "42");
    let kernel_env = env_of(words[1]);
    let job_gpus = kernel_env
        .iter()
        .find_map(|e| e.strip_prefix("SLURM_JOB_GPUS="))
        .unwrap_or_else(|| panic!("kernel {} has no SLURM_JOB_GPUS", words[1]));
    assert_eq!(words[0], job_gpus, "CUDA_VISIBLE_DEVICES vs SLURM_JOB_GPUS");
    assert!(
        matches!(job_gpus, "2" | "3"),
        "v100s are GPUs 2 and 3: {job_gpus}"
    );

    // The login node's sshd restarts (every session cut): `up` reconnects, the same local port
    // reaches the same kernel.
    bed.sshd.lock().unwrap().restart(Duration::from_secs(1));
    up.wait_line(
        &["reconnected after", "same local port"],
        Duration::from_secs(30),
    );
    let seen = execute(port, &token, &kernel, "print(6 * 7)").await;
    assert_eq!(seen.trim(), "42", "after the reconnect");
    let gres = bed
        .slurm
        .output(&["scontrol", "show", "job", "-d", "-o", &job]);
    assert!(
        gres.contains(&format!("gpu:v100:1(IDX:{job_gpus})")),
        "{gres}"
    );

    // The connection file and the token file are the user's alone (0600).
    use std::os::unix::fs::PermissionsExt;
    let home = format!("/home/{SLURM_USER}/.tunnelbook/slurm");
    let conn_file = format!("{home}/{job}/connection.json");
    let meta = std::fs::metadata(&conn_file).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{conn_file}");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&conn_file).unwrap()).unwrap();
    assert_eq!(written["cuda_visible_devices"].as_str(), Some(job_gpus));
    let token_file = format!("{}/token", written["launch_dir"].as_str().unwrap());
    let meta = std::fs::metadata(&token_file).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{token_file}");

    // The token: no command line, no environment of the user's processes, not in SLURM's store.
    let secret = token.expose();
    for (pid, _) in processes() {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(
            !cmdline
                .windows(secret.len())
                .any(|w| w == secret.as_bytes()),
            "token on the command line of {pid}: {}",
            String::from_utf8_lossy(&cmdline)
        );
    }
    for line in user_processes(SLURM_USER) {
        let pid = line.split_whitespace().next().unwrap();
        assert!(
            !env_of(pid).iter().any(|e| e.contains(secret)),
            "token in the environment of {line}"
        );
    }
    let script = bed
        .slurm
        .output(&["scontrol", "write", "batch_script", &job, "-"]);
    assert!(script.contains("TB_TOKEN_FILE"), "{script}");
    assert!(!script.contains(secret), "token in the stored batch script");
    let shown = bed.slurm.output(&["scontrol", "show", "job", "-dd", &job]);
    assert!(!shown.contains(secret), "token in scontrol show job");
    let stored = grep_dir(&bed.slurm.state_dir(), secret);
    assert!(stored.is_empty(), "token in SLURM's state: {stored:?}");

    // Ctrl-C closes the tunnel only: the job keeps running.
    up.interrupt();
    assert!(up.stderr().contains("keeps running"), "{}", up.stderr());
    assert_eq!(bed.slurm.job_state(&job), "RUNNING");

    // Another computer (another TUNNELBOOK_HOME) attaches to the same job.
    let (code, _, err) = cli(
        &bed.other,
        &["hosts", "edit", "box", "--scheduler", "slurm"],
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cli(&bed.other, &["ls", "box"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("job {job}  RUNNING")), "{out}");
    let (code, out, err) = cli(&bed.other, &["ls", "box", "--json"]);
    assert_eq!(code, 0, "{err}");
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed[0]["row"]["id"].as_str(), Some(job.as_str()), "{out}");
    assert_eq!(
        listed[0]["connection"]["cudaVisibleDevices"].as_str(),
        Some(job_gpus),
        "{out}"
    );
    let mut attach = Running::start(&bed.other, &["attach", "box", "--json"], "attach");
    let again = attach.ready(bed);
    assert_eq!(again["jobId"].as_str(), Some(job.as_str()));
    let port2 = u16::try_from(again["localPort"].as_u64().unwrap()).unwrap();
    let url2 = again["url"].as_str().unwrap();
    let token2 = Sensitive::new(url2.split("token=").nth(1).unwrap().to_string());
    let seen = execute(port2, &token2, &kernel, "print(6 * 7)").await;
    assert_eq!(seen.trim(), "42");
    attach.interrupt();

    // down: CANCELLED, nothing of the user left.
    let (code, out, err) = cli(&bed.client, &["down", "box"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains(&format!("job {job}: CANCELLED")), "{out}");
    assert_eq!(bed.slurm.job_state(&job), "CANCELLED");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !bed.slurm.user_processes(SLURM_USER).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(bed.slurm.user_processes(SLURM_USER), Vec::<String>::new());
}

/// An environment without JupyterLab: the job fails, `up` shows its log's tail at once.
fn jupyter_missing_shows_the_log_tail(bed: &Bed) {
    let started = Instant::now();
    let (code, out, err) = cli(
        &bed.client,
        &["up", "box", "--slurm", "--env", "/usr", "--time", "5"],
    );
    let took = started.elapsed();
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("FAILED"), "{err}");
    assert!(
        err.contains("JupyterLab is not installed for /usr/bin/python"),
        "{err}"
    );
    assert!(took < Duration::from_secs(15), "{took:?}:\n{err}");
}

/// A saved extra `#SBATCH --dependency=afterok:<failed job>`: SLURM keeps the job pending with
/// `DependencyNeverSatisfied`; `up` stops waiting, says what to change and cancels the job.
fn reason_that_never_clears_ends_the_wait(bed: &Bed) {
    let failed = bed.slurm.sbatch_as(SLURM_USER, &["--wrap", "false"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while bed.slurm.job_state(&failed) != "FAILED" {
        assert!(Instant::now() < deadline, "job {failed} did not fail");
        std::thread::sleep(Duration::from_millis(100));
    }
    let line = format!("--dependency=afterok:{failed}");
    let (code, _, err) = cli(
        &bed.other,
        &["hosts", "edit", "box", "--sbatch-line", &line],
    );
    assert_eq!(code, 0, "{err}");
    let started = Instant::now();
    let (code, out, err) = cli(&bed.other, &["up", "box", "--slurm", "--time", "5"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains("cannot start") && err.contains("remove the dependency"),
        "{err}"
    );
    assert!(err.contains("was cancelled"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let id = err
        .split("job ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .unwrap()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    while bed.slurm.job_state(&id) != "CANCELLED" {
        assert!(
            Instant::now() < deadline,
            "job {id} is {}",
            bed.slurm.job_state(&id)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Ctrl-C while the job waits in the queue: `scancel`, the job ends CANCELLED, nothing left.
fn ctrl_c_while_queued_cancels_the_job(bed: &Bed) {
    let blocker = bed.slurm.sbatch_as(
        SLURM_USER,
        &["--gres=gpu:4", "--time=5", "--wrap", "sleep 600"],
    );
    bed.slurm
        .wait_state(&blocker, "RUNNING", Duration::from_secs(20));
    let mut up = Running::start(
        &bed.client,
        &["up", "box", "--slurm", "--gpus", "1"],
        "queued",
    );
    let line = up.wait_line(&["Queued", "Resources"], Duration::from_secs(10));
    let id = line
        .split("job ")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .unwrap()
        .to_string();
    assert_eq!(bed.slurm.job_state(&id), "PENDING");
    up.interrupt();
    assert!(
        up.stderr()
            .contains(&format!("job {id} cancelled (CANCELLED)")),
        "{}",
        up.stderr()
    );
    assert_eq!(bed.slurm.job_state(&id), "CANCELLED");
    bed.slurm.command("scancel").arg(&blocker).status().unwrap();
    while !queue_is_empty(bed) {
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A host saved with `--slurm-gpu-flag gpus-per-node` and `--slurm-gpus a100:2`: the job is
/// submitted with `--gpus-per-node=a100:2` and JupyterLab sees both a100s; `down` ends it.
fn gpus_per_node_flag_style(bed: &Bed) {
    let (code, _, err) = cli(
        &bed.other,
        &[
            "hosts",
            "edit",
            "box",
            "--slurm-gpu-flag",
            "gpus-per-node",
            "--slurm-gpus",
            "a100:2",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (_, shown, _) = cli(&bed.other, &["hosts", "show", "box"]);
    assert!(shown.contains("gpus a100:2, flag gpus-per-node"), "{shown}");
    let mut up = Running::start(&bed.other, &["up", "box", "--json"], "per-node");
    let ready = up.ready(bed);
    assert_eq!(ready["cudaVisibleDevices"].as_str(), Some("0,1"), "{ready}");
    let job = ready["jobId"].as_str().unwrap().to_string();
    let shown = bed.slurm.output(&["scontrol", "show", "job", "-o", &job]);
    assert!(shown.contains("TresPerNode=gres:gpu:a100:2"), "{shown}");
    up.interrupt();
    let (code, out, err) = cli(&bed.other, &["down", "box"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(bed.slurm.job_state(&job), "CANCELLED");
    let (code, _, err) = cli(&bed.other, &["hosts", "edit", "box", "--slurm-gpus", ""]);
    assert_eq!(code, 0, "{err}");
}
