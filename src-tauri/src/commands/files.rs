//! The Files view: a per-host SFTP browser over the host session's open connection (no second
//! login, no second 2FA prompt): list, make folder, rename, delete, upload (file picker or files
//! dropped on the window) and download (save dialog), with progress events; a file or folder
//! dragged out of the window to the desktop lands there ([`drag_out`]). The logic is core's
//! ([`tunnelbook_core::sftp`]); these commands ask, call it and tell.

use tauri::{AppHandle, Emitter, Runtime, State};
use tauri_plugin_dialog::DialogExt;
use tokio_util::sync::CancellationToken;
pub use tunnelbook_core::sftp::{FilesListing, FilesProgress, staging::DragOut};
use tunnelbook_core::{
    error::Problem,
    sftp::{Progress, Sftp, TransferProgress, Uploads, reporting},
};

use crate::{drag_out, error::AppError, state::AppState};

/// Name of the event that carries a [`FilesProgress`].
pub const FILES_PROGRESS_EVENT: &str = "files-progress";

/// Title of the upload file picker (tests find its window by it).
pub const UPLOAD_TITLE: &str = "Upload to the host";

/// Title of the download save dialog (tests find its window by it).
pub const DOWNLOAD_TITLE: &str = "Download from the host";

/// Core's error, with the code core gives it.
fn err(e: impl Into<Problem>) -> AppError {
    e.into().into()
}

async fn open(state: &AppState, session_id: &str) -> Result<Sftp, AppError> {
    let connection = state.connection(session_id)?;
    Sftp::open(&connection).await.map_err(err)
}

/// A function that tells the windows how the transfer `what` of `session_id` goes.
fn teller<R: Runtime>(
    app: &AppHandle<R>,
    session_id: &str,
    direction: &str,
    what: &str,
) -> impl FnMut(TransferProgress, bool, Option<String>) + use<R> {
    let (app, session_id) = (app.clone(), session_id.to_string());
    let (direction, what) = (direction.to_string(), what.to_string());
    move |progress, done, error| {
        let (session_id, direction, what) = (session_id.clone(), direction.clone(), what.clone());
        let p = FilesProgress {
            session_id,
            direction,
            what,
            progress,
            done,
            error,
        };
        let _ = app.emit(FILES_PROGRESS_EVENT, p);
    }
}

/// The folder `path` on session `session_id`'s host (`None` or `~`: the home folder).
#[tauri::command]
pub async fn list_files(
    state: State<'_, AppState>,
    session_id: String,
    path: Option<String>,
) -> Result<FilesListing, AppError> {
    let sftp = open(&state, &session_id).await?;
    let r = sftp.listing(path.as_deref()).await;
    sftp.close();
    r.map_err(err)
}

/// Makes the folder `path` (and missing parents).
#[tauri::command]
pub async fn make_folder(
    state: State<'_, AppState>,
    session_id: String,
    path: String,
) -> Result<(), AppError> {
    let sftp = open(&state, &session_id).await?;
    let r = sftp.mkdir_all(&path).await;
    sftp.close();
    r.map_err(err)
}

/// Renames `from` to `to` (a name without `/` stays in the same folder).
#[tauri::command]
pub async fn rename_file(
    state: State<'_, AppState>,
    session_id: String,
    from: String,
    to: String,
) -> Result<(), AppError> {
    let sftp = open(&state, &session_id).await?;
    let r = sftp.rename_to(&from, &to).await;
    sftp.close();
    r.map_err(err)
}

/// Deletes the file, or the folder with everything in it, at `path` (the UI asks first).
#[tauri::command]
pub async fn delete_file(
    state: State<'_, AppState>,
    session_id: String,
    path: String,
) -> Result<(), AppError> {
    let sftp = open(&state, &session_id).await?;
    let r = sftp.remove(&path).await;
    sftp.close();
    r.map_err(err)
}

/// Uploads the local files `paths` into the remote folder `dir` (files dropped on the window,
/// or chosen in the picker); returns how many went up. Folders among them go up whole.
#[tauri::command]
pub async fn upload_paths<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    session_id: String,
    dir: String,
    paths: Vec<String>,
) -> Result<u32, AppError> {
    let uploads = Uploads::of(&paths).map_err(err)?;
    let sftp = open(&state, &session_id).await?;
    let (progress, cancel) = (uploads.progress(), CancellationToken::new());
    let tell = teller(&app, &session_id, "upload", &uploads.what());
    let work = uploads.send(&sftp, &dir, &progress, &cancel);
    let r = reporting(&progress, work, tell).await;
    sftp.close();
    r.map_err(err)
}

/// "Upload…": asks for files in a picker, then uploads them into `dir`; returns how many went
/// up (0 when the picker was cancelled).
#[tauri::command]
pub async fn upload_files<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    session_id: String,
    dir: String,
) -> Result<u32, AppError> {
    let chosen = app
        .dialog()
        .file()
        .set_title(UPLOAD_TITLE)
        .blocking_pick_files();
    let paths: Vec<String> = chosen
        .unwrap_or_default()
        .into_iter()
        .filter_map(|f| f.into_path().ok())
        .map(|p| p.display().to_string())
        .collect();
    if paths.is_empty() {
        return Ok(0);
    }
    upload_paths(app, state, session_id, dir, paths).await
}

/// "Download": asks where to save the remote file `path` (its name suggested), then downloads
/// it there; returns the local path (`None` when the dialog was cancelled).
#[tauri::command]
pub async fn download_file<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    session_id: String,
    path: String,
) -> Result<Option<String>, AppError> {
    let name = path.rsplit('/').next().unwrap_or("download").to_string();
    let mut dialog = app
        .dialog()
        .file()
        .set_title(DOWNLOAD_TITLE)
        .set_file_name(&name);
    if let Ok(dir) = tauri::Manager::path(&app).download_dir() {
        dialog = dialog.set_directory(dir);
    }
    let Some(to) = dialog.blocking_save_file().and_then(|f| f.into_path().ok()) else {
        return Ok(None);
    };
    let sftp = open(&state, &session_id).await?;
    let progress = Progress::new(1, 0);
    if let Ok(Some(e)) = sftp.stat(&path).await {
        progress.add_total(0, e.size);
    }
    let cancel = CancellationToken::new();
    let work = async {
        sftp.download(&path, &to, &progress, &cancel).await?;
        progress.file_done();
        Ok::<_, tunnelbook_core::sftp::SftpError>(())
    };
    let r = reporting(
        &progress,
        work,
        teller(&app, &session_id, "download", &name),
    )
    .await;
    sftp.close();
    r.map_err(err)?;
    Ok(Some(to.display().to_string()))
}

/// A row dragged out of the Files view: downloads the remote file or folder `path` (with
/// [`FILES_PROGRESS_EVENT`]s, direction `drag`) into a private folder of the app's cache, then
/// starts the native drag of that copy from `window` while the mouse button is still held, so
/// the desktop, a file manager or another app gets the file where it is dropped. An unchanged
/// file prepared before is not downloaded again.
///
/// Errors: `NotFound` (no such remote path), `Validation` (over
/// [`tunnelbook_core::sftp::staging::DRAG_LIMIT`] bytes: the message says to use Download), the
/// SFTP errors of a download, `Internal` (no drag possible).
#[tauri::command]
pub async fn drag_out<R: Runtime>(
    app: AppHandle<R>,
    window: tauri::Window<R>,
    state: State<'_, AppState>,
    prepared: State<'_, drag_out::Prepared>,
    session_id: String,
    path: String,
) -> Result<DragOut, AppError> {
    let staging = drag_out::staging(&app)?;
    let sftp = open(&state, &session_id).await?;
    let local = prepared
        .fetch(
            &sftp,
            &session_id,
            &path,
            &staging,
            |name, p, done, error| {
                teller(&app, &session_id, "drag", name)(p, done, error);
            },
        )
        .await;
    sftp.close();
    let (name, local) = local.map_err(err)?;
    let started = drag_out::start(window, local.clone()).await?;
    tracing::info!(started, "drag out ready");
    Ok(DragOut {
        name,
        started,
        local: local.display().to_string(),
    })
}
