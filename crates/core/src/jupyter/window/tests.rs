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

/// Trial of #14, finding 15: the launcher's raw error (with the one-time link) was shown; a
/// browser that cannot start is said in words (its code: `error`'s tests).
#[test]
fn a_browser_that_cannot_start_is_said_in_words() {
    let e = browser_failure(Some(std::io::ErrorKind::Other));
    assert!(matches!(e, BrowserError::NoBrowser(_)));
    assert_eq!(
        e.to_string(),
        "Could not start your web browser: the desktop's program that opens web pages failed; \
         copy the address instead."
    );
    let missing = browser_failure(Some(std::io::ErrorKind::NotFound)).to_string();
    assert!(
        missing.contains("no program that opens web pages"),
        "{missing}"
    );
    assert!(browser_failure(None).to_string().contains("refused"));
}
