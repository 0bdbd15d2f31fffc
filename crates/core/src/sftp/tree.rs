//! Whole folders both ways (`scp -r` / `sftp put -r` / `get -r`), many files at once, each
//! pipelined.

use std::path::{Path, PathBuf};

use futures::{StreamExt, stream};
use tokio_util::sync::CancellationToken;

use super::{Progress, Sftp, SftpError, join};

/// Files moved at once in a folder transfer (each with its own requests in flight).
pub const FILES_AT_ONCE: usize = 16;

fn local_err(path: &Path) -> impl Fn(std::io::Error) -> SftpError + '_ {
    move |source| SftpError::Local {
        path: path.to_path_buf(),
        source,
    }
}

/// The files under the local `root` (itself when it is a file) as (local path, `/`-separated
/// path relative to `root`'s parent, size), and the folders to make, parents first.
/// A local file to send: its path, its `/`-separated path in the tree, its size.
type LocalFile = (PathBuf, String, u64);

fn local_tree(root: &Path) -> Result<(Vec<LocalFile>, Vec<String>), SftpError> {
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| ".".into());
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    let mut todo = vec![(root.to_path_buf(), name)];
    while let Some((path, rel)) = todo.pop() {
        let meta = std::fs::metadata(&path).map_err(local_err(&path))?;
        if meta.is_dir() {
            dirs.push(rel.clone());
            for e in std::fs::read_dir(&path)
                .map_err(local_err(&path))?
                .flatten()
            {
                let n = e.file_name().to_string_lossy().into_owned();
                todo.push((e.path(), format!("{rel}/{n}")));
            }
        } else if meta.is_file() {
            files.push((path, rel, meta.len()));
        }
    }
    dirs.sort();
    Ok((files, dirs))
}

impl Sftp {
    /// Uploads the local file or folder `local` into the remote folder `dir` (which must exist),
    /// keeping its name; `FILES_AT_ONCE` files move at once. `progress` gets the totals first.
    /// Returns the files sent.
    ///
    /// # Errors
    /// The first failed file's error (files finished before it stay; none is half-written).
    pub async fn put_tree(
        &self,
        local: &Path,
        dir: &str,
        progress: &Progress,
        cancel: &CancellationToken,
    ) -> Result<u64, SftpError> {
        let (files, dirs) = local_tree(local)?;
        progress.add_total(files.len() as u64, files.iter().map(|f| f.2).sum());
        let dir = self.resolve(dir);
        for d in &dirs {
            self.mkdir_all(&join(&dir, d)).await?;
        }
        let sent = files.len() as u64;
        let mut results = stream::iter(files)
            .map(|(path, rel, _)| {
                let (this, remote) = (self.clone(), join(&dir, &rel));
                let (progress, cancel) = (progress.clone(), cancel.clone());
                async move {
                    this.upload(&path, &remote, &progress, &cancel).await?;
                    progress.file_done();
                    Ok::<_, SftpError>(())
                }
            })
            .buffer_unordered(FILES_AT_ONCE);
        while let Some(r) = results.next().await {
            r?;
        }
        Ok(sent)
    }

    /// Downloads the remote file or folder `remote` into the local folder `dir` (which must
    /// exist), keeping its name; `FILES_AT_ONCE` files move at once. Returns the files received.
    ///
    /// # Errors
    /// The first failed file's error (files finished before it stay; none is half-written).
    pub async fn get_tree(
        &self,
        remote: &str,
        dir: &Path,
        progress: &Progress,
        cancel: &CancellationToken,
    ) -> Result<u64, SftpError> {
        let remote = self.resolve(remote);
        let name = remote.rsplit('/').next().unwrap_or("download").to_string();
        let mut files = Vec::new();
        let mut todo = vec![(remote.clone(), name)];
        while let Some((path, rel)) = todo.pop() {
            let Some(entry) = self.stat(&path).await? else {
                return Err(SftpError::Remote {
                    path,
                    destination: self.destination.clone(),
                    message: "No such file".into(),
                    not_found: true,
                });
            };
            if entry.is_dir {
                let local = rel.split('/').fold(dir.to_path_buf(), |p, s| p.join(s));
                std::fs::create_dir_all(&local).map_err(local_err(&local))?;
                for e in self.list(&path).await? {
                    todo.push((e.path, format!("{rel}/{}", e.name)));
                }
            } else {
                files.push((path, rel, entry.size));
            }
        }
        progress.add_total(files.len() as u64, files.iter().map(|f| f.2).sum());
        let got = files.len() as u64;
        let mut results = stream::iter(files)
            .map(|(path, rel, _)| {
                let this = self.clone();
                let local = rel.split('/').fold(dir.to_path_buf(), |p, s| p.join(s));
                let (progress, cancel) = (progress.clone(), cancel.clone());
                async move {
                    this.download(&path, &local, &progress, &cancel).await?;
                    progress.file_done();
                    Ok::<_, SftpError>(())
                }
            })
            .buffer_unordered(FILES_AT_ONCE);
        while let Some(r) = results.next().await {
            r?;
        }
        Ok(got)
    }
}
