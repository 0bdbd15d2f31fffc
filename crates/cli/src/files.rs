//! `tunnelbook files NAME ls|put|get|mv|rm|mkdir`: a host's files over SFTP (like `sftp` /
//! `scp -r`), pipelined, with progress on a terminal.

use std::{path::PathBuf, process::ExitCode};

use tokio_util::sync::CancellationToken;
use tunnelbook_core::sftp::{Progress, Sftp, SftpError};

use crate::{Global, connect};

/// Arguments of `files`.
#[derive(Debug, clap::Args)]
pub struct FilesArgs {
    /// Saved host name.
    name: String,
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// List a remote folder (default: the home folder).
    Ls {
        /// The folder.
        path: Option<String>,
        /// One JSON array of entries.
        #[arg(long)]
        json: bool,
    },
    /// Upload local files or folders (whole) into a remote folder (made when missing).
    Put {
        /// Local files or folders, then the remote folder.
        #[arg(required = true, num_args = 2..)]
        paths: Vec<String>,
    },
    /// Download remote files or folders (whole) into a local folder.
    Get {
        /// Remote files or folders, then the local folder.
        #[arg(required = true, num_args = 2..)]
        paths: Vec<String>,
    },
    /// Rename or move a remote file or folder (replacing a file there).
    Mv {
        /// From.
        from: String,
        /// To.
        to: String,
    },
    /// Delete remote files, or folders with everything in them.
    Rm {
        /// What to delete.
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Make a remote folder and its missing parents.
    Mkdir {
        /// The folder.
        path: String,
    },
}

/// Runs one action. Exit status 1 when it fails, 130 when interrupted (nothing half-written),
/// 255 when the host cannot be reached.
pub async fn run(global: &Global, args: FilesArgs) -> ExitCode {
    let connection = match connect::open(global, &args.name).await {
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
    let progress = Progress::default();
    let cancel = CancellationToken::new();
    let done = CancellationToken::new();
    let work = async {
        match args.action {
            Action::Ls { path, json } => {
                let dir = sftp.resolve(path.as_deref().unwrap_or("~"));
                let entries = sftp.list(&dir).await?;
                if json {
                    println!("{}", serde_json::to_string(&entries).unwrap_or_default());
                } else {
                    for e in entries {
                        let name = if e.is_dir {
                            format!("{}/", e.name)
                        } else {
                            e.name
                        };
                        println!(
                            "{:>12}  {name}",
                            if e.is_dir {
                                "-".into()
                            } else {
                                e.size.to_string()
                            }
                        );
                    }
                }
            }
            Action::Put { mut paths } => {
                let dir = paths.pop().unwrap_or_default();
                sftp.mkdir_all(&dir).await?;
                let task = crate::open::show_progress(progress.clone(), done.clone());
                for p in &paths {
                    sftp.put_tree(&PathBuf::from(p), &dir, &progress, &cancel)
                        .await?;
                }
                done.cancel();
                let _ = task.await;
            }
            Action::Get { mut paths } => {
                let dir = PathBuf::from(paths.pop().unwrap_or_default());
                std::fs::create_dir_all(&dir).map_err(|source| SftpError::Local {
                    path: dir.clone(),
                    source,
                })?;
                let task = crate::open::show_progress(progress.clone(), done.clone());
                for p in &paths {
                    sftp.get_tree(p, &dir, &progress, &cancel).await?;
                }
                done.cancel();
                let _ = task.await;
            }
            Action::Mv { from, to } => sftp.rename(&from, &to).await?,
            Action::Rm { paths } => {
                for p in &paths {
                    sftp.remove(p).await?;
                }
            }
            Action::Mkdir { path } => sftp.mkdir_all(&path).await?,
        }
        Ok::<_, SftpError>(())
    };
    let result = tokio::select! {
        r = work => r,
        () = connect::interrupted() => {
            cancel.cancel();
            Err(SftpError::Cancelled)
        }
    };
    done.cancel();
    sftp.close();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(SftpError::Cancelled) => {
            eprintln!("tunnelbook: interrupted; no half-written file was left");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("tunnelbook: {e}");
            ExitCode::from(1)
        }
    }
}
