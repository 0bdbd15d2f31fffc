//! Terminal tabs: interactive login shells on a `cols` × `rows` pty over an open connection (no
//! second login), kept by id; their output as [`TerminalEvent`]s (bytes base64, as they cross to
//! a web front end), keystrokes and resizes back by id.
//!
//! What it leaves out: delivering the events (the app emits them as `terminal` events) and the
//! local terminal of the CLI's `shell` ([`crate::ssh::Shell`] straight to stdin/stdout).

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use base64::Engine;
use serde::Serialize;

use crate::{
    error::{ErrorCode, Problem},
    ssh::{Connection, PtySpec, ShellEvent, ShellInput, ShellSpec, SshError},
};

/// A terminal that opened.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TerminalOpened {
    /// Its id, named by later commands and events.
    pub terminal_id: String,
    /// `user@host[:port]`.
    pub destination: String,
    /// The terminal multiplexers the host has (`tmux`, `screen`), for the advice that a shell
    /// does not survive the connection but a tmux session does.
    pub multiplexers: Vec<String>,
}

/// What happened in a terminal.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TerminalEvent {
    /// The terminal.
    pub terminal_id: String,
    /// What happened.
    pub update: TerminalUpdate,
}

/// One change of a terminal.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum TerminalUpdate {
    /// Bytes for the screen, base64 (a UTF-8 character may be split between two events).
    Output {
        /// The bytes, base64.
        data: String,
    },
    /// Output the app could not keep up with was dropped.
    Dropped {
        /// How many bytes.
        bytes: u32,
    },
    /// The shell ended; nothing follows.
    Exited {
        /// Its exit status.
        status: Option<u32>,
        /// The signal that ended it.
        signal: Option<String>,
        /// The connection ended under it (the host went away or the session was closed).
        connection_lost: bool,
    },
}

impl From<ShellEvent> for TerminalUpdate {
    fn from(event: ShellEvent) -> Self {
        match event {
            ShellEvent::Stdout(data) | ShellEvent::Stderr(data) => TerminalUpdate::Output {
                data: base64::engine::general_purpose::STANDARD.encode(&data),
            },
            ShellEvent::Dropped(n) => TerminalUpdate::Dropped {
                bytes: u32::try_from(n).unwrap_or(u32::MAX),
            },
            ShellEvent::Exited(exit) => TerminalUpdate::Exited {
                status: exit.status,
                signal: exit.signal,
                connection_lost: exit.connection_lost,
            },
        }
    }
}

/// The open terminals' keyboards, by id (`t1`, `t2`, …). Cheap to clone; clones share them.
#[derive(Clone, Default)]
pub struct Terminals {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    next: AtomicU64,
    inputs: Mutex<HashMap<String, ShellInput>>,
}

impl Terminals {
    /// Opens a login shell on a `cols` × `rows` pty (`xterm-256color`, `LANG=C.UTF-8`) over
    /// `conn`, and looks for tmux / screen on the host meanwhile. Its updates go to `emit` until
    /// it exits (then it is forgotten).
    ///
    /// # Errors
    /// The host refused the shell or the pty, or the connection is closed.
    pub async fn open(
        &self,
        conn: &Connection,
        cols: u32,
        rows: u32,
        emit: impl Fn(TerminalEvent) + Send + 'static,
    ) -> Result<TerminalOpened, SshError> {
        let spec = ShellSpec {
            pty: Some(PtySpec {
                term: "xterm-256color".into(),
                cols: cols.max(1),
                rows: rows.max(1),
                modes: PtySpec::utf8_modes(),
            }),
            env: vec![("LANG".into(), "C.UTF-8".into())],
        };
        let probe = conn.exec(
            "for m in tmux screen; do command -v \"$m\" >/dev/null 2>&1 && echo \"$m\"; done; true",
        );
        let (shell, probe) = tokio::join!(conn.open_shell(&spec), probe);
        let shell = shell?;
        let multiplexers = probe
            .map(|o| {
                o.stdout_text()
                    .split_whitespace()
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        let terminal_id = format!("t{}", self.inner.next.fetch_add(1, Ordering::Relaxed) + 1);
        self.lock().insert(terminal_id.clone(), shell.input);
        let mut output = shell.output;
        let (id, inner) = (terminal_id.clone(), self.inner.clone());
        tokio::spawn(async move {
            while let Some(event) = output.next().await {
                emit(TerminalEvent {
                    terminal_id: id.clone(),
                    update: event.into(),
                });
            }
            Terminals { inner }.lock().remove(&id);
        });
        Ok(TerminalOpened {
            terminal_id,
            destination: conn.destination().to_string(),
            multiplexers,
        })
    }

    /// The keyboard of terminal `terminal_id`.
    ///
    /// # Errors
    /// Code `notFound`: it has ended (open a new shell).
    pub fn input(&self, terminal_id: &str) -> Result<ShellInput, Problem> {
        self.lock().get(terminal_id).cloned().ok_or_else(|| {
            Problem::new(
                ErrorCode::NotFound,
                format!("terminal {terminal_id} has ended; open a new shell"),
            )
        })
    }

    /// Closes terminal `terminal_id` (the host hangs up its shell); nothing when it has ended.
    pub async fn close(&self, terminal_id: &str) {
        if let Ok(input) = self.input(terminal_id) {
            input.close().await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ShellInput>> {
        // A poisoned map only means another thread panicked mid-insert; the map is still usable.
        self.inner.inputs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The system terminal program "Open in my terminal" starts (the scope in the app's
/// capabilities/main.json allows exactly this one per platform).
#[cfg(windows)]
pub const SYSTEM_TERMINAL: &str = "wt.exe";
/// The system terminal program "Open in my terminal" starts (the scope in the app's
/// capabilities/main.json allows exactly this one per platform).
#[cfg(target_os = "macos")]
pub const SYSTEM_TERMINAL: &str = "osascript";
/// The system terminal program "Open in my terminal" starts (the scope in the app's
/// capabilities/main.json allows exactly this one per platform).
#[cfg(not(any(windows, target_os = "macos")))]
pub const SYSTEM_TERMINAL: &str = "x-terminal-emulator";

/// Checks, before "Open in my terminal" starts anything, that [`SYSTEM_TERMINAL`] and the
/// `tunnelbook` command it runs are on `path` (a PATH value, looked up as the shell does).
///
/// # Errors
/// `unsupported`, saying which program is missing and what to do instead.
pub fn check_my_terminal(path: Option<std::ffi::OsString>) -> Result<(), Problem> {
    let cwd = std::env::current_dir().unwrap_or_default();
    let found = |program: &str| which::which_in(program, path.as_ref(), &cwd).is_ok();
    let missing = if !found(SYSTEM_TERMINAL) {
        format!(
            "no system terminal found ({SYSTEM_TERMINAL} is not on PATH); use a terminal tab here \
             instead"
        )
    } else if !found("tunnelbook") {
        "the `tunnelbook` command is not on this computer's PATH (the app's installer does not \
         add it yet), so your terminal could not run it; use a terminal tab here instead"
            .into()
    } else {
        return Ok(());
    };
    Err(Problem::new(ErrorCode::Unsupported, missing))
}

#[cfg(all(test, unix))]
mod my_terminal_tests {
    #![allow(clippy::unwrap_used)]

    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn program(dir: &std::path::Path, name: &str) {
        let file = dir.join(name);
        std::fs::write(&file, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn open_in_my_terminal_names_the_program_that_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = Some(dir.path().as_os_str().to_owned());
        let none = check_my_terminal(path.clone()).unwrap_err();
        assert_eq!(none.code, ErrorCode::Unsupported);
        assert!(none.message.contains(SYSTEM_TERMINAL), "{none:?}");
        program(dir.path(), SYSTEM_TERMINAL);
        let no_cli = check_my_terminal(path.clone()).unwrap_err();
        assert!(
            no_cli.message.contains("`tunnelbook` command is not"),
            "{no_cli:?}"
        );
        program(dir.path(), "tunnelbook");
        assert_eq!(check_my_terminal(path), Ok(()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssh::ShellExit;

    #[test]
    fn shell_output_crosses_as_base64_and_an_exit_says_why() {
        let out: TerminalUpdate = ShellEvent::Stdout(b"hi\xff".to_vec().into()).into();
        assert_eq!(
            serde_json::to_value(&out).unwrap(),
            serde_json::json!({"kind": "output", "data": "aGn/"})
        );
        let exit: TerminalUpdate = ShellEvent::Exited(ShellExit {
            status: None,
            signal: Some("HUP".into()),
            connection_lost: true,
        })
        .into();
        assert_eq!(
            serde_json::to_value(&exit).unwrap(),
            serde_json::json!({"kind": "exited", "status": null, "signal": "HUP", "connectionLost": true})
        );
    }

    #[test]
    fn an_ended_terminal_says_to_open_a_new_shell() {
        let Err(e) = Terminals::default().input("t9") else {
            panic!("no terminal t9 was opened");
        };
        assert_eq!(e.code, ErrorCode::NotFound);
        assert_eq!(e.message, "terminal t9 has ended; open a new shell");
    }
}
