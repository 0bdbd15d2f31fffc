//! Where Jupyter runs: a host behind an SSH connection, or this computer. Both run the same POSIX
//! shell scripts through the user's login shell, so discovery, launch and stop are written once.

use std::process::Stdio;

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    sync::mpsc,
};

use super::JupyterError;
use crate::ssh::{Connection, Output, login};

/// A machine Jupyter servers run on.
#[derive(Debug, Clone)]
pub enum Host {
    /// A remote host; scripts run through the login shell over this connection.
    Ssh(Connection),
    /// This computer; scripts run in the login environment of `$SHELL` (the same wrapper as over
    /// SSH, [`crate::ssh::login`]), no SSH.
    Local,
}

impl Host {
    /// The host's name for messages: the connection's `user@host`, or `this computer`.
    pub fn name(&self) -> String {
        match self {
            Host::Ssh(conn) => conn.destination().to_string(),
            Host::Local => "this computer".to_string(),
        }
    }

    /// The connection, when the host is remote.
    pub fn connection(&self) -> Option<&Connection> {
        match self {
            Host::Ssh(conn) => Some(conn),
            Host::Local => None,
        }
    }

    /// Runs `script` in the login shell, writing `stdin` to it first (then EOF).
    pub async fn exec(&self, script: &str, stdin: &[u8]) -> Result<Output, JupyterError> {
        match self {
            Host::Ssh(conn) => Ok(conn.exec_with_stdin(script, stdin).await?),
            Host::Local => local_exec(script, stdin, None).await,
        }
    }

    /// Runs `script` in the login shell, sending each output line to `lines` as it arrives.
    pub async fn exec_lines(
        &self,
        script: &str,
        lines: mpsc::UnboundedSender<String>,
    ) -> Result<Output, JupyterError> {
        match self {
            Host::Ssh(conn) => Ok(conn.exec_lines(script, lines).await?),
            Host::Local => local_exec(script, &[], Some(lines)).await,
        }
    }
}

async fn local_exec(
    script: &str,
    stdin: &[u8],
    lines: Option<mpsc::UnboundedSender<String>>,
) -> Result<Output, JupyterError> {
    let io = |e: std::io::Error| JupyterError::Local(e.to_string());
    let mut command = tokio::process::Command::new("/bin/sh");
    // The wrapper may signal its own process group: never ours.
    #[cfg(unix)]
    command.process_group(0);
    let mut child = command
        .arg("-c")
        .arg(login::login_shell(script))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io)?;
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin).await.map_err(io)?;
        drop(input);
    }
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(JupyterError::Local("no pipes to the shell".into()));
    };
    let collect = |stream: Box<dyn tokio::io::AsyncRead + Unpin + Send>,
                   lines: Option<mpsc::UnboundedSender<String>>| async move {
        let mut all = Vec::new();
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        let mut started = false;
        while reader.read_until(b'\n', &mut line).await.unwrap_or(0) > 0 {
            all.extend_from_slice(&line);
            if let Some(tx) = &lines {
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end();
                // The login shell's startup output before the script's mark is not progress.
                if started {
                    let _ = tx.send(text.to_string());
                } else {
                    started = text.ends_with(login::BEGIN);
                }
            }
            line.clear();
        }
        all
    };
    let (out, err) = tokio::join!(
        collect(Box::new(stdout), lines.clone()),
        collect(Box::new(stderr), lines)
    );
    let status = child.wait().await.map_err(io)?;
    let out = Output {
        stdout: out,
        stderr: err,
        status: status.code().and_then(|c| u32::try_from(c).ok()),
        signal: None,
    };
    Ok(login::finish(out, "this computer")?)
}
