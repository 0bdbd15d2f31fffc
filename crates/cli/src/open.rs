//! `tunnelbook open NAME PATH.ipynb`: the notebook's folder goes up to the host over SFTP,
//! JupyterLab starts there on the chosen GPU, and every save on the host comes back here until
//! interrupted. While it follows, the project is remembered ([`follow_remembered`]), so a lost
//! connection leaves it for the app's next connection to the host to resume.

use std::{
    io::{IsTerminal, Write},
    path::{Path, PathBuf},
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio_util::sync::CancellationToken;
use tunnelbook_core::{
    host::{HostSession, HostSpec, ReconnectPolicy},
    project::{follow_remembered, launch_for, notebook_address},
    session::{Session, SessionEvent, SessionHost, SessionSpec, StepState},
    sftp::{Progress, Sftp, SftpError},
    sync::{BroughtBack, Follow, FollowEvent, Project, SyncError, SyncSettings},
};

use crate::{Global, connect};

/// Arguments of `open`.
#[derive(Debug, clap::Args)]
pub struct OpenArgs {
    /// Saved host name.
    name: String,
    /// The notebook (`.ipynb`); its whole folder goes up with it.
    notebook: PathBuf,
    /// GPU, environment and modules, as for `up`.
    #[command(flatten)]
    choice: crate::up::LaunchChoice,
    /// The folder on the host (default: the host's projects folder from sync.toml, else
    /// ~/tunnelbook, then the local folder's name).
    #[arg(long)]
    remote_dir: Option<String>,
    /// Upload files over the size limit (sync.toml `size_limit_mb`, 100 MB by default) without
    /// asking.
    #[arg(long)]
    include_large: bool,
    /// Print the result as one JSON object instead of the notebook's URL.
    #[arg(long)]
    json: bool,
    /// Seconds between checks for saves on the host.
    #[arg(long, default_value_t = 2)]
    interval: u64,
    /// Stop the server when this command ends (default: it keeps running).
    #[arg(long)]
    stop_on_exit: bool,
    /// Seconds JupyterLab may take to answer.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

fn tell(back: &[BroughtBack], root: &Path) {
    for b in back {
        let shown = b
            .local_path
            .strip_prefix(root)
            .unwrap_or(&b.local_path)
            .display();
        if b.beside {
            eprintln!(
                "tunnelbook: {} changed here since it went up, so the host's version was saved beside it as \"{shown}\" (nothing overwritten)",
                b.rel
            );
        } else {
            eprintln!("↓ {shown}");
        }
    }
}

/// Shows `progress` on one stderr line (a terminal only) until `done` fires.
pub(crate) fn show_progress(
    progress: Progress,
    done: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if !std::io::stderr().is_terminal() {
            return;
        }
        loop {
            tokio::select! {
                () = done.cancelled() => break,
                () = tokio::time::sleep(Duration::from_millis(300)) => {}
            }
            eprint!("\r  {}   ", progress.snapshot());
            let _ = std::io::stderr().flush();
        }
        eprintln!("\r  {}   ", progress.snapshot());
    })
}

fn ask_yes(question: &str) -> bool {
    if !std::io::stdin().is_terminal() {
        return false;
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).is_ok()
        && matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// Runs the whole trip: upload, start or reuse JupyterLab ([`SessionSpec::reuse_for`]), print the
/// notebook's URL (or JSON with `notebookUrl`, `notebookPath` under the server's root,
/// `remoteDir` and the launch's fields, `reused` among them), then bring back the host's saves every `--interval`
/// seconds until Ctrl-C / SIGTERM (one last check then). Exit status 2 for bad arguments, 1
/// when the upload or launch fails, 130 when the upload was cancelled, 255 when the host cannot
/// be reached.
pub async fn run(global: &Global, args: OpenArgs) -> ExitCode {
    let home = connect::home(global);
    let notebook = match std::fs::canonicalize(&args.notebook) {
        Ok(p) if p.is_file() => p,
        Ok(p) => {
            eprintln!("tunnelbook: {} is not a file", p.display());
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("tunnelbook: {}: {e}", args.notebook.display());
            return ExitCode::from(2);
        }
    };
    let (Some(folder), Some(file_name)) = (notebook.parent(), notebook.file_name()) else {
        eprintln!("tunnelbook: {} has no folder", notebook.display());
        return ExitCode::from(2);
    };
    let folder = folder.to_path_buf();
    let rel = file_name.to_string_lossy().into_owned();
    let gpu = match args.choice.gpu() {
        Ok(g) => g,
        Err(e) => {
            eprintln!("tunnelbook: {e}");
            return ExitCode::from(2);
        }
    };
    let settings = match SyncSettings::load(&home) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tunnelbook: {e}");
            return ExitCode::from(2);
        }
    };
    let profile = match connect::profile(global, &args.name) {
        Ok(p) if args.name != connect::LOCAL => p,
        Ok(_) => {
            eprintln!(
                "tunnelbook: `open` needs a saved host; on this computer open the notebook in place"
            );
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("tunnelbook: {e}");
            return ExitCode::from(2);
        }
    };
    let chain = match tunnelbook_core::profile::ProfileStore::in_home(&home).chain(&args.name) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tunnelbook: {e}");
            return ExitCode::from(2);
        }
    };

    // One host session for the files and the launch: one login, and it dials again after a
    // drop (the launch follows it; the sync reopens SFTP on its new connection).
    let (host, mut host_events) = HostSession::start(HostSpec {
        host: SessionHost::Ssh {
            chain: chain.clone(),
            context: connect::context(global),
        },
        reconnect: ReconnectPolicy::default(),
        free_rule: connect::free_rule(global),
        profiles: Some(tunnelbook_core::profile::ProfileStore::in_home(&home)),
        probe: true,
    });
    // The launch reports the steps that matter here; the host's own events are not printed.
    tokio::spawn(async move { while host_events.recv().await.is_some() {} });
    let connection = match host.next_connection(None).await {
        Ok(c) => c,
        Err(e) => return connect::unreachable(e),
    };
    let sftp = match Sftp::open(&connection).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tunnelbook: cannot open SFTP on {}: {e}", args.name);
            return ExitCode::from(1);
        }
    };
    let remote_dir = args.remote_dir.as_deref();
    let (mut project, projects_dir) = match Project::on_host(
        &home,
        &args.name,
        &folder,
        &sftp,
        remote_dir,
        settings.clone(),
    ) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("tunnelbook: {e}");
            return ExitCode::from(2);
        }
    };
    let remote_root = project.remote_root().to_string();

    // Up.
    let plan = match project.plan_upload(&sftp).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!(
                "tunnelbook: cannot compare {} with {remote_root}: {e}",
                folder.display()
            );
            return ExitCode::from(1);
        }
    };
    let mut include_large = args.include_large;
    if !plan.too_large.is_empty() {
        eprintln!(
            "tunnelbook: {} file(s) over the {} MB limit (sync.toml size_limit_mb):",
            plan.too_large.len(),
            settings.size_limit_mb
        );
        for f in &plan.too_large {
            eprintln!("  {} ({:.1} MB)", f.rel, f.size as f64 / 1e6);
        }
        if !include_large {
            include_large = ask_yes("Upload them too?");
        }
        if !include_large {
            eprintln!("  left out (add --include-large to send them)");
        }
    }
    eprintln!(
        "… upload     {} → {}:{remote_root}: {} to send, {} unchanged, {} saved on the host to bring back",
        folder.display(),
        args.name,
        plan.send.len()
            + if include_large {
                plan.too_large.len()
            } else {
                0
            },
        plan.unchanged,
        plan.bring_back.len() + plan.conflicts.len(),
    );
    let progress = Progress::default();
    let cancel = CancellationToken::new();
    let done = CancellationToken::new();
    let shown = show_progress(progress.clone(), done.clone());
    let upload = project.upload(&sftp, &plan, include_large, &progress, &cancel);
    let result = tokio::select! {
        r = upload => r,
        () = connect::interrupted() => {
            cancel.cancel();
            Err(SyncError::Sftp(SftpError::Cancelled))
        }
    };
    done.cancel();
    let _ = shown.await;
    match result {
        Ok(back) => {
            tell(&back, project.local_root());
            eprintln!("✓ upload     {}", progress.snapshot());
        }
        Err(SyncError::Sftp(SftpError::Cancelled)) => {
            eprintln!("tunnelbook: upload cancelled; no half-written file was left on the host");
            return ExitCode::from(130);
        }
        Err(e) => {
            eprintln!("tunnelbook: upload failed: {e}");
            return ExitCode::from(1);
        }
    }

    // Launch, in the project folder, over the same connection.
    let mut spec = SessionSpec::new(
        SessionHost::Ssh {
            chain,
            context: connect::context(global),
        },
        profile,
    );
    spec.secrets = crate::hosts::system_keychain().ok();
    spec.host_session = Some(host.clone());
    args.choice.apply(gpu, &mut spec);
    spec.free_rule = connect::free_rule(global);
    // A JupyterLab of ours already on that GPU whose root holds the project is reused; a new one
    // starts in the projects folder, so the next project opened there reuses it in turn.
    launch_for(&mut spec, &project, &projects_dir);
    spec.ready_timeout = Duration::from_secs(args.timeout);
    spec.stop_server_on_cancel = args.stop_on_exit;
    let mut session = Session::start(spec);
    // Moves into the syncing task once the notebook is ready.
    let mut project = Some(project);
    let stop_sync = CancellationToken::new();
    let forget = Arc::new(AtomicBool::new(false));
    let mut syncing: Option<tokio::task::JoinHandle<()>> = None;
    let code = loop {
        let event = tokio::select! {
            () = connect::interrupted(), if syncing.is_some() => {
                forget.store(true, Ordering::SeqCst);
                break ExitCode::SUCCESS;
            }
            ev = session.next_event() => ev,
        };
        let Some(event) = event else {
            eprintln!("tunnelbook: the session ended unexpectedly");
            break ExitCode::from(1);
        };
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
                break ExitCode::from(1);
            }
            SessionEvent::Reconnecting {
                attempt,
                next_try_in_secs,
                reason,
            } => eprintln!(
                "tunnelbook: connection lost ({reason}); reconnecting (attempt {attempt}, next try in {next_try_in_secs} s); saves on the host come back once it is"
            ),
            SessionEvent::Reconnected { outage_secs, .. } => {
                eprintln!("tunnelbook: reconnected after {outage_secs} s")
            }
            SessionEvent::ServerGone { reason } => {
                eprintln!(
                    "tunnelbook: {reason}; run `tunnelbook open` again to start a new one (files already synced stay)"
                );
                break ExitCode::from(1);
            }
            SessionEvent::Disconnected { reason } => {
                eprintln!(
                    "tunnelbook: connection lost: {reason}; the next `tunnelbook open` brings back what was saved meanwhile"
                );
                break ExitCode::from(255);
            }
            SessionEvent::Ready(info) => {
                // The notebook's path under the server's root (which may be above the project).
                let (url, path) = notebook_address(&info, &remote_root, &rel);
                let line = if args.json {
                    let mut v = serde_json::to_value(&info).unwrap_or_default();
                    v["notebookUrl"] = serde_json::Value::String(url.clone());
                    v["notebookPath"] = serde_json::Value::String(path.clone());
                    v["remoteDir"] = serde_json::Value::String(remote_root.clone());
                    v.to_string()
                } else {
                    url
                };
                let mut out = std::io::stdout();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
                eprintln!(
                    "JupyterLab {} ({}{}) serves {remote_root}; saves there come back to {} every {} s. Ctrl-C stops syncing{}.",
                    info.gpu_label
                        .as_deref()
                        .map(|g| format!("on {g}"))
                        .unwrap_or_else(|| "without a GPU".into()),
                    info.server_id,
                    if info.reused {
                        ", already running: reused"
                    } else {
                        ""
                    },
                    folder.display(),
                    args.interval,
                    match (args.stop_on_exit, info.reused) {
                        (true, false) => " and the server",
                        (true, true) =>
                            "; the server keeps running (it was running before this `open`: others may use it)",
                        (false, _) => "; the server keeps running",
                    }
                );
                if let Some(mut project) = project.take() {
                    let (sftp, control) = (sftp.clone(), session.control());
                    let how = Follow {
                        interval: Duration::from_secs(args.interval.max(1)),
                        now: Arc::default(),
                        stop: stop_sync.clone(),
                    };
                    let (rel, forget) = (rel.clone(), forget.clone());
                    syncing = Some(tokio::spawn(async move {
                        let root = project.local_root().to_path_buf();
                        // Remembered while it runs: a lost connection leaves it for the next
                        // connection to resume (the app's); Ctrl-C / SIGTERM forgets it.
                        follow_remembered(
                            &mut project,
                            &rel,
                            sftp,
                            || control.connection(),
                            how,
                            || forget.load(Ordering::SeqCst),
                            |e| match e {
                                FollowEvent::Back(back) => tell(&back, &root),
                                FollowEvent::Failed(e) => {
                                    eprintln!("tunnelbook: bringing back saves: {e}; trying again");
                                }
                            },
                        )
                        .await;
                    }));
                }
            }
        }
    };
    stop_sync.cancel();
    if let Some(task) = syncing {
        let _ = task.await;
    }
    session.close(args.stop_on_exit).await;
    host.close().await;
    code
}
