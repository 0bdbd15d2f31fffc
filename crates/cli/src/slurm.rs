//! SLURM hosts in the CLI: the cluster view for `gpus`, `up --slurm` (JupyterLab as a batch job
//! on a compute node, forwarded here through the login node), and the job side of `ls` /
//! `attach` / `down`, plus the `hosts edit` options that save a host's launch defaults.

use std::{io::Write, process::ExitCode, time::Duration};

use tokio_util::sync::CancellationToken;

use tunnelbook_core::{
    profile::{Profile, ProfileStore},
    secret::Sensitive,
    slurm::{
        self, ClusterView, GpuFlag, JobNews, JobRequest, JobWatch, RUNNING_POLL, Scheduler,
        SlurmDefaults, SlurmError,
        job::{self, ConnectionFile, JupyterJob},
        launch::{self, LaunchStep},
        notebook,
    },
    ssh::Connection,
    tunnel::{Link, Listen},
};

use crate::{Global, connect};

/// `hosts edit` options for SLURM hosts; each given replaces the saved value (`""` clears).
#[derive(Debug, Default, clap::Args)]
pub struct SlurmEditArgs {
    /// Batch scheduler behind the login node: `slurm` or `none` (`""`: detect on connect).
    #[arg(long, value_name = "slurm|none")]
    scheduler: Option<String>,
    /// Default SLURM partition.
    #[arg(long = "slurm-partition", value_name = "P")]
    partition: Option<String>,
    /// Default SLURM account.
    #[arg(long = "slurm-account", value_name = "A")]
    account: Option<String>,
    /// Default job time limit (`90`, `2:00:00`, `1-00:00:00`).
    #[arg(long = "slurm-time", value_name = "T")]
    time: Option<String>,
    /// Default GPU request `[TYPE:]N` (`""` or `0`: none).
    #[arg(long = "slurm-gpus", value_name = "[TYPE:]N")]
    gpus: Option<String>,
    /// How the GPU request is written: gres (`--gres=gpu:…`), gpus-per-node or gpus.
    #[arg(long = "slurm-gpu-flag", value_name = "STYLE", value_parser = parse_flag)]
    gpu_flag: Option<GpuFlag>,
    /// An extra `#SBATCH` line for every job (repeat; replaces the saved list).
    #[arg(long = "sbatch-line", value_name = "LINE", allow_hyphen_values = true)]
    sbatch_lines: Vec<String>,
    /// A shell line run in the job before JupyterLab (e.g. `module load cuda`; repeat).
    #[arg(long = "slurm-setup", value_name = "LINE", allow_hyphen_values = true)]
    setup: Vec<String>,
}

fn parse_flag(s: &str) -> Result<GpuFlag, String> {
    s.parse()
}

impl SlurmEditArgs {
    /// Checks the values before anything is saved.
    ///
    /// # Errors
    /// A message naming the bad value.
    pub fn check(&self) -> Result<(), String> {
        if let Some(s) = self.scheduler.as_deref().filter(|s| !s.is_empty()) {
            s.parse::<Scheduler>()?;
        }
        if let Some(t) = self.time.as_deref().filter(|s| !s.is_empty()) {
            slurm::parse_time(t).map_err(|e| e.to_string())?;
        }
        if let Some(g) = self.gpus.as_deref().filter(|s| !matches!(*s, "" | "0")) {
            g.parse::<slurm::GpuRequest>().map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Applies the options given to `p` (call [`SlurmEditArgs::check`] first).
    pub fn apply(self, p: &mut Profile) {
        if let Some(s) = self.scheduler {
            p.scheduler = s.parse().ok();
        }
        let any = self.partition.is_some()
            || self.account.is_some()
            || self.time.is_some()
            || self.gpus.is_some()
            || self.gpu_flag.is_some()
            || !self.sbatch_lines.is_empty()
            || !self.setup.is_empty();
        if !any {
            return;
        }
        let d = p.slurm.get_or_insert_with(SlurmDefaults::default);
        let opt = |v: String| Some(v).filter(|v| !v.is_empty());
        if let Some(v) = self.partition {
            d.partition = opt(v);
        }
        if let Some(v) = self.account {
            d.account = opt(v);
        }
        if let Some(v) = self.time {
            d.time = opt(v);
        }
        if let Some(v) = self.gpus {
            d.gpus = opt(v).filter(|v| v != "0");
        }
        if let Some(v) = self.gpu_flag {
            d.gpu_flag = v;
        }
        if !self.sbatch_lines.is_empty() {
            d.sbatch_lines = self
                .sbatch_lines
                .into_iter()
                .filter(|l| !l.is_empty())
                .collect();
        }
        if !self.setup.is_empty() {
            d.setup = self.setup.into_iter().filter(|l| !l.is_empty()).collect();
        }
    }
}

/// `hosts show` lines for the scheduler and the saved SLURM defaults (none for a plain host).
///
/// # Errors
/// Writing to `out` failed.
pub fn show(p: &Profile, out: &mut dyn Write) -> std::io::Result<()> {
    match p.scheduler {
        Some(Scheduler::Slurm) => {
            writeln!(out, "scheduler: slurm (JupyterLab runs as a batch job)")?
        }
        Some(Scheduler::None) => writeln!(out, "scheduler: none (set by hand)")?,
        None => {}
    }
    if let Some(d) = &p.slurm {
        let mut parts = Vec::new();
        for (k, v) in [
            ("partition", &d.partition),
            ("account", &d.account),
            ("time", &d.time),
            ("gpus", &d.gpus),
        ] {
            if let Some(v) = v {
                parts.push(format!("{k} {v}"));
            }
        }
        parts.push(format!("flag {}", d.gpu_flag));
        writeln!(out, "slurm:     {}", parts.join(", "))?;
        for l in &d.sbatch_lines {
            writeln!(out, "sbatch:    {l}")?;
        }
        for l in &d.setup {
            writeln!(out, "setup:     {l}")?;
        }
    }
    Ok(())
}

/// `up` options for SLURM hosts.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct SlurmUpArgs {
    /// Run JupyterLab as a SLURM batch job on a compute node (the default on a host whose
    /// scheduler is slurm).
    #[arg(long)]
    pub slurm: bool,
    /// SLURM partition (default: the host's saved one, else the cluster's default).
    #[arg(long, value_name = "P")]
    pub partition: Option<String>,
    /// GPUs for the job, `[TYPE:]N` (e.g. `v100:1`; default: the host's saved request).
    #[arg(long, value_name = "[TYPE:]N")]
    pub gpus: Option<String>,
    /// Job time limit (`90` minutes, `2:00:00`, `1-00:00:00`; default: saved, else the
    /// partition's DefaultTime).
    #[arg(long, value_name = "T")]
    pub time: Option<String>,
    /// SLURM account.
    #[arg(long, value_name = "A")]
    pub account: Option<String>,
}

/// What `up` passes on for a SLURM launch.
pub struct UpCommon {
    /// Host name.
    pub name: String,
    /// Python environment prefix (venv or conda).
    pub env: Option<String>,
    /// Notebook directory.
    pub dir: Option<String>,
    /// Local port.
    pub port: Option<u16>,
    /// JSON output.
    pub json: bool,
    /// Seconds JupyterLab may take to answer once the job runs.
    pub timeout: u64,
    /// Whether Ctrl-C before JupyterLab answers cancels the job (a launch: yes; `attach`: no).
    pub cancel_before_ready: bool,
}

/// The `up` command line that asks for the same job again.
fn relaunch_line(name: &str, req: &JobRequest) -> String {
    let mut s = format!("tunnelbook up {name} --slurm");
    if let Some(p) = &req.partition {
        s.push_str(&format!(" --partition {p}"));
    }
    if let Some(g) = &req.gpus {
        s.push_str(&format!(" --gpus {g}"));
    }
    if let Some(t) = req.time_secs {
        s.push_str(&format!(" --time {}", slurm::format_time(t)));
    }
    if let Some(a) = &req.account {
        s.push_str(&format!(" --account {a}"));
    }
    s
}

/// The same for a job found again (`attach`): its partition and GPUs as `squeue` shows them.
fn relaunch_from_row(name: &str, row: &slurm::JobRow) -> String {
    let mut req = JobRequest {
        partition: Some(row.partition.clone()).filter(|p| !p.is_empty()),
        ..JobRequest::default()
    };
    let tres = row
        .tres_per_node
        .trim_start_matches("gres:")
        .trim_start_matches("gres/");
    if let Some(g) = tres.strip_prefix("gpu:").and_then(|g| g.parse().ok()) {
        req.gpus = Some(g);
    } else if let Some(n) = tres.strip_prefix("gpu=").and_then(|g| g.parse().ok()) {
        req.gpus = Some(n);
    }
    relaunch_line(name, &req)
}

/// Whether `up` takes the SLURM path for `profile`.
pub fn wanted(profile: &Profile, args: &SlurmUpArgs) -> bool {
    args.slurm || profile.scheduler == Some(Scheduler::Slurm)
}

/// Whether the saved host `name` is a SLURM login node (its scheduler is `slurm`).
pub fn is_slurm(global: &Global, name: &str) -> bool {
    connect::profile(global, name).is_ok_and(|p| p.scheduler == Some(Scheduler::Slurm))
}

fn save_scheduler(global: &Global, name: &str) {
    let store = ProfileStore::in_home(&connect::home(global));
    if let Err(e) = store.edit(name, |p| p.scheduler = Some(Scheduler::Slurm)) {
        tracing::debug!(error = %e, "cannot save the scheduler");
    }
}

/// For `gpus NAME`: the cluster view when the host is a SLURM login node (saved as such, or
/// detected now and then saved); `None` for other hosts.
pub async fn gpus(global: &Global, name: &str, conn: &Connection, json: bool) -> Option<ExitCode> {
    let profile = connect::profile(global, name).ok()?;
    match profile.scheduler {
        Some(Scheduler::None) => return None,
        Some(Scheduler::Slurm) => {}
        None => match slurm::detect(conn).await {
            Ok(Ok(())) => save_scheduler(global, name),
            _ => return None,
        },
    }
    Some(match slurm::cluster_view(conn).await {
        Ok(view) => {
            let text = if json {
                serde_json::json!({"partitions": view.partitions, "pools": view.pools(), "jobs": view.jobs})
                    .to_string()
                    + "\n"
            } else {
                render_view(name, &view)
            };
            let _ = std::io::stdout().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tunnelbook: {e}");
            ExitCode::from(1)
        }
    })
}

/// The cluster view as text: per partition and GPU type, total and idle now; the user's jobs.
pub fn render_view(name: &str, view: &ClusterView) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "{name}: SLURM cluster");
    let _ = writeln!(
        s,
        "{:<12} {:<10} {:>5} {:>9} {:>9}  MAX TIME",
        "PARTITION", "GPU TYPE", "TOTAL", "IDLE NOW", "PER NODE"
    );
    let pools = view.pools();
    for p in &view.partitions {
        let max = p
            .max_time_secs
            .map(slurm::format_time)
            .unwrap_or_else(|| "unlimited".into());
        let mine: Vec<_> = pools.iter().filter(|x| x.partition == p.name).collect();
        let pname = format!("{}{}", p.name, if p.default { "*" } else { "" });
        if mine.is_empty() {
            let _ = writeln!(
                s,
                "{pname:<12} {:<10} {:>5} {:>9} {:>9}  {max}",
                "-", 0, 0, "-"
            );
        }
        for x in mine {
            let ty = if x.gpu_type.is_empty() {
                "(any)"
            } else {
                &x.gpu_type
            };
            let _ = writeln!(
                s,
                "{pname:<12} {ty:<10} {:>5} {:>9} {:>9}  {max}",
                x.total, x.idle, x.per_node_max
            );
        }
    }
    let _ = writeln!(
        s,
        "Idle is a hint: GPUs not in use on nodes that take jobs (not drained, down or reserved); CPUs, memory, QOS and priority decide too."
    );
    if view.jobs.is_empty() {
        let _ = writeln!(s, "Your jobs: none");
    } else {
        let _ = writeln!(s, "Your jobs:");
        for j in &view.jobs {
            let _ = writeln!(
                s,
                "  {} {} {} {} {} {} {}",
                j.id,
                j.name,
                j.partition,
                j.state,
                if j.state == "PENDING" {
                    slurm::reason_in_words(&j.reason)
                } else {
                    format!("{} left", j.time_left)
                },
                j.nodes,
                j.tres_per_node
            );
        }
    }
    s
}

fn step(mark: &str, step: &str, msg: &str) {
    eprintln!("{mark} {step:<11} {msg}");
}

/// `up --slurm`: checks the request, submits the job, follows it through the queue, forwards
/// JupyterLab here and stays until interrupted (the job keeps running; `down` stops it).
/// Exit status 2 for a request refused before anything was queued, 1 when the job ends or
/// cannot start, 255 when the login node cannot be reached.
pub async fn up(global: &Global, args: &SlurmUpArgs, common: UpCommon) -> ExitCode {
    let name = common.name.as_str();
    let profile = match connect::profile(global, name) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("tunnelbook: {e}");
            return ExitCode::from(2);
        }
    };
    step("…", "Connect", name);
    let conn = match connect::open(global, name).await {
        Ok(c) => c,
        Err(e) => return connect::unreachable(e),
    };
    step("✓", "Connect", conn.destination());
    let code = up_on(global, &conn, &profile, args, &common).await;
    conn.close().await;
    code
}

async fn up_on(
    global: &Global,
    conn: &Connection,
    profile: &Profile,
    args: &SlurmUpArgs,
    common: &UpCommon,
) -> ExitCode {
    let name = common.name.as_str();
    if profile.scheduler != Some(Scheduler::Slurm) {
        match slurm::detect(conn).await {
            Ok(Ok(())) => save_scheduler(global, name),
            Ok(Err(why)) => {
                eprintln!("tunnelbook: {name} is not a SLURM login node: {why}");
                return ExitCode::from(2);
            }
            Err(e) => return connect::unreachable(e),
        }
    }
    let defaults = profile.slurm.clone().unwrap_or_default();
    let req = match JobRequest::from_defaults(
        &defaults,
        args.partition.clone(),
        args.account.clone(),
        args.time.clone(),
        args.gpus.clone(),
    ) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tunnelbook: {e}");
            return ExitCode::from(2);
        }
    };
    let token = tunnelbook_core::jupyter::new_token();
    let jj = JupyterJob::on_host(common.env.clone(), common.dir.clone(), profile);
    // Core's launch flow (the app's too); Ctrl-C cancels it (and the job, once queued).
    let cancel = CancellationToken::new();
    let run = launch::launch(conn, &req, &jj, &token, print_step, &cancel);
    tokio::pin!(run);
    let result = tokio::select! {
        r = &mut run => r,
        () = connect::interrupted() => {
            cancel.cancel();
            run.await
        }
    };
    let launched = match result {
        Ok(l) => l,
        Err(e @ SlurmError::Refused { .. }) => {
            eprintln!("tunnelbook: request refused before submitting: {e}");
            return ExitCode::from(2);
        }
        Err(SlurmError::Command { command, stderr }) if command == "sbatch --test-only" => {
            eprintln!(
                "tunnelbook: SLURM refuses the request: `{command}` failed on the login node: {stderr}"
            );
            return ExitCode::from(2);
        }
        Err(e @ SlurmError::Cancelled { .. }) => {
            eprintln!("tunnelbook: interrupted; {e}");
            return ExitCode::from(130);
        }
        Err(e) => {
            eprintln!("tunnelbook: {e}");
            return ExitCode::from(1);
        }
    };
    let relaunch = relaunch_line(name, &req);
    forward_and_stay(
        global,
        conn,
        name,
        &launched.connection,
        launched.time_left_secs,
        &token,
        common,
        &relaunch,
    )
    .await
}

/// Prints one step of core's launch as the `up` step lines.
fn print_step(s: LaunchStep) {
    match s {
        LaunchStep::Checking { request } => step("…", "Request", &request),
        LaunchStep::Checked { expected_start } => step(
            "✓",
            "Request",
            &format!("accepted; expected start ≈ {expected_start}"),
        ),
        LaunchStep::Submitted { job_id } => step("✓", "Submit", &format!("job {job_id}")),
        LaunchStep::Queued {
            job_id,
            reason,
            words,
            expected_start,
            position,
        } => step(
            "…",
            "Queued",
            &format!(
                "job {job_id}: {words} ({reason}){}{}",
                expected_start
                    .map(|s| format!("; expected start ≈ {s}"))
                    .unwrap_or_default(),
                position
                    .map(|p| format!("; position {p} in the partition's queue"))
                    .unwrap_or_default()
            ),
        ),
        LaunchStep::Starting { job_id, node } => step(
            "…",
            "Starting",
            &format!("job {job_id} runs on {node}; waiting for JupyterLab"),
        ),
        LaunchStep::Ready {
            host,
            port,
            cuda_visible_devices,
            ..
        } => step(
            "✓",
            "Starting",
            &format!("JupyterLab on {host}:{port} (CUDA_VISIBLE_DEVICES={cuda_visible_devices})"),
        ),
    }
}

/// Forwards a local port to the job's JupyterLab (direct-tcpip from the login node), prints
/// the URL, then follows the job: time-left warnings at 15 and 5 minutes, "time limit reached"
/// when SLURM ends it. Ctrl-C leaves the job running.
#[allow(clippy::too_many_arguments)]
async fn forward_and_stay(
    global: &Global,
    conn: &Connection,
    name: &str,
    c: &ConnectionFile,
    time_left: Option<u64>,
    token: &Sensitive<String>,
    common: &UpCommon,
    relaunch: &str,
) -> ExitCode {
    let listen = match common.port {
        Some(p) => Listen::loopback(p),
        None => Listen::loopback_any(),
    };
    // The listener outlives the connection: after a reconnect the same local port forwards
    // over the new one.
    let link = Link::new(Some(conn.clone()), Duration::from_secs(30));
    let wait = Duration::from_secs(common.timeout);
    let forwarded = tokio::select! {
        f = notebook::forward_job(&link, &c.host, c.port, token, listen, wait) => f,
        () = connect::interrupted() => {
            if common.cancel_before_ready {
                match job::cancel_and_confirm(conn, &c.job_id, Duration::from_secs(30)).await {
                    Ok(state) => eprintln!("tunnelbook: interrupted; job {} cancelled ({state})", c.job_id),
                    Err(e) => eprintln!("tunnelbook: interrupted; cancelling job {}: {e}", c.job_id),
                }
            }
            return ExitCode::from(130);
        }
    };
    let (tunnel, local) = match forwarded {
        Ok(Some(f)) => f,
        Ok(None) => {
            eprintln!(
                "tunnelbook: JupyterLab of job {} does not answer through {}:{} after {} s; the job keeps running (tunnelbook down {name})",
                c.job_id, c.host, c.port, common.timeout
            );
            return ExitCode::from(1);
        }
        Err(e) => {
            eprintln!(
                "tunnelbook: cannot forward a local port to {}:{}: {e}",
                c.host, c.port
            );
            return ExitCode::from(1);
        }
    };
    let url = notebook::lab_url(local.port(), token);
    let line = if common.json {
        serde_json::json!({
            "url": url, "localPort": local.port(), "jobId": c.job_id, "node": c.node,
            "cudaVisibleDevices": c.cuda_visible_devices, "timeLeftSecs": time_left,
        })
        .to_string()
    } else {
        url
    };
    // The step (stderr) before the URL (stdout): whoever reads the URL then finds the step.
    step(
        "✓",
        "Ready",
        &format!(
            "job {} on {} (CUDA_VISIBLE_DEVICES={}){}; Ctrl-C closes the tunnel, the job keeps running (tunnelbook down {name})",
            c.job_id,
            c.node,
            c.cuda_visible_devices,
            time_left
                .map(|t| format!(", {} left before its time limit", slurm::format_time(t)))
                .unwrap_or_default()
        ),
    );
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    let code = follow(global, conn, &link, name, &c.job_id, relaunch).await;
    drop(tunnel);
    code
}

/// Follows a running job until it ends, the connection drops or the user interrupts.
async fn follow(
    global: &Global,
    first: &Connection,
    link: &Link,
    name: &str,
    id: &str,
    relaunch: &str,
) -> ExitCode {
    let mut watch = JobWatch::new();
    let mut left_secs: Option<u64> = None;
    let mut current = first.clone();
    let code = loop {
        let conn = &current;
        tokio::select! {
            () = connect::interrupted() => {
                let until = left_secs.map(|s| format!(" for {} more (its time limit)", slurm::format_time(s))).unwrap_or_default();
                eprintln!("tunnelbook: tunnel closed; job {id} keeps running{until}: `tunnelbook attach {name}` reopens it, `tunnelbook down {name}` stops it");
                break ExitCode::SUCCESS;
            }
            reason = conn.closed() => {
                link.set(None);
                match reconnect(global, name, id, &reason).await {
                    Some(new) => {
                        link.set(Some(new.clone()));
                        if !current.is_same(first) {
                            current.close().await;
                        }
                        current = new;
                    }
                    None => break ExitCode::SUCCESS,
                }
                continue;
            }
            () = tokio::time::sleep(RUNNING_POLL) => {}
        }
        match watch.poll(conn, id).await {
            Some(JobNews::Running {
                time_left_secs,
                warn_at_minutes,
            }) => {
                left_secs = time_left_secs;
                if let (Some(left), Some(mark)) = (time_left_secs, warn_at_minutes) {
                    eprintln!(
                        "tunnelbook: warning: job {id} reaches its time limit in {} ({mark} minutes or less left); save your work — relaunch with the same settings: {relaunch}",
                        slurm::format_time(left),
                    );
                }
            }
            Some(JobNews::Ended(end)) => {
                if end.timed_out {
                    eprintln!(
                        "tunnelbook: time limit reached: SLURM ended job {id}. Relaunch with the same settings: {relaunch}"
                    );
                } else {
                    eprintln!("tunnelbook: job {id} ended: {}", end.words());
                }
                break ExitCode::from(1);
            }
            None => {}
        }
    };
    if !current.is_same(first) {
        current.close().await;
    }
    code
}

/// Opens the connection again after it was lost, with backoff (1, 2, 4 … 30 s) until it works
/// or the user interrupts (`None`). The job keeps running meanwhile.
async fn reconnect(global: &Global, name: &str, id: &str, reason: &str) -> Option<Connection> {
    let started = std::time::Instant::now();
    let mut wait = 1u64;
    for attempt in 1u32.. {
        let delay = if attempt == 1 { 0 } else { wait };
        eprintln!(
            "tunnelbook: connection lost ({reason}); reconnecting (attempt {attempt}, next try in {delay} s); job {id} keeps running"
        );
        tokio::select! {
            () = connect::interrupted() => {
                eprintln!("tunnelbook: interrupted; job {id} keeps running (tunnelbook attach {name})");
                return None;
            }
            () = tokio::time::sleep(Duration::from_secs(delay)) => {}
        }
        match connect::open(global, name).await {
            Ok(c) => {
                eprintln!(
                    "tunnelbook: reconnected after {} s; same local port",
                    started.elapsed().as_secs()
                );
                return Some(c);
            }
            Err(e) => tracing::debug!(error = %e, "reconnect failed"),
        }
        if attempt > 1 {
            wait = (wait * 2).min(30);
        }
    }
    None
}

/// `ls` on a SLURM host: Tunnelbook's jobs with their state, node, port and time left
/// (`--json`: the jobs as `[{row, connection}]`).
pub async fn ls(global: &Global, name: &str, json: bool) -> ExitCode {
    let conn = match connect::open(global, name).await {
        Ok(c) => c,
        Err(e) => return connect::unreachable(e),
    };
    let code = match job::list(&conn).await {
        Ok(jobs) if json => {
            println!("{}", serde_json::to_string(&jobs).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Ok(jobs) => {
            if jobs.is_empty() {
                println!("no Tunnelbook jobs on {name}");
            }
            for j in jobs {
                let r = &j.row;
                let at = j
                    .connection
                    .as_ref()
                    .map(|c| format!("{}:{}", c.host, c.port))
                    .unwrap_or_else(|| "-".into());
                let state = if r.state == "PENDING" {
                    format!("PENDING ({})", slurm::reason_in_words(&r.reason))
                } else {
                    r.state.clone()
                };
                let until = slurm::known_time(&r.end_time)
                    .map(|e| format!(" (until {})", e.replace('T', " ")))
                    .unwrap_or_default();
                println!(
                    "job {}  {}  {}  {}  {} left{until}  {}",
                    r.id, state, r.partition, at, r.time_left, r.tres_per_node
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tunnelbook: {e}");
            ExitCode::from(1)
        }
    };
    conn.close().await;
    code
}

/// `attach` on a SLURM host: the newest running Tunnelbook job (or job `id`), forwarded here
/// with the token read from its 0600 launch directory.
pub async fn attach(
    global: &Global,
    name: &str,
    id: Option<&str>,
    port: Option<u16>,
    json: bool,
) -> ExitCode {
    let conn = match connect::open(global, name).await {
        Ok(c) => c,
        Err(e) => return connect::unreachable(e),
    };
    let code = async {
        // Core's lookup (the app's Sessions → Open too): job `id` or the newest running one.
        let found = match launch::find_attachable(&conn, id).await {
            Ok(f) => f,
            Err(SlurmError::NoJob(why)) => {
                eprintln!("tunnelbook: {why} on {name} (tunnelbook ls {name})");
                return ExitCode::from(1);
            }
            Err(e) => {
                eprintln!("tunnelbook: {e}");
                return ExitCode::from(1);
            }
        };
        let (c, row, token) = (found.connection, found.row, found.token);
        let common = UpCommon {
            name: name.to_string(),
            env: None,
            dir: None,
            port,
            json,
            timeout: 30,
            cancel_before_ready: false,
        };
        let left = slurm::parse_time(&row.time_left).ok().flatten();
        let relaunch = relaunch_from_row(name, &row);
        forward_and_stay(global, &conn, name, &c, left, &token, &common, &relaunch).await
    }
    .await;
    conn.close().await;
    code
}

/// `down` on a SLURM host: JupyterLab's `/api/shutdown` (it stops its kernels), then
/// `scancel`, then the job's end confirmed ([`launch::stop_listed`]). Every Tunnelbook job, or job `id`.
pub async fn down(global: &Global, name: &str, id: Option<&str>) -> ExitCode {
    let conn = match connect::open(global, name).await {
        Ok(c) => c,
        Err(e) => return connect::unreachable(e),
    };
    let code = async {
        let jobs = match job::list(&conn).await {
            Ok(j) => j,
            Err(e) => {
                eprintln!("tunnelbook: {e}");
                return ExitCode::from(1);
            }
        };
        let jobs: Vec<_> = jobs
            .into_iter()
            .filter(|j| id.is_none_or(|i| i == j.row.id))
            .collect();
        if jobs.is_empty() {
            eprintln!("tunnelbook: no Tunnelbook job to stop on {name}");
            return ExitCode::from(1);
        }
        let mut code = ExitCode::SUCCESS;
        for j in jobs {
            match launch::stop_listed(&conn, &j, Duration::from_secs(60)).await {
                Ok(state) => println!("job {}: {state}", j.row.id),
                Err(e) => {
                    eprintln!("tunnelbook: job {}: {e}", j.row.id);
                    code = ExitCode::from(1);
                }
            }
        }
        code
    }
    .await;
    conn.close().await;
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The relaunch line repeats the request as `up` options; one rebuilt from `squeue` keeps
    /// the partition and GPUs.
    #[test]
    fn relaunch_repeats_the_request() {
        let req = JobRequest::from_defaults(
            &SlurmDefaults::default(),
            Some("debug".into()),
            Some("lab".into()),
            Some("90".into()),
            Some("v100:1".into()),
        )
        .unwrap();
        assert_eq!(
            relaunch_line("box", &req),
            "tunnelbook up box --slurm --partition debug --gpus v100:1 --time 1:30:00 --account lab"
        );
        let row = slurm::JobRow {
            id: "7".into(),
            name: job::JOB_NAME.into(),
            partition: "gpu".into(),
            state: "RUNNING".into(),
            reason: "None".into(),
            time_left: "59:00".into(),
            nodes: "n1".into(),
            tres_per_node: "gres:gpu:a100:2".into(),
            end_time: "2026-11-30T21:45:00".into(),
        };
        assert_eq!(
            relaunch_from_row("box", &row),
            "tunnelbook up box --slurm --partition gpu --gpus a100:2"
        );
    }

    /// `hosts edit` options: checked before saving, applied field by field, `""` clears.
    #[test]
    fn edit_options_check_and_apply() {
        let bad = SlurmEditArgs {
            time: Some("soon".into()),
            ..SlurmEditArgs::default()
        };
        assert!(bad.check().unwrap_err().contains("cannot read the time"));
        let bad = SlurmEditArgs {
            scheduler: Some("pbs".into()),
            ..SlurmEditArgs::default()
        };
        assert!(bad.check().is_err());
        let mut p = Profile::default();
        SlurmEditArgs {
            scheduler: Some("slurm".into()),
            partition: Some("gpu".into()),
            gpus: Some("a100:1".into()),
            gpu_flag: Some(GpuFlag::Gpus),
            sbatch_lines: vec!["--mem=8G".into()],
            ..SlurmEditArgs::default()
        }
        .apply(&mut p);
        assert_eq!(p.scheduler, Some(Scheduler::Slurm));
        let d = p.slurm.clone().unwrap();
        assert_eq!(d.partition.as_deref(), Some("gpu"));
        assert_eq!(d.gpu_flag, GpuFlag::Gpus);
        assert_eq!(d.sbatch_lines, vec!["--mem=8G"]);
        SlurmEditArgs {
            scheduler: Some(String::new()),
            partition: Some(String::new()),
            ..SlurmEditArgs::default()
        }
        .apply(&mut p);
        assert_eq!(p.scheduler, None);
        assert_eq!(p.slurm.unwrap().partition, None);
    }
}
