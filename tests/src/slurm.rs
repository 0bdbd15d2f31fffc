//! A single-node SLURM cluster on 127.0.0.1 (Debian 12's slurm-wlm 22.05 + munge, installed by
//! `scripts/setup.sh`): node `localhost` with 4 fake GPUs (`gpu:a100:2,gpu:v100:2`, device
//! files that are clones of /dev/null), partitions `gpu` (default, 8 h max) and `debug` (30 min
//! max). Verified in `../shared/reference/slurm-testbed.md`.
//!
//! munged, slurmctld and slurmd run in the foreground as guarded children on free ports, with
//! their state in a fresh temporary folder: one bed per test binary, several at once do not
//! meet. [`SlurmBed::stop`] (and drop) cancels every job, waits for the jobs' processes to end
//! and stops the daemons. Jobs run as the submitting user; the login node is a test sshd whose
//! sessions get this cluster through `SetEnv SLURM_CONF=…` ([`SlurmBed::sshd_lines`]).

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use tempfile::TempDir;

use crate::{Guard, free_port, run};

/// The user SLURM tests log in as (created if missing; not used by other tests, so "no process
/// of the user left" means something).
pub const SLURM_USER: &str = "tbslurm";

/// A running SLURM test cluster.
pub struct SlurmBed {
    dir: TempDir,
    daemons: Vec<Guard>,
    /// `slurm.conf`.
    pub conf: PathBuf,
}

/// Creates [`SLURM_USER`] (login allowed with a key, no password) once.
pub fn ensure_slurm_user() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        crate::ensure_users();
        let lock = std::fs::File::create("/tmp/tunnelbook-testbed-users.lock").unwrap();
        lock.lock().unwrap();
        let exists = Command::new("id")
            .arg(SLURM_USER)
            .output()
            .is_ok_and(|o| o.status.success());
        if !exists {
            run(Command::new("useradd").args([
                "--create-home",
                "--shell",
                "/bin/bash",
                SLURM_USER,
            ]));
        }
        // A locked password ('!') makes sshd refuse even keys.
        run(Command::new("usermod").args(["--password", "*", SLURM_USER]));
    });
}

impl SlurmBed {
    /// Writes the configuration, starts munged, slurmctld and slurmd, and waits until the node
    /// is idle (about a second).
    pub fn start() -> SlurmBed {
        assert!(
            Path::new("/usr/sbin/slurmctld").exists(),
            "slurm-wlm is not installed: run scripts/setup.sh"
        );
        ensure_slurm_user();
        let dir = tempfile::Builder::new()
            .prefix("tb-slurm-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        for sub in [
            "etc",
            "state",
            "spool",
            "log",
            "run",
            "dev",
            "munge-key",
            "munge-run",
        ] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let mode = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        // Users read slurm.conf and talk to munged: the folder and the socket's folder 0755.
        mode(d, 0o755);
        mode(&d.join("etc"), 0o755);
        mode(&d.join("munge-run"), 0o755);
        mode(&d.join("munge-key"), 0o700);
        let key = d.join("munge-key/munge.key");
        run(Command::new("mungekey").arg("-c").arg("-k").arg(&key));
        // gres/gpu needs character devices: clones of /dev/null.
        for i in 0..4 {
            run(Command::new("mknod")
                .args(["-m", "666"])
                .arg(d.join(format!("dev/nvidia{i}")))
                .args(["c", "1", "3"]));
        }
        let host = String::from_utf8(run(Command::new("hostname").arg("-s")).stdout)
            .unwrap()
            .trim()
            .to_string();
        let (ctld_port, slurmd_port) = (free_port(), free_port());
        let p = |s: &str| d.join(s).display().to_string();
        let conf = format!(
            "ClusterName=tunnelbook-tb
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
AuthInfo=socket={sock}
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={state}
SlurmdSpoolDir={spool}
SlurmctldPidFile={run}/slurmctld.pid
SlurmdPidFile={run}/slurmd.pid
SlurmctldLogFile={log}/slurmctld.log
SlurmdLogFile={log}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
SlurmdParameters=config_overrides
InactiveLimit=0
MinJobAge=300
FirstJobId={first_job}
KillWait=5
Waittime=0
NodeName=localhost NodeAddr=127.0.0.1 NodeHostname={host} CPUs=8 RealMemory=8000 Gres=gpu:a100:2,gpu:v100:2 State=UNKNOWN
PartitionName=gpu Nodes=localhost Default=YES MaxTime=08:00:00 DefaultTime=01:00:00 State=UP
PartitionName=debug Nodes=localhost MaxTime=00:30:00 DefaultTime=00:10:00 State=UP
",
            // Beds running at once (one per test binary) share the SLURM user's home, where a
            // job's files are named by its id (`~/.tunnelbook/slurm/<id>/`): each bed numbers
            // its jobs from its own base, so two clusters' jobs never share those files.
            first_job = u32::from(ctld_port) * 100,
            sock = p("munge-run/munge.socket"),
            state = p("state"),
            spool = p("spool"),
            run = p("run"),
            log = p("log"),
        );
        let conf_path = d.join("etc/slurm.conf");
        std::fs::write(&conf_path, conf).unwrap();
        std::fs::write(
            d.join("etc/gres.conf"),
            format!(
                "AutoDetect=off\nNodeName=localhost Name=gpu Type=a100 File={dev}/nvidia[0-1]\nNodeName=localhost Name=gpu Type=v100 File={dev}/nvidia[2-3]\n",
                dev = p("dev")
            ),
        )
        .unwrap();
        for f in ["etc/slurm.conf", "etc/gres.conf"] {
            mode(&d.join(f), 0o644);
        }
        let quiet = |c: &mut Command| {
            c.env("SLURM_CONF", &conf_path)
                .stdout(Stdio::null())
                .stderr(Stdio::null());
        };
        let mut munged = Command::new("munged");
        munged
            .arg("-F")
            .arg(format!("--socket={}", p("munge-run/munge.socket")))
            .arg(format!("--key-file={}", key.display()))
            .arg(format!("--pid-file={}", p("munge-run/munged.pid")))
            .arg(format!("--log-file={}", p("munge-key/munged.log")))
            .arg(format!("--seed-file={}", p("munge-key/munged.seed")));
        quiet(&mut munged);
        let mut daemons = vec![Guard::spawn(&mut munged)];
        let deadline = Instant::now() + Duration::from_secs(10);
        while !d.join("munge-run/munge.socket").exists() {
            assert!(Instant::now() < deadline, "munged did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut ctld = Command::new("slurmctld");
        ctld.arg("-D");
        quiet(&mut ctld);
        daemons.push(Guard::spawn(&mut ctld));
        let mut slurmd = Command::new("slurmd");
        slurmd.args(["-D", "-N", "localhost"]);
        quiet(&mut slurmd);
        daemons.push(Guard::spawn(&mut slurmd));
        let bed = SlurmBed {
            dir,
            daemons,
            conf: conf_path,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let state = bed.output(&["sinfo", "-h", "-N", "-n", "localhost", "-o", "%T"]);
            if state.lines().next().map(str::trim) == Some("idle") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "SLURM node is {state:?} after 30 s:\n{}",
                bed.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        bed
    }

    /// A SLURM client command with this cluster's `SLURM_CONF`.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf);
        c
    }

    /// Runs a client command (as root) and returns its stdout (stderr appended on failure).
    pub fn output(&self, args: &[&str]) -> String {
        let out = self
            .command(args[0])
            .args(&args[1..])
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", args[0]));
        let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            s.push_str(&String::from_utf8_lossy(&out.stderr));
        }
        s
    }

    /// Submits a job as `user` (through `runuser`, so it is the user's job), returning its id.
    pub fn sbatch_as(&self, user: &str, args: &[&str]) -> String {
        let out = Command::new("runuser")
            .args(["-u", user, "--", "env"])
            .arg(format!("SLURM_CONF={}", self.conf.display()))
            .args(["sbatch", "--parsable", "-D", "/tmp", "-o", "/dev/null"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sbatch {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .split(';')
            .next()
            .unwrap()
            .to_string()
    }

    /// Waits until `squeue` shows job `id` in `state` (`RUNNING`, …).
    pub fn wait_state(&self, id: &str, state: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.job_state(id);
            if s == state {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "job {id} is {s:?}, not {state}, after {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `JobState` of job `id` as `scontrol show job` says (empty when unknown).
    pub fn job_state(&self, id: &str) -> String {
        let out = self.output(&["scontrol", "show", "job", "-o", id]);
        out.split_whitespace()
            .find_map(|w| w.strip_prefix("JobState="))
            .unwrap_or("")
            .to_string()
    }

    /// `sshd_config` lines that give every session this cluster.
    pub fn sshd_lines(&self) -> Vec<String> {
        vec![
            format!("SetEnv SLURM_CONF={}", self.conf.display()),
            "Subsystem sftp internal-sftp".into(),
        ]
    }

    /// slurmctld's saved state (job scripts and environments live under it).
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Processes of `user` started through this cluster (the jobs and the login sessions carry
    /// its `SLURM_CONF` in their environment), as `pid args`; another bed's are left out.
    pub fn user_processes(&self, user: &str) -> Vec<String> {
        let entry = format!("SLURM_CONF={}", self.conf.display());
        user_processes(user)
            .into_iter()
            .filter(|l| {
                let pid = l.split_whitespace().next().unwrap_or("");
                std::fs::read(format!("/proc/{pid}/environ"))
                    .is_ok_and(|e| e.split(|b| *b == 0).any(|v| v == entry.as_bytes()))
            })
            .collect()
    }

    /// The daemons' logs (for failure messages).
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for f in ["log/slurmctld.log", "log/slurmd.log"] {
            let text = std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            s.push_str(&format!("== {f}\n"));
            for l in tail.into_iter().rev() {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }

    /// Cancels every job, waits (up to 20 s) until none runs, then stops the daemons.
    pub fn stop(&mut self) {
        if self.daemons.is_empty() {
            return;
        }
        let jobs = self.output(&["squeue", "-h", "-o", "%i"]);
        let ids: Vec<&str> = jobs.split_whitespace().collect();
        if !ids.is_empty() {
            let _ = self.command("scancel").args(&ids).status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline
                && !self
                    .output(&["squeue", "-h", "-t", "R,CG", "-o", "%i"])
                    .trim()
                    .is_empty()
            {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        // slurmd first (it ends the job steps it still knows), then the controller, then munged.
        for mut d in self.daemons.drain(..).rev() {
            d.kill();
        }
    }
}

/// Pids of every process of `user` (`ps -u`).
pub fn user_processes(user: &str) -> Vec<String> {
    let out = Command::new("ps")
        .args(["-o", "pid=,args=", "-u", user])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

impl Drop for SlurmBed {
    fn drop(&mut self) {
        self.stop();
    }
}
