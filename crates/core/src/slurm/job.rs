//! JupyterLab as a SLURM batch job: the job script, submitting it with the token on stdin,
//! polling the job's state and its connection file, cancelling it, and finding Tunnelbook's
//! jobs again (another computer, another `TUNNELBOOK_HOME`).
//!
//! Files on the cluster's shared home, all private (umask 077):
//! `~/.tunnelbook/slurm/launch-<id>/{token,job.sh}` (written over stdin before `sbatch`),
//! `~/.tunnelbook/slurm/<job>.log` (the job's output) and `~/.tunnelbook/slurm/<job>/`
//! (Jupyter's runtime directory and `connection.json`: node, host, port, `CUDA_VISIBLE_DEVICES`).
//! The token is read inside the Jupyter process from its 0600 file: it is in no command line,
//! no environment (the job's or Jupyter's) and not in the batch script SLURM stores.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{JobRequest, SlurmError, never_clears, parse_fields, parse_time, reason_in_words};
use crate::{
    secret::Sensitive,
    ssh::{Connection, shell_quote},
};

/// The job name Tunnelbook's Jupyter jobs carry (how `ls`/`attach` find them).
pub const JOB_NAME: &str = "tunnelbook-jupyter";

/// Where the files live on the cluster, relative to `$HOME`.
pub const BASE_DIR: &str = ".tunnelbook/slurm";

/// The Python that starts JupyterLab in the job: reads the token from the 0600 file named by
/// `TB_TOKEN_FILE` (dropped from the environment, so kernels never see it) and passes it as a
/// setting inside the process, where `ps` cannot see it.
const JOB_PY: &str = r#"import os, runpy, sys
from importlib.metadata import version
def major(name):
    try:
        return int(version(name).split(".")[0])
    except Exception:
        return 0
with open(os.environ.pop("TB_TOKEN_FILE")) as f:
    t = f.read().strip()
args = sys.argv[1:]
if major("jupyter_server") >= 2:
    args.append("--IdentityProvider.token=" + t)
else:
    args += ["--ServerApp.token=" + t, "--ServerApp.password="]
sys.argv[1:] = args
runpy.run_module("jupyterlab", run_name="__main__", alter_sys=True)
"#;

/// Writes `connection.json` from Jupyter's own `jpserver-<pid>.json` (argv: that file, the
/// output file, node name).
const CONN_PY: &str = r#"import json, os, sys
d = json.load(open(sys.argv[1]))
c = {"job_id": os.environ.get("SLURM_JOB_ID", ""), "node": sys.argv[3],
     "host": sys.argv[3], "port": d["port"], "pid": d["pid"],
     "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
     "launch_dir": sys.argv[4]}
with open(sys.argv[2] + ".tmp", "w") as o:
    json.dump(c, o)
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
"#;

/// What the job writes once JupyterLab listens (`~/.tunnelbook/slurm/<job>/connection.json`,
/// mode 0600). It outlives the job: check the job's state too ([`poll`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ConnectionFile {
    /// The job id.
    #[serde(alias = "job_id")]
    pub job_id: String,
    /// The node the job runs on.
    pub node: String,
    /// Host name JupyterLab listens on, as the login node resolves it.
    pub host: String,
    /// TCP port JupyterLab picked itself.
    pub port: u16,
    /// JupyterLab's pid on the node.
    #[serde(default)]
    pub pid: u32,
    /// `CUDA_VISIBLE_DEVICES` of the job (as SLURM set it).
    #[serde(alias = "cuda_visible_devices", default)]
    pub cuda_visible_devices: String,
    /// The launch directory holding the token file.
    #[serde(alias = "launch_dir", default)]
    pub launch_dir: String,
}

/// Where a job stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase", tag = "phase")]
pub enum JobPhase {
    /// Waiting in the queue.
    Queued {
        /// SLURM's reason code (`Resources`, `Priority`, …).
        reason: String,
        /// The reason in words.
        words: String,
        /// Expected start as SLURM estimates it (`2026-11-30T09:57:54`), if it has one.
        expected_start: Option<String>,
    },
    /// Running, JupyterLab not listening yet.
    Starting {
        /// The node.
        node: String,
    },
    /// Running, JupyterLab listening.
    Running {
        /// Where.
        connection: ConnectionFile,
        /// Seconds left before the time limit, if known.
        time_left_secs: Option<u64>,
    },
    /// Ended (completed, failed, cancelled, timed out, or gone from the controller).
    Ended {
        /// Final state (`COMPLETED`, `FAILED`, `CANCELLED`, `TIMEOUT`, …; `GONE` when the
        /// controller no longer knows the job).
        state: String,
        /// SLURM's reason, if any.
        reason: Option<String>,
    },
}

/// The job's id and the launch directory that holds its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// Job id.
    pub job_id: String,
    /// `~/.tunnelbook/slurm/launch-<id>` (as the shell writes it, `$HOME`-relative).
    pub launch_dir: String,
}

/// How to start JupyterLab in the job.
#[derive(Debug, Clone, Default)]
pub struct JupyterJob {
    /// A venv/conda prefix whose `bin/python` runs JupyterLab; `None`: `python3` on the job's
    /// PATH (after the setup lines).
    pub env_prefix: Option<String>,
    /// Directory JupyterLab serves; `None`: home.
    pub notebook_dir: Option<String>,
}

impl JupyterJob {
    /// JupyterLab for a launch on saved host `profile`: environment prefix `env` when given (not
    /// blank), else the host's saved one; folder `dir` when given, else the host's notebook
    /// folder. What the app's request form and the CLI's `up --slurm` launch.
    pub fn on_host(
        env: Option<String>,
        dir: Option<String>,
        profile: &crate::profile::Profile,
    ) -> Self {
        JupyterJob {
            env_prefix: env
                .filter(|e| !e.trim().is_empty())
                .or_else(|| profile.environment.clone()),
            notebook_dir: dir.or_else(|| profile.notebook_dir.clone()),
        }
    }
}

fn new_launch_id() -> String {
    let bytes: [u8; 6] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The batch script (no secrets in it: SLURM stores it, `scontrol write batch_script` prints
/// it). `launch_dir` is `$HOME`-relative.
pub fn job_script(req: &JobRequest, job: &JupyterJob, launch_dir: &str) -> String {
    let mut s = String::from("#!/bin/bash\n");
    for line in &req.sbatch_lines {
        let line = line.trim();
        if line.starts_with("#SBATCH") {
            s.push_str(line);
        } else {
            s.push_str("#SBATCH ");
            s.push_str(line);
        }
        s.push('\n');
    }
    s.push_str("umask 077\n");
    s.push_str(&format!(
        "tb_base=\"$HOME/{BASE_DIR}\"\ntb_launch=\"$HOME/{launch_dir}\"\ntb_dir=\"$tb_base/$SLURM_JOB_ID\"\n"
    ));
    s.push_str("mkdir -p \"$tb_dir/runtime\" || exit 2\n");
    // No "Jupyter news?" question in the app's notebook window (as on a plain box).
    s.push_str(crate::jupyter::NEWS_ANSWERED_SH);
    s.push_str("tb_node=$(hostname)\n");
    s.push_str("echo \"tunnelbook: job $SLURM_JOB_ID on $tb_node, CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-}\"\n");
    for line in &req.setup {
        s.push_str(line);
        s.push('\n');
    }
    match &job.env_prefix {
        Some(p) => s.push_str(&format!("tb_py={}/bin/python\n", shell_quote(p))),
        None => s.push_str("tb_py=python3\n"),
    }
    s.push_str(
        "if ! \"$tb_py\" -c 'import jupyterlab' 2>/dev/null; then\n  echo \"tunnelbook: JupyterLab is not installed for $tb_py on $tb_node: install it (pip install jupyterlab) or choose an environment that has it (--env), or load its module in the setup lines\" >&2\n  exit 3\nfi\n",
    );
    let dir = job.notebook_dir.as_deref().unwrap_or("~");
    let dir = match dir.strip_prefix('~') {
        Some(rest) => format!("\"$HOME\"{}", shell_quote(rest)),
        None => shell_quote(dir),
    };
    s.push_str(&format!(
        "cd {dir} || {{ echo \"tunnelbook: cannot enter the notebook directory\" >&2; exit 4; }}\n"
    ));
    s.push_str("export JUPYTER_RUNTIME_DIR=\"$tb_dir/runtime\"\n");
    s.push_str(&format!(
        "TB_TOKEN_FILE=\"$tb_launch/token\" \"$tb_py\" -c {} --ip=\"$tb_node\" --port=0 --ServerApp.port_retries=0 --no-browser --ServerApp.open_browser=False &\n",
        shell_quote(&format!(
            "{}{JOB_PY}",
            crate::jupyter::DEFER_SLOW_IMPORTS_PY
        ))
    ));
    s.push_str("tb_pid=$!\n");
    s.push_str(
        "tb_stop() { kill -TERM \"$tb_pid\" 2>/dev/null; wait \"$tb_pid\"; rm -f \"$tb_dir/connection.json\"; exit 0; }\ntrap tb_stop TERM INT USR1\n",
    );
    s.push_str(&format!(
        "for _ in $(seq 1 1200); do\n  [ -f \"$JUPYTER_RUNTIME_DIR/jpserver-$tb_pid.json\" ] && break\n  kill -0 \"$tb_pid\" 2>/dev/null || break\n  sleep 0.2\ndone\nif [ -f \"$JUPYTER_RUNTIME_DIR/jpserver-$tb_pid.json\" ]; then\n  \"$tb_py\" -c {} \"$JUPYTER_RUNTIME_DIR/jpserver-$tb_pid.json\" \"$tb_dir/connection.json\" \"$tb_node\" \"$tb_launch\"\nfi\n",
        shell_quote(CONN_PY)
    ));
    // Stopped by Tunnelbook (`stopping` written, then JupyterLab's /api/shutdown): the job waits
    // for the scancel that follows, so it ends CANCELLED as asked, not COMPLETED.
    s.push_str("wait \"$tb_pid\"\ntb_rc=$?\nrm -f \"$tb_dir/connection.json\"\nif [ -f \"$tb_dir/stopping\" ]; then\n  for _ in $(seq 1 300); do sleep 0.2; done\nfi\nexit $tb_rc\n");
    s
}

fn sbatch_words(req: &JobRequest) -> String {
    req.sbatch_args()
        .iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `sbatch --test-only`: when SLURM expects the request to start (`2026-11-30T09:37:45`),
/// without queueing anything.
///
/// # Errors
/// [`SlurmError::Command`] with sbatch's message when it rejects the request.
pub async fn expected_start(conn: &Connection, req: &JobRequest) -> Result<String, SlurmError> {
    let out = conn
        .exec_named(
            "sbatch --test-only",
            &format!(
                "sbatch --test-only {} --job-name={JOB_NAME} --wrap true 2>&1",
                sbatch_words(req)
            ),
        )
        .await?;
    let text = out.stdout_text();
    // "sbatch: Job 7 to start at 2026-11-30T09:37:45 using 1 processors on nodes … in partition gpu"
    match text.split(" to start at ").nth(1) {
        Some(rest) if out.success() => Ok(rest.split_whitespace().next().unwrap_or("").to_string()),
        _ => Err(SlurmError::Command {
            command: "sbatch --test-only".into(),
            stderr: text.trim().to_string(),
        }),
    }
}

/// Writes the token and the job script over stdin into a new 0600 launch directory and submits
/// the script with `sbatch`; returns the job id.
///
/// # Errors
/// [`SlurmError::Command`] with sbatch's message; connection errors.
pub async fn submit(
    conn: &Connection,
    req: &JobRequest,
    job: &JupyterJob,
    token: &Sensitive<String>,
) -> Result<Submitted, SlurmError> {
    let launch_dir = format!("{BASE_DIR}/launch-{}", new_launch_id());
    let script = job_script(req, job, &launch_dir);
    let cmd = format!(
        "umask 077\ntb_base=\"$HOME/{BASE_DIR}\"\ntb_launch=\"$HOME/{launch_dir}\"\nmkdir -p \"$tb_launch\" && chmod 700 \"$tb_base\" \"$tb_launch\" || exit 2\nIFS= read -r tb_t || exit 90\nprintf '%s\\n' \"$tb_t\" > \"$tb_launch/token\"\nunset tb_t\ncat > \"$tb_launch/job.sh\"\ncd \"$tb_base\" || exit 2\nsbatch --parsable --job-name={JOB_NAME} --output=\"$tb_base/%j.log\" {} \"$tb_launch/job.sh\"\n",
        sbatch_words(req)
    );
    let mut stdin = Vec::with_capacity(token.expose().len() + script.len() + 1);
    stdin.extend_from_slice(token.expose().as_bytes());
    stdin.push(b'\n');
    stdin.extend_from_slice(script.as_bytes());
    let out = conn.exec_with_stdin(&cmd, &stdin).await?;
    let id = out
        .stdout_text()
        .trim()
        .split(';')
        .next()
        .unwrap_or("")
        .to_string();
    if !out.success() || id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(SlurmError::Command {
            command: "sbatch".into(),
            stderr: format!("{}{}", out.stderr_text().trim(), out.stdout_text().trim()),
        });
    }
    Ok(Submitted {
        job_id: id,
        launch_dir,
    })
}

/// One round trip: the job's state (`squeue`, else `scontrol show job` for ended jobs) and its
/// connection file.
///
/// # Errors
/// Connection errors.
pub async fn poll(conn: &Connection, job_id: &str) -> Result<JobPhase, SlurmError> {
    let id = shell_quote(job_id);
    let out = conn
        .exec_named(
            "squeue",
            &format!(
                "squeue -h -j {id} -o '%T|%r|%S|%N|%L' 2>/dev/null; echo '@@tb@@'; scontrol show job -o {id} 2>/dev/null | head -n 1; echo '@@tb@@'; cat \"$HOME/{BASE_DIR}/\"{id}/connection.json 2>/dev/null"
            ),
        )
        .await?;
    Ok(parse_poll(&out.stdout_text(), job_id))
}

/// Reads [`poll`]'s output.
pub fn parse_poll(text: &str, job_id: &str) -> JobPhase {
    let parts: Vec<&str> = text.split("@@tb@@").map(str::trim).collect();
    let squeue = parts.first().copied().unwrap_or("");
    let scontrol = parts.get(1).copied().unwrap_or("");
    let file = parts.get(2).copied().unwrap_or("");
    let (state, reason, start, node, left) = match squeue.lines().next() {
        Some(l) if l.contains('|') => {
            let p: Vec<&str> = l.split('|').collect();
            let g = |i: usize| p.get(i).copied().unwrap_or("").to_string();
            (g(0), g(1), g(2), g(3), g(4))
        }
        _ => {
            let f = parse_fields(scontrol);
            let g = |k: &str| f.get(k).cloned().unwrap_or_default();
            (
                g("JobState"),
                g("Reason"),
                g("StartTime"),
                g("NodeList"),
                String::new(),
            )
        }
    };
    match state.as_str() {
        "" => JobPhase::Ended {
            state: "GONE".into(),
            reason: None,
        },
        "PENDING" | "REQUEUED" | "REQUEUE_HOLD" | "SUSPENDED" | "RESV_DEL_HOLD" => {
            JobPhase::Queued {
                words: reason_in_words(&reason),
                reason,
                expected_start: Some(start)
                    .filter(|s| !matches!(s.as_str(), "" | "N/A" | "Unknown" | "(null)")),
            }
        }
        "RUNNING" | "CONFIGURING" => match serde_json::from_str::<ConnectionFile>(file) {
            Ok(c) if c.job_id == job_id && state == "RUNNING" => JobPhase::Running {
                connection: c,
                time_left_secs: parse_time(&left).ok().flatten(),
            },
            _ => JobPhase::Starting { node },
        },
        _ => JobPhase::Ended {
            state,
            reason: Some(reason).filter(|r| !r.is_empty() && r != "None"),
        },
    }
}

/// The last `lines` lines of the job's log.
///
/// # Errors
/// Connection errors.
pub async fn log_tail(conn: &Connection, job_id: &str, lines: u32) -> Result<String, SlurmError> {
    let out = conn
        .exec_named(
            "tail",
            &format!(
                "tail -n {lines} \"$HOME/{BASE_DIR}/\"{}.log 2>&1",
                shell_quote(job_id)
            ),
        )
        .await?;
    Ok(out.stdout_text())
}

/// Marks job `job_id` as being stopped by Tunnelbook (`~/.tunnelbook/slurm/<job>/stopping`):
/// once JupyterLab has shut down, the job waits for the scancel that follows.
///
/// # Errors
/// Connection errors.
pub async fn mark_stopping(conn: &Connection, job_id: &str) -> Result<(), SlurmError> {
    conn.exec_named(
        "touch",
        &format!(
            "d=\"$HOME/{BASE_DIR}/\"{}; [ -d \"$d\" ] && : > \"$d/stopping\"; true",
            shell_quote(job_id)
        ),
    )
    .await?;
    Ok(())
}

/// `scancel`s the job.
///
/// # Errors
/// [`SlurmError::Command`] when scancel fails; connection errors.
pub async fn cancel(conn: &Connection, job_id: &str) -> Result<(), SlurmError> {
    let out = conn
        .exec_named("scancel", &format!("scancel {}", shell_quote(job_id)))
        .await?;
    if out.success() {
        Ok(())
    } else {
        Err(SlurmError::Command {
            command: "scancel".into(),
            stderr: out.stderr_text().trim().to_string(),
        })
    }
}

/// Cancels the job and waits (up to `timeout`) until SLURM reports it ended; returns the final
/// state (`CANCELLED`, or `COMPLETED`/`GONE` when it ended first).
///
/// # Errors
/// [`SlurmError::Timeout`] when it still runs after `timeout`; scancel and connection errors.
pub async fn cancel_and_confirm(
    conn: &Connection,
    job_id: &str,
    timeout: Duration,
) -> Result<String, SlurmError> {
    cancel(conn, job_id).await?;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let JobPhase::Ended { state, .. } = poll(conn, job_id).await?
            && state != "COMPLETING"
        {
            return Ok(state);
        }
        if tokio::time::Instant::now() > deadline {
            return Err(SlurmError::Timeout(format!(
                "job {job_id} still runs {} s after scancel",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// A Tunnelbook job of the user's, joined with its connection file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct TunnelbookJob {
    /// What `squeue` says.
    pub row: super::JobRow,
    /// The connection file, when JupyterLab listens.
    pub connection: Option<ConnectionFile>,
}

/// The user's Tunnelbook jobs (`squeue --me -n tunnelbook-jupyter`) with their connection files.
///
/// # Errors
/// Connection errors.
pub async fn list(conn: &Connection) -> Result<Vec<TunnelbookJob>, SlurmError> {
    let out = conn
        .exec_named(
            "squeue",
            &format!(
                "squeue --me -h -n {JOB_NAME} -o '{}' 2>/dev/null | while IFS='|' read -r id rest; do echo \"$id|$rest\"; printf '@@c@@'; cat \"$HOME/{BASE_DIR}/$id/connection.json\" 2>/dev/null; echo; done",
                super::SQUEUE_FORMAT
            ),
        )
        .await?;
    let text = out.stdout_text();
    let mut jobs = Vec::new();
    let mut lines = text.lines();
    while let Some(row) = lines.next() {
        let conn_line = lines.next().unwrap_or("");
        let Some(row) = super::parse_jobs(row).into_iter().next() else {
            continue;
        };
        let connection = conn_line
            .strip_prefix("@@c@@")
            .and_then(|j| serde_json::from_str::<ConnectionFile>(j).ok())
            .filter(|c| c.job_id == row.id && row.state == "RUNNING");
        jobs.push(TunnelbookJob { row, connection });
    }
    Ok(jobs)
}

/// The job to attach to among `jobs` (from [`list`]): job `id`, else the newest whose
/// JupyterLab listens; with its connection file. `None` when none listens (yet).
pub fn find_running(
    jobs: Vec<TunnelbookJob>,
    id: Option<&str>,
) -> Option<(ConnectionFile, super::JobRow)> {
    jobs.into_iter()
        .filter(|j| id.is_none_or(|i| j.row.id == i))
        .filter_map(|j| j.connection.map(|c| (c, j.row)))
        .max_by_key(|(c, _)| c.job_id.parse::<u64>().unwrap_or(0))
}

/// Reads the token of a job from its launch directory (0600, the user's own).
///
/// # Errors
/// [`SlurmError::Command`] when it cannot be read.
pub async fn read_token(
    conn: &Connection,
    connection: &ConnectionFile,
) -> Result<Sensitive<String>, SlurmError> {
    let out = conn
        .exec_named(
            "cat",
            &format!("cat {}/token", shell_quote(&connection.launch_dir)),
        )
        .await?;
    let t = out.stdout_text().trim().to_string();
    if !out.success() || t.is_empty() {
        return Err(SlurmError::Command {
            command: "cat token".into(),
            stderr: format!(
                "cannot read job {}'s token: {}",
                connection.job_id,
                out.stderr_text().trim()
            ),
        });
    }
    Ok(Sensitive::new(t))
}

/// For a queued job: `Err(NeverStarts)` when its reason will not clear by itself.
pub fn check_never_clears(job_id: &str, phase: &JobPhase) -> Result<(), SlurmError> {
    if let JobPhase::Queued { reason, .. } = phase
        && let Some(advice) = never_clears(reason)
    {
        return Err(SlurmError::NeverStarts {
            job_id: job_id.to_string(),
            reason: reason.clone(),
            advice,
        });
    }
    Ok(())
}
