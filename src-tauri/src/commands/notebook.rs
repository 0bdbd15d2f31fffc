//! Notebook windows and "Open in browser".
//!
//! A notebook window shows a remote page (JupyterLab through the tunnel). Its label is always
//! `jupyter-<n>`: no capability matches that label and none allows a remote URL, so since tauri
//! 2.11.1 every IPC call from the page is refused (see the `notebook_window_has_no_ipc` test).
//! Unlike the main window its prototype is not frozen ([`crate::FREEZE_PROTOTYPE`]): JupyterLab
//! needs to extend built-ins.
//!
//! The window stays on the notebook server: a link or a `window.open` to any other origin opens
//! in the system browser instead (core's [`Navigation`]); a download asks where to save it
//! ([`crate::download`]). Its web data is not persistent (incognito: an ephemeral WebKit
//! context), so the Jupyter login cookie is never written to disk; closing the window also
//! deletes the server's cookies and clears its web data (cache, storage).
//!
//! The main window never holds a notebook's token: it is shown and handed the token-free URL
//! ([`public_url`]); the token is added back here, on the Rust side, when a notebook window
//! opens, and "Open in browser" gives the browser a one-time local link instead.

use std::sync::Mutex;

use tauri::{
    AppHandle, Manager, Runtime, State, Url, WebviewUrl, WebviewWindow, WebviewWindowBuilder,
};
use tauri_plugin_opener::OpenerExt;
pub use tunnelbook_core::jupyter::window::{BannerButton, RESTART_PATH, SAVE_WAIT, window_title};
use tunnelbook_core::{
    error::Problem,
    jupyter::{
        self,
        window::{
            self, COPIED_LINK_TTL, DISMISS_CONNECTION_ERRORS_SCRIPT, NEW_TAB_LINKS_OUTSIDE,
            Navigation, NotebookUrls, SAVE_ALL_SCRIPT, banner_script, is_notebook_window,
            is_on_server, url_on_server,
        },
    },
    secret::Sensitive,
};

use crate::{error::AppError, state::AppState};

/// Keeps `url` (a notebook URL with its token) and returns the same URL without the token:
/// the form every session summary, server row and command result for the main window carries.
pub fn public_url<R: Runtime>(app: &AppHandle<R>, url: &str) -> String {
    app.manage(NotebookUrls::default());
    app.state::<NotebookUrls>().keep(url)
}

/// The kept notebook URL (token included) for a URL with the same origin, as the main window
/// passes it; a URL of no kept notebook is returned as given.
pub(crate) fn full_url<R: Runtime>(app: &AppHandle<R>, url: &Url) -> Sensitive<String> {
    match app.try_state::<NotebookUrls>() {
        Some(urls) => urls.full(url),
        None => Sensitive::new(url.to_string()),
    }
}

/// Opens notebook `url` (as the main window knows it: without the token) in an app window
/// titled `title`; returns the window's label. One window per server: when a notebook window
/// already shows that server (same address, whatever its path), it is brought to the front
/// (unminimized, shown, focused) and its label returned; a second window would open on a fresh
/// JupyterLab workspace (`…/lab/workspaces/auto-X?reset`), not on what the person has open.
/// A new window gets the URL with its token.
///
/// Async on purpose: creating a window from a synchronous command deadlocks on Windows.
#[tauri::command]
pub async fn open_notebook<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    url: String,
    title: String,
) -> Result<String, AppError> {
    let url = window::http_url(&url)?;
    if let Some(label) = focus_open_window(&app, &url) {
        return Ok(label);
    }
    let full = full_url(&app, &url);
    let label = open_window(&app, &state, full.expose(), &title)?;
    adopt_window(&state, &url, &label);
    Ok(label)
}

/// Makes `label` the notebook window of the session whose notebook runs at `url`'s address
/// (reopened after its window was closed): its banner, its restart and its Stop follow this
/// window from now on.
fn adopt_window(state: &AppState, url: &Url, label: &str) {
    for entry in state.sessions().values_mut() {
        if url_on_server(entry.summary.url.as_deref(), url) {
            entry.summary.window = Some(label.to_string());
        }
    }
}

/// Unminimizes, shows and focuses a notebook window (what fails is logged, not raised).
pub fn to_front<R: Runtime>(window: &tauri::WebviewWindow<R>) {
    for (what, result) in [
        ("unminimize", window.unminimize()),
        ("show", window.show()),
        ("focus", window.set_focus()),
    ] {
        if let Err(e) = result {
            tracing::warn!(error = %e, "cannot {what} the notebook window");
        }
    }
}

/// Brings the open notebook window on the server at `url` to the front (unminimized, shown,
/// focused); returns its label, or `None` when no window shows that server (or the one that did
/// is closing: it is saving its notebooks before it goes).
pub fn focus_open_window<R: Runtime>(app: &AppHandle<R>, url: &Url) -> Option<String> {
    let closing = app
        .try_state::<ClosingWindows>()
        .and_then(|c| c.0.lock().ok().map(|set| set.clone()))
        .unwrap_or_default();
    let window = windows_on(app, url.as_str())
        .into_iter()
        .find(|w| !closing.contains(w.label()))?;
    to_front(&window);
    Some(window.label().to_string())
}

/// Labels of the notebook windows that are closing (their own close button: saving, then gone);
/// "Open notebook" opens a new window rather than focus one of them.
#[derive(Default)]
struct ClosingWindows(Mutex<std::collections::HashSet<String>>);

/// Opens a `jupyter-<n>` window on `url`; returns its label. Call from async code only.
pub fn open_window<R: Runtime>(
    app: &AppHandle<R>,
    state: &AppState,
    url: &str,
    title: &str,
) -> Result<String, AppError> {
    let url = window::http_url(url)?;
    let label = state.new_notebook_label();
    let (nav_app, server, nav_label) = (app.clone(), url.clone(), label.clone());
    let server_origin = url.clone();
    let new_window_app = app.clone();
    let window = WebviewWindowBuilder::new(app, &label, WebviewUrl::External(url))
        .title(title)
        .inner_size(1200.0, 800.0)
        .initialization_script(NEW_TAB_LINKS_OUTSIDE)
        // Its web data (JupyterLab's login cookie, local storage) lives in memory only and goes
        // with the window: nothing of the notebook's login stays on disk after it closes.
        // WebKitGTK lets WebDriver drive one web context only, so under automation (the
        // end-to-end tests) the window shares the app's; `forget_login` then clears its cookies.
        .incognito(!under_automation())
        .on_navigation(move |to| match Navigation::of(&server, to) {
            // The "Restart" button of the "server is gone" banner (the page cannot call the
            // app: the app sees the navigation and keeps the window where it is).
            Navigation::Restart => {
                restart_from_window(&nav_app, &nav_label);
                false
            }
            Navigation::Show => true,
            Navigation::Browser | Navigation::Refuse => {
                open_outside(&nav_app, to);
                false
            }
        })
        // JupyterLab opens documentation and links in rendered Markdown with `target=_blank`:
        // in the user's browser, never as a second, unmanaged app window.
        .on_new_window(move |to, _features| {
            open_outside(&new_window_app, &to);
            tauri::webview::NewWindowResponse::Deny
        })
        // Downloads go through a save dialog instead of landing silently somewhere.
        .on_download(crate::download::on_download)
        .build()?;
    // Closing by the window's own close button: its open notebooks are saved first (as Quit and
    // Stop do), then the server's cookies (the Jupyter login) are deleted, then the window goes.
    let (close_app, close_label) = (app.clone(), label.clone());
    let cleared = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    window.on_window_event(move |event| {
        if let tauri::WindowEvent::CloseRequested { api, .. } = event
            && !cleared.swap(true, std::sync::atomic::Ordering::SeqCst)
            && let Some(window) = close_app.get_webview_window(&close_label)
        {
            api.prevent_close();
            close_app.manage(ClosingWindows::default());
            if let Ok(mut closing) = close_app.state::<ClosingWindows>().0.lock() {
                closing.insert(close_label.clone());
            }
            let server = server_origin.clone();
            let app = close_app.clone();
            // Off the main thread: the webview's cookie calls wait on it.
            tauri::async_runtime::spawn_blocking(move || {
                // Unsaved cells go to the host while the page and its tunnel are still there.
                if let Err(e) = window.eval(SAVE_ALL_SCRIPT) {
                    tracing::warn!(error = %e, "cannot ask the notebook window to save");
                } else {
                    std::thread::sleep(SAVE_WAIT);
                }
                forget_login(&window, &server);
                // The rest of its web data too (the page cache holds JupyterLab's page, whose
                // config names the token), unless another notebook window shares the context.
                let others = app
                    .webview_windows()
                    .keys()
                    .any(|l| is_notebook_window(l) && l.as_str() != window.label());
                if !others && let Err(e) = window.clear_all_browsing_data() {
                    tracing::warn!(error = %e, "cannot clear the notebook window's web data");
                }
                if let Err(e) = window.close() {
                    tracing::warn!(error = %e, "cannot close the notebook window");
                }
                if let Ok(mut closing) = app.state::<ClosingWindows>().0.lock() {
                    closing.remove(window.label());
                }
            });
        }
    });
    Ok(label)
}

/// Whether WebDriver drives the app (`tauri-driver` sets this for the app it starts).
fn under_automation() -> bool {
    std::env::var("TAURI_WEBVIEW_AUTOMATION").as_deref() == Ok("true")
}

/// Deletes the cookies `window` holds for the notebook server at `server` (JupyterLab's login
/// cookie and its XSRF cookie), so none stays in the web data on disk after the window closes.
fn forget_login<R: Runtime>(window: &WebviewWindow<R>, server: &Url) {
    match window.cookies_for_url(server.clone()) {
        Ok(cookies) => {
            for cookie in cookies {
                if let Err(e) = window.delete_cookie(cookie) {
                    tracing::warn!(error = %e, "cannot delete a notebook cookie");
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the notebook window's cookies"),
    }
}

/// Hands a web or mail link to the system; anything else (`file:`, custom schemes) is dropped.
fn open_outside<R: Runtime>(app: &AppHandle<R>, to: &Url) {
    if Navigation::outside(to) == Navigation::Refuse {
        tracing::warn!(
            scheme = to.scheme(),
            "a notebook window link was not opened"
        );
        return;
    }
    // The URL may carry a token: log only where it goes.
    tracing::info!(
        host = to.host_str().unwrap_or(""),
        "opening a notebook link in the browser"
    );
    if let Err(e) = app.opener().open_url(to.as_str(), None::<&str>) {
        tracing::warn!(error = %e, "cannot open the browser");
    }
}

/// Points an open notebook window at `url` (the same server address with a new token, after a
/// restart).
pub fn navigate<R: Runtime>(window: &WebviewWindow<R>, url: &str) -> Result<(), AppError> {
    window.navigate(window::http_url(url)?)?;
    Ok(())
}

/// Shows `message` in a banner across the top of notebook window `window` (with `button`, if
/// any), or removes the banner (`None`). The page is JupyterLab's: the banner is plain DOM put
/// there by the app (the page itself cannot call the app), and it goes with the page when the
/// window navigates. JupyterLab moves down below it, so its menu bar stays in sight and usable.
pub fn set_banner<R: Runtime>(
    window: &WebviewWindow<R>,
    message: Option<&str>,
    button: Option<BannerButton<'_>>,
) {
    let script = banner_script(message, button);
    if let Err(e) = window.eval(script) {
        tracing::warn!(error = %e, "cannot update the notebook window's banner");
    }
}

/// Restarts the notebook server of the session whose notebook window is `label` (the banner's
/// Restart button): what the main window's "Restart server" does. Core ignores it while the
/// server runs, so a page that navigates there otherwise changes nothing.
fn restart_from_window<R: Runtime>(app: &AppHandle<R>, label: &str) {
    let state = app.state::<AppState>();
    let id = state
        .sessions()
        .iter()
        .find(|(_, e)| e.summary.window.as_deref() == Some(label))
        .map(|(id, _)| id.clone());
    match id.map(|id| (state.notebook_control(&id), id)) {
        Some((Ok(control), id)) => {
            tracing::info!(session = %id, "restart asked from the notebook window");
            control.restart_server();
        }
        Some((Err(e), id)) => {
            tracing::warn!(session = %id, error = %e, "cannot restart from the notebook window");
        }
        None => tracing::warn!(
            window = label,
            "a restart was asked from a notebook window that runs no notebook of the app"
        ),
    }
}

/// Closes the "Server Connection Error" dialog JupyterLab raised in notebook window `window`
/// while its connection or server was down: after a reconnect it is stale, and under the "server
/// is gone" banner the banner says what happened and what to do. Other dialogs (a save
/// conflict, a kernel question) are the person's and stay.
pub fn dismiss_connection_errors<R: Runtime>(window: &WebviewWindow<R>) {
    if let Err(e) = window.eval(DISMISS_CONNECTION_ERRORS_SCRIPT) {
        tracing::warn!(error = %e, "cannot dismiss JupyterLab's connection error");
    }
}

/// Saves every open document in every notebook window (JupyterLab's `docmanager:save-all`, on
/// the app object the page exposes: core's launch sets `LabApp.expose_app_in_browser`) and gives the saves
/// `wait` to reach the host, so closing the windows (Quit) loses no unsaved cell. A window whose
/// page is not JupyterLab, or an older server without the exposed app, is left as it is.
pub async fn save_all_notebooks<R: Runtime>(app: &AppHandle<R>, wait: std::time::Duration) {
    let windows: Vec<WebviewWindow<R>> = app
        .webview_windows()
        .into_iter()
        .filter(|(label, _)| is_notebook_window(label))
        .map(|(_, w)| w)
        .collect();
    save_documents(&windows, wait).await;
}

/// The notebook windows (`jupyter-<n>`) showing the Jupyter server at `url` (its address: same
/// scheme, host and port; the path and token do not matter), whichever way they were opened
/// (a launch, Reopen, Sessions' Open, Open notebook twice).
pub fn windows_on<R: Runtime>(app: &AppHandle<R>, url: &str) -> Vec<WebviewWindow<R>> {
    let Ok(server) = window::http_url(url) else {
        return Vec::new();
    };
    app.webview_windows()
        .into_iter()
        .filter(|(label, _)| is_notebook_window(label))
        .filter(|(_, w)| w.url().is_ok_and(|at| is_on_server(&server, &at)))
        .map(|(_, w)| w)
        .collect()
}

/// [`save_all_notebooks`] for the given notebook windows only.
pub async fn save_documents<R: Runtime>(windows: &[WebviewWindow<R>], wait: std::time::Duration) {
    for window in windows {
        if let Err(e) = window.eval(SAVE_ALL_SCRIPT) {
            tracing::warn!(error = %e, "cannot ask a notebook window to save");
        }
    }
    if !windows.is_empty() {
        tokio::time::sleep(wait).await;
    }
}

/// Opens notebook `url` (as the main window knows it: without the token) in the default
/// browser. The browser program is started with a one-time local link, never the token (its
/// command line is readable by every local user); the link redirects the browser once to the
/// notebook with its token (core's `jupyter::handoff`).
///
/// Errors: `noBrowser` when the system's browser cannot be started (the message says why in
/// words; the front end offers [`browser_link`] to copy instead), `internal` when the local link
/// cannot be made.
#[tauri::command]
pub async fn open_in_browser<R: Runtime>(app: AppHandle<R>, url: String) -> Result<(), AppError> {
    let link = handoff_link(&app, &url, jupyter::HANDOFF_TTL).await?;
    app.opener()
        .open_url(link.as_str(), None::<&str>)
        .map_err(|e| {
            // The raw error names the launcher and the one-time link: the log keeps it.
            tracing::warn!(error = %e, "cannot start the web browser");
            let io = match &e {
                tauri_plugin_opener::Error::Io(io) => Some(io.kind()),
                _ => None,
            };
            AppError::from(Problem::from(window::browser_failure(io)))
        })
}

/// A one-time local link to notebook `url` (as the main window knows it: without the token) to
/// copy into a browser by hand, when "Open in browser" cannot start one: it holds no token, works
/// once, for [`COPIED_LINK_TTL`] (ten minutes).
///
/// Errors: `internal` when the local link cannot be made; `validation` for a non-web URL.
#[tauri::command]
pub async fn browser_link<R: Runtime>(app: AppHandle<R>, url: String) -> Result<String, AppError> {
    handoff_link(&app, &url, COPIED_LINK_TTL).await
}

/// A one-time local link (core's [`window::browser_link`]) to the kept notebook URL for `url`.
async fn handoff_link<R: Runtime>(
    app: &AppHandle<R>,
    url: &str,
    ttl: std::time::Duration,
) -> Result<String, AppError> {
    let full = full_url(app, &window::http_url(url)?);
    let link = window::browser_link(full, ttl).await;
    link.map_err(|e| Problem::from(e).into())
}
