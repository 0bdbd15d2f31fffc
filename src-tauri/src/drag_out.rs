//! Dragging remote files out of the Files view onto the desktop, a file manager or another app.
//!
//! A native drag carries local files, so each drag's file (or folder) is first downloaded into a
//! private folder of its own under the app's cache (`<cache>/drag-out/<pid>-<n>/<name>`, 0700,
//! see [`crate::download::stage`]); the drag (CrabNebula's drag-rs, the library under
//! tauri-plugin-drag) then offers that copy. Drop targets copy it from there, some only later
//! (a browser's upload field reads the file when the form is sent), so the copies stay until the
//! app quits, and are removed then ([`clean`]) and at the next start when it did not quit
//! cleanly. The paths hold a process id, a counter and the remote file's name: nothing secret.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Mutex,
};

use tauri::{AppHandle, Manager, Runtime};

use crate::error::{AppError, ErrorCode};

/// The folder under the app's cache that drag-out copies are prepared in.
pub const DIR: &str = "drag-out";

/// The most a drag out prepares, in bytes (a file's size, or a folder's total); bigger ones are
/// refused with a sentence that points to Download, which asks where to save and shows progress
/// without a mouse button held.
pub const LIMIT: u64 = 2_000_000_000;

/// The drag icon (the app's icon).
const ICON: &[u8] = include_bytes!("../icons/32x32.png");

/// The sentence a too-big drag out gets: what, how big, what to do instead.
pub fn too_big(name: &str, bytes: u64) -> String {
    format!(
        "{name} is {} — too big to drag out (the limit is {}). Use Download to save it.",
        size(bytes),
        size(LIMIT)
    )
}

/// `1.5 GB`-style sizes, as the Files view writes them.
fn size(bytes: u64) -> String {
    let units = ["kB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1000.0;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    format!("{v:.1} {}", units[i])
}

/// Files already prepared for a drag, by session and remote path, with the remote size and
/// modification time they were copied at: dragging the same unchanged file again (after the
/// button was let go while it was prepared) starts at once.
#[derive(Default)]
pub struct Prepared(Mutex<HashMap<PreparedKey, PreparedCopy>>);

/// A session id and a remote path.
type PreparedKey = (String, String);
/// The local copy, and the remote size and modification time it was copied at.
type PreparedCopy = (PathBuf, u64, u32);

impl Prepared {
    /// The local copy of `remote` on `session`, when it is still there and the remote file still
    /// has `size` bytes and modification time `mtime`.
    pub fn get(&self, session: &str, remote: &str, size: u64, mtime: u32) -> Option<PathBuf> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (local, s, m) = map.get(&(session.to_string(), remote.to_string()))?;
        let fresh = *s == size
            && *m == mtime
            && std::fs::metadata(local).is_ok_and(|meta| meta.is_file() && meta.len() == size);
        fresh.then(|| local.clone())
    }

    /// Remembers the local copy of a file.
    pub fn put(&self, session: &str, remote: &str, local: PathBuf, size: u64, mtime: u32) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(
            (session.to_string(), remote.to_string()),
            (local, size, mtime),
        );
    }
}

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
        clean_dir(&dir);
    }
}

fn clean_dir(dir: &Path) {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => tracing::debug!("drag-out copies removed"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(error = %e, "cannot remove the drag-out copies"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_big_says_what_and_what_to_do() {
        assert_eq!(
            too_big("weights.bin", 3_400_000_000),
            "weights.bin is 3.4 GB — too big to drag out (the limit is 2.0 GB). Use Download to \
             save it."
        );
        assert_eq!(size(999), "999 B");
    }

    #[test]
    fn a_prepared_file_is_reused_only_while_unchanged() {
        let tmp = tempfile::tempdir().unwrap();
        let local = tmp.path().join("a.csv");
        std::fs::write(&local, "12345").unwrap();
        let p = Prepared::default();
        p.put("s1", "/h/a.csv", local.clone(), 5, 100);
        assert_eq!(p.get("s1", "/h/a.csv", 5, 100), Some(local.clone()));
        assert_eq!(p.get("s1", "/h/a.csv", 5, 101), None, "changed on the host");
        assert_eq!(p.get("s1", "/h/a.csv", 6, 100), None, "changed on the host");
        assert_eq!(p.get("s2", "/h/a.csv", 5, 100), None, "another session");
        std::fs::write(&local, "1234").unwrap();
        assert_eq!(p.get("s1", "/h/a.csv", 5, 100), None, "changed here");
        clean_dir(tmp.path());
        assert!(!tmp.path().exists());
        clean_dir(tmp.path());
    }
}
