//! Pipelined file transfers: [`Sftp::upload`] and [`Sftp::download`], each through a temporary
//! name renamed over the target only when complete.

use std::{
    path::Path,
    time::{Duration, UNIX_EPOCH},
};

use futures::{StreamExt, stream, stream::FuturesUnordered};
use russh_sftp::{
    client::error::Error as RawError,
    protocol::{FileAttributes, OpenFlags, StatusCode},
};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use super::{
    CHUNK, IN_FLIGHT, Progress, Sftp, SftpError, join, mtime_secs, split_remote, temp_name,
};

impl Sftp {
    /// Uploads the local file `local` to the remote path `remote` (its folder must exist),
    /// pipelined, through a temporary name; the remote file gets the local modification time, so
    /// an unchanged file is recognised later by size and time. Returns the bytes sent.
    ///
    /// # Errors
    /// [`SftpError::Local`] when `local` cannot be read, [`SftpError::Remote`] /
    /// [`SftpError::Session`] from the server, [`SftpError::Cancelled`] when `cancel` fired
    /// (the temporary file is removed then, and on every other error too).
    pub async fn upload(
        &self,
        local: &Path,
        remote: &str,
        progress: &Progress,
        cancel: &CancellationToken,
    ) -> Result<u64, SftpError> {
        let remote = self.resolve(remote);
        let local_err = |source| SftpError::Local {
            path: local.to_path_buf(),
            source,
        };
        let mut file = tokio::fs::File::open(local).await.map_err(local_err)?;
        let meta = file.metadata().await.map_err(local_err)?;
        let size = meta.len();
        let mtime = mtime_secs(&meta);
        let (dir, name) = split_remote(&remote);
        let temp = join(dir, &temp_name(name));
        let mode = {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                meta.permissions().mode() & 0o777
            }
            #[cfg(not(unix))]
            {
                0o644
            }
        };
        let handle = self
            .raw
            .open(
                temp.clone(),
                OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE,
                FileAttributes {
                    permissions: Some(mode),
                    ..FileAttributes::empty()
                },
            )
            .await
            .map_err(|e| self.error(&remote, e))?
            .handle;
        let remote_path = remote.as_str();
        let body = async {
            // Chunks are read in order and written with up to IN_FLIGHT requests outstanding.
            // (The request futures own what they use: the whole stays `Send` for any caller.)
            let mut in_flight = FuturesUnordered::new();
            let mut offset = 0u64;
            loop {
                while in_flight.len() < IN_FLIGHT && offset < size {
                    let len = usize::try_from((size - offset).min(CHUNK as u64)).unwrap_or(CHUNK);
                    let mut buf = vec![0u8; len];
                    file.read_exact(&mut buf).await.map_err(local_err)?;
                    let (raw, handle) = (self.raw.clone(), handle.clone());
                    let at = offset;
                    in_flight.push(async move { raw.write(handle, at, buf).await.map(|_| len) });
                    offset += len as u64;
                }
                match in_flight.next().await {
                    Some(Ok(n)) => progress.add_bytes(n as u64),
                    Some(Err(e)) => return Err(self.error(remote_path, e)),
                    None => break,
                }
            }
            Ok::<_, SftpError>(())
        };
        let result = tokio::select! {
            r = body => r,
            () = cancel.cancelled() => Err(SftpError::Cancelled),
        };
        let closed = self.raw.close(handle).await;
        let result = match (result, closed) {
            (Ok(()), Err(e)) => Err(self.error(&remote, e)),
            (r, _) => r,
        };
        let result = match result {
            Ok(()) => {
                async {
                    self.set_mtime(&temp, mtime).await?;
                    if cancel.is_cancelled() {
                        return Err(SftpError::Cancelled);
                    }
                    self.rename(&temp, &remote).await
                }
                .await
            }
            Err(e) => Err(e),
        };
        if result.is_err() {
            let _ = self.raw.remove(temp).await;
        }
        result.map(|()| size)
    }

    /// Downloads the remote file `remote` to the local path `local` (its folder must exist),
    /// pipelined, through a temporary name; the local file gets the remote modification time.
    /// Returns the bytes received and that time.
    ///
    /// # Errors
    /// As [`Sftp::upload`], the other way round.
    pub async fn download(
        &self,
        remote: &str,
        local: &Path,
        progress: &Progress,
        cancel: &CancellationToken,
    ) -> Result<(u64, u32), SftpError> {
        let remote = self.resolve(remote);
        let name = local
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "download".into());
        let temp = local.with_file_name(temp_name(&name));
        let handle = self
            .raw
            .open(remote.clone(), OpenFlags::READ, FileAttributes::empty())
            .await
            .map_err(|e| self.error(&remote, e))?
            .handle;
        let local_err = |source| SftpError::Local {
            path: local.to_path_buf(),
            source,
        };
        // The local file is written on a thread of its own, in order, while the next replies
        // arrive: a slow disk never holds back the requests in flight, and no chunk waits for a
        // hop to the blocking pool. It ends once `chunks` is dropped and everything queued is
        // written.
        let (chunks, queued) = tokio::sync::mpsc::channel::<Vec<u8>>(WRITE_QUEUE);
        let writer = tokio::task::spawn_blocking({
            let temp = temp.clone();
            move || write_chunks(&temp, queued)
        });
        let body = async {
            // Moved in: dropped with the body, which ends the writer.
            let chunks = chunks;
            let attrs = self
                .raw
                .fstat(handle.clone())
                .await
                .map_err(|e| self.error(&remote, e))?
                .attrs;
            let size = attrs.size.unwrap_or(0);
            let mtime = attrs.mtime.unwrap_or(0);
            let offsets = (0..size.div_ceil(CHUNK as u64)).map(|i| i * CHUNK as u64);
            let raw = self.raw.clone();
            let reads = handle.clone();
            let mut replies = stream::iter(offsets)
                .map(move |offset| {
                    let (raw, handle) = (raw.clone(), reads.clone());
                    let len = (size - offset).min(CHUNK as u64) as u32;
                    async move { (offset, len, raw.read(handle, offset, len).await) }
                })
                .buffered(IN_FLIGHT);
            let mut written = 0u64;
            while let Some((offset, len, reply)) = replies.next().await {
                let mut data = match reply {
                    Ok(d) => d.data,
                    Err(RawError::Status(s)) if s.status_code == StatusCode::Eof => Vec::new(),
                    Err(e) => return Err(self.error(&remote, e)),
                };
                // A short answer (allowed by the protocol): fetch the rest of this chunk.
                while (data.len() as u32) < len {
                    let at = offset + data.len() as u64;
                    match self
                        .raw
                        .read(handle.clone(), at, len - data.len() as u32)
                        .await
                    {
                        Ok(more) if !more.data.is_empty() => data.extend_from_slice(&more.data),
                        Ok(_) => break,
                        Err(RawError::Status(s)) if s.status_code == StatusCode::Eof => break,
                        Err(e) => return Err(self.error(&remote, e)),
                    }
                }
                let n = data.len() as u64;
                let short = (data.len() as u32) < len;
                if chunks.send(data).await.is_err() {
                    // The writer stopped: its error is what the caller sees.
                    return Ok((written, mtime));
                }
                written += n;
                progress.add_bytes(n);
                if short {
                    // The file shrank while being read: keep what there is.
                    break;
                }
            }
            Ok::<_, SftpError>((written, mtime))
        };
        let result = tokio::select! {
            r = body => r,
            () = cancel.cancelled() => Err(SftpError::Cancelled),
        };
        let _ = self.raw.close(handle).await;
        // The body (and with it the sending end) is gone: the writer finishes what was queued.
        let wrote = match writer.await {
            Ok(r) => r.map_err(local_err),
            Err(e) => Err(local_err(std::io::Error::other(e))),
        };
        let result = match (result, wrote) {
            (Ok(_), Err(e)) => Err(e),
            (r, _) => r,
        };
        let result = match result {
            Ok((written, mtime)) => (|| {
                if cancel.is_cancelled() {
                    return Err(SftpError::Cancelled);
                }
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&temp)
                    .map_err(local_err)?;
                f.set_modified(UNIX_EPOCH + Duration::from_secs(u64::from(mtime)))
                    .map_err(local_err)?;
                drop(f);
                std::fs::rename(&temp, local).map_err(local_err)?;
                Ok((written, mtime))
            })(),
            Err(e) => Err(e),
        };
        if result.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        result
    }
}

/// Chunks a download's writer may hold queued (`WRITE_QUEUE` × [`CHUNK`] bytes).
const WRITE_QUEUE: usize = 64;

/// Downloads up to this size are forced to disk before they are renamed into place, so a crash
/// right after never leaves an empty notebook under the real name. Bigger ones are not (as
/// `scp` and `sftp` without `-f` do): forcing 500 MB to disk costs more than receiving it.
pub const DURABLE_UP_TO: u64 = 8 * 1024 * 1024;

/// Creates `path` and writes the chunks `queued` brings, in order, until its sending end is
/// dropped (a blocking thread's loop).
fn write_chunks(
    path: &Path,
    mut queued: tokio::sync::mpsc::Receiver<Vec<u8>>,
) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::fs::File::create(path)?;
    let mut total = 0u64;
    while let Some(chunk) = queued.blocking_recv() {
        out.write_all(&chunk)?;
        total += chunk.len() as u64;
    }
    if total <= DURABLE_UP_TO {
        out.sync_all()?;
    }
    Ok(())
}
