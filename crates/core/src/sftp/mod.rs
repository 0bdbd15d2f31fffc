//! SFTP over a host's open [`Connection`] (the same login: no second password or 2FA prompt):
//! list, stat, make folders, rename, remove, and pipelined file transfers.
//!
//! Transfers keep many requests in flight (like OpenSSH's `sftp`, which keeps 64 × 32 KiB):
//! [`IN_FLIGHT`] requests of [`CHUNK`] bytes each per file, and several files at once in
//! folder transfers ([`crate::sync`]). A transfer writes to a temporary name beside the target
//! (`.NAME.tbpart-RANDOM`) and renames it over the target only when complete, so a cancelled or
//! failed transfer never leaves a half-written file under the real name. A download is written
//! on a thread of its own while the next replies arrive, and forced to disk before the rename
//! only up to [`DURABLE_UP_TO`] bytes (as `scp` and `sftp` never force anything).

mod files;
mod progress;
pub mod staging;
mod transfer;
mod tree;

use std::{path::PathBuf, sync::Arc, time::UNIX_EPOCH};

use russh_sftp::{
    client::{RawSftpSession, error::Error as RawError},
    protocol::{FileAttributes, Packet, StatusCode},
};
use serde::Serialize;

pub use self::{
    files::{FilesError, FilesListing, FilesProgress, Uploads, parent_of, reporting},
    progress::{Progress, TransferProgress},
    transfer::DURABLE_UP_TO,
    tree::FILES_AT_ONCE,
};
use crate::ssh::{Connection, SshError};

/// Bytes per read or write request.
pub const CHUNK: usize = 128 * 1024;
/// Read or write requests in flight per file.
pub const IN_FLIGHT: usize = 32;
/// Seconds one request may take before the transfer is called stuck.
const REQUEST_TIMEOUT_SECS: u64 = 60;

/// What went wrong with SFTP.
#[derive(Debug, thiserror::Error)]
pub enum SftpError {
    /// The SSH side: the connection is gone, or the server refused the `sftp` subsystem.
    #[error(transparent)]
    Ssh(#[from] SshError),
    /// The server answered a request about `path` with an error.
    #[error("{path} on {destination}: {message}")]
    Remote {
        /// The remote path.
        path: String,
        /// `user@host:port`.
        destination: String,
        /// The server's words (e.g. `Permission denied`).
        message: String,
        /// `true` when the server said the path does not exist.
        not_found: bool,
    },
    /// A local file could not be read or written.
    #[error("{}: {source}", path.display())]
    Local {
        /// The local path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The transfer was cancelled; nothing was left under the target's name.
    #[error("cancelled")]
    Cancelled,
    /// The SFTP session broke (the connection dropped, or a request got no answer in 60 s).
    #[error("the SFTP session with {destination} broke: {message}; reconnect and try again")]
    Session {
        /// `user@host:port`.
        destination: String,
        /// What happened.
        message: String,
    },
}

impl SftpError {
    /// Whether the server said the path does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            SftpError::Remote {
                not_found: true,
                ..
            }
        )
    }
}

/// One entry of a remote folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// The file name (no folder).
    pub name: String,
    /// The full remote path.
    pub path: String,
    /// Whether it is a folder (a symlink to one counts).
    pub is_dir: bool,
    /// Size in bytes (0 for folders).
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub size: u64,
    /// Modification time, seconds since the Unix epoch.
    pub mtime: u32,
}

/// An SFTP session on a host. Cheap to clone; requests from clones share the session and may run
/// concurrently (that is how transfers pipeline).
#[derive(Clone)]
pub struct Sftp {
    raw: Arc<RawSftpSession>,
    destination: String,
    home: String,
    posix_rename: bool,
}

impl std::fmt::Debug for Sftp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sftp")
            .field("destination", &self.destination)
            .finish_non_exhaustive()
    }
}

fn random_suffix() -> String {
    format!("{:08x}", rand::random::<u32>())
}

/// `dir/.NAME.tbpart-RANDOM`: where a transfer writes before the rename.
pub(crate) fn temp_name(name: &str) -> String {
    format!(".{name}.tbpart-{}", random_suffix())
}

/// Whether `name` is one of the temporary names transfers write to.
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tbpart-")
}

/// Splits a remote path into its folder and file name.
fn split_remote(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(0) => ("/", &path[1..]),
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (".", path),
    }
}

/// Joins remote path parts with `/`.
pub fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// A local file's modification time in whole seconds since the epoch (what SFTP v3 carries).
pub fn mtime_secs(meta: &std::fs::Metadata) -> u32 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
}

impl Sftp {
    /// Starts the `sftp` subsystem on `connection` and initialises the protocol.
    ///
    /// # Errors
    /// [`SftpError::Ssh`] when the channel or subsystem is refused, [`SftpError::Session`] when
    /// the server does not speak SFTP on it.
    pub async fn open(connection: &Connection) -> Result<Sftp, SftpError> {
        let destination = connection.destination().to_string();
        let stream = connection.open_subsystem("sftp").await?;
        let raw = RawSftpSession::new_with_config(
            stream,
            russh_sftp::client::Config {
                request_timeout_secs: REQUEST_TIMEOUT_SECS,
                ..russh_sftp::client::Config::default()
            },
        );
        let session_error = |e: RawError| SftpError::Session {
            destination: destination.clone(),
            message: e.to_string(),
        };
        let version = raw.init().await.map_err(session_error)?;
        let posix_rename = version
            .extensions
            .get("posix-rename@openssh.com")
            .is_some_and(|v| v == "1");
        let home = raw
            .realpath(".")
            .await
            .map_err(session_error)?
            .files
            .into_iter()
            .next()
            .map(|f| f.filename)
            .unwrap_or_else(|| "/".into());
        Ok(Sftp {
            raw: Arc::new(raw),
            destination,
            home,
            posix_rename,
        })
    }

    /// The user's home folder on the host (where relative paths start).
    pub fn home(&self) -> &str {
        &self.home
    }

    /// `user@host:port`.
    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// `path` made absolute: `~` and `~/…` are the home folder, relative paths start there.
    pub fn resolve(&self, path: &str) -> String {
        if path == "~" || path.is_empty() {
            self.home.clone()
        } else if let Some(rest) = path.strip_prefix("~/") {
            join(&self.home, rest)
        } else if path.starts_with('/') {
            path.to_string()
        } else {
            join(&self.home, path)
        }
    }

    fn error(&self, path: &str, e: RawError) -> SftpError {
        match e {
            RawError::Status(s) => SftpError::Remote {
                path: path.to_string(),
                destination: self.destination.clone(),
                not_found: s.status_code == StatusCode::NoSuchFile,
                message: if s.error_message.is_empty() {
                    s.status_code.to_string()
                } else {
                    s.error_message
                },
            },
            other => SftpError::Session {
                destination: self.destination.clone(),
                message: other.to_string(),
            },
        }
    }

    /// What is at `path` (following symlinks); `None` when nothing is.
    ///
    /// # Errors
    /// Server and session errors other than "no such file".
    pub async fn stat(&self, path: &str) -> Result<Option<Entry>, SftpError> {
        let path = self.resolve(path);
        match self.raw.stat(path.clone()).await {
            Ok(a) => {
                let (_, name) = split_remote(&path);
                Ok(Some(entry(name, &path, &a.attrs)))
            }
            Err(e) => {
                let e = self.error(&path, e);
                if e.is_not_found() { Ok(None) } else { Err(e) }
            }
        }
    }

    /// The entries of the folder `dir` (without `.` and `..`), folders first, then by name.
    ///
    /// # Errors
    /// [`SftpError::Remote`] when it is no folder or cannot be read.
    pub async fn list(&self, dir: &str) -> Result<Vec<Entry>, SftpError> {
        let dir = self.resolve(dir);
        let handle = self
            .raw
            .opendir(dir.clone())
            .await
            .map_err(|e| self.error(&dir, e))?
            .handle;
        let mut entries = Vec::new();
        let result = loop {
            match self.raw.readdir(handle.clone()).await {
                Ok(name) => {
                    for f in name.files {
                        if f.filename == "." || f.filename == ".." {
                            continue;
                        }
                        let path = join(&dir, &f.filename);
                        let mut e = entry(&f.filename, &path, &f.attrs);
                        // A symlink's own attributes say "link": ask what it points at.
                        if f.attrs.is_symlink()
                            && let Ok(Some(target)) = self.stat(&path).await
                        {
                            e.is_dir = target.is_dir;
                            e.size = target.size;
                            e.mtime = target.mtime;
                        }
                        entries.push(e);
                    }
                }
                Err(RawError::Status(s)) if s.status_code == StatusCode::Eof => break Ok(()),
                Err(e) => break Err(self.error(&dir, e)),
            }
        };
        let _ = self.raw.close(handle).await;
        result?;
        entries.sort_by(|a, b| b.is_dir.cmp(&a.is_dir).then_with(|| a.name.cmp(&b.name)));
        Ok(entries)
    }

    /// Makes the folder `dir` and its missing parents (like `mkdir -p`).
    ///
    /// # Errors
    /// [`SftpError::Remote`] when a part exists as a file or cannot be made.
    pub async fn mkdir_all(&self, dir: &str) -> Result<(), SftpError> {
        let dir = self.resolve(dir);
        if let Some(e) = self.stat(&dir).await? {
            return if e.is_dir {
                Ok(())
            } else {
                Err(SftpError::Remote {
                    path: dir,
                    destination: self.destination.clone(),
                    message: "exists and is not a folder".into(),
                    not_found: false,
                })
            };
        }
        let (parent, _) = split_remote(&dir);
        if parent != dir && parent != "/" && parent != "." {
            Box::pin(self.mkdir_all(parent)).await?;
        }
        match self.raw.mkdir(dir.clone(), FileAttributes::empty()).await {
            Ok(_) => Ok(()),
            // Made meanwhile by a parallel transfer.
            Err(e) => match self.stat(&dir).await? {
                Some(x) if x.is_dir => Ok(()),
                _ => Err(self.error(&dir, e)),
            },
        }
    }

    /// Removes the file, or the folder with everything in it, at `path`.
    ///
    /// # Errors
    /// [`SftpError::Remote`] when something cannot be removed (what was removed before stays
    /// removed).
    pub async fn remove(&self, path: &str) -> Result<(), SftpError> {
        let path = self.resolve(path);
        let is_dir = match self.raw.lstat(path.clone()).await {
            Ok(a) => a.attrs.is_dir(),
            Err(e) => return Err(self.error(&path, e)),
        };
        if is_dir {
            for e in self.list(&path).await? {
                Box::pin(self.remove(&e.path)).await?;
            }
            self.raw
                .rmdir(path.clone())
                .await
                .map_err(|e| self.error(&path, e))?;
        } else {
            self.raw
                .remove(path.clone())
                .await
                .map_err(|e| self.error(&path, e))?;
        }
        Ok(())
    }

    /// Renames `from` to `to`, replacing a file at `to` (OpenSSH's `posix-rename`; servers
    /// without it get a remove, then a plain rename).
    ///
    /// # Errors
    /// [`SftpError::Remote`] when the server refuses.
    pub async fn rename(&self, from: &str, to: &str) -> Result<(), SftpError> {
        let (from, to) = (self.resolve(from), self.resolve(to));
        if self.posix_rename {
            let mut data = Vec::with_capacity(8 + from.len() + to.len());
            for s in [&from, &to] {
                data.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_be_bytes());
                data.extend_from_slice(s.as_bytes());
            }
            return match self.raw.extended("posix-rename@openssh.com", data).await {
                Ok(Packet::Status(s)) if s.status_code == StatusCode::Ok => Ok(()),
                Ok(Packet::Status(s)) => Err(self.error(&from, RawError::Status(s))),
                Ok(_) => Err(SftpError::Session {
                    destination: self.destination.clone(),
                    message: "unexpected answer to posix-rename".into(),
                }),
                Err(e) => Err(self.error(&from, e)),
            };
        }
        if let Some(e) = self.stat(&to).await?
            && !e.is_dir
        {
            let _ = self.raw.remove(to.clone()).await;
        }
        self.raw
            .rename(from.clone(), to.clone())
            .await
            .map(|_| ())
            .map_err(|e| self.error(&from, e))
    }

    /// Sets the modification (and access) time of `path`, seconds since the epoch.
    ///
    /// # Errors
    /// [`SftpError::Remote`] when the server refuses.
    pub async fn set_mtime(&self, path: &str, mtime: u32) -> Result<(), SftpError> {
        let path = self.resolve(path);
        let attrs = FileAttributes {
            atime: Some(mtime),
            mtime: Some(mtime),
            ..FileAttributes::empty()
        };
        self.raw
            .setstat(path.clone(), attrs)
            .await
            .map(|_| ())
            .map_err(|e| self.error(&path, e))
    }

    /// Ends the SFTP session (the connection stays open).
    pub fn close(&self) {
        let _ = self.raw.close_session();
    }
}

fn entry(name: &str, path: &str, a: &FileAttributes) -> Entry {
    let is_dir = a.is_dir();
    Entry {
        name: name.to_string(),
        path: path.to_string(),
        is_dir,
        size: if is_dir { 0 } else { a.size.unwrap_or(0) },
        mtime: a.mtime.unwrap_or(0),
    }
}
