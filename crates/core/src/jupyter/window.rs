//! The notebook window's rules, apart from the window itself: which pages it may show (the
//! notebook server's own, by origin), which server a window is on, the token kept out of the
//! main window ([`NotebookUrls`]), the scripts the app runs in JupyterLab's page (the banner,
//! saving, clearing a stale connection error, links to other sites) and the window's title.
//!
//! What it leaves out: creating and steering the window (the app, with tauri).

use std::{collections::HashMap, sync::Mutex};

use url::Url;

use crate::secret::Sensitive;

/// A URL a notebook window refuses to show (its `validation` problem says which).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not a URL at all.
    #[error("not a URL: {url} ({reason})")]
    NotAUrl {
        /// What was given.
        url: String,
        /// Why it does not parse.
        reason: String,
    },
    /// A URL, but not a web page (`file:`, a custom scheme).
    #[error("refusing a {0}: URL")]
    NotWeb(String),
}

/// Window labels of notebook windows start with this (`jupyter-<n>`): no capability of the app
/// matches it, so a notebook page gets no IPC.
pub const LABEL_PREFIX: &str = "jupyter-";

/// The label of the `n`th notebook window (`jupyter-<n>`).
pub fn window_label(n: u32) -> String {
    format!("{LABEL_PREFIX}{n}")
}

/// Whether window `label` is a notebook window.
pub fn is_notebook_window(label: &str) -> bool {
    label.starts_with(LABEL_PREFIX)
}

/// The notebook URLs with their tokens, by origin (`http://127.0.0.1:PORT`): the main window
/// only ever sees their token-free twins ([`NotebookUrls::keep`]) and hands those back, and the
/// token is looked up here ([`NotebookUrls::full`]).
#[derive(Default)]
pub struct NotebookUrls(Mutex<HashMap<String, Sensitive<String>>>);

impl NotebookUrls {
    /// Keeps `url` (a notebook URL with its token) and returns the same URL without the token:
    /// the form every session summary, server row and command result for the main window
    /// carries. An unparsable `url` gives an empty string.
    pub fn keep(&self, url: &str) -> String {
        let Ok(parsed) = url.parse::<Url>() else {
            return String::new();
        };
        self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(
            parsed.origin().ascii_serialization(),
            Sensitive::new(url.to_string()),
        );
        without_token(&parsed).to_string()
    }

    /// The kept notebook URL (token included) for a URL with the same origin, as the main
    /// window passes it; a URL of no kept notebook is returned as given.
    pub fn full(&self, url: &Url) -> Sensitive<String> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&url.origin().ascii_serialization())
            .cloned()
            .unwrap_or_else(|| Sensitive::new(url.to_string()))
    }
}

/// `url` without its `token` query parameter.
pub fn without_token(url: &Url) -> Url {
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

/// `url` parsed, when it is a web page: a `file:` or custom-scheme URL has no business in a
/// notebook window. Errors: [`UrlError`], saying what is wrong.
pub fn http_url(url: &str) -> Result<Url, UrlError> {
    let parsed: Url = url
        .parse()
        .map_err(|e: url::ParseError| UrlError::NotAUrl {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
    match parsed.scheme() {
        "http" | "https" => Ok(parsed),
        other => Err(UrlError::NotWeb(other.to_string())),
    }
}

/// The title of a notebook window: `JupyterLab — <host> — <GPU>` (`GPU 3`, or `CPU only`).
pub fn window_title(host: &str, gpu_label: Option<&str>) -> String {
    format!("JupyterLab — {host} — {}", gpu_label.unwrap_or("CPU only"))
}

/// Whether the notebook window may show `to`: pages of the notebook server at `server` (same
/// scheme, host and port), and the `about:`/`blob:`/`data:` documents JupyterLab puts in frames
/// (HTML and PDF viewers).
pub fn is_notebook_page(server: &Url, to: &Url) -> bool {
    matches!(to.scheme(), "about" | "blob" | "data") || to.origin() == server.origin()
}

/// What the notebook window on the server at `server` does with a navigation to `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Navigation {
    /// The banner's Restart button ([`is_restart_request`]): restart the window's notebook
    /// server and stay on the page.
    Restart,
    /// A page of the notebook server ([`is_notebook_page`]): show it.
    Show,
    /// A web or mail link elsewhere: hand it to the system's browser, stay on the page.
    Browser,
    /// Anything else (`file:`, custom schemes): dropped.
    Refuse,
}

impl Navigation {
    /// The navigation to `to` in the window on the notebook server at `server`.
    pub fn of(server: &Url, to: &Url) -> Self {
        if is_restart_request(server, to) {
            Navigation::Restart
        } else if is_notebook_page(server, to) {
            Navigation::Show
        } else {
            Navigation::outside(to)
        }
    }

    /// A link to `to` that the window does not show (a new window, a link elsewhere): to the
    /// browser when it is a web or mail link, else refused.
    pub fn outside(to: &Url) -> Self {
        if matches!(to.scheme(), "http" | "https" | "mailto") {
            Navigation::Browser
        } else {
            Navigation::Refuse
        }
    }
}

/// Whether a window at `at` shows the Jupyter server at `server`: the same origin (scheme, host,
/// port). A window's own `about:`/`blob:` frames do not count: only its page's address.
pub fn is_on_server(server: &Url, at: &Url) -> bool {
    matches!(at.scheme(), "http" | "https") && at.origin() == server.origin()
}

/// Whether the notebook at `own` (a session's notebook URL, as the main window knows it) is on
/// the server at `server`.
pub fn url_on_server(own: Option<&str>, server: &Url) -> bool {
    own.and_then(|u| u.parse::<Url>().ok())
        .is_some_and(|own| is_on_server(&own, server))
}

/// Runs in the notebook window's page before JupyterLab: a click on a link to another site that
/// asks for a new tab (`target=_blank`, as JupyterLab renders every Markdown link), and a
/// `window.open` of another site (JupyterLab's Help menu), navigate the window instead, which the
/// navigation handler turns into the system browser while the window stays on JupyterLab. Left
/// to WebKitGTK such a link either opens nothing (JupyterLab cancels the click and opens a popup,
/// which WebKit may block) or a bare app window. Same-origin links, `file:` and friends, and
/// modified clicks are left alone.
pub const NEW_TAB_LINKS_OUTSIDE: &str = r#"(() => {
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

/// Element id of the banner a notebook window shows while its connection or server is down.
pub const BANNER_ID: &str = "tunnelbook-banner";

/// Path on the notebook server's address that the "server is gone" banner's Restart button
/// navigates to. No Jupyter page lives there: the window's navigation handler sees it, restarts
/// the window's notebook server and stays on the page. The notebook
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

/// The script that shows `message` in a banner across the top of a notebook window (with
/// `button`, if any), or removes the banner (`None`); the app runs it in the window. The banner
/// is plain DOM put there by the app (the page itself cannot call the app), and it goes with the
/// page when the window navigates. It is idempotent, and the message is inserted as text (JSON), so
/// nothing in it is run or parsed as HTML. The banner sits above the page, not over it: the
/// page's `<body>` becomes a box starting below the banner (JupyterLab's shell fills its body),
/// and goes back as it was when the banner is removed; a `resize` event makes JupyterLab lay
/// itself out again in the new size.
pub fn banner_script(message: Option<&str>, button: Option<BannerButton<'_>>) -> String {
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
pub fn is_restart_request(server: &Url, to: &Url) -> bool {
    to.origin() == server.origin() && to.path() == RESTART_PATH
}

/// Title of JupyterLab's dialog for a lost server connection (its `connectionlost` plugin).
pub const CONNECTION_ERROR_TITLE: &str = "Server Connection Error";

/// The script that clears a stale connection error from a notebook window: clicks the button of
/// each JupyterLab dialog
/// (`.jp-Dialog`) titled [`CONNECTION_ERROR_TITLE`] (its "Close"), which resolves it as
/// JupyterLab expects, with its "Do not show this message again in this session" box checked so
/// the next failed poll does not raise it again over the app's banner; a dialog without a button
/// is removed.
pub const DISMISS_CONNECTION_ERRORS_SCRIPT: &str = r#"(() => {
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

/// How long a notebook window closed by its own close button gives its saves to reach the host
/// before it goes (Stop and Quit give the same).
pub const SAVE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Saves every open document of the JupyterLab page it runs in (`docmanager:save-all`, on the
/// app object the page exposes: core's launch sets `LabApp.expose_app_in_browser`); a page that
/// is not JupyterLab is left as it is.
pub const SAVE_ALL_SCRIPT: &str = r#"(() => {
  const app = window.jupyterapp;
  if (app && app.commands && app.commands.hasCommand("docmanager:save-all")) {
    app.commands.execute("docmanager:save-all").catch(() => {});
  }
})();"#;

/// How long a one-time link made for copying by hand (the app's `browser_link`) waits to be
/// pasted into a browser.
pub const COPIED_LINK_TTL: std::time::Duration = std::time::Duration::from_secs(600);

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

    #[test]
    fn the_main_window_gets_the_url_without_its_token_and_the_app_keeps_it() {
        let urls = NotebookUrls::default();
        let public = urls.keep("http://127.0.0.1:8890/lab?token=s3cret");
        assert_eq!(public, "http://127.0.0.1:8890/lab");
        let full = urls.full(&"http://127.0.0.1:8890/lab/tree/a.ipynb".parse().unwrap());
        assert_eq!(full.expose(), "http://127.0.0.1:8890/lab?token=s3cret");
        // A URL of no kept notebook is given back as it is.
        let other = urls.full(&"http://127.0.0.1:8891/lab".parse().unwrap());
        assert_eq!(other.expose(), "http://127.0.0.1:8891/lab");
        assert_eq!(urls.keep("not a url"), "");
        assert!(http_url("file:///etc/passwd").is_err());
        assert!(is_notebook_window(&window_label(3)) && !is_notebook_window("main"));
    }

    #[test]
    fn navigations_stay_restart_go_to_the_browser_or_are_refused() {
        let server = http_url("http://127.0.0.1:8890/lab?token=x").unwrap();
        let nav = |u: &str| Navigation::of(&server, &u.parse().unwrap());
        assert_eq!(
            nav("http://127.0.0.1:8890/lab/tree/a.ipynb"),
            Navigation::Show
        );
        assert_eq!(
            nav(&format!("http://127.0.0.1:8890{RESTART_PATH}")),
            Navigation::Restart
        );
        assert_eq!(nav("https://jupyter.org/"), Navigation::Browser);
        assert_eq!(nav("mailto:a@b.c"), Navigation::Browser);
        assert_eq!(nav("file:///etc/passwd"), Navigation::Refuse);
    }
}
