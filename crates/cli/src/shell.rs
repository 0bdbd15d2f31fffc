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

use tunnelbook_core::ssh::{PtySpec, ShellEvent, ShellInput, ShellSpec};

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
        Err(e) => return connect::unreachable(e),
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
        }
    });
    let spec = ShellSpec {
        pty,
        env: locale_env(),
    };
    let shell = match conn.open_shell(&spec).await {
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
    let mut output = shell.output;
    let input = shell.input;
    pump_stdin(input.clone());
    let resizes = tokio::spawn(follow_size(input.clone(), tty));
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    let exit = loop {
        tokio::select! {
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
            _ = connect::interrupted() => {
                input.close().await;
                break None;
            }
        }
    };
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
