//! What a file browser on a host does over SFTP (the app's Files view): a folder's listing with
//! its parent, renames within a folder, uploads of local files and folders, and transfers whose
//! progress is told every 200 ms and once at the end.

use std::{
    fmt::Display,
    future::Future,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{Entry, Progress, Sftp, SftpError, TransferProgress, join};
use crate::error::{ErrorCode, Problem};

/// What went wrong with a file browser's request.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// An SFTP request or a transfer failed.
    #[error(transparent)]
    Sftp(#[from] SftpError),
    /// A rename to an empty name.
    #[error("the new name is empty")]
    EmptyName,
    /// A local path to upload has no file name (`/`, `..`).
    #[error("{path} has no name")]
    NoName {
        /// The path as given.
        path: String,
    },
    /// The remote path is gone (deleted since it was listed).
    #[error("{remote} is not on the host any more: refresh the folder")]
    Gone {
        /// The remote path (absolute).
        remote: String,
    },
    /// A drag out of something over [`super::staging::DRAG_LIMIT`] bytes.
    #[error("{}", super::staging::too_big(name, *bytes))]
    TooBig {
        /// The file or folder name.
        name: String,
        /// Its size (a folder's total), bytes.
        bytes: u64,
    },
    /// The local staging folder could not be made.
    #[error("cannot make a folder to prepare the drag in: {0}")]
    Staging(std::io::Error),
}

impl From<SftpError> for Problem {
    fn from(e: SftpError) -> Self {
        match e {
            SftpError::Ssh(ssh) => ssh.into(),
            SftpError::Cancelled => Problem::new(ErrorCode::Cancelled, "cancelled"),
            e @ SftpError::Remote {
                not_found: true, ..
            } => Problem::new(ErrorCode::NotFound, e.to_string()),
            e @ SftpError::Local { .. } if e.local_not_found() => {
                Problem::new(ErrorCode::NotFound, e.to_string())
            }
            e @ SftpError::Session { .. } => Problem::new(ErrorCode::Unreachable, e.to_string()),
            e => Problem::new(ErrorCode::Validation, e.to_string()),
        }
    }
}

impl SftpError {
    fn local_not_found(&self) -> bool {
        matches!(self, SftpError::Local { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

impl From<FilesError> for Problem {
    fn from(e: FilesError) -> Self {
        match e {
            FilesError::Sftp(e) => e.into(),
            e @ FilesError::Gone { .. } => Problem::new(ErrorCode::NotFound, e.to_string()),
            e @ FilesError::Staging(_) => Problem::new(ErrorCode::Internal, e.to_string()),
            e => Problem::new(ErrorCode::Validation, e.to_string()),
        }
    }
}

/// A remote folder's contents.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct FilesListing {
    /// The folder, absolute.
    pub path: String,
    /// Its parent (`None` at `/`).
    pub parent: Option<String>,
    /// Folders first, then files, by name.
    pub entries: Vec<Entry>,
}

/// How a transfer of a file browser goes.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
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

/// The folder above the remote `path` (`None` at `/`).
pub fn parent_of(path: &str) -> Option<String> {
    if path == "/" {
        return None;
    }
    let trimmed = path.trim_end_matches('/');
    Some(match trimmed.rfind('/') {
        Some(0) | None => "/".to_string(),
        Some(i) => trimmed[..i].to_string(),
    })
}

/// Runs `work`, telling `tick` the counters of `progress` every 200 ms while it runs (`done`
/// false), and once when it ended (`done` true, with its error in words when it failed).
pub async fn reporting<T, E: Display>(
    progress: &Progress,
    work: impl Future<Output = Result<T, E>>,
    mut tick: impl FnMut(TransferProgress, bool, Option<String>),
) -> Result<T, E> {
    let mut work = std::pin::pin!(work);
    let result = loop {
        tokio::select! {
            r = &mut work => break r,
            () = tokio::time::sleep(Duration::from_millis(200)) => tick(progress.snapshot(), false, None),
        }
    };
    tick(
        progress.snapshot(),
        true,
        result.as_ref().err().map(ToString::to_string),
    );
    result
}

impl Sftp {
    /// The folder `path` (`None` or `~`: the home folder) with its parent.
    ///
    /// # Errors
    /// The listing's.
    pub async fn listing(&self, path: Option<&str>) -> Result<FilesListing, SftpError> {
        let path = self.resolve(path.unwrap_or("~"));
        Ok(FilesListing {
            entries: self.list(&path).await?,
            parent: parent_of(&path),
            path,
        })
    }

    /// Renames `from` to `to`; a name without `/` stays in `from`'s folder.
    ///
    /// # Errors
    /// [`FilesError::EmptyName`], or the rename's.
    pub async fn rename_to(&self, from: &str, to: &str) -> Result<(), FilesError> {
        if to.trim().is_empty() {
            return Err(FilesError::EmptyName);
        }
        let to = if to.contains('/') {
            to.to_string()
        } else {
            join(&parent_of(from).unwrap_or_else(|| "/".into()), to)
        };
        Ok(self.rename(from, &to).await?)
    }
}

/// Local files and folders to upload into a remote folder, walked: each file with its path
/// relative to its chosen item's parent (a folder goes up whole).
#[derive(Debug, Clone, Default)]
pub struct Uploads {
    files: Vec<(PathBuf, String)>,
}

impl Uploads {
    /// The files under `paths` (each a file or a folder).
    ///
    /// # Errors
    /// [`FilesError::NoName`] for a path without a name, [`SftpError::Local`] for one that
    /// cannot be read.
    pub fn of(paths: &[String]) -> Result<Uploads, FilesError> {
        let mut files = Vec::new();
        for p in paths {
            let local = PathBuf::from(p);
            let name = local
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| FilesError::NoName { path: p.clone() })?;
            collect(&local, &name, &mut files)?;
        }
        Ok(Uploads { files })
    }

    /// The counters of the whole upload, totals set.
    pub fn progress(&self) -> Progress {
        let total: u64 = self
            .files
            .iter()
            .filter_map(|(l, _)| std::fs::metadata(l).ok())
            .map(|m| m.len())
            .sum();
        Progress::new(self.files.len() as u64, total)
    }

    /// What moves, in words: the file's path when one, else `N files`.
    pub fn what(&self) -> String {
        match self.files.as_slice() {
            [(_, rel)] => rel.clone(),
            _ => format!("{} files", self.files.len()),
        }
    }

    /// Uploads them into the remote folder `dir` over `sftp`, making folders as needed; returns
    /// how many went up.
    ///
    /// # Errors
    /// The first failed file's (files finished before it stay).
    pub async fn send(
        &self,
        sftp: &Sftp,
        dir: &str,
        progress: &Progress,
        cancel: &CancellationToken,
    ) -> Result<u32, SftpError> {
        let dir = sftp.resolve(dir);
        for (local, rel) in &self.files {
            if let Some((sub, _)) = rel.rsplit_once('/') {
                sftp.mkdir_all(&join(&dir, sub)).await?;
            }
            sftp.upload(local, &join(&dir, rel), progress, cancel)
                .await?;
            progress.file_done();
        }
        Ok(self.files.len() as u32)
    }
}

/// The files under `local` (itself when a file) with their paths relative to its parent.
fn collect(local: &Path, rel: &str, out: &mut Vec<(PathBuf, String)>) -> Result<(), SftpError> {
    let local_err = |source| SftpError::Local {
        path: local.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(local).map_err(local_err)?;
    if meta.is_dir() {
        for e in std::fs::read_dir(local).map_err(local_err)?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            collect(&e.path(), &format!("{rel}/{name}"), out)?;
        }
    } else {
        out.push((local.to_path_buf(), rel.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn parents() {
        assert_eq!(parent_of("/"), None);
        assert_eq!(parent_of("/home"), Some("/".into()));
        assert_eq!(parent_of("/home/u/"), Some("/home".into()));
    }

    /// A folder goes up whole, under its own name; a missing path says which and is NotFound.
    #[test]
    fn uploads_walk_folders_and_name_what_moves() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/a.csv"), "123").unwrap();
        let one = Uploads::of(&[dir.display().to_string()]).unwrap();
        assert_eq!(one.what(), "data/sub/a.csv");
        assert_eq!(one.progress().snapshot().bytes_total, 3);
        std::fs::write(tmp.path().join("b.txt"), "45").unwrap();
        let two = Uploads::of(&[
            dir.display().to_string(),
            tmp.path().join("b.txt").display().to_string(),
        ])
        .unwrap();
        assert_eq!(two.what(), "2 files");
        let missing = tmp.path().join("gone.txt").display().to_string();
        let e = Uploads::of(std::slice::from_ref(&missing)).unwrap_err();
        let p = Problem::from(e);
        assert_eq!(p.code, ErrorCode::NotFound);
        assert!(p.message.contains("gone.txt"), "{}", p.message);
        assert!(matches!(
            Uploads::of(&["/".to_string()]),
            Err(FilesError::NoName { .. })
        ));
    }
}
