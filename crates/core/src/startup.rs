//! What the desktop app tells the user when it cannot start: a missing WebView2 runtime (Windows)
//! or a window that cannot be created, said with what to install or check ([`explain`]).
//!
//! What it leaves out: catching the failure and showing the message box (the app).

use std::path::Path;

/// Title of the message box shown when the app cannot start.
pub const CANNOT_START_TITLE: &str = "Tunnelbook cannot start";

/// Where Microsoft's Evergreen WebView2 Runtime installer (the small bootstrapper) is offered.
pub const WEBVIEW2_DOWNLOAD: &str = "https://go.microsoft.com/fwlink/p/?LinkId=2124703";

/// What the user must do when tauri's startup failed with `message` (a panic message or an
/// error's text), or `None` when `message` is not a startup failure the user can act on.
pub fn explain(message: &str, log: &Path) -> Option<String> {
    let lower = message.to_ascii_lowercase();
    let log = log.display();
    if lower.contains("webview runtime") || lower.contains("webview2") {
        return Some(format!(
            "Tunnelbook needs the Microsoft Edge WebView2 Runtime, which is not installed on \
             this computer.\n\nInstall it from {WEBVIEW2_DOWNLOAD} (or run Tunnelbook's \
             installer again, which installs it), then start Tunnelbook again.\n\n\
             ({message}; details in {log})"
        ));
    }
    if lower.contains("create window") || lower.contains("creating window") {
        let what = if cfg!(windows) {
            "Windows refused to create it"
        } else {
            "no graphical display is available (is DISPLAY or WAYLAND_DISPLAY set?)"
        };
        return Some(format!(
            "Tunnelbook could not open its window: {what}.\n\nThe command-line tool \
             `tunnelbook` works without a window.\n\n({message}; details in {log})"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_webview2_says_what_to_install_and_where() {
        let log = Path::new("/home/a/.config/tunnelbook/logs/tunnelbook.log");
        let text = explain(
            "Failed to setup app: runtime error: Could not find the webview runtime, make sure it is installed",
            log,
        )
        .unwrap();
        assert!(text.contains("WebView2 Runtime"), "{text}");
        assert!(text.contains(WEBVIEW2_DOWNLOAD), "{text}");
        assert!(text.contains("tunnelbook.log"), "{text}");
    }

    #[test]
    fn window_failure_is_explained_and_other_panics_are_not() {
        let log = Path::new("tunnelbook.log");
        let text = explain(
            "Failed to setup app: runtime error: failed to create window",
            log,
        )
        .unwrap();
        assert!(text.contains("could not open its window"), "{text}");
        assert_eq!(explain("index out of bounds", log), None);
    }
}
