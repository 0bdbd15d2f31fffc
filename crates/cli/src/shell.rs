//! `tunnelbook shell NAME`: an interactive login shell on a saved host, like `ssh NAME`.
//!
//! With a terminal on stdin the local terminal goes into raw mode (restored on every way out:
//! the guard's `Drop` runs when the shell ends, the connection drops, or a signal arrives) and
//! the remote side gets a pty of the same size, kept in step on `SIGWINCH`. Without one, the
//! shell runs on plain pipes, like `ssh -T`. The exit status is the remote shell's (255 when
//! the connection failed or dropped, as ssh).

use std::{
    io::{IsTerminal, Read, Write},
    process::ExitCode,
};

use tunnelbook_core::ssh::{PtySpec, ShellEvent, ShellExit, ShellInput, ShellOutput, ShellSpec};

use crate::{Global, connect};

/// Arguments of `shell`.
#[derive(Debug, clap::Args)]
pub struct ShellArgs {
    /// Saved host name.
    name: String,
    /// No pseudo-terminal, even when stdin is a terminal (like `ssh -T`).
    #[arg(short = 'T', long = "no-tty")]
    no_tty: bool,
}

/// Puts the local terminal in raw mode until dropped.
struct RawMode;

impl RawMode {
    fn enable() -> Result<RawMode, String> {
        crossterm::terminal::enable_raw_mode()
            .map_err(|e| format!("cannot put the terminal in raw mode: {e}"))?;
        Ok(RawMode)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

/// The local terminal's size in cells, or 80×24 when it cannot be told.
fn size() -> (u32, u32) {
    crossterm::terminal::size()
        .map(|(c, r)| (u32::from(c), u32::from(r)))
        .unwrap_or((80, 24))
}

/// The locale variables OpenSSH sends by default on Debian and macOS (`SendEnv LANG LC_*`), so
/// UTF-8 reaches the remote shell when its sshd accepts them.
fn locale_env() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(k, _)| k == "LANG" || k.starts_with("LC_"))
        .collect()
}

/// Opens the shell, pumps stdin and stdout until it ends, and exits with its status.
pub async fn run(global: &Global, args: ShellArgs) -> ExitCode {
    let conn = match connect::open(global, &args.name).await {
        Ok(c) => c,
        Err(e) => {
            return connect::unreachable(format!("cannot open a shell on {}: {e}", args.name));
        }
    };
    let tty = !args.no_tty && std::io::stdin().is_terminal();
    let pty = tty.then(|| {
        let (cols, rows) = size();
        PtySpec {
            term: std::env::var("TERM")
                .ok()
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| "xterm-256color".into()),
            cols,
            rows,
            modes: crate::ttymodes::of_stdin(),
        }
    });
    let spec = ShellSpec {
        pty,
        env: locale_env(),
    };
    // The channel is read right here, not through a queue: this connection carries nothing else.
    let shell = match conn.open_shell_direct(&spec).await {
        Ok(s) => s,
        Err(e) => {
            conn.close().await;
            return connect::unreachable(e);
        }
    };
    let raw = if tty {
        match RawMode::enable() {
            Ok(r) => Some(r),
            Err(e) => {
                shell.input.close().await;
                conn.close().await;
                return connect::unreachable(e);
            }
        }
    } else {
        None
    };
    let output = shell.output;
    let input = shell.input;
    // A terminal is read here on the runtime's one thread when it can be polled (Unix), so a
    // keystroke goes to the socket without a thread hand-over; otherwise from a thread.
    let keys = if tty { TtyInput::new() } else { None };
    if keys.is_none() {
        pump_stdin(input.clone());
    }
    let resizes = tokio::spawn(follow_size(input.clone(), tty));
    // A task of its own rather than the runtime's main future: russh's session task then wakes it
    // onto the run queue directly, where waking the main future costs the runtime an extra poll
    // of its event queue before each write to the terminal (keystroke echo latency).
    let pump = tokio::spawn(pump(keys, input, output));
    let exit = pump.await.ok().flatten();
    resizes.abort();
    drop(raw);
    conn.close().await;
    match exit {
        Some(exit) if exit.connection_lost => {
            eprintln!(
                "tunnelbook: the connection to {} was lost; the shell ended with it",
                conn.destination()
            );
            ExitCode::from(255)
        }
        Some(exit) => {
            if let (None, Some(signal)) = (exit.status, &exit.signal) {
                eprintln!("tunnelbook: the remote shell was killed by signal {signal}");
            }
            ExitCode::from(exit.code())
        }
        None => ExitCode::from(255),
    }
}

/// Copies keystrokes to the shell and its output to this terminal until the shell ends (its
/// exit), the connection does (`None`), or Ctrl-C reaches this process (`None`).
async fn pump(
    mut keys: Option<TtyInput>,
    input: ShellInput,
    mut output: ShellOutput,
) -> Option<ShellExit> {
    let mut key_buf = vec![0u8; TtyInput::BUF];
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    // Made once: each call registers signal listeners, which is work a keystroke should not pay.
    let interrupted = connect::interrupted();
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            read = TtyInput::read(&mut keys, &mut key_buf) => match read {
                Ok(n) if n > 0 => {
                    if input.write(&key_buf[..n]).await.is_err() {
                        keys = None;
                    }
                }
                _ => {
                    let _ = input.eof().await;
                    keys = None;
                }
            },
            ev = output.next() => match ev {
                Some(ShellEvent::Stdout(data)) => {
                    let _ = stdout.write_all(&data);
                    let _ = stdout.flush();
                }
                Some(ShellEvent::Stderr(data)) => {
                    let _ = stderr.write_all(&data);
                    let _ = stderr.flush();
                }
                Some(ShellEvent::Dropped(_)) => {}
                Some(ShellEvent::Exited(exit)) => break Some(exit),
                None => break None,
            },
            _ = &mut interrupted => {
                input.close().await;
                break None;
            }
        }
    }
}

/// Copies stdin to the shell from a thread of its own (a blocking read that the process exit
/// ends; tokio's blocking pool would keep the runtime from shutting down), ending with EOF.
fn pump_stdin(input: ShellInput) {
    let handle = tokio::runtime::Handle::current();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 4096];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = handle.block_on(input.eof());
                    return;
                }
                Ok(n) => {
                    if handle.block_on(input.write(&buf[..n])).is_err() {
                        return;
                    }
                }
            }
        }
    });
}

/// The local terminal, read on the runtime's thread when it is woken by the terminal's
/// readiness (epoll on Unix). The descriptor stays blocking (it is shared with the parent shell
/// and with stdout), so each read comes after a zero-timeout `poll` that says it will not block.
#[cfg_attr(not(unix), allow(dead_code))] // Elsewhere stdin is always read by a thread.
struct TtyInput {
    #[cfg(unix)]
    fd: tokio::io::unix::AsyncFd<std::fs::File>,
}

impl TtyInput {
    /// Bigger than a terminal's input queue (4 KiB on Linux), so one read takes all there is.
    const BUF: usize = 16 * 1024;

    /// Stdin, ready to be read on the runtime; `None` where it cannot be (not Unix, or a
    /// descriptor epoll refuses): then a thread reads it.
    #[cfg(unix)]
    #[allow(unsafe_code)] // tokio's registration asks the caller to vouch for the descriptor.
    fn new() -> Option<TtyInput> {
        use std::os::fd::AsFd;
        let file = std::fs::File::from(std::io::stdin().as_fd().try_clone_to_owned().ok()?);
        // SAFETY: the `File` owns its descriptor (a duplicate of stdin), which stays open and
        // the same until the `AsyncFd` that owns the `File` is dropped.
        let fd = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(file, tokio::io::Interest::READABLE)
        }
        .ok()?;
        Some(TtyInput { fd })
    }

    #[cfg(not(unix))]
    fn new() -> Option<TtyInput> {
        None
    }

    /// The next keystrokes into `buf` (0: the terminal hung up); never ready when `this` is
    /// `None`. Cancel-safe: the read happens in the same poll that finds the terminal ready.
    async fn read(this: &mut Option<TtyInput>, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(tty) = this else {
            return std::future::pending().await;
        };
        tty.read_ready(buf).await
    }

    #[cfg(unix)]
    async fn read_ready(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        loop {
            let mut guard = self.fd.readable().await?;
            let mut fds = [PollFd::new(guard.get_inner(), PollFlags::IN)];
            let zero = Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            if poll(&mut fds, Some(&zero))? == 0 {
                guard.clear_ready();
                continue;
            }
            let read = (&mut guard.get_inner()).read(buf);
            if let Err(e) = &read
                && matches!(
                    e.kind(),
                    std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
                )
            {
                // A signal came first, or another reader took the input: not the end.
                guard.clear_ready();
                continue;
            }
            if matches!(read, Ok(n) if n < buf.len()) {
                // All there was is read (a terminal hands over at most its 4 KiB queue): wait for
                // the next wake instead of polling once more. Input that came meanwhile is a new
                // event, which this does not clear.
                guard.clear_ready();
            }
            return read;
        }
    }

    #[cfg(not(unix))]
    async fn read_ready(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        std::future::pending().await
    }
}

/// Sends `window-change` whenever the local terminal changes size (`SIGWINCH`; elsewhere a
/// poll every 250 ms).
async fn follow_size(input: ShellInput, tty: bool) {
    if !tty {
        return;
    }
    let mut last = size();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut winch) = signal(SignalKind::window_change()) else {
            return;
        };
        while winch.recv().await.is_some() {
            let now = size();
            if now != last {
                last = now;
                if input.resize(now.0, now.1).await.is_err() {
                    return;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
        loop {
            tick.tick().await;
            let now = size();
            if now != last {
                last = now;
                if input.resize(now.0, now.1).await.is_err() {
                    return;
                }
            }
        }
    }
}
