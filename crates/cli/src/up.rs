//! `tunnelbook up NAME`: JupyterLab on a free GPU, forwarded here, until interrupted.

use std::{
    io::{IsTerminal, Write},
    process::ExitCode,
};

use tunnelbook_core::{
    gpu::GpuSelector,
    session::{Session, SessionEvent, SessionHost, SessionSpec, Step, StepState},
};

use crate::{Global, connect};

/// Arguments of `up`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Saved host name, or `local` for this computer.
    name: String,
    /// GPU, environment and modules.
    #[command(flatten)]
    choice: LaunchChoice,
    /// Directory JupyterLab serves (default: the profile's, else home).
    #[arg(long)]
    dir: Option<String>,
    /// Local port of the forward (default: a free one).
    #[arg(long)]
    port: Option<u16>,
    /// Print the result as one JSON object instead of the URL.
    #[arg(long)]
    json: bool,
    /// Stop the server when this command ends (default: it keeps running for `attach`).
    #[arg(long)]
    stop_on_exit: bool,
    /// Seconds JupyterLab may take to answer.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// SLURM hosts (issue 20).
    #[command(flatten)]
    slurm: crate::slurm::SlurmUpArgs,
    /// Print the step timeline (when each step began and how long it took, in ms) to stderr
    /// once the notebook is ready or a step failed.
    #[arg(long)]
    timings: bool,
}

/// What a launch runs on, as `up` and `open` take it: GPU, environment, modules.
#[derive(Debug, clap::Args)]
pub struct LaunchChoice {
    /// GPU: auto, none, an index or a GPU-…/MIG-… UUID (default: the profile's, else auto).
    #[arg(long)]
    gpu: Option<String>,
    /// Python environment: a path (venv or conda prefix, or an interpreter) or a conda env name.
    #[arg(long)]
    pub env: Option<String>,
    /// Lmod / Environment Modules module to load before launching (default: the profile's saved
    /// list); repeat for several, loaded in order.
    #[arg(long = "module", value_name = "M")]
    modules: Vec<String>,
}

impl LaunchChoice {
    /// `--gpu`, read.
    ///
    /// # Errors
    /// A value that is not auto, none, an index or a UUID, in words.
    pub fn gpu(&self) -> Result<Option<GpuSelector>, String> {
        self.gpu
            .as_deref()
            .map(str::parse::<GpuSelector>)
            .transpose()
            .map_err(|e| e.to_string())
    }

    /// Puts the choices into `spec` with `gpu` as [`LaunchChoice::gpu`] read it (unset ones keep
    /// the profile's defaults).
    pub fn apply(&self, gpu: Option<GpuSelector>, spec: &mut SessionSpec) {
        spec.gpu = gpu;
        spec.env.clone_from(&self.env);
        spec.modules.clone_from(&self.modules);
    }
}

/// Runs a session, prints progress to stderr and the URL (or JSON) to stdout, then keeps the
/// tunnel open until Ctrl-C / SIGTERM, reconnecting through network drops (the URL stays
/// valid). When the server itself dies, Enter starts a new one behind the same port (the new URL,
/// or JSON, is printed again); without a terminal, `up` then ends with status 1. Exit status 1
/// when a step fails, 255 when the host cannot be reached or the connection is lost for good.
pub async fn run(global: &Global, args: UpArgs) -> ExitCode {
    let gpu = match args.choice.gpu() {
        Ok(g) => g,
        Err(e) => {
            eprintln!("tunnelbook: {e}");
            return ExitCode::from(2);
        }
    };
    let profile = match connect::profile(global, &args.name) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("tunnelbook: {e}");
            return ExitCode::from(2);
        }
    };
    if crate::slurm::wanted(&profile, &args.slurm) {
        let common = crate::slurm::UpCommon {
            name: args.name.clone(),
            env: args.choice.env.clone(),
            dir: args.dir.clone(),
            port: args.port,
            json: args.json,
            timeout: args.timeout,
            cancel_before_ready: true,
        };
        return crate::slurm::up(global, &args.slurm, common).await;
    }
    // The server's token is kept in the OS keychain so `attach` and `down` find it later.
    let secrets = crate::hosts::system_keychain().ok();
    let host = if args.name == connect::LOCAL {
        SessionHost::Local
    } else {
        let chain = match tunnelbook_core::profile::ProfileStore::in_home(&connect::home(global))
            .chain(&args.name)
        {
            Ok(c) => c,
            Err(e) => {
                eprintln!("tunnelbook: {e}");
                return ExitCode::from(2);
            }
        };
        SessionHost::Ssh {
            chain,
            context: connect::context(global),
        }
    };
    let mut spec = SessionSpec::new(host, profile);
    spec.secrets = secrets;
    args.choice.apply(gpu, &mut spec);
    spec.free_rule = connect::free_rule(global);
    spec.notebook_dir = args.dir;
    spec.local_port = args.port;
    spec.ready_timeout = std::time::Duration::from_secs(args.timeout);
    spec.stop_server_on_cancel = args.stop_on_exit;
    let mut timeline = tunnelbook_core::timeline::Timeline::new();
    let mut session = Session::start(spec);
    let mut ready = false;
    // One line of stdin after the server is gone means "start it again" (only read then, so the
    // prompter keeps stdin for host-key questions while reconnecting).
    let (enter_tx, mut enter) = tokio::sync::mpsc::channel::<bool>(1);
    // Waking from sleep or a new network checks the connection at once.
    let mut wakes = tunnelbook_core::wake::watch(tunnelbook_core::wake::DEFAULT_TICK);
    let code = loop {
        let event = tokio::select! {
            () = connect::interrupted(), if ready => break ExitCode::SUCCESS,
            Some(wake) = wakes.recv() => {
                if ready {
                    eprintln!("tunnelbook: {wake}: checking the connection");
                    session.reconnect_now();
                }
                continue;
            }
            Some(got_line) = enter.recv() => {
                if got_line {
                    session.restart_server();
                }
                continue;
            }
            ev = session.next_event() => ev,
        };
        let Some(event) = event else {
            eprintln!("tunnelbook: the session ended unexpectedly");
            break ExitCode::from(1);
        };
        timeline.record(&event);
        if args.timings && matches!(event, SessionEvent::Ready(_) | SessionEvent::Failed { .. }) {
            eprint!("{}", timeline.render());
        }
        match event {
            SessionEvent::Progress(p) => {
                let mark = match p.state {
                    StepState::Started => "…",
                    StepState::Done => "✓",
                    StepState::Skipped => "-",
                };
                eprintln!("{mark} {:<11} {}", p.step.to_string(), p.message);
            }
            SessionEvent::Failed { step, error } => {
                eprintln!("tunnelbook: {step} failed: {error}");
                return ExitCode::from(if step == Step::Connect { 255 } else { 1 });
            }
            SessionEvent::Reconnecting {
                attempt,
                next_try_in_secs,
                reason,
            } => eprintln!(
                "tunnelbook: connection lost ({reason}); reconnecting (attempt {attempt}, next try in {next_try_in_secs} s)"
            ),
            SessionEvent::Reconnected { outage_secs, .. } => {
                eprintln!("tunnelbook: reconnected after {outage_secs} s; same local port")
            }
            SessionEvent::ServerGone { reason } => {
                eprintln!("tunnelbook: {reason}");
                if std::io::stdin().is_terminal() {
                    eprintln!(
                        "Press Enter to start a new one behind the same port, or Ctrl-C to quit."
                    );
                    let tx = enter_tx.clone();
                    tokio::task::spawn_blocking(move || {
                        let mut line = String::new();
                        let got = std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0);
                        let _ = tx.blocking_send(got);
                    });
                } else {
                    eprintln!(
                        "Start a new one with `tunnelbook up {}` (add `--port` to keep the port).",
                        args.name
                    );
                    break ExitCode::from(1);
                }
            }
            SessionEvent::Disconnected { reason } => {
                eprintln!(
                    "tunnelbook: connection lost: {reason}; the server keeps running (tunnelbook attach {})",
                    args.name
                );
                break ExitCode::from(255);
            }
            SessionEvent::Ready(info) => {
                // `attach` and the app's Reopen come back on this port when it is free.
                let book = tunnelbook_core::jupyter::PortBook::in_home(&connect::home(global));
                if let Err(e) = book.remember(&args.name, &info.server_id, info.local_port) {
                    tracing::debug!(error = %e, "cannot remember the notebook's local port");
                }
                let line = if args.json {
                    serde_json::to_string(&info).unwrap_or_default()
                } else {
                    info.url.clone()
                };
                let mut out = std::io::stdout();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
                eprintln!(
                    "JupyterLab {} runs as {} (pid {}); Ctrl-C closes the tunnel{}. A lost connection is reconnected on the same port.",
                    info.gpu_label
                        .as_deref()
                        .map(|g| format!("on {g}"))
                        .unwrap_or_else(|| "without a GPU".into()),
                    info.server_id,
                    info.remote_pid,
                    if args.stop_on_exit {
                        " and stops the server"
                    } else {
                        "; the server keeps running (tunnelbook attach / down)"
                    }
                );
                ready = true;
            }
        }
    };
    session.close(args.stop_on_exit).await;
    code
}
