//! Local copies staged in private folders before they go where the user says: downloads from a
//! notebook window (kept until a save dialog says where), and remote files dragged out of a file
//! browser (a native drag carries local files only).
//!
//! Each copy gets a 0700 folder of its own under a staging folder (`<staging>/<pid>-<n>/<name>`),
//! named by a process id, a counter and the file's own name (only its last component, never a
//! path a page chose): nothing secret.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{
        Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{Progress, Sftp, SftpError, TransferProgress, files::FilesError, files::reporting};

/// The most a drag out prepares, in bytes (a file's size, or a folder's total); bigger ones are
/// refused with a sentence that points to Download, which asks where to save and shows progress
/// without a mouse button held.
pub const DRAG_LIMIT: u64 = 2_000_000_000;

static NEXT: AtomicU64 = AtomicU64::new(0);

/// The sentence a too-big drag out gets: what, how big, what to do instead.
pub fn too_big(name: &str, bytes: u64) -> String {
    format!(
        "{name} is {} — too big to drag out (the limit is {}). Use Download to save it.",
        size(bytes),
        size(DRAG_LIMIT)
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

/// A fresh path for a file that would be written to `suggested`: its file name (only the last
/// component) in a new 0700 subfolder of `staging`.
///
/// # Errors
/// The folders cannot be created.
pub fn stage(staging: &Path, suggested: &Path) -> std::io::Result<PathBuf> {
    let name = suggested
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "download".into());
    std::fs::create_dir_all(staging)?;
    restrict(staging)?;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = staging.join(format!("{}-{n}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                restrict(&dir)?;
                return Ok(dir.join(name));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Moves the finished copy `staged` to `to` (a rename, or a copy across file systems) and
/// removes its staging folder.
///
/// # Errors
/// `to` cannot be written; the copy then stays staged for another try.
pub fn deliver(staged: &Path, to: &Path) -> std::io::Result<()> {
    if std::fs::rename(staged, to).is_err() {
        std::fs::copy(staged, to)?;
    }
    discard(staged);
    Ok(())
}

/// Removes a staged copy and its staging folder.
pub fn discard(staged: &Path) {
    let _ = std::fs::remove_file(staged);
    if let Some(dir) = staged.parent() {
        let _ = std::fs::remove_dir(dir);
    }
}

/// Removes the staging folder `dir` and every copy in it (missing: nothing to do).
pub fn clean(dir: &Path) {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => tracing::debug!(dir = %dir.display(), "staged copies removed"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(error = %e, "cannot remove the staged copies"),
    }
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

/// What a drag out did.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
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

/// Files already copied for a drag, by session and remote path, with the remote size and
/// modification time they were copied at: dragging the same unchanged file again (after the
/// button was let go while it was prepared) starts at once.
#[derive(Default)]
pub struct DragCopies(Mutex<HashMap<CopyKey, CopyOf>>);

/// A session id and a remote path.
type CopyKey = (String, String);
/// The local copy, and the remote size and modification time it was copied at.
type CopyOf = (PathBuf, u64, u32);

impl DragCopies {
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

    /// The local copy a drag of the remote `path` on session `session` carries: its name and
    /// path, downloaded over `sftp` into a new folder of `staging` (`tick` told its progress
    /// as [`reporting`] does, with the name), unless an unchanged copy of that file is there already.
    ///
    /// # Errors
    /// [`FilesError::Gone`], [`FilesError::TooBig`] (over [`DRAG_LIMIT`]; a folder's total is
    /// known once walked, and the download stops there), [`FilesError::Staging`], or the
    /// download's.
    pub async fn fetch(
        &self,
        sftp: &Sftp,
        session: &str,
        path: &str,
        staging: &Path,
        mut tick: impl FnMut(&str, TransferProgress, bool, Option<String>),
    ) -> Result<(String, PathBuf), FilesError> {
        let remote = sftp.resolve(path);
        let entry = sftp.stat(&remote).await?.ok_or_else(|| FilesError::Gone {
            remote: remote.clone(),
        })?;
        let name = entry.name.clone();
        if !entry.is_dir {
            if entry.size > DRAG_LIMIT {
                return Err(FilesError::TooBig {
                    name,
                    bytes: entry.size,
                });
            }
            if let Some(local) = self.get(session, &remote, entry.size, entry.mtime) {
                return Ok((name, local));
            }
        }
        let local = stage(staging, Path::new(&name)).map_err(FilesError::Staging)?;
        let dir = local.parent().map(Path::to_path_buf).unwrap_or_default();
        let progress = Progress::new(0, 0);
        let cancel = CancellationToken::new();
        let too_big = AtomicBool::new(false);
        let work = async {
            let guard = async {
                loop {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    if progress.snapshot().bytes_total > DRAG_LIMIT {
                        too_big.store(true, Ordering::Relaxed);
                        cancel.cancel();
                    }
                }
            };
            tokio::select! {
                r = sftp.get_tree(&remote, &dir, &progress, &cancel) => r,
                () = guard => Err(SftpError::Cancelled),
            }
        };
        let told = reporting(&progress, work, |p, done, error| {
            tick(&name, p, done, error)
        })
        .await;
        if let Err(e) = told {
            let _ = std::fs::remove_dir_all(&dir);
            if too_big.load(Ordering::Relaxed) {
                let bytes = progress.snapshot().bytes_total;
                return Err(FilesError::TooBig { name, bytes });
            }
            return Err(e.into());
        }
        if !entry.is_dir {
            self.put(session, &remote, local.clone(), entry.size, entry.mtime);
        }
        Ok((name, local))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn copies_are_staged_privately_under_their_own_name_then_delivered() {
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
    fn a_copied_file_is_reused_only_while_unchanged() {
        let tmp = tempfile::tempdir().unwrap();
        let local = tmp.path().join("a.csv");
        std::fs::write(&local, "12345").unwrap();
        let p = DragCopies::default();
        p.put("s1", "/h/a.csv", local.clone(), 5, 100);
        assert_eq!(p.get("s1", "/h/a.csv", 5, 100), Some(local.clone()));
        assert_eq!(p.get("s1", "/h/a.csv", 5, 101), None, "changed on the host");
        assert_eq!(p.get("s1", "/h/a.csv", 6, 100), None, "changed on the host");
        assert_eq!(p.get("s2", "/h/a.csv", 5, 100), None, "another session");
        std::fs::write(&local, "1234").unwrap();
        assert_eq!(p.get("s1", "/h/a.csv", 5, 100), None, "changed here");
        clean(tmp.path());
        assert!(!tmp.path().exists());
        clean(tmp.path());
    }
}
