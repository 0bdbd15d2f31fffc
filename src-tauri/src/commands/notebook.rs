//! Notebook windows and "Open in browser".
//!
//! A notebook window shows a remote page (JupyterLab through the tunnel). Its label is always
//! `jupyter-<n>`: no capability matches that label and none allows a remote URL, so since tauri
//! 2.11.1 every IPC call from the page is refused (see the `notebook_window_has_no_ipc` test).

use tauri::{AppHandle, Runtime, State, WebviewUrl, WebviewWindow, WebviewWindowBuilder};
use tauri_plugin_opener::OpenerExt;

use crate::{
    error::{AppError, ErrorCode},
    state::AppState,
};

/// Opens `url` in a new app window titled `title`; returns the window's label.
///
/// Async on purpose: creating a window from a synchronous command deadlocks on Windows.
#[tauri::command]
pub async fn open_notebook<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    url: String,
    title: String,
) -> Result<String, AppError> {
    open_window(&app, &state, &url, &title)
}

/// Opens a `jupyter-<n>` window on `url`; returns its label. Call from async code only.
pub fn open_window<R: Runtime>(
    app: &AppHandle<R>,
    state: &AppState,
    url: &str,
    title: &str,
) -> Result<String, AppError> {
    let url = http_url(url)?;
    let label = state.new_notebook_label();
    WebviewWindowBuilder::new(app, &label, WebviewUrl::External(url))
        .title(title)
        .inner_size(1200.0, 800.0)
        .build()?;
    Ok(label)
}

/// Points an open notebook window at `url` (the same server address with a new token, after a
/// restart).
pub fn navigate<R: Runtime>(window: &WebviewWindow<R>, url: &str) -> Result<(), AppError> {
    window.navigate(http_url(url)?)?;
    Ok(())
}

/// Opens `url` in the default browser.
#[tauri::command]
pub async fn open_in_browser<R: Runtime>(app: AppHandle<R>, url: String) -> Result<(), AppError> {
    let url = http_url(&url)?;
    app.opener()
        .open_url(url.as_str(), None::<&str>)
        .map_err(|e| AppError::new(ErrorCode::Internal, format!("cannot open the browser: {e}")))
}

/// Only web pages: a `file:` or custom-scheme URL has no business in a notebook window.
fn http_url(url: &str) -> Result<tauri::Url, AppError> {
    let parsed: tauri::Url = url
        .parse()
        .map_err(|e| AppError::new(ErrorCode::Validation, format!("not a URL: {url} ({e})")))?;
    match parsed.scheme() {
        "http" | "https" => Ok(parsed),
        other => Err(AppError::new(
            ErrorCode::Validation,
            format!("refusing a {other}: URL"),
        )),
    }
}
