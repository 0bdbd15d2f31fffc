//! When the app cannot start: a missing WebView2 runtime (Windows) or a window that cannot be
//! created. Tauri reports both by panicking inside `Builder::run`, before any window exists, so
//! without this the app would vanish silently (release builds on Windows have no console) with
//! nothing in the log. Here such a failure is written to the log and shown in a native message
//! box that says what is missing and how to get it (core's [`explain`]), and the app exits with
//! status 1.
//!
//! Other panics are logged and then handled as before (Rust's default hook); they are bugs, not
//! something the user can install.

use std::path::PathBuf;

pub use tunnelbook_core::home::{ALREADY_RUNNING, Instance, claim_instance};
pub use tunnelbook_core::startup::{CANNOT_START_TITLE, explain};

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
