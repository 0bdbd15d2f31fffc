//! When the app cannot start: a missing WebView2 runtime (Windows) or a window that cannot be
//! created. Tauri reports both by panicking inside `Builder::run`, before any window exists, so
//! without this the app would vanish silently (release builds on Windows have no console) with
//! nothing in the log. Here such a failure is written to the log and shown in a native message
//! box that says what is missing and how to get it, and the app exits with status 1.
//!
//! Other panics are logged and then handled as before (Rust's default hook); they are bugs, not
//! something the user can install.

use std::path::{Path, PathBuf};

pub use tunnelbook_core::home::{ALREADY_RUNNING, INSTANCE_LOCK, Instance, claim_instance};

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

/// Logs every panic; a startup failure [`explain`] recognises is also shown in a message box,
/// then the process exits with status 1 (tauri's event loop may otherwise hang without a
/// window). `log` is the log file named in the message.
pub fn report_panics(log: PathBuf) {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = if let Some(s) = info.payload().downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = info.payload().downcast_ref::<String>() {
            s.clone()
        } else {
            "(no message)".to_string()
        };
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(panic = %message, %location, "the app panicked");
        if let Some(text) = explain(&message, &log) {
            cannot_start(&text);
        }
        default(info);
    }));
}

/// Logs `text`, shows it in a message box and exits with status 1.
pub fn cannot_start(text: &str) -> ! {
    tracing::error!(reason = %text, "{CANNOT_START_TITLE}");
    eprintln!("{CANNOT_START_TITLE}: {text}");
    show_error(CANNOT_START_TITLE, text);
    std::process::exit(1)
}

/// The held [`INSTANCE_LOCK`] of the running app (managed state: it lives as long as the app).
pub struct InstanceLock(pub std::fs::File);

/// A native, modal error box (Windows: `MessageBoxW`). Elsewhere stderr and the log are enough:
/// a Linux desktop without a working display could not show a box either.
#[cfg(windows)]
fn show_error(title: &str, text: &str) {
    use windows_sys::Win32::UI::WindowsAndMessaging::{
        MB_ICONERROR, MB_OK, MB_SETFOREGROUND, MessageBoxW,
    };
    let wide = |s: &str| s.encode_utf16().chain([0]).collect::<Vec<u16>>();
    let (title, text) = (wide(title), wide(text));
    #[allow(unsafe_code)]
    // SAFETY: both pointers are NUL-terminated UTF-16 buffers that outlive the call; no owner
    // window (null) is allowed.
    unsafe {
        MessageBoxW(
            std::ptr::null_mut(),
            text.as_ptr(),
            title.as_ptr(),
            MB_OK | MB_ICONERROR | MB_SETFOREGROUND,
        );
    }
}

#[cfg(not(windows))]
fn show_error(_title: &str, _text: &str) {}

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
