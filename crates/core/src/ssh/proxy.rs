//! `ProxyCommand` as OpenSSH runs it: the command (tokens expanded) started by the user's
//! shell with `exec`, its stdin and stdout carrying the SSH connection instead of a TCP socket.
//! What it writes to stderr is kept (the last few KiB) so that a failure shows why.

use std::{
    io,
    pin::Pin,
    process::Stdio,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf},
    process::{Child, ChildStdin, ChildStdout, Command},
};

use super::SshError;

/// How much of the command's stderr is kept for messages.
const STDERR_KEPT: usize = 8 * 1024;

/// The running proxy command: a byte stream over its stdin/stdout. Dropping it kills the
/// command (the session task owns it, so it lives exactly as long as the connection).
pub(super) struct ProxyStream {
    stdout: ChildStdout,
    stdin: ChildStdin,
    _child: Arc<Mutex<Child>>,
}

/// What is needed to explain a failure after the stream has been handed to russh.
#[derive(Clone)]
pub(super) struct ProxyWitness {
    command: String,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_closed: Arc<Mutex<bool>>,
    child: Arc<Mutex<Child>>,
}

impl ProxyWitness {
    /// The error for a connection that failed over this proxy: its stderr and exit status
    /// (waiting up to 1 s for the command to finish writing them).
    pub async fn error(&self, what: &str) -> SshError {
        let mut status = None;
        for _ in 0..20 {
            status = self
                .child
                .lock()
                .ok()
                .and_then(|mut c| c.try_wait().ok().flatten());
            let closed = self.stderr_closed.lock().map(|c| *c).unwrap_or(true);
            if status.is_some() && closed {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let stderr = self
            .stderr
            .lock()
            .map(|b| String::from_utf8_lossy(&b).trim().to_string())
            .unwrap_or_default();
        SshError::ProxyCommand {
            command: self.command.clone(),
            message: match status {
                Some(status) => format!("{what}; the command ended ({status})"),
                None => what.to_string(),
            },
            stderr: if stderr.is_empty() {
                "(nothing)".to_string()
            } else {
                stderr
            },
        }
    }
}

/// Starts `command` (already expanded) through the shell.
pub(super) fn spawn(command: &str) -> Result<(ProxyStream, ProxyWitness), SshError> {
    let mut cmd = shell(command);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let failed = |message: String| SshError::ProxyCommand {
        command: command.to_string(),
        message,
        stderr: "(nothing)".to_string(),
    };
    let mut child = cmd
        .spawn()
        .map_err(|e| failed(format!("it could not be started: {e}")))?;
    let (Some(stdin), Some(stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(failed("its pipes could not be opened".into()));
    };
    let child = Arc::new(Mutex::new(child));
    let witness = ProxyWitness {
        command: command.to_string(),
        stderr: Arc::default(),
        stderr_closed: Arc::default(),
        child: child.clone(),
    };
    let (kept, closed) = (witness.stderr.clone(), witness.stderr_closed.clone());
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        loop {
            match stderr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    tracing::debug!(text = %String::from_utf8_lossy(&buf[..n]), "proxy command stderr");
                    if let Ok(mut kept) = kept.lock() {
                        kept.extend_from_slice(&buf[..n]);
                        let excess = kept.len().saturating_sub(STDERR_KEPT);
                        kept.drain(..excess);
                    }
                }
            }
        }
        if let Ok(mut c) = closed.lock() {
            *c = true;
        }
    });
    Ok((
        ProxyStream {
            stdout,
            stdin,
            _child: child,
        },
        witness,
    ))
}

#[cfg(unix)]
fn shell(command: &str) -> Command {
    let shell = std::env::var("SHELL")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/bin/sh".to_string());
    let mut cmd = Command::new(shell);
    cmd.arg("-c").arg(format!("exec {command}"));
    cmd
}

#[cfg(not(unix))]
fn shell(command: &str) -> Command {
    let mut cmd = Command::new("cmd");
    cmd.arg("/C").arg(command);
    cmd
}

impl AsyncRead for ProxyStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdout).poll_read(cx, buf)
    }
}

impl AsyncWrite for ProxyStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stdin).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdin).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdin).poll_shutdown(cx)
    }
}
