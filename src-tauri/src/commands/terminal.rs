//! Terminal tabs: core's [`Terminals`] (login shells over a connected host's open connection, no
//! second login); their output goes out as `terminal` events, keystrokes and resizes come back.

use tauri::{AppHandle, Emitter, Manager, Runtime, State};
use tunnelbook_core::terminal::{self, Terminals};
pub use tunnelbook_core::terminal::{TerminalEvent, TerminalOpened, TerminalUpdate};

use crate::{error::AppError, state::AppState};

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

/// Checks, before "Open in my terminal" starts anything, that the system terminal program and
/// the `tunnelbook` command it runs are on this computer's PATH (looked up as the shell does).
/// Errors: `unsupported`, saying which program is missing and what to do instead.
#[tauri::command]
pub fn check_my_terminal() -> Result<(), AppError> {
    Ok(terminal::check_my_terminal(std::env::var_os("PATH"))?)
}
