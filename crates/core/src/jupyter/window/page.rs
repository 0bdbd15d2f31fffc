//! The scripts the app runs in a notebook window's JupyterLab page: links to other sites to the
//! browser, the banner (with its Restart button), saving every document, clearing a stale
//! connection error.

use url::Url;

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

/// Saves every open document of the JupyterLab page it runs in (`docmanager:save-all`, on the
/// app object the page exposes: core's launch sets `LabApp.expose_app_in_browser`); a page that
/// is not JupyterLab is left as it is.
pub const SAVE_ALL_SCRIPT: &str = r#"(() => {
  const app = window.jupyterapp;
  if (app && app.commands && app.commands.hasCommand("docmanager:save-all")) {
    app.commands.execute("docmanager:save-all").catch(() => {});
  }
})();"#;
