//! Downloads from notebook windows ("Download" in JupyterLab's File menu or file browser).
//!
//! Left alone, the webview writes a download silently: on Linux into the download folder, or
//! into the app's working directory when there is none. Here each download is first written to
//! a private staging folder (its own 0700 subfolder of the app's cache) and, once complete, the
//! user chooses where it goes in a save dialog that suggests its name; cancelling deletes it. A
//! failed download leaves nothing behind.

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
};

use tauri::{Manager, Runtime, Webview, webview::DownloadEvent};
use tauri_plugin_dialog::{DialogExt, MessageDialogKind};

/// Title of the save dialog (tests find its window by it).
pub const SAVE_TITLE: &str = "Save download";

static NEXT: AtomicU64 = AtomicU64::new(0);

/// The `on_download` handler of notebook windows; `true` lets the webview go on.
pub fn on_download<R: Runtime>(webview: Webview<R>, event: DownloadEvent<'_>) -> bool {
    match event {
        DownloadEvent::Requested { destination, .. } => {
            let staging = match webview.app_handle().path().app_cache_dir() {
                Ok(cache) => cache.join("downloads"),
                Err(e) => {
                    tracing::warn!(error = %e, "no cache folder to receive a download in");
                    return false;
                }
            };
            match stage(&staging, destination) {
                Ok(staged) => {
                    *destination = staged;
                    true
                }
                Err(e) => {
                    tracing::warn!(error = %e, dir = %staging.display(), "cannot stage a download");
                    false
                }
            }
        }
        DownloadEvent::Finished { path, success, .. } => {
            match path {
                Some(path) if success => ask_where(&webview, path),
                Some(path) => discard(&path),
                None => {}
            }
            true
        }
        _ => true,
    }
}

/// A fresh path for a download the webview would write to `suggested`: its file name (only the
/// last component, never a path the page chose) in a new 0700 subfolder of `staging`.
///
/// Errors: the folders cannot be created.
pub fn stage(staging: &Path, suggested: &Path) -> std::io::Result<PathBuf> {
    let name = suggested
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "download".into());
    create_private_dir(staging)?;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = staging.join(format!("{}-{n}", std::process::id()));
        match create_private_dir_new(&dir) {
            Ok(()) => return Ok(dir.join(name)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Moves the finished download `staged` to `to` (a rename, or a copy across file systems) and
/// removes its staging folder.
///
/// Errors: `to` cannot be written; the download then stays staged for another try.
pub fn deliver(staged: &Path, to: &Path) -> std::io::Result<()> {
    if std::fs::rename(staged, to).is_err() {
        std::fs::copy(staged, to)?;
    }
    discard(staged);
    Ok(())
}

/// Removes a staged download and its staging folder.
pub fn discard(staged: &Path) {
    let _ = std::fs::remove_file(staged);
    if let Some(dir) = staged.parent() {
        let _ = std::fs::remove_dir(dir);
    }
}

fn ask_where<R: Runtime>(webview: &Webview<R>, staged: PathBuf) {
    let name = staged
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "download".into());
    let app = webview.app_handle().clone();
    let mut dialog = app
        .dialog()
        .file()
        .set_title(SAVE_TITLE)
        .set_file_name(&name);
    if let Ok(dir) = app.path().download_dir() {
        dialog = dialog.set_directory(dir);
    }
    dialog = dialog.set_parent(&webview.window());
    dialog.save_file(move |chosen| {
        let Some(to) = chosen.and_then(|c| c.into_path().ok()) else {
            discard(&staged);
            return;
        };
        if let Err(e) = deliver(&staged, &to) {
            tracing::warn!(error = %e, to = %to.display(), "cannot save a download");
            app.dialog()
                .message(format!(
                    "{name} could not be saved to {}: {e}. Download it again and choose another \
                     folder.",
                    to.display()
                ))
                .title("Download not saved")
                .kind(MessageDialogKind::Error)
                .show(|_| {});
            discard(&staged);
        }
    });
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    restrict(dir)
}

fn create_private_dir_new(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir(dir)?;
    restrict(dir)
}

#[cfg(unix)]
fn restrict(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

#[cfg(not(unix))]
fn restrict(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downloads_are_staged_privately_under_their_own_name_then_delivered() {
        let tmp = tempfile::tempdir().unwrap();
        let staging = tmp.path().join("downloads");
        // The page's suggested path never decides the folder: only its file name is kept.
        let a = stage(
            &staging,
            Path::new("/home/u/Downloads/../../etc/Untitled.ipynb"),
        )
        .unwrap();
        let b = stage(&staging, Path::new("Untitled.ipynb")).unwrap();
        assert_eq!(a.file_name().unwrap(), "Untitled.ipynb");
        assert!(a.starts_with(&staging) && b.starts_with(&staging));
        assert_ne!(a, b, "two downloads of the same name do not collide");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(a.parent().unwrap())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        assert_eq!(
            stage(&staging, Path::new("/"))
                .unwrap()
                .file_name()
                .unwrap(),
            "download"
        );

        std::fs::write(&a, "{}").unwrap();
        let to = tmp.path().join("chosen.ipynb");
        deliver(&a, &to).unwrap();
        assert_eq!(std::fs::read_to_string(&to).unwrap(), "{}");
        assert!(!a.exists() && !a.parent().unwrap().exists());

        // Cancelled: nothing is left.
        std::fs::write(&b, "x").unwrap();
        discard(&b);
        assert!(!b.parent().unwrap().exists());
    }
}
