//! Terminal tabs: core's [`Terminals`] (login shells over a connected host's open connection, no
//! second login); their output goes out as `terminal` events, keystrokes and resizes come back.

use tauri::{AppHandle, Emitter, Manager, Runtime, State};
use tunnelbook_core::terminal::Terminals;
pub use tunnelbook_core::terminal::{TerminalEvent, TerminalOpened, TerminalUpdate};

use crate::{
    error::{AppError, ErrorCode},
    state::AppState,
};

/// Name of the event that carries a [`TerminalEvent`].
pub const TERMINAL_EVENT: &str = "terminal";

fn terminals<R: Runtime>(app: &AppHandle<R>) -> Terminals {
    if app.try_state::<Terminals>().is_none() {
        app.manage(Terminals::default());
    }
    app.state::<Terminals>().inner().clone()
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
    let emitter = app.clone();
    let emit = move |event: TerminalEvent| {
        let _ = emitter.emit(TERMINAL_EVENT, event);
    };
    Ok(terminals(&app).open(&conn, cols, rows, emit).await?)
}

/// Sends what the user typed or pasted to terminal `terminal_id`.
#[tauri::command]
pub async fn terminal_input<R: Runtime>(
    app: AppHandle<R>,
    terminal_id: String,
    data: String,
) -> Result<(), AppError> {
    let input = terminals(&app).input(&terminal_id)?;
    Ok(input.write(data.as_bytes()).await?)
}

/// Tells the host terminal `terminal_id` is now `cols` × `rows` cells.
#[tauri::command]
pub async fn resize_terminal<R: Runtime>(
    app: AppHandle<R>,
    terminal_id: String,
    cols: u32,
    rows: u32,
) -> Result<(), AppError> {
    let input = terminals(&app).input(&terminal_id)?;
    Ok(input.resize(cols.max(1), rows.max(1)).await?)
}

/// Closes terminal `terminal_id` (the host hangs up its shell).
#[tauri::command]
pub async fn close_terminal<R: Runtime>(
    app: AppHandle<R>,
    terminal_id: String,
) -> Result<(), AppError> {
    terminals(&app).close(&terminal_id).await;
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
