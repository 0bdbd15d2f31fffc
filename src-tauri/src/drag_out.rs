//! Dragging remote files out of the Files view onto the desktop, a file manager or another app:
//! the platform glue. Each drag's file (or folder) is first copied into a private folder of its
//! own under the app's cache (`<cache>/drag-out/<pid>-<n>/<name>`, 0700; core's
//! [`tunnelbook_core::sftp::staging`] prepares it); the drag (CrabNebula's drag-rs, the library
//! under tauri-plugin-drag) then offers that copy. Drop targets copy it from there, some only
//! later (a browser's upload field reads the file when the form is sent), so the copies stay
//! until the app quits, and are removed then ([`clean`]) and at the next start when it did not
//! quit cleanly.

use std::path::PathBuf;

use tauri::{AppHandle, Manager, Runtime};
/// Files already prepared for a drag (core's copies, reused while unchanged).
pub use tunnelbook_core::sftp::staging::DragCopies as Prepared;

use crate::error::{AppError, ErrorCode};

/// The folder under the app's cache that drag-out copies are prepared in.
pub const DIR: &str = "drag-out";

/// The drag icon (the app's icon).
const ICON: &[u8] = include_bytes!("../icons/32x32.png");

/// The folder drag-out copies are prepared in.
///
/// Errors: the platform has no cache folder.
pub fn staging<R: Runtime>(app: &AppHandle<R>) -> Result<PathBuf, AppError> {
    app.path()
        .app_cache_dir()
        .map(|d| d.join(DIR))
        .map_err(|e| {
            AppError::new(
                ErrorCode::Internal,
                format!("no cache folder to prepare the drag in: {e}"),
            )
        })
}

/// Removes every drag-out copy (at quit, and at start for those of a run that did not quit).
pub fn clean<R: Runtime>(app: &AppHandle<R>) {
    if let Ok(dir) = staging(app) {
        tunnelbook_core::sftp::staging::clean(&dir);
    }
}

/// Starts the native drag of the local file or folder `local` out of `window`, on the main
/// thread. Returns `false`, starting nothing, when the mouse button is no longer held (it was
/// let go while the file was prepared; checked on Linux and Windows, not on macOS).
///
/// Errors: the window has no native window, or the platform refused the drag.
pub async fn start<R: Runtime>(window: tauri::Window<R>, local: PathBuf) -> Result<bool, AppError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let w = window.clone();
    window
        .run_on_main_thread(move || {
            let _ = tx.send(start_here(&w, local));
        })
        .map_err(|e| {
            AppError::new(
                ErrorCode::Internal,
                format!("the drag could not start: {e}"),
            )
        })?;
    rx.await.map_err(|_| {
        AppError::new(
            ErrorCode::Internal,
            "the drag could not start: the window closed",
        )
    })?
}

fn start_here<R: Runtime>(window: &tauri::Window<R>, local: PathBuf) -> Result<bool, AppError> {
    let failed = |e: &dyn std::fmt::Display| {
        AppError::new(
            ErrorCode::Internal,
            format!("the drag could not start: {e}"),
        )
    };
    #[cfg(target_os = "linux")]
    let native = {
        let native = window.gtk_window().map_err(|e| failed(&e))?;
        if !button_held(&native) {
            return Ok(false);
        }
        native
    };
    #[cfg(windows)]
    if !button_held() {
        return Ok(false);
    }
    #[cfg(not(target_os = "linux"))]
    let native = window.clone();
    drag::start_drag(
        &native,
        drag::DragItem::Files(vec![local.clone()]),
        drag::Image::Raw(ICON.to_vec()),
        |result, _| tracing::debug!(?result, "drag out ended"),
        drag::Options::default(),
    )
    .map_err(|e| failed(&e))?;
    #[cfg(target_os = "linux")]
    gtk_uris::keep_answering(&native, &local);
    Ok(true)
}

/// drag-rs (2.1) answers the drop target's request for the dragged files only until the drop is
/// sent, and with unescaped `file://` URIs: a target that asks once the file is dropped (GTK's
/// `DestDefaults::ALL`, Qt apps) got nothing, and a name with `%` or `#` named another file.
/// This answer stays, with URIs escaped by GLib, until the next drag replaces it.
#[cfg(target_os = "linux")]
mod gtk_uris {
    use std::{cell::RefCell, path::Path};

    use gtk::{glib::SignalHandlerId, prelude::*};

    thread_local! {
        // The main thread's current answer: the window and its `drag-data-get` handler.
        static ANSWER: RefCell<Option<(gtk::ApplicationWindow, SignalHandlerId)>> =
            const { RefCell::new(None) };
    }

    /// Answers requests for the dragged data with `local`'s URI (connected after drag-rs's
    /// handler, so it runs last and its data is what the target gets).
    pub fn keep_answering(window: &gtk::ApplicationWindow, local: &Path) {
        let Ok(uri) = gtk::glib::filename_to_uri(local, None) else {
            return;
        };
        let id = window.connect_drag_data_get(move |_, _, data, _, _| {
            data.set_uris(&[uri.as_str()]);
        });
        ANSWER.with(|a| {
            if let Some((w, old)) = a.borrow_mut().replace((window.clone(), id)) {
                w.disconnect(old);
            }
        });
    }
}

/// Whether the left mouse button is down now (GDK asks the X server / compositor).
#[cfg(target_os = "linux")]
fn button_held(window: &gtk::ApplicationWindow) -> bool {
    use gtk::prelude::*;
    let Some(gdk_window) = window.window() else {
        return true;
    };
    let Some(pointer) = gdk_window
        .display()
        .default_seat()
        .and_then(|s| s.pointer())
    else {
        return true;
    };
    let (_, _, _, mask) = gdk_window.device_position(&pointer);
    mask.contains(gtk::gdk::ModifierType::BUTTON1_MASK)
}

/// Whether the left mouse button is down now.
#[cfg(windows)]
#[allow(unsafe_code)]
fn button_held() -> bool {
    use windows_sys::Win32::UI::Input::KeyboardAndMouse::{GetAsyncKeyState, VK_LBUTTON};
    // SAFETY: GetAsyncKeyState only reads the key state; any virtual key code is valid.
    let state = unsafe { GetAsyncKeyState(i32::from(VK_LBUTTON)) };
    state < 0
}
