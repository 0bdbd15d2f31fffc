//! Notebook windows and "Open in browser".
//!
//! A notebook window shows a remote page (JupyterLab through the tunnel). Its label is always
//! `jupyter-<n>`: no capability matches that label and none allows a remote URL, so since tauri
//! 2.11.1 every IPC call from the page is refused (see the `notebook_window_has_no_ipc` test).
//! Unlike the main window its prototype is not frozen ([`crate::FREEZE_PROTOTYPE`]): JupyterLab
//! needs to extend built-ins.
//!
//! The window stays on the notebook server: a link or a `window.open` to any other origin opens
//! in the system browser instead ([`is_notebook_page`]); a download asks where to save it
//! ([`crate::download`]). Its web data is not persistent (incognito: an ephemeral WebKit
//! context), so the Jupyter login cookie is never written to disk; closing the window also
//! deletes the server's cookies and clears its web data (cache, storage).
//!
//! The main window never holds a notebook's token: it is shown and handed the token-free URL
//! ([`public_url`]); the token is added back here, on the Rust side, when a notebook window
//! opens, and "Open in browser" gives the browser a one-time local link instead.

use std::{collections::HashMap, sync::Mutex};

use tauri::{AppHandle, Manager, Runtime, State, WebviewUrl, WebviewWindow, WebviewWindowBuilder};
use tauri_plugin_opener::OpenerExt;
use tunnelbook_core::{jupyter, secret::Sensitive};

use crate::{
    error::{AppError, ErrorCode},
    state::AppState,
};

/// The notebook URLs with their tokens, by origin (`http://127.0.0.1:PORT`), kept on the Rust
/// side: the main window only ever sees their token-free twins ([`public_url`]) and hands
/// those back to [`open_notebook`] / [`open_in_browser`], which look the token up here.
#[derive(Default)]
pub struct NotebookUrls(Mutex<HashMap<String, Sensitive<String>>>);

/// Keeps `url` (a notebook URL with its token) and returns the same URL without the token:
/// the form every session summary, server row and command result for the main window carries.
pub fn public_url<R: Runtime>(app: &AppHandle<R>, url: &str) -> String {
    let Ok(parsed) = url.parse::<tauri::Url>() else {
        return String::new();
    };
    let public = without_token(&parsed);
    app.manage(NotebookUrls::default());
    if let Ok(mut urls) = app.state::<NotebookUrls>().0.lock() {
        urls.insert(
            parsed.origin().ascii_serialization(),
            Sensitive::new(url.to_string()),
        );
    }
    public.to_string()
}

/// The kept notebook URL (token included) for a URL with the same origin, as the main window
/// passes it; a URL of no kept notebook is returned as given.
fn full_url<R: Runtime>(app: &AppHandle<R>, url: &tauri::Url) -> Sensitive<String> {
    app.try_state::<NotebookUrls>()
        .and_then(|urls| {
            let urls = urls.0.lock().ok()?;
            urls.get(&url.origin().ascii_serialization()).cloned()
        })
        .unwrap_or_else(|| Sensitive::new(url.to_string()))
}

/// `url` without its `token` query parameter.
fn without_token(url: &tauri::Url) -> tauri::Url {
    let mut public = url.clone();
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "token")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        public.set_query(None);
    } else {
        public.query_pairs_mut().clear().extend_pairs(kept);
    }
    public
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
    let url = http_url(&url)?;
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
fn adopt_window(state: &AppState, url: &tauri::Url, label: &str) {
    for entry in state.sessions().values_mut() {
        let same = entry
            .summary
            .url
            .as_deref()
            .and_then(|u| u.parse::<tauri::Url>().ok())
            .is_some_and(|own| is_on_server(&own, url));
        if same {
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
pub fn focus_open_window<R: Runtime>(app: &AppHandle<R>, url: &tauri::Url) -> Option<String> {
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
    let url = http_url(url)?;
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
        .on_navigation(move |to| {
            // The "Restart" button of the "server is gone" banner (the page cannot call the
            // app: the app sees the navigation and keeps the window where it is).
            if is_restart_request(&server, to) {
                restart_from_window(&nav_app, &nav_label);
                return false;
            }
            if is_notebook_page(&server, to) {
                return true;
            }
            open_outside(&nav_app, to);
            false
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
                    .any(|l| l.starts_with("jupyter-") && l.as_str() != window.label());
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
fn forget_login<R: Runtime>(window: &WebviewWindow<R>, server: &tauri::Url) {
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

/// Runs in the notebook window's page before JupyterLab: a click on a link to another site that
/// asks for a new tab (`target=_blank`, as JupyterLab renders every Markdown link), and a
/// `window.open` of another site (JupyterLab's Help menu), navigate the window instead, which the
/// navigation handler turns into the system browser while the window stays on JupyterLab. Left
/// to WebKitGTK such a link either opens nothing (JupyterLab cancels the click and opens a popup,
/// which WebKit may block) or a bare app window. Same-origin links, `file:` and friends, and
/// modified clicks are left alone.
const NEW_TAB_LINKS_OUTSIDE: &str = r#"(() => {
  const outside = (href) => {
    try {
      const url = new URL(href, location.href);
      return url.origin !== location.origin && /^(https?|mailto):$/.test(url.protocol) ? url.href : null;
    } catch { return null; }
  };
  window.addEventListener("click", (e) => {
    if (e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
    const a = e.target instanceof Element ? e.target.closest("a[href]") : null;
    if (!a || !a.target || a.target === "_self") return;
    const href = outside(a.href);
    if (!href) return;
    e.preventDefault();
    e.stopPropagation();
    location.href = href;
  }, true);
  const open = window.open;
  window.open = function (url, ...rest) {
    const href = url === undefined ? null : outside(String(url));
    if (!href) return open.call(this, url, ...rest);
    location.href = href;
    return null;
  };
})();"#;

/// The title of a notebook window: `JupyterLab — <host> — <GPU>` (`GPU 3`, or `CPU only`).
pub fn window_title(host: &str, gpu_label: Option<&str>) -> String {
    format!("JupyterLab — {host} — {}", gpu_label.unwrap_or("CPU only"))
}

/// Whether the notebook window may show `to`: pages of the notebook server at `server` (same
/// scheme, host and port), and the `about:`/`blob:`/`data:` documents JupyterLab puts in frames
/// (HTML and PDF viewers).
pub fn is_notebook_page(server: &tauri::Url, to: &tauri::Url) -> bool {
    matches!(to.scheme(), "about" | "blob" | "data") || to.origin() == server.origin()
}

/// Hands a web or mail link to the system; anything else (`file:`, custom schemes) is dropped.
fn open_outside<R: Runtime>(app: &AppHandle<R>, to: &tauri::Url) {
    if !matches!(to.scheme(), "http" | "https" | "mailto") {
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
    window.navigate(http_url(url)?)?;
    Ok(())
}

/// Element id of the banner a notebook window shows while its connection or server is down.
pub const BANNER_ID: &str = "tunnelbook-banner";

/// Path on the notebook server's address that the "server is gone" banner's Restart button
/// navigates to. No Jupyter page lives there: the window's navigation handler sees it, restarts
/// the window's notebook server ([`restart_from_window`]) and stays on the page. The notebook
/// window has no IPC, so a navigation is its only way to ask the app for something.
pub const RESTART_PATH: &str = "/tunnelbook/restart-server";

/// A button in the banner: its label and the address it navigates to (on the notebook server's
/// address, seen and handled by the window's navigation handler).
#[derive(Debug, Clone, Copy)]
pub struct BannerButton<'a> {
    /// What the button says ("Restart server").
    pub label: &'a str,
    /// Path it navigates to, on the page's own address ([`RESTART_PATH`]).
    pub path: &'a str,
    /// What the banner says once it is clicked, until the app answers ("Restarting…").
    pub pending: &'a str,
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

/// The script behind [`set_banner`]: idempotent, and the message is inserted as text (JSON), so
/// nothing in it is run or parsed as HTML. The banner sits above the page, not over it: the
/// page's `<body>` becomes a box starting below the banner (JupyterLab's shell fills its body),
/// and goes back as it was when the banner is removed; a `resize` event makes JupyterLab lay
/// itself out again in the new size.
fn banner_script(message: Option<&str>, button: Option<BannerButton<'_>>) -> String {
    let json = |v: Option<&str>| serde_json::to_string(&v).unwrap_or_else(|_| "null".into());
    let message = json(message);
    let (label, path, pending) = match button {
        Some(b) => (
            json(Some(b.label)),
            json(Some(b.path)),
            json(Some(b.pending)),
        ),
        None => ("null".into(), "null".into(), "null".into()),
    };
    format!(
        r#"(() => {{
  const msg = {message}, label = {label}, path = {path}, pending = {pending};
  const body = document.body;
  let b = document.getElementById("{BANNER_ID}");
  const relayout = () => window.dispatchEvent(new Event("resize"));
  if (msg === null) {{
    if (b) b.remove();
    if (body && body.dataset.tunnelbookStyle !== undefined) {{
      body.style.cssText = body.dataset.tunnelbookStyle;
      delete body.dataset.tunnelbookStyle;
      relayout();
    }}
    return;
  }}
  if (!b) {{
    b = document.createElement("div");
    b.id = "{BANNER_ID}";
    b.setAttribute("role", "alert");
    b.style.cssText = "position:fixed;top:0;left:0;right:0;z-index:2147483647;padding:8px 16px;" +
      "background:#9a3412;color:#fff;font:14px/1.4 system-ui,sans-serif;text-align:center;" +
      "box-shadow:0 2px 6px rgba(0,0,0,.3);box-sizing:border-box";
    document.documentElement.appendChild(b);
  }}
  b.textContent = "";
  const text = document.createElement("span");
  text.textContent = msg;
  b.appendChild(text);
  if (label !== null) {{
    const btn = document.createElement("button");
    btn.type = "button";
    btn.textContent = label;
    btn.style.cssText = "margin-left:12px;padding:2px 12px;font:inherit;color:#9a3412;" +
      "background:#fff;border:0;border-radius:4px;cursor:pointer";
    btn.addEventListener("click", () => {{
      btn.disabled = true;
      text.textContent = pending;
      location.href = path;
    }});
    b.appendChild(btn);
  }}
  if (body) {{
    if (body.dataset.tunnelbookStyle === undefined) body.dataset.tunnelbookStyle = body.style.cssText;
    const h = b.getBoundingClientRect().height;
    body.style.cssText = body.dataset.tunnelbookStyle +
      ";position:fixed;top:" + h + "px;left:0;right:0;bottom:0;margin:0;overflow:hidden";
    relayout();
  }}
}})();"#
    )
}

/// Whether a navigation to `to` in the window on the notebook server at `server` is the
/// banner's Restart button ([`RESTART_PATH`] on the server's own address).
pub fn is_restart_request(server: &tauri::Url, to: &tauri::Url) -> bool {
    to.origin() == server.origin() && to.path() == RESTART_PATH
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

/// Title of JupyterLab's dialog for a lost server connection (its `connectionlost` plugin).
pub const CONNECTION_ERROR_TITLE: &str = "Server Connection Error";

/// The script behind [`dismiss_connection_errors`]: clicks the button of each JupyterLab dialog
/// (`.jp-Dialog`) titled [`CONNECTION_ERROR_TITLE`] (its "Close"), which resolves it as
/// JupyterLab expects, with its "Do not show this message again in this session" box checked so
/// the next failed poll does not raise it again over the app's banner; a dialog without a button
/// is removed.
const DISMISS_CONNECTION_ERRORS_SCRIPT: &str = r#"(() => {
  for (const d of document.querySelectorAll(".jp-Dialog")) {
    const h = d.querySelector(".jp-Dialog-header");
    if (!h || !h.textContent.trim().startsWith("Server Connection Error")) continue;
    // "Do not show this message again in this session": the window's banner speaks for the
    // connection from now on (a restart loads a fresh page, where it shows again).
    const c = d.querySelector(".jp-Dialog-footer input[type=checkbox]");
    if (c) c.checked = true;
    const b = d.querySelector(".jp-Dialog-footer button.jp-mod-accept") ||
      d.querySelector(".jp-Dialog-footer button");
    if (b) b.click(); else d.remove();
  }
})();"#;

/// Saves every open document in every notebook window (JupyterLab's `docmanager:save-all`, on
/// the app object the page exposes: core's launch sets `LabApp.expose_app_in_browser`) and gives the saves
/// `wait` to reach the host, so closing the windows (Quit) loses no unsaved cell. A window whose
/// page is not JupyterLab, or an older server without the exposed app, is left as it is.
pub async fn save_all_notebooks<R: Runtime>(app: &AppHandle<R>, wait: std::time::Duration) {
    let windows: Vec<WebviewWindow<R>> = app
        .webview_windows()
        .into_iter()
        .filter(|(label, _)| label.starts_with("jupyter-"))
        .map(|(_, w)| w)
        .collect();
    save_documents(&windows, wait).await;
}

/// The notebook windows (`jupyter-<n>`) showing the Jupyter server at `url` (its address: same
/// scheme, host and port; the path and token do not matter), whichever way they were opened
/// (a launch, Reopen, Sessions' Open, Open notebook twice).
pub fn windows_on<R: Runtime>(app: &AppHandle<R>, url: &str) -> Vec<WebviewWindow<R>> {
    let Ok(server) = http_url(url) else {
        return Vec::new();
    };
    app.webview_windows()
        .into_iter()
        .filter(|(label, _)| label.starts_with("jupyter-"))
        .filter(|(_, w)| w.url().is_ok_and(|at| is_on_server(&server, &at)))
        .map(|(_, w)| w)
        .collect()
}

/// Whether a window at `at` shows the Jupyter server at `server`: the same origin (scheme, host,
/// port). A window's own `about:`/`blob:` frames do not count: only its page's address.
pub fn is_on_server(server: &tauri::Url, at: &tauri::Url) -> bool {
    matches!(at.scheme(), "http" | "https") && at.origin() == server.origin()
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

/// How long a notebook window closed by its own close button gives its saves to reach the host
/// before it goes (Stop and Quit give the same).
pub const SAVE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

const SAVE_ALL_SCRIPT: &str = r#"(() => {
  const app = window.jupyterapp;
  if (app && app.commands && app.commands.hasCommand("docmanager:save-all")) {
    app.commands.execute("docmanager:save-all").catch(() => {});
  }
})();"#;

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
            browser_failure(&e)
        })
}

/// How long a link made by [`browser_link`] waits to be pasted into a browser.
pub const COPIED_LINK_TTL: std::time::Duration = std::time::Duration::from_secs(600);

/// A one-time local link to notebook `url` (as the main window knows it: without the token) to
/// copy into a browser by hand, when "Open in browser" cannot start one: it holds no token, works
/// once, for [`COPIED_LINK_TTL`] (ten minutes).
///
/// Errors: `internal` when the local link cannot be made; `validation` for a non-web URL.
#[tauri::command]
pub async fn browser_link<R: Runtime>(app: AppHandle<R>, url: String) -> Result<String, AppError> {
    handoff_link(&app, &url, COPIED_LINK_TTL).await
}

/// A one-time local link (core's `jupyter::handoff`) to the kept notebook URL for `url`.
async fn handoff_link<R: Runtime>(
    app: &AppHandle<R>,
    url: &str,
    ttl: std::time::Duration,
) -> Result<String, AppError> {
    let full = full_url(app, &http_url(url)?);
    let link = jupyter::handoff(full, ttl).await.map_err(|e| {
        AppError::new(
            ErrorCode::Internal,
            format!("cannot start the local link for the browser: {e}"),
        )
    })?;
    Ok(link.url)
}

/// What "Open in browser" says when the system's browser could not be started: code
/// `noBrowser`, and why in words (not the launcher's command line, which holds the link).
pub fn browser_failure(e: &tauri_plugin_opener::Error) -> AppError {
    let why = match e {
        tauri_plugin_opener::Error::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
            "no program that opens web pages is installed (such as xdg-open)"
        }
        tauri_plugin_opener::Error::Io(_) => "the desktop's program that opens web pages failed",
        _ => "the desktop refused to open a web page",
    };
    AppError::new(
        ErrorCode::NoBrowser,
        format!("Could not start your web browser: {why}; copy the address instead."),
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_names_host_and_gpu() {
        assert_eq!(
            window_title("lab-a100", Some("GPU 3")),
            "JupyterLab — lab-a100 — GPU 3"
        );
        assert_eq!(
            window_title("This computer", None),
            "JupyterLab — This computer — CPU only"
        );
    }

    #[test]
    fn the_banner_message_is_text_not_code() {
        let s = banner_script(Some("lost \"x\" </script><b>"), None);
        assert!(
            s.contains(r#"const msg = "lost \"x\" </script><b>", label = null"#),
            "{s}"
        );
        assert!(s.contains("text.textContent = msg"));
        assert!(banner_script(None, None).contains("const msg = null,"));
    }

    /// Trial of #14, finding 12: the banner covered JupyterLab's menu bar. The page now starts
    /// below it and is put back as it was when the banner goes (the e2e suite measures it).
    #[test]
    fn the_banner_pushes_the_page_down_and_gives_it_back() {
        let s = banner_script(Some("lost"), None);
        assert!(s.contains(";position:fixed;top:\" + h + \"px;"), "{s}");
        assert!(
            s.contains("body.dataset.tunnelbookStyle = body.style.cssText"),
            "{s}"
        );
        let gone = banner_script(None, None);
        assert!(
            gone.contains("body.style.cssText = body.dataset.tunnelbookStyle"),
            "{gone}"
        );
        assert!(gone.contains("new Event(\"resize\")"), "{gone}");
    }

    /// Finding 13: the "server is gone" banner has a Restart button; it navigates to the
    /// restart path on the page's own address, which the window's navigation handler takes.
    #[test]
    fn the_restart_button_navigates_to_the_restart_path_the_window_intercepts() {
        let button = BannerButton {
            label: "Restart server",
            path: RESTART_PATH,
            pending: "Restarting…",
        };
        let s = banner_script(Some("gone"), Some(button));
        assert!(s.contains(r#"label = "Restart server""#), "{s}");
        assert!(s.contains(&format!(r#"path = "{RESTART_PATH}""#)), "{s}");
        assert!(s.contains("location.href = path"), "{s}");
        let server = http_url("http://127.0.0.1:8890/lab?token=x").unwrap();
        let at = |u: &str| is_restart_request(&server, &u.parse().unwrap());
        assert!(at(&format!("http://127.0.0.1:8890{RESTART_PATH}")));
        assert!(!at(&format!("http://127.0.0.1:8891{RESTART_PATH}")));
        assert!(!at(
            "http://127.0.0.1:8890/lab/tree/tunnelbook/restart-server"
        ));
        assert!(!at("http://127.0.0.1:8890/lab"));
    }

    /// Trial of #14, finding 15: the launcher's raw error (with the one-time link) was shown.
    #[test]
    fn a_browser_that_cannot_start_is_said_in_words_with_a_code() {
        let failed = tauri_plugin_opener::Error::Io(std::io::Error::other(
            "Launcher \"gio\" \"open\" \"http://127.0.0.1:1/handoff/ab\" failed with ExitStatus(unix_wait_status(512))",
        ));
        let e = browser_failure(&failed);
        assert_eq!(e.code, ErrorCode::NoBrowser);
        assert!(
            e.message.starts_with("Could not start your web browser: "),
            "{e:?}"
        );
        assert!(e.message.ends_with("copy the address instead."), "{e:?}");
        for raw in ["gio", "handoff", "ExitStatus", "Launcher"] {
            assert!(!e.message.contains(raw), "{raw} in {e:?}");
        }
        let missing = tauri_plugin_opener::Error::Io(std::io::ErrorKind::NotFound.into());
        assert!(
            browser_failure(&missing)
                .message
                .contains("no program that opens web pages")
        );
    }

    #[test]
    fn the_public_url_has_no_token() {
        let url = http_url("http://127.0.0.1:8890/lab?token=s3cret&reset").unwrap();
        assert_eq!(
            without_token(&url).as_str(),
            "http://127.0.0.1:8890/lab?reset="
        );
        let url = http_url("http://127.0.0.1:8890/lab?token=s3cret").unwrap();
        assert_eq!(without_token(&url).as_str(), "http://127.0.0.1:8890/lab");
    }

    #[test]
    fn the_stale_connection_error_dialog_is_dismissed_and_only_it() {
        let s = DISMISS_CONNECTION_ERRORS_SCRIPT;
        assert!(
            s.contains(&format!("startsWith(\"{CONNECTION_ERROR_TITLE}\")")),
            "{s}"
        );
        assert!(
            s.contains(".jp-Dialog-header") && s.contains("b.click()"),
            "{s}"
        );
        // No other dialog is touched: the title is checked before anything is clicked.
        assert!(s.find("continue").unwrap() < s.find("b.click()").unwrap());
    }

    #[test]
    fn stop_finds_every_window_on_the_server_by_its_address() {
        let server = http_url("http://127.0.0.1:8890/lab").unwrap();
        let on = |u: &str| is_on_server(&server, &u.parse().unwrap());
        // Reopened after a restart, opened twice, on another notebook: all the same server.
        assert!(on("http://127.0.0.1:8890/lab?token=x"));
        assert!(on("http://127.0.0.1:8890/lab/tree/a.ipynb"));
        assert!(on("http://127.0.0.1:8890/lab/workspaces/auto-E?reset=1"));
        // Another server's window stays open.
        assert!(!on("http://127.0.0.1:8891/lab"));
        assert!(!on("about:blank"));
        assert!(!on("https://jupyter.org/"));
    }

    #[test]
    fn only_the_notebook_server_stays_in_the_window() {
        let server = http_url("http://127.0.0.1:8890/lab?token=x").unwrap();
        let page = |u: &str| is_notebook_page(&server, &u.parse().unwrap());
        assert!(page("http://127.0.0.1:8890/lab/tree/a.ipynb"));
        assert!(page("http://127.0.0.1:8890/files/a.csv?download=1"));
        assert!(page("about:blank"));
        assert!(page("blob:http://127.0.0.1:8890/0b1c"));
        // Another port on the same machine is another server; other sites go to the browser.
        assert!(!page("http://127.0.0.1:8891/lab"));
        assert!(!page("http://localhost:8890/lab"));
        assert!(!page("https://jupyter.org/"));
        assert!(!page("file:///etc/passwd"));
    }
}
