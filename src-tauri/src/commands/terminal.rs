//! Terminal tabs: interactive login shells over a connected host's open connection (no second
//! login), their output as `terminal` events, keystrokes and resizes back.

use std::{
    collections::HashMap,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use base64::Engine;
use serde::Serialize;
use tauri::{AppHandle, Emitter, Manager, Runtime, State};
use ts_rs::TS;
use tunnelbook_core::ssh::{PtySpec, ShellEvent, ShellInput, ShellSpec};

use crate::{
    error::{AppError, ErrorCode},
    state::AppState,
};

/// Name of the event that carries a [`TerminalEvent`].
pub const TERMINAL_EVENT: &str = "terminal";

/// A terminal that opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct TerminalEvent {
    /// The terminal.
    pub terminal_id: String,
    /// What happened.
    pub update: TerminalUpdate,
}

/// One change of a terminal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
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

/// The open terminals' keyboards, by id.
#[derive(Default)]
struct Terminals {
    next: AtomicU64,
    inputs: Mutex<HashMap<String, ShellInput>>,
}

fn terminals<R: Runtime>(app: &AppHandle<R>) -> State<'_, Terminals> {
    if app.try_state::<Terminals>().is_none() {
        app.manage(Terminals::default());
    }
    app.state::<Terminals>()
}

fn input<R: Runtime>(app: &AppHandle<R>, terminal_id: &str) -> Result<ShellInput, AppError> {
    terminals(app)
        .inputs
        .lock()
        .map_err(|_| AppError::new(ErrorCode::Internal, "terminal registry poisoned"))?
        .get(terminal_id)
        .cloned()
        .ok_or_else(|| {
            AppError::new(
                ErrorCode::NotFound,
                format!("terminal {terminal_id} has ended; open a new shell"),
            )
        })
}

/// Opens a login shell on a `cols` × `rows` pty (`xterm-256color`) over session `session_id`'s
/// connection; its output arrives as `terminal` events.
#[tauri::command]
pub async fn open_terminal<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    session_id: String,
    cols: u32,
    rows: u32,
) -> Result<TerminalOpened, AppError> {
    let conn = state.connection(&session_id)?;
    let spec = ShellSpec {
        pty: Some(PtySpec {
            term: "xterm-256color".into(),
            cols: cols.max(1),
            rows: rows.max(1),
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
    let registry = terminals(&app);
    let terminal_id = format!("t{}", registry.next.fetch_add(1, Ordering::Relaxed) + 1);
    registry
        .inputs
        .lock()
        .map_err(|_| AppError::new(ErrorCode::Internal, "terminal registry poisoned"))?
        .insert(terminal_id.clone(), shell.input);
    let mut output = shell.output;
    let id = terminal_id.clone();
    let emitter = app.clone();
    tauri::async_runtime::spawn(async move {
        let b64 = base64::engine::general_purpose::STANDARD;
        while let Some(ev) = output.next().await {
            let update = match ev {
                ShellEvent::Stdout(data) | ShellEvent::Stderr(data) => TerminalUpdate::Output {
                    data: b64.encode(&data),
                },
                ShellEvent::Dropped(n) => TerminalUpdate::Dropped {
                    bytes: u32::try_from(n).unwrap_or(u32::MAX),
                },
                ShellEvent::Exited(exit) => TerminalUpdate::Exited {
                    status: exit.status,
                    signal: exit.signal,
                    connection_lost: exit.connection_lost,
                },
            };
            let _ = emitter.emit(
                TERMINAL_EVENT,
                TerminalEvent {
                    terminal_id: id.clone(),
                    update,
                },
            );
        }
        if let Ok(mut inputs) = terminals(&emitter).inputs.lock() {
            inputs.remove(&id);
        }
    });
    Ok(TerminalOpened {
        terminal_id,
        destination: conn.destination().to_string(),
        multiplexers,
    })
}

/// Sends what the user typed or pasted to terminal `terminal_id`.
#[tauri::command]
pub async fn terminal_input<R: Runtime>(
    app: AppHandle<R>,
    terminal_id: String,
    data: String,
) -> Result<(), AppError> {
    Ok(input(&app, &terminal_id)?.write(data.as_bytes()).await?)
}

/// Tells the host terminal `terminal_id` is now `cols` × `rows` cells.
#[tauri::command]
pub async fn resize_terminal<R: Runtime>(
    app: AppHandle<R>,
    terminal_id: String,
    cols: u32,
    rows: u32,
) -> Result<(), AppError> {
    Ok(input(&app, &terminal_id)?
        .resize(cols.max(1), rows.max(1))
        .await?)
}

/// Closes terminal `terminal_id` (the host hangs up its shell).
#[tauri::command]
pub async fn close_terminal<R: Runtime>(
    app: AppHandle<R>,
    terminal_id: String,
) -> Result<(), AppError> {
    if let Ok(input) = input(&app, &terminal_id) {
        input.close().await;
    }
    Ok(())
}

/// The system terminal program "Open in my terminal" starts (the scope in
/// capabilities/main.json allows exactly this one per platform).
#[cfg(windows)]
const SYSTEM_TERMINAL: &str = "wt.exe";
#[cfg(target_os = "macos")]
const SYSTEM_TERMINAL: &str = "osascript";
#[cfg(not(any(windows, target_os = "macos")))]
const SYSTEM_TERMINAL: &str = "x-terminal-emulator";

/// Checks, before "Open in my terminal" starts anything, that the system terminal program and
/// the `tunnelbook` command it runs are on this computer's PATH (looked up as the shell does).
/// Errors: `unsupported`, saying which program is missing and what to do instead.
#[tauri::command]
pub fn check_my_terminal() -> Result<(), AppError> {
    match missing_program(std::env::var_os("PATH")) {
        None => Ok(()),
        Some(message) => Err(AppError::new(ErrorCode::Unsupported, message)),
    }
}

/// What "Open in my terminal" lacks on `path` (a PATH value), in words; `None`: nothing.
fn missing_program(path: Option<std::ffi::OsString>) -> Option<String> {
    let cwd = std::env::current_dir().unwrap_or_default();
    let found = |program: &str| which::which_in(program, path.as_ref(), &cwd).is_ok();
    if !found(SYSTEM_TERMINAL) {
        return Some(format!(
            "no system terminal found ({SYSTEM_TERMINAL} is not on PATH); use a terminal tab here \
             instead"
        ));
    }
    if !found("tunnelbook") {
        return Some(
            "the `tunnelbook` command is not on this computer's PATH (the app's installer does \
             not add it yet), so your terminal could not run it; use a terminal tab here instead"
                .into(),
        );
    }
    None
}

#[cfg(all(test, unix))]
mod tests {
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
        let none = missing_program(path.clone()).unwrap();
        assert!(none.contains(SYSTEM_TERMINAL), "{none}");
        program(dir.path(), SYSTEM_TERMINAL);
        let no_cli = missing_program(path.clone()).unwrap();
        assert!(no_cli.contains("`tunnelbook` command is not"), "{no_cli}");
        program(dir.path(), "tunnelbook");
        assert_eq!(missing_program(path), None);
    }
}
