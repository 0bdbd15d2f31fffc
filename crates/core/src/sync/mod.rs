//! A project folder on this computer mirrored to a folder on a host over SFTP: what goes up
//! (excludes, a size limit, unchanged files skipped), and what comes back (each remote save,
//! never over a local file changed meanwhile).
//!
//! What was last seen on both sides is kept per host and local folder in
//! `$TUNNELBOOK_HOME/sync/<key>.json`, so a save made on the host while this computer was away
//! (lost connection, closed app) is brought back by the next sync instead of being overwritten.
//! Files are compared by size and modification time (whole seconds, as SFTP v3 carries them);
//! uploads give the remote file the local time and downloads the other way round, so a file
//! moved once compares equal on both sides.

mod follow;
mod scan;
mod settings;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use futures::{StreamExt, stream};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

pub use self::{
    follow::{Follow, FollowEvent, Followed, followed},
    scan::{Excludes, IGNORE_FILE, scan_local, scan_remote},
    settings::{HostSync, SyncSettings},
};
use crate::sftp::{self, Progress, Sftp, SftpError};

/// What went wrong with a sync.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// An SFTP request failed.
    #[error(transparent)]
    Sftp(#[from] SftpError),
    /// A local file or folder could not be read or written.
    #[error("{}: {source}", path.display())]
    Local {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The `.tunnelbookignore` file cannot be read. (Lines git would take literally, such as
    /// an unclosed `[`, are taken literally here too.)
    #[error("{}: {message}", path.display())]
    IgnoreFile {
        /// The file.
        path: PathBuf,
        /// The parser's words.
        message: String,
    },
}

fn local_err(path: &Path) -> impl Fn(std::io::Error) -> SyncError + '_ {
    move |source| SyncError::Local {
        path: path.to_path_buf(),
        source,
    }
}

/// A file of the project, on one side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ProjectFile {
    /// Path inside the project folder, `/`-separated.
    pub rel: String,
    /// Size in bytes.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: u32,
}

/// Size and time of a file on one side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Stamp {
    /// Bytes.
    pub size: u64,
    /// Seconds since the epoch.
    pub mtime: u32,
}

impl From<&ProjectFile> for Stamp {
    fn from(f: &ProjectFile) -> Self {
        Stamp {
            size: f.size,
            mtime: f.mtime,
        }
    }
}

/// What both sides looked like when a file was last moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Seen {
    /// The local file then.
    pub local: Stamp,
    /// The remote file then.
    pub remote: Stamp,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    files: BTreeMap<String, Seen>,
    /// Set while the app follows this project's saves (until "Stop syncing"): the next
    /// connection to the host resumes following ([`followed`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    followed: Option<Followed>,
}

/// What an upload will do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct UploadPlan {
    /// Files to send (new or changed here).
    pub send: Vec<ProjectFile>,
    /// Files over the size limit, not sent unless asked for.
    pub too_large: Vec<ProjectFile>,
    /// Files saved on the host since the last sync and unchanged here: brought back first.
    pub bring_back: Vec<ProjectFile>,
    /// Files changed on both sides: the host's version is brought back beside the local one
    /// (`name (HOST).ext`), then the local one is sent.
    pub conflicts: Vec<ProjectFile>,
    /// Files the same on both sides, skipped.
    pub unchanged: u64,
}

/// A file brought back from the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct BroughtBack {
    /// Path inside the project, `/`-separated.
    pub rel: String,
    /// Where it was written.
    pub local_path: PathBuf,
    /// `true` when the local file had changed since the last sync, so the host's version was
    /// written beside it (`name (HOST).ext`) instead of over it.
    pub beside: bool,
}

/// A local folder and its copy on a host.
#[derive(Debug)]
pub struct Project {
    local_root: PathBuf,
    remote_root: String,
    label: String,
    excludes: Excludes,
    settings: SyncSettings,
    state_path: PathBuf,
    state: State,
}

/// Whether the files `a` and `b` hold the same bytes (`false` when either cannot be read).
fn same_bytes(a: &Path, b: &Path) -> bool {
    use std::io::Read;
    let (Ok(fa), Ok(fb)) = (std::fs::File::open(a), std::fs::File::open(b)) else {
        return false;
    };
    match (fa.metadata(), fb.metadata()) {
        (Ok(ma), Ok(mb)) if ma.len() == mb.len() => {}
        _ => return false,
    }
    let (mut ra, mut rb) = (std::io::BufReader::new(fa), std::io::BufReader::new(fb));
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let Ok(n) = ra.read(&mut ba) else {
            return false;
        };
        if n == 0 {
            return rb.read(&mut bb[..1]).is_ok_and(|m| m == 0);
        }
        if rb.read_exact(&mut bb[..n]).is_err() || ba[..n] != bb[..n] {
            return false;
        }
    }
}

/// `NAME (HOST).EXT` beside `path`.
pub fn beside_name(path: &Path, label: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name.as_str(), ""),
    };
    path.with_file_name(format!("{stem} ({label}){ext}"))
}

impl Project {
    /// The project of the local folder `local_root` on the host `host` (its saved name, also
    /// the `(HOST)` of files written beside) at `remote_root` (absolute; see
    /// [`Sftp::resolve`]). `home` is Tunnelbook's state folder.
    ///
    /// # Errors
    /// [`SyncError::IgnoreFile`] for a bad `.tunnelbookignore`, [`SyncError::Local`] when the
    /// folder is missing.
    pub fn open(
        home: &Path,
        host: &str,
        local_root: &Path,
        remote_root: &str,
        settings: SyncSettings,
    ) -> Result<Project, SyncError> {
        let local_root = std::fs::canonicalize(local_root).map_err(local_err(local_root))?;
        let excludes = Excludes::of(&local_root)?;
        let key = {
            use sha1::Digest;
            let digest = sha1::Sha1::digest(
                format!("{host}\n{}\n{remote_root}", local_root.display()).as_bytes(),
            );
            let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
            let safe: String = host
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            format!("{safe}-{hex}.json")
        };
        let state_path = home.join("sync").join(key);
        let state = std::fs::read(&state_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Ok(Project {
            local_root,
            remote_root: remote_root.to_string(),
            label: host.to_string(),
            excludes,
            settings,
            state_path,
            state,
        })
    }

    /// The project of the local folder `folder` on host `host` where `open` and the app's Open
    /// notebook… put it: at `remote_dir`, or by default the folder of the same name in the
    /// host's projects folder ([`SyncSettings::projects_dir`]), resolved on `sftp`. Returns it
    /// with the projects folder (absolute), for [`Project::server_root`].
    ///
    /// # Errors
    /// Those of [`Project::open`].
    pub fn on_host(
        home: &Path,
        host: &str,
        folder: &Path,
        sftp: &Sftp,
        remote_dir: Option<&str>,
        settings: SyncSettings,
    ) -> Result<(Project, String), SyncError> {
        let projects_dir = settings.projects_dir(host);
        let remote_root = sftp.resolve(&remote_dir.map(str::to_string).unwrap_or_else(|| {
            let name = folder
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "notebook".into());
            sftp::join(&projects_dir, &name)
        }));
        let project = Project::open(home, host, folder, &remote_root, settings)?;
        Ok((project, sftp.resolve(&projects_dir)))
    }

    /// The local folder (absolute).
    pub fn local_root(&self) -> &Path {
        &self.local_root
    }

    /// The remote folder (absolute).
    pub fn remote_root(&self) -> &str {
        &self.remote_root
    }

    /// Where a new JupyterLab for this project starts: the host's projects folder
    /// `projects_dir` (absolute) when the project folder lies inside it, so the next project
    /// opened there on the same GPU reuses that server
    /// ([`crate::session::SessionSpec::reuse_for`]); else the project folder itself.
    pub fn server_root(&self, projects_dir: &str) -> String {
        match crate::jupyter::path_under(projects_dir, &self.remote_root) {
            Some(rel) if !rel.is_empty() => match projects_dir.trim_end_matches('/') {
                "" => "/".to_string(),
                dir => dir.to_string(),
            },
            _ => self.remote_root.clone(),
        }
    }

    fn save_state(&self) -> Result<(), SyncError> {
        let dir = self.state_path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(local_err(dir))?;
        let temp = self.state_path.with_extension("json.tmp");
        let body = serde_json::to_vec_pretty(&self.state).unwrap_or_default();
        std::fs::write(&temp, body).map_err(local_err(&temp))?;
        std::fs::rename(&temp, &self.state_path).map_err(local_err(&self.state_path))
    }

    fn remote_path(&self, rel: &str) -> String {
        sftp::join(&self.remote_root, rel)
    }

    fn local_path(&self, rel: &str) -> PathBuf {
        rel.split('/')
            .fold(self.local_root.clone(), |p, part| p.join(part))
    }

    /// Compares both sides and says what an upload will do.
    ///
    /// # Errors
    /// Local and SFTP errors while listing.
    pub async fn plan_upload(&self, sftp: &Sftp) -> Result<UploadPlan, SyncError> {
        let local = scan_local(&self.local_root, &self.excludes)?;
        let remote: BTreeMap<String, ProjectFile> =
            scan_remote(sftp, &self.remote_root, &self.excludes)
                .await?
                .into_iter()
                .map(|f| (f.rel.clone(), f))
                .collect();
        let limit = self.settings.size_limit_bytes();
        let mut plan = UploadPlan::default();
        for l in local {
            let seen = self.state.files.get(&l.rel);
            match remote.get(&l.rel) {
                Some(r) if Stamp::from(r) == Stamp::from(&l) => plan.unchanged += 1,
                Some(r) if seen.is_some_and(|s| s.remote != Stamp::from(r)) => {
                    if seen.is_some_and(|s| s.local == Stamp::from(&l)) {
                        plan.bring_back.push(r.clone());
                    } else {
                        plan.conflicts.push(r.clone());
                        if l.size > limit {
                            plan.too_large.push(l);
                        } else {
                            plan.send.push(l);
                        }
                    }
                }
                _ if l.size > limit => plan.too_large.push(l),
                _ => plan.send.push(l),
            }
        }
        Ok(plan)
    }

    /// Carries out `plan`: brings back what the host saved meanwhile (conflicts beside the
    /// local file), then sends the files (and the too-large ones when `include_large`), making
    /// folders as needed. `progress` gets the totals and counts as it goes.
    ///
    /// # Errors
    /// The first failed transfer's error ([`SftpError::Cancelled`] when `cancel` fired); files
    /// finished before it count as synced.
    pub async fn upload(
        &mut self,
        sftp: &Sftp,
        plan: &UploadPlan,
        include_large: bool,
        progress: &Progress,
        cancel: &CancellationToken,
    ) -> Result<Vec<BroughtBack>, SyncError> {
        let mut back = Vec::new();
        for r in plan.bring_back.iter().chain(&plan.conflicts) {
            back.extend(self.bring_back_one(sftp, r, progress, cancel).await?);
        }
        let mut send: Vec<&ProjectFile> = plan.send.iter().collect();
        if include_large {
            send.extend(&plan.too_large);
        }
        progress.add_total(send.len() as u64, send.iter().map(|f| f.size).sum::<u64>());
        sftp.mkdir_all(&self.remote_root).await?;
        let dirs: BTreeSet<&str> = send
            .iter()
            .filter_map(|f| f.rel.rsplit_once('/').map(|(d, _)| d))
            .collect();
        for d in dirs {
            sftp.mkdir_all(&self.remote_path(d)).await?;
        }
        // Each transfer owns what it uses (the whole stays `Send` for any caller).
        let jobs: Vec<(ProjectFile, PathBuf, String)> = send
            .iter()
            .map(|f| {
                (
                    (*f).clone(),
                    self.local_path(&f.rel),
                    self.remote_path(&f.rel),
                )
            })
            .collect();
        let results: Vec<_> = stream::iter(jobs)
            .map(|(f, local, remote)| {
                let (sftp, progress, cancel) = (sftp.clone(), progress.clone(), cancel.clone());
                async move {
                    let r = sftp.upload(&local, &remote, &progress, &cancel).await;
                    progress.file_done();
                    (f, r)
                }
            })
            .buffer_unordered(sftp::FILES_AT_ONCE)
            .collect()
            .await;
        let mut first_error = None;
        for (f, r) in results {
            match r {
                Ok(_) => {
                    self.state.files.insert(
                        f.rel.clone(),
                        Seen {
                            local: (&f).into(),
                            remote: (&f).into(),
                        },
                    );
                }
                Err(e) => {
                    if first_error.is_none() {
                        first_error = Some(e);
                    }
                }
            }
        }
        // Files already the same on both sides count as synced too.
        self.save_state()?;
        match first_error {
            Some(e) => Err(e.into()),
            None => Ok(back),
        }
    }

    /// Brings back what changed on the host since the last sync: every changed file, and new
    /// files when the settings say so. A local file changed since then is never overwritten:
    /// the host's version goes beside it (`name (HOST).ext`) — unless it holds the same bytes
    /// as the local file, which is no conflict (another sync of the same folder brought it
    /// back already, or the same edit was made on both sides): then nothing is written.
    ///
    /// # Errors
    /// The first failed transfer's error.
    pub async fn bring_back(
        &mut self,
        sftp: &Sftp,
        cancel: &CancellationToken,
    ) -> Result<Vec<BroughtBack>, SyncError> {
        let remote = scan_remote(sftp, &self.remote_root, &self.excludes).await?;
        let mut back = Vec::new();
        let progress = Progress::default();
        for r in remote {
            match self.state.files.get(&r.rel) {
                Some(seen) if seen.remote == Stamp::from(&r) => continue,
                Some(_) => {}
                None => {
                    // Already here (e.g. copied by hand)? Then just remember it.
                    let local = self.local_path(&r.rel);
                    if let Ok(meta) = std::fs::metadata(&local)
                        && meta.len() == r.size
                        && sftp::mtime_secs(&meta) == r.mtime
                    {
                        self.state.files.insert(
                            r.rel.clone(),
                            Seen {
                                local: (&r).into(),
                                remote: (&r).into(),
                            },
                        );
                        continue;
                    }
                    if !self.settings.bring_back_new_files {
                        continue;
                    }
                }
            }
            back.extend(self.bring_back_one(sftp, &r, &progress, cancel).await?);
        }
        self.save_state()?;
        Ok(back)
    }

    async fn bring_back_one(
        &mut self,
        sftp: &Sftp,
        r: &ProjectFile,
        progress: &Progress,
        cancel: &CancellationToken,
    ) -> Result<Option<BroughtBack>, SyncError> {
        let local = self.local_path(&r.rel);
        let seen = self.state.files.get(&r.rel).copied();
        let now_local = std::fs::metadata(&local).ok().map(|m| Stamp {
            size: m.len(),
            mtime: sftp::mtime_secs(&m),
        });
        let changed_here = match (now_local, seen) {
            (None, _) => false,
            (Some(now), Some(seen)) => now != seen.local,
            (Some(_), None) => true,
        };
        let beside = beside_name(&local, &self.label);
        // Changed here: the host's version goes to a temporary name first, and beside the local
        // file only when its bytes differ — a save identical to the local file (brought back by
        // another sync, or the same edit on both sides) is no conflict.
        let target = if changed_here {
            let name = local
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            local.with_file_name(sftp::temp_name(&name))
        } else {
            local.clone()
        };
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir).map_err(local_err(dir))?;
        }
        progress.add_total(1, r.size);
        let (size, mtime) = sftp
            .download(&self.remote_path(&r.rel), &target, progress, cancel)
            .await?;
        progress.file_done();
        let remote = Stamp {
            size: r.size,
            mtime: r.mtime,
        };
        let identical = changed_here && same_bytes(&target, &local);
        let target = if identical {
            std::fs::remove_file(&target).map_err(local_err(&target))?;
            local.clone()
        } else if changed_here {
            std::fs::rename(&target, &beside).map_err(local_err(&beside))?;
            beside
        } else {
            target
        };
        let changed_here = changed_here && !identical;
        let seen = if identical {
            // The local file stays as it is, and is the host's version: both sides agree.
            Seen {
                local: now_local.unwrap_or(Stamp { size, mtime }),
                remote,
            }
        } else if changed_here {
            Seen {
                // The local file stays as it was; the next upload sends it.
                local: seen.map_or(now_local.unwrap_or_default(), |s| s.local),
                remote,
            }
        } else {
            Seen {
                local: Stamp { size, mtime },
                remote,
            }
        };
        self.state.files.insert(r.rel.clone(), seen);
        self.save_state()?;
        // Nothing new here when the local file already held the host's bytes.
        Ok((!identical).then(|| BroughtBack {
            rel: r.rel.clone(),
            local_path: target,
            beside: changed_here,
        }))
    }
}

#[cfg(test)]
mod tests;
