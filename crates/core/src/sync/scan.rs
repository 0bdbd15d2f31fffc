//! What a sync looks at: the excludes of a project folder and the files on each side.

use std::path::Path;

use super::{ProjectFile, SyncError, local_err};
use crate::sftp::{self, Sftp};

/// The file in the project folder that lists more excludes, in gitignore syntax.
pub const IGNORE_FILE: &str = ".tunnelbookignore";

/// Folder names never sent or brought back.
const EXCLUDED_DIRS: &[&str] = &[
    ".git",
    ".hg",
    ".svn",
    "__pycache__",
    ".ipynb_checkpoints",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    "node_modules",
];

/// File names never sent or brought back.
const EXCLUDED_FILES: &[&str] = &[".DS_Store", "Thumbs.db"];

/// The excludes of a project folder: version-control and cache folders, Python virtual
/// environments (any folder holding `pyvenv.cfg` or `conda-meta`), transfer temporaries, and
/// the patterns of its `.tunnelbookignore`.
#[derive(Debug, Clone)]
pub struct Excludes {
    patterns: ignore::gitignore::Gitignore,
}

impl Excludes {
    /// The excludes of the folder `root` (reads `root/.tunnelbookignore` when there is one).
    ///
    /// # Errors
    /// [`SyncError::IgnoreFile`] when the file cannot be read.
    pub fn of(root: &Path) -> Result<Excludes, SyncError> {
        let mut builder = ignore::gitignore::GitignoreBuilder::new(root);
        let file = root.join(IGNORE_FILE);
        if file.is_file()
            && let Some(e) = builder.add(&file)
        {
            return Err(SyncError::IgnoreFile {
                path: file,
                message: e.to_string(),
            });
        }
        let patterns = builder.build().map_err(|e| SyncError::IgnoreFile {
            path: file,
            message: e.to_string(),
        })?;
        Ok(Excludes { patterns })
    }

    /// Whether `rel` (a `/`-separated path inside the folder) is left out.
    pub fn excludes(&self, rel: &str, is_dir: bool) -> bool {
        let name = rel.rsplit('/').next().unwrap_or(rel);
        if sftp::is_temp_name(name)
            || (is_dir && EXCLUDED_DIRS.contains(&name))
            || (!is_dir && EXCLUDED_FILES.contains(&name))
        {
            return true;
        }
        self.patterns
            .matched_path_or_any_parents(Path::new(rel), is_dir)
            .is_ignore()
    }
}

/// Whether a folder holding these names is a Python environment.
fn is_environment<'a>(mut names: impl Iterator<Item = &'a str>) -> bool {
    names.any(|n| n == "pyvenv.cfg" || n == "conda-meta")
}

/// The files of the local folder `root`, excludes left out, sorted by path.
///
/// # Errors
/// [`SyncError::Local`] when a folder cannot be read.
pub fn scan_local(root: &Path, excludes: &Excludes) -> Result<Vec<ProjectFile>, SyncError> {
    let mut files = Vec::new();
    let mut dirs = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = dirs.pop() {
        let entries: Vec<_> = std::fs::read_dir(&dir)
            .map_err(local_err(&dir))?
            .filter_map(Result::ok)
            .collect();
        let names: Vec<String> = entries
            .iter()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        if !prefix.is_empty() && is_environment(names.iter().map(String::as_str)) {
            continue;
        }
        for e in entries {
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            let rel = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            // Follows symlinks, as `scp -r` does.
            let Ok(meta) = std::fs::metadata(e.path()) else {
                continue;
            };
            if excludes.excludes(&rel, meta.is_dir()) {
                continue;
            }
            if meta.is_dir() {
                dirs.push((e.path(), rel));
            } else if meta.is_file() {
                files.push(ProjectFile {
                    rel,
                    size: meta.len(),
                    mtime: sftp::mtime_secs(&meta),
                });
            }
        }
    }
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(files)
}

/// The files of the remote folder `root`, excludes left out, sorted by path; empty when the
/// folder does not exist yet.
///
/// # Errors
/// SFTP errors other than a missing root.
pub async fn scan_remote(
    sftp: &Sftp,
    root: &str,
    excludes: &Excludes,
) -> Result<Vec<ProjectFile>, SyncError> {
    let mut files = Vec::new();
    let mut dirs = vec![(root.to_string(), String::new())];
    while let Some((dir, prefix)) = dirs.pop() {
        let entries = match sftp.list(&dir).await {
            Ok(e) => e,
            Err(e) if e.is_not_found() && prefix.is_empty() => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        if !prefix.is_empty() && is_environment(entries.iter().map(|e| e.name.as_str())) {
            continue;
        }
        for e in entries {
            let rel = if prefix.is_empty() {
                e.name.clone()
            } else {
                format!("{prefix}/{}", e.name)
            };
            if excludes.excludes(&rel, e.is_dir) {
                continue;
            }
            if e.is_dir {
                dirs.push((e.path, rel));
            } else {
                files.push(ProjectFile {
                    rel,
                    size: e.size,
                    mtime: e.mtime,
                });
            }
        }
    }
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(files)
}
