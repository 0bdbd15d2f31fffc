//! Downloads from notebook windows ("Download" in JupyterLab's File menu or file browser).
//!
//! Left alone, the webview writes a download silently: on Linux into the download folder, or
//! into the app's working directory when there is none. Here each download is first written to
//! a private staging folder (its own 0700 subfolder of the app's cache) and, once complete, the
//! user chooses where it goes in a save dialog that suggests its name; cancelling deletes it. A
//! failed download leaves nothing behind. The staging is core's ([`tunnelbook_core::sftp::staging`]).

use std::path::PathBuf;

use tauri::{Manager, Runtime, Webview, webview::DownloadEvent};
use tauri_plugin_dialog::{DialogExt, MessageDialogKind};
use tunnelbook_core::sftp::staging::{deliver, discard, stage};

/// Title of the save dialog (tests find its window by it).
pub const SAVE_TITLE: &str = "Save download";

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
