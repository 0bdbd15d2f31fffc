//! The notebook window's rules, apart from the window itself: which pages it may show (the
//! notebook server's own, by origin), which server a window is on, the token kept out of the
//! main window ([`NotebookUrls`]), the scripts the app runs in JupyterLab's page (the banner,
//! saving, clearing a stale connection error, links to other sites) and the window's title.
//!
//! The words the window's banner and the notebook's steps say ([`words`]: what happened, in words a
//! person acts on) and what "Open in browser" says when no browser starts live here too.
//!
//! What it leaves out: creating and steering the window (the app, with tauri).

use std::{collections::HashMap, sync::Mutex};

use url::Url;

use crate::secret::Sensitive;

mod page;
#[cfg(test)]
mod tests;
pub mod words;

pub use self::{
    page::{
        BANNER_ID, BannerButton, CONNECTION_ERROR_TITLE, DISMISS_CONNECTION_ERRORS_SCRIPT,
        NEW_TAB_LINKS_OUTSIDE, RESTART_PATH, SAVE_ALL_SCRIPT, banner_script, is_restart_request,
    },
    words::{
        attempts_phrase, disconnected_banner, disconnected_error, ready_step, reconnected_step,
        reconnecting_banner, reconnecting_step, reopened_gone_banner, server_gone_banner,
    },
};

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

/// How long a one-time link made for copying by hand (the app's `browser_link`) waits to be
/// pasted into a browser.
pub const COPIED_LINK_TTL: std::time::Duration = std::time::Duration::from_secs(600);

/// How long a notebook window closed by its own close button gives its saves to reach the host
/// before it goes (Stop and Quit give the same).
pub const SAVE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// "Open in browser" failing; core's `Problem` for it has code `noBrowser` or `internal`.
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    /// The system's browser could not be started: why, in words (never the launcher's command
    /// line, which holds the link).
    #[error("Could not start your web browser: {0}; copy the address instead.")]
    NoBrowser(&'static str),
    /// The one-time local link could not be made (no loopback port).
    #[error("cannot start the local link for the browser: {0}")]
    LocalLink(#[source] std::io::Error),
}

/// A one-time local link ([`super::handoff`]) to `full` (a kept notebook URL with its token) that
/// works once, for `ttl`: what "Open in browser" gives the browser, and what its "copy the
/// address" offers.
///
/// # Errors
/// [`BrowserError::LocalLink`] when the local link cannot be made.
pub async fn browser_link(
    full: Sensitive<String>,
    ttl: std::time::Duration,
) -> Result<String, BrowserError> {
    let link = super::handoff(full, ttl)
        .await
        .map_err(BrowserError::LocalLink)?;
    Ok(link.url)
}

/// What "Open in browser" says when the system's browser could not be started
/// ([`BrowserError::NoBrowser`]). `io`: the kind of I/O error starting the launcher gave;
/// `None`: the desktop refused.
pub fn browser_failure(io: Option<std::io::ErrorKind>) -> BrowserError {
    BrowserError::NoBrowser(match io {
        Some(std::io::ErrorKind::NotFound) => {
            "no program that opens web pages is installed (such as xdg-open)"
        }
        Some(_) => "the desktop's program that opens web pages failed",
        None => "the desktop refused to open a web page",
    })
}
