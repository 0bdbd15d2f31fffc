//! The Files view: a per-host SFTP browser over the host session's open connection (no second
//! login, no second 2FA prompt): list, make folder, rename, delete, upload (file picker or files
//! dropped on the window) and download (save dialog), with progress events; a file or folder
//! dragged out of the window to the desktop lands there ([`drag_out`]).

use std::path::{Path, PathBuf};

use serde::Serialize;
use tauri::{AppHandle, Emitter, Runtime, State};
use tauri_plugin_dialog::DialogExt;
use tokio_util::sync::CancellationToken;
use ts_rs::TS;
use tunnelbook_core::sftp::{self, Entry, Progress, Sftp, SftpError, TransferProgress};

use crate::{
    drag_out,
    error::{AppError, ErrorCode},
    state::AppState,
};

/// Name of the event that carries a [`FilesProgress`].
pub const FILES_PROGRESS_EVENT: &str = "files-progress";

/// Title of the upload file picker (tests find its window by it).
pub const UPLOAD_TITLE: &str = "Upload to the host";

/// Title of the download save dialog (tests find its window by it).
pub const DOWNLOAD_TITLE: &str = "Download from the host";

/// A remote folder's contents.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct FilesListing {
    /// The folder, absolute.
    pub path: String,
    /// Its parent (`None` at `/`).
    pub parent: Option<String>,
    /// Folders first, then files, by name.
    pub entries: Vec<Entry>,
}

/// How a transfer of the Files view goes.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct FilesProgress {
    /// The session the transfer belongs to.
    pub session_id: String,
    /// `upload`, `download`, or `drag` (a file prepared for a drag out).
    pub direction: String,
    /// What moves, in words (a file name, or `3 files`).
    pub what: String,
    /// The counters.
    pub progress: TransferProgress,
    /// Whether it has ended.
    pub done: bool,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

fn files_error(e: SftpError) -> AppError {
    match e {
        SftpError::Ssh(ssh) => ssh.into(),
        SftpError::Cancelled => AppError::new(ErrorCode::Cancelled, "cancelled"),
        e @ SftpError::Remote {
            not_found: true, ..
        } => AppError::new(ErrorCode::NotFound, e.to_string()),
        e @ SftpError::Session { .. } => AppError::new(ErrorCode::Unreachable, e.to_string()),
        e => AppError::new(ErrorCode::Validation, e.to_string()),
    }
}

async fn open(state: &AppState, session_id: &str) -> Result<Sftp, AppError> {
    let connection = state.connection(session_id)?;
    Sftp::open(&connection).await.map_err(files_error)
}

fn parent_of(path: &str) -> Option<String> {
    if path == "/" {
        return None;
    }
    let trimmed = path.trim_end_matches('/');
    Some(match trimmed.rfind('/') {
        Some(0) | None => "/".to_string(),
        Some(i) => trimmed[..i].to_string(),
    })
}

/// The folder `path` on session `session_id`'s host (`None` or `~`: the home folder).
#[tauri::command]
pub async fn list_files(
    state: State<'_, AppState>,
    session_id: String,
    path: Option<String>,
) -> Result<FilesListing, AppError> {
    let sftp = open(&state, &session_id).await?;
    let path = sftp.resolve(path.as_deref().unwrap_or("~"));
    let entries = sftp.list(&path).await.map_err(files_error);
    sftp.close();
    Ok(FilesListing {
        parent: parent_of(&path),
        path,
        entries: entries?,
    })
}

/// Makes the folder `path` (and missing parents).
#[tauri::command]
pub async fn make_folder(
    state: State<'_, AppState>,
    session_id: String,
    path: String,
) -> Result<(), AppError> {
    let sftp = open(&state, &session_id).await?;
    let r = sftp.mkdir_all(&path).await.map_err(files_error);
    sftp.close();
    r
}

/// Renames `from` to `to` (a name without `/` stays in the same folder).
#[tauri::command]
pub async fn rename_file(
    state: State<'_, AppState>,
    session_id: String,
    from: String,
    to: String,
) -> Result<(), AppError> {
    if to.trim().is_empty() {
        return Err(AppError::new(
            ErrorCode::Validation,
            "the new name is empty",
        ));
    }
    let to = if to.contains('/') {
        to
    } else {
        sftp::join(&parent_of(&from).unwrap_or_else(|| "/".into()), &to)
    };
    let sftp = open(&state, &session_id).await?;
    let r = sftp.rename(&from, &to).await.map_err(files_error);
    sftp.close();
    r
}

/// Deletes the file, or the folder with everything in it, at `path` (the UI asks first).
#[tauri::command]
pub async fn delete_file(
    state: State<'_, AppState>,
    session_id: String,
    path: String,
) -> Result<(), AppError> {
    let sftp = open(&state, &session_id).await?;
    let r = sftp.remove(&path).await.map_err(files_error);
    sftp.close();
    r
}

/// Runs `work` with `progress` reported as [`FILES_PROGRESS_EVENT`]s every 200 ms and once at
/// the end.
async fn with_progress<R: Runtime, T>(
    app: &AppHandle<R>,
    session_id: &str,
    direction: &str,
    what: String,
    progress: Progress,
    work: impl std::future::Future<Output = Result<T, SftpError>>,
) -> Result<T, AppError> {
    let emit = |done: bool, error: Option<String>| {
        let _ = app.emit(
            FILES_PROGRESS_EVENT,
            FilesProgress {
                session_id: session_id.to_string(),
                direction: direction.to_string(),
                what: what.clone(),
                progress: progress.snapshot(),
                done,
                error,
            },
        );
    };
    let mut work = std::pin::pin!(work);
    let result = loop {
        tokio::select! {
            r = &mut work => break r,
            () = tokio::time::sleep(std::time::Duration::from_millis(200)) => emit(false, None),
        }
    };
    emit(true, result.as_ref().err().map(ToString::to_string));
    result.map_err(files_error)
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
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    for p in &paths {
        let local = PathBuf::from(p);
        let name = local
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| AppError::new(ErrorCode::Validation, format!("{p} has no name")))?;
        collect(&local, &name, &mut files)?;
    }
    let sftp = open(&state, &session_id).await?;
    let total: u64 = files
        .iter()
        .filter_map(|(l, _)| std::fs::metadata(l).ok())
        .map(|m| m.len())
        .sum();
    let progress = Progress::new(files.len() as u64, total);
    let what = match files.as_slice() {
        [(_, rel)] => rel.clone(),
        _ => format!("{} files", files.len()),
    };
    let cancel = CancellationToken::new();
    let count = files.len() as u32;
    let work = async {
        let dir = sftp.resolve(&dir);
        for (local, rel) in &files {
            let remote = sftp::join(&dir, rel);
            if let Some((sub, _)) = rel.rsplit_once('/') {
                sftp.mkdir_all(&sftp::join(&dir, sub)).await?;
            }
            sftp.upload(local, &remote, &progress, &cancel).await?;
            progress.file_done();
        }
        Ok(count)
    };
    let r = with_progress(&app, &session_id, "upload", what, progress.clone(), work).await;
    sftp.close();
    r
}

/// The files under `local` (itself when a file) with their paths relative to its parent.
fn collect(local: &Path, rel: &str, out: &mut Vec<(PathBuf, String)>) -> Result<(), AppError> {
    let meta = std::fs::metadata(local)
        .map_err(|e| AppError::new(ErrorCode::NotFound, format!("{}: {e}", local.display())))?;
    if meta.is_dir() {
        let entries = std::fs::read_dir(local).map_err(|e| {
            AppError::new(ErrorCode::Validation, format!("{}: {e}", local.display()))
        })?;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            collect(&e.path(), &format!("{rel}/{name}"), out)?;
        }
    } else {
        out.push((local.to_path_buf(), rel.to_string()));
    }
    Ok(())
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
        Ok(())
    };
    let r = with_progress(&app, &session_id, "download", name, progress.clone(), work).await;
    sftp.close();
    r.map(|()| Some(to.display().to_string()))
}

/// What [`drag_out`] did.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct DragOut {
    /// The file or folder name the drag carries.
    pub name: String,
    /// Whether the native drag started. `false`: the mouse button was let go while the file was
    /// prepared; it is ready now, and the next drag of it starts at once.
    pub started: bool,
    /// The local copy the drag carries (in the app's cache): dropped back on the window, it is
    /// not uploaded again.
    pub local: String,
}

/// A row dragged out of the Files view: downloads the remote file or folder `path` (with
/// [`FILES_PROGRESS_EVENT`]s, direction `drag`) into a private folder of the app's cache, then
/// starts the native drag of that copy from `window` while the mouse button is still held, so
/// the desktop, a file manager or another app gets the file where it is dropped. An unchanged
/// file prepared before is not downloaded again.
///
/// Errors: `NotFound` (no such remote path), `Validation` (over [`drag_out::LIMIT`] bytes: the
/// message says to use Download), the SFTP errors of a download, `Internal` (no drag possible).
#[tauri::command]
pub async fn drag_out<R: Runtime>(
    app: AppHandle<R>,
    window: tauri::Window<R>,
    state: State<'_, AppState>,
    prepared: State<'_, drag_out::Prepared>,
    session_id: String,
    path: String,
) -> Result<DragOut, AppError> {
    let sftp = open(&state, &session_id).await?;
    let local = prepare(&app, &sftp, &prepared, &session_id, &path).await;
    sftp.close();
    let (name, local) = local?;
    let started = drag_out::start(window, local.clone()).await?;
    tracing::info!(started, "drag out ready");
    Ok(DragOut {
        name,
        started,
        local: local.display().to_string(),
    })
}

/// The local copy a drag of `path` carries (downloaded now unless an unchanged one is there).
async fn prepare<R: Runtime>(
    app: &AppHandle<R>,
    sftp: &Sftp,
    prepared: &drag_out::Prepared,
    session_id: &str,
    path: &str,
) -> Result<(String, PathBuf), AppError> {
    let remote = sftp.resolve(path);
    let entry = sftp
        .stat(&remote)
        .await
        .map_err(files_error)?
        .ok_or_else(|| {
            AppError::new(
                ErrorCode::NotFound,
                format!("{remote} is not on the host any more: refresh the folder"),
            )
        })?;
    let name = entry.name.clone();
    if !entry.is_dir {
        if entry.size > drag_out::LIMIT {
            return Err(AppError::new(
                ErrorCode::Validation,
                drag_out::too_big(&name, entry.size),
            ));
        }
        if let Some(local) = prepared.get(session_id, &remote, entry.size, entry.mtime) {
            return Ok((name, local));
        }
    }
    let staging = drag_out::staging(app)?;
    let local = crate::download::stage(&staging, Path::new(&name)).map_err(|e| {
        AppError::new(
            ErrorCode::Internal,
            format!("cannot make a folder to prepare the drag in: {e}"),
        )
    })?;
    let dir = local.parent().map(Path::to_path_buf).unwrap_or_default();
    let progress = Progress::new(0, 0);
    let cancel = CancellationToken::new();
    // A folder's total is known once it has been walked: over the limit, stop there.
    let too_big = std::sync::atomic::AtomicBool::new(false);
    let work = async {
        let guard = async {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                if progress.snapshot().bytes_total > drag_out::LIMIT {
                    too_big.store(true, std::sync::atomic::Ordering::Relaxed);
                    cancel.cancel();
                }
            }
        };
        tokio::select! {
            r = sftp.get_tree(&remote, &dir, &progress, &cancel) => r,
            () = guard => Err(SftpError::Cancelled),
        }
    };
    let r = with_progress(
        app,
        session_id,
        "drag",
        name.clone(),
        progress.clone(),
        work,
    )
    .await;
    if let Err(e) = r {
        let _ = std::fs::remove_dir_all(&dir);
        if too_big.load(std::sync::atomic::Ordering::Relaxed) {
            let total = progress.snapshot().bytes_total;
            return Err(AppError::new(
                ErrorCode::Validation,
                drag_out::too_big(&name, total),
            ));
        }
        return Err(e);
    }
    if !entry.is_dir {
        prepared.put(session_id, &remote, local.clone(), entry.size, entry.mtime);
    }
    Ok((name, local))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents() {
        assert_eq!(parent_of("/"), None);
        assert_eq!(parent_of("/home"), Some("/".into()));
        assert_eq!(parent_of("/home/u/"), Some("/home".into()));
    }
}
