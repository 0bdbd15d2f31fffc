//! Remote commands on a [`Connection`]: run in the user's login environment, with stdin, under
//! a time and output limit ([`ExecLimits`]).

use std::time::Duration;

use russh::ChannelMsg;
use tokio::io::AsyncWriteExt;

use super::{Connection, SshError, login};

/// The output of a finished remote command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// Everything written to stdout.
    pub stdout: Vec<u8>,
    /// Everything written to stderr.
    pub stderr: Vec<u8>,
    /// Exit status; `None` when the command was killed by a signal or the server sent none.
    pub status: Option<u32>,
    /// The signal that killed the command, if any (e.g. `KILL`).
    pub signal: Option<String>,
}

impl Output {
    /// stdout as text (invalid UTF-8 replaced).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stderr as text (invalid UTF-8 replaced).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Whether the command exited with status 0.
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }
}

/// How long a remote command may run and how much it may print before it is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecLimits {
    /// Wall-clock limit from opening the channel to the end of output; `None`: none.
    pub timeout: Option<Duration>,
    /// Most bytes of stdout and stderr together.
    pub max_output: usize,
}

impl ExecLimits {
    /// Tunnelbook's own short commands (GPU query, environment discovery, launch, stop): 60 s
    /// and 16 MiB, so a hung `nvidia-smi` or an endless stream cannot hold up a refresh loop.
    pub const DEFAULT: ExecLimits = ExecLimits {
        timeout: Some(Duration::from_secs(60)),
        max_output: 16 << 20,
    };
    /// Long jobs with progress (installing JupyterLab): 30 min and 64 MiB.
    pub const LONG: ExecLimits = ExecLimits {
        timeout: Some(Duration::from_secs(30 * 60)),
        max_output: 64 << 20,
    };
    /// A command the user typed (`tunnelbook exec`): no time limit, 256 MiB.
    pub const USER: ExecLimits = ExecLimits {
        timeout: None,
        max_output: 256 << 20,
    };

    /// [`ExecLimits::DEFAULT`], with the time limit from `TUNNELBOOK_COMMAND_TIMEOUT` (seconds)
    /// when that is set to a positive number (for hosts that are slow to answer, and tests).
    pub fn standard() -> ExecLimits {
        static FROM_ENV: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
        let secs = *FROM_ENV.get_or_init(|| {
            std::env::var("TUNNELBOOK_COMMAND_TIMEOUT")
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|s| *s > 0)
        });
        ExecLimits {
            timeout: secs.map(Duration::from_secs).or(Self::DEFAULT.timeout),
            ..Self::DEFAULT
        }
    }
}

/// A command's name for messages: its first non-blank line, at most 60 characters.
fn short_name(command: &str) -> String {
    let line = command
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let mut name: String = line.chars().take(60).collect();
    if line.chars().count() > 60 {
        name.push('…');
    }
    name
}

impl Connection {
    /// Runs the POSIX `command` in the user's login environment, whatever their login shell
    /// (so PATH from `.profile`/`.cshrc`/`config.fish`, venvs and modules apply; see
    /// [`login`]), and collects its output, within [`ExecLimits::standard`].
    ///
    /// # Errors
    /// [`SshError::NotRun`] when the login shell did not run it, [`SshError::CommandTimedOut`] /
    /// [`SshError::OutputTooLarge`] past the limits, channel and connection errors.
    pub async fn exec(&self, command: &str) -> Result<Output, SshError> {
        self.exec_with_stdin(command, &[]).await
    }

    /// Like [`Connection::exec`], writing `stdin` to the command first (then EOF). This is how
    /// secrets reach remote programs without appearing on a command line.
    pub async fn exec_with_stdin(&self, command: &str, stdin: &[u8]) -> Result<Output, SshError> {
        self.exec_limited(command, stdin, ExecLimits::standard())
            .await
    }

    /// Like [`Connection::exec`], calling the command `name` in messages (e.g. `nvidia-smi`)
    /// instead of its first line.
    pub async fn exec_named(&self, name: &str, command: &str) -> Result<Output, SshError> {
        let out = self
            .run(
                &login::login_shell(command),
                name,
                &[],
                None,
                ExecLimits::standard(),
            )
            .await?;
        login::finish(out, &self.inner.destination)
    }

    /// Like [`Connection::exec_with_stdin`] with other limits (e.g. a user's own command).
    pub async fn exec_limited(
        &self,
        command: &str,
        stdin: &[u8],
        limits: ExecLimits,
    ) -> Result<Output, SshError> {
        let out = self
            .run(&login::login_shell(command), command, stdin, None, limits)
            .await?;
        login::finish(out, &self.inner.destination)
    }

    /// Runs `command` exactly as given (parsed by the server's `$SHELL -c`, so it must suit the
    /// user's shell), without a login shell, within [`ExecLimits::standard`].
    pub async fn exec_raw(&self, command: &str, stdin: &[u8]) -> Result<Output, SshError> {
        self.run(command, command, stdin, None, ExecLimits::standard())
            .await
    }

    /// Like [`Connection::exec`], sending every line of stdout and stderr to `lines` as it
    /// arrives (for progress displays, e.g. `pip install`), and returning the whole output at the
    /// end, within [`ExecLimits::LONG`]. A closed `lines` receiver does not stop the command.
    pub async fn exec_lines(
        &self,
        command: &str,
        lines: tokio::sync::mpsc::UnboundedSender<String>,
    ) -> Result<Output, SshError> {
        let out = self
            .run(
                &login::login_shell(command),
                command,
                &[],
                Some(&lines),
                ExecLimits::LONG,
            )
            .await?;
        login::finish(out, &self.inner.destination)
    }

    /// Runs `command` on a new session channel: writes `stdin` then EOF, collects the output,
    /// and, when `lines` is given, also sends each complete stdout/stderr line after the login
    /// preamble as it arrives. Past `limits` the command is signalled and its channel closed;
    /// `name` is what the error calls it.
    async fn run(
        &self,
        command: &str,
        name: &str,
        stdin: &[u8],
        lines: Option<&tokio::sync::mpsc::UnboundedSender<String>>,
        limits: ExecLimits,
    ) -> Result<Output, SshError> {
        let deadline = limits.timeout.map(|t| tokio::time::Instant::now() + t);
        let open = async {
            let channel = self
                .inner
                .handle
                .channel_open_session()
                .await
                .map_err(|e| self.channel_error("a command channel", e))?;
            channel.exec(true, command.as_bytes()).await?;
            Ok::<_, SshError>(channel)
        };
        let mut channel = match deadline {
            Some(at) => tokio::time::timeout_at(at, open)
                .await
                .map_err(|_| self.timed_out(name, limits))??,
            None => open.await?,
        };
        let mut out = Output::default();
        let body = async {
            if !stdin.is_empty() {
                let mut writer = channel.make_writer();
                writer
                    .write_all(stdin)
                    .await
                    .map_err(|e| SshError::Protocol(e.to_string()))?;
                writer
                    .flush()
                    .await
                    .map_err(|e| SshError::Protocol(e.to_string()))?;
            }
            channel.eof().await?;
            // Partial lines of stdout (0) and stderr (1) until their newline arrives.
            let mut pending: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
            let mut preamble = login::Preamble::default();
            let mut feed = |which: usize, data: &[u8]| {
                let Some(lines) = lines else { return };
                pending[which].extend_from_slice(data);
                while let Some(nl) = pending[which].iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = pending[which].drain(..=nl).collect();
                    let text = String::from_utf8_lossy(&line[..nl]);
                    let text = text.trim_end_matches('\r');
                    if preamble.keep(which, text) {
                        let _ = lines.send(text.to_string());
                    }
                }
            };
            while let Some(msg) = channel.wait().await {
                match msg {
                    ChannelMsg::Data { data } => {
                        out.stdout.extend_from_slice(&data);
                        feed(0, &data);
                    }
                    ChannelMsg::ExtendedData { data, ext: 1 } => {
                        out.stderr.extend_from_slice(&data);
                        feed(1, &data);
                    }
                    ChannelMsg::ExitStatus { exit_status } => out.status = Some(exit_status),
                    ChannelMsg::ExitSignal { signal_name, .. } => {
                        out.signal = Some(format!("{signal_name:?}"));
                    }
                    _ => {}
                }
                if out.stdout.len() + out.stderr.len() > limits.max_output {
                    return Err(SshError::OutputTooLarge {
                        command: short_name(name),
                        destination: self.inner.destination.clone(),
                        limit_kib: limits.max_output / 1024,
                    });
                }
            }
            if let Some(lines) = lines {
                for (which, rest) in pending.iter().enumerate() {
                    if rest.is_empty() {
                        continue;
                    }
                    let text = String::from_utf8_lossy(rest).trim_end().to_string();
                    if preamble.keep(which, &text) {
                        let _ = lines.send(text);
                    }
                }
            }
            Ok(())
        };
        let result = match deadline {
            Some(at) => tokio::time::timeout_at(at, body)
                .await
                .unwrap_or_else(|_| Err(self.timed_out(name, limits))),
            None => body.await,
        };
        if let Err(e) = result {
            // Stop the command where sshd lets us (the login wrapper ends its whole process
            // group on TERM), and free the channel either way.
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                let _ = channel.signal(russh::Sig::TERM).await;
                let _ = channel.close().await;
            })
            .await;
            return Err(e);
        }
        Ok(out)
    }

    fn timed_out(&self, name: &str, limits: ExecLimits) -> SshError {
        SshError::CommandTimedOut {
            command: short_name(name),
            destination: self.inner.destination.clone(),
            secs: limits.timeout.map_or(0, |t| t.as_secs()),
        }
    }
}
