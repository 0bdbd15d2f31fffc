//! `hosts.toml`: reading (with migration and corrupt-file handling), atomic writing with a
//! backup, and the advisory lock that serialises read-modify-write across processes.

use std::{
    fs::{self, File, OpenOptions},
    io::Write,
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};

use super::{
    Profile, ProfileError,
    migrate::{self, CURRENT_VERSION},
    validate,
};
use crate::secret::{SecretError, SecretKey, SecretKind, SecretStore, copy_secrets};

/// The on-disk shape of `hosts.toml` at [`CURRENT_VERSION`].
#[derive(Debug, Default, Serialize, Deserialize)]
struct HostsFile {
    #[serde(default)]
    version: u32,
    #[serde(default, rename = "host")]
    hosts: Vec<Profile>,
}

/// The profiles file in Tunnelbook's home.
///
/// Every operation holds an exclusive advisory lock on `hosts.toml.lock` for its whole
/// read-modify-write, so the app and the CLI writing at once never lose each other's change.
#[derive(Debug, Clone)]
pub struct ProfileStore {
    path: PathBuf,
}

/// Holds the advisory lock until dropped.
struct Lock {
    _file: File,
}

impl ProfileStore {
    /// The store in `home` (the file is `home/hosts.toml`).
    pub fn in_home(home: &Path) -> Self {
        Self {
            path: home.join("hosts.toml"),
        }
    }

    /// The store in [`super::home_dir`].
    pub fn open_default() -> Result<Self, ProfileError> {
        Ok(Self::in_home(&super::home_dir()?))
    }

    /// The profiles file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the previous version is kept after each write (`hosts.toml.bak`).
    pub fn backup_path(&self) -> PathBuf {
        self.sibling("bak")
    }

    /// All saved profiles, in the order they were added.
    ///
    /// A file that does not parse is moved aside (`hosts.toml.corrupt-YYYYMMDD-HHMMSS`, UTC) and
    /// reported as [`ProfileError::Corrupt`]; the next call starts from an empty list. A file
    /// from a newer Tunnelbook is [`ProfileError::TooNew`] and stays untouched. Older schema
    /// versions are migrated in memory; the file is rewritten on the next change.
    pub fn load(&self) -> Result<Vec<Profile>, ProfileError> {
        let _lock = self.lock()?;
        Ok(self.read_locked()?.1)
    }

    /// Replaces all profiles (validated like [`ProfileStore::update`]).
    pub fn save(&self, hosts: &[Profile]) -> Result<(), ProfileError> {
        self.update(|all| {
            *all = hosts.to_vec();
            Ok(())
        })
    }

    /// Read-modify-write under the lock: `change` edits the list; when it returns `Ok` and the
    /// profiles it added or changed validate, the list is written atomically. Otherwise nothing
    /// is written and the error (for validation, [`ProfileError::Invalid`] with every field
    /// error) is returned. Unchanged profiles are not re-validated, so a key file deleted since
    /// does not block unrelated edits.
    pub fn update<T>(
        &self,
        change: impl FnOnce(&mut Vec<Profile>) -> Result<T, ProfileError>,
    ) -> Result<T, ProfileError> {
        let _lock = self.lock()?;
        let (version, before) = self.read_locked()?;
        let mut hosts = before.clone();
        let out = change(&mut hosts)?;
        if hosts == before && version == CURRENT_VERSION {
            return Ok(out);
        }
        let errors = validate::validate_changes(&before, &hosts);
        if !errors.is_empty() {
            return Err(ProfileError::Invalid(errors));
        }
        self.write_locked(version, &hosts)?;
        Ok(out)
    }

    /// Adds a new profile; a taken name is a field error on `name`.
    pub fn add(&self, profile: Profile) -> Result<(), ProfileError> {
        self.update(|hosts| {
            hosts.push(profile);
            Ok(())
        })
    }

    /// Changes one profile in place (validated like [`ProfileStore::update`]) and returns it.
    pub fn edit(
        &self,
        name: &str,
        change: impl FnOnce(&mut Profile),
    ) -> Result<Profile, ProfileError> {
        self.update(|hosts| {
            let profile = hosts
                .iter_mut()
                .find(|p| p.name == name)
                .ok_or_else(|| ProfileError::NotFound(name.to_string()))?;
            change(profile);
            Ok(profile.clone())
        })
    }

    /// Removes a profile and its secrets (password, key passphrases, Jupyter tokens) from
    /// `secrets`. The secrets go first: when the keychain refuses, the host is kept and
    /// [`ProfileError::Secrets`] says why, so no secret outlives its host unnoticed. Pass `None`
    /// only when no keychain is available (then none can hold its secrets).
    pub fn remove(
        &self,
        name: &str,
        secrets: Option<&dyn SecretStore>,
    ) -> Result<Profile, ProfileError> {
        self.update(|hosts| {
            let index = hosts
                .iter()
                .position(|p| p.name == name)
                .ok_or_else(|| ProfileError::NotFound(name.to_string()))?;
            if let Some(store) = secrets {
                store
                    .forget_profile(name, &hosts[index].secret_keys())
                    .map_err(|source| ProfileError::Secrets {
                        profile: name.to_string(),
                        source,
                    })?;
            }
            Ok(hosts.remove(index))
        })
    }

    /// Changes the host `name` — possibly its name, user, address or port — and carries its
    /// secrets along (validated like [`ProfileStore::update`]); returns the changed host.
    ///
    /// A renamed host's secrets (password, key passphrases, Jupyter tokens) move to the new
    /// name: copied before the file is written, the originals removed after. A password
    /// remembered for another `user@host:port` than the host now names is forgotten (it would
    /// never be sent again). With `secrets` `None` (no keychain) only the file changes. When the
    /// keychain refuses, nothing is written and [`ProfileError::Secrets`] says why.
    pub fn edit_host(
        &self,
        name: &str,
        change: impl FnOnce(&mut Profile),
        secrets: Option<&dyn SecretStore>,
    ) -> Result<Profile, ProfileError> {
        let mut carried = Carried::default();
        let result = self.update(|hosts| {
            let before_all = hosts.clone();
            let index = hosts
                .iter()
                .position(|p| p.name == name)
                .ok_or_else(|| ProfileError::NotFound(name.to_string()))?;
            let before = hosts[index].clone();
            change(&mut hosts[index]);
            let after = hosts[index].clone();
            if let Some(store) = secrets {
                let errors = validate::validate_changes(&before_all, hosts);
                if !errors.is_empty() {
                    return Err(ProfileError::Invalid(errors));
                }
                carried = carry_secrets(store, &before, &after).map_err(|source| {
                    ProfileError::Secrets {
                        profile: before.name.clone(),
                        source,
                    }
                })?;
            }
            Ok(after)
        });
        let Some(store) = secrets else {
            return result;
        };
        match result {
            Ok(after) => {
                for key in &carried.obsolete {
                    store.delete(key).map_err(|source| ProfileError::Secrets {
                        profile: name.to_string(),
                        source,
                    })?;
                }
                Ok(after)
            }
            Err(e) => {
                // The file kept the old host: the copies must not outlive the attempt.
                for key in &carried.copied {
                    let _ = store.delete(key);
                }
                Err(e)
            }
        }
    }

    /// Saves `profile` as a new host, or in place of the host `previous` when there is one
    /// (through [`ProfileStore::edit_host`], so a rename carries its secrets); returns every
    /// host. This is the app's "Save" on the host form.
    pub fn save_host(
        &self,
        previous: Option<&str>,
        profile: Profile,
        secrets: Option<&dyn SecretStore>,
    ) -> Result<Vec<Profile>, ProfileError> {
        let exists = previous.is_some_and(|name| {
            self.load()
                .map(|all| all.iter().any(|p| p.name == name))
                .unwrap_or(false)
        });
        match previous {
            Some(name) if exists => {
                self.edit_host(name, |p| *p = profile, secrets)?;
            }
            _ => self.add(profile)?,
        }
        self.load()
    }

    /// Removes every secret Tunnelbook remembered in `secrets` — of every saved host, of hosts
    /// deleted since, and entries of older versions (see [`SecretStore::forget_all`]) — and
    /// returns how many entries went. Saved hosts stay. A hosts file that cannot be read does
    /// not stop it: the keychain's own search still finds the entries.
    pub fn forget_all_secrets(&self, secrets: &dyn SecretStore) -> Result<usize, SecretError> {
        let hosts = self.load().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "hosts file unreadable; forgetting secrets by search only");
            Vec::new()
        });
        let keys: Vec<SecretKey> = hosts.iter().flat_map(Profile::secret_keys).collect();
        secrets.forget_all(&keys)
    }

    /// One profile by name.
    pub fn get(&self, name: &str) -> Result<Profile, ProfileError> {
        self.load()?
            .into_iter()
            .find(|p| p.name == name)
            .ok_or_else(|| ProfileError::NotFound(name.to_string()))
    }

    /// The hops to reach `name`, first hop first, the target last.
    ///
    /// The jump is a list of hops as OpenSSH's `ProxyJump` writes them; a hop that names no
    /// saved profile is read as `[user@]host[:port]` (see [`super::jump`]).
    pub fn chain(&self, name: &str) -> Result<Vec<Profile>, ProfileError> {
        let all = self.load()?;
        chain_in(&all, name)
    }

    fn sibling(&self, suffix: &str) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(".");
        name.push(suffix);
        self.path.with_file_name(name)
    }

    fn dir(&self) -> &Path {
        self.path.parent().unwrap_or_else(|| Path::new("."))
    }

    fn io(&self, path: &Path) -> impl Fn(std::io::Error) -> ProfileError {
        let path = path.to_path_buf();
        move |source| ProfileError::Io {
            path: path.clone(),
            source,
        }
    }

    fn lock(&self) -> Result<Lock, ProfileError> {
        fs::create_dir_all(self.dir()).map_err(self.io(self.dir()))?;
        let path = self.sibling("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(self.io(&path))?;
        file.lock().map_err(self.io(&path))?;
        Ok(Lock { _file: file })
    }

    /// Reads the file (the caller holds the lock): its schema version on disk and the profiles.
    fn read_locked(&self) -> Result<(u32, Vec<Profile>), ProfileError> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((CURRENT_VERSION, Vec::new()));
            }
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Err(self.set_aside("the file is not UTF-8 text".into()));
            }
            Err(source) => {
                return Err(ProfileError::Io {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let table: toml::Table = match toml::from_str(&text) {
            Ok(table) => table,
            Err(e) => return Err(self.set_aside(e.to_string())),
        };
        let found = match migrate::version_of(&table) {
            Ok(found) => found,
            Err(message) => return Err(self.set_aside(message)),
        };
        if found > CURRENT_VERSION {
            return Err(ProfileError::TooNew {
                path: self.path.clone(),
                found,
                supported: CURRENT_VERSION,
            });
        }
        let parsed = migrate::migrate(table).and_then(|t| {
            toml::Value::Table(t)
                .try_into::<HostsFile>()
                .map_err(|e| e.to_string())
        });
        match parsed {
            Ok(file) => Ok((found, file.hosts)),
            Err(message) => Err(self.set_aside(message)),
        }
    }

    /// Moves an unreadable file aside and says so.
    fn set_aside(&self, message: String) -> ProfileError {
        let stamp = utc_stamp(SystemTime::now());
        let mut kept_at = self.sibling(&format!("corrupt-{stamp}"));
        let mut n = 1;
        while kept_at.exists() {
            n += 1;
            kept_at = self.sibling(&format!("corrupt-{stamp}-{n}"));
        }
        if let Err(source) = fs::rename(&self.path, &kept_at) {
            return ProfileError::Io {
                path: self.path.clone(),
                source,
            };
        }
        tracing::warn!(path = %self.path.display(), kept_at = %kept_at.display(), "hosts file unreadable; moved aside");
        let backup = Some(self.backup_path()).filter(|b| b.exists());
        ProfileError::Corrupt {
            path: self.path.clone(),
            kept_at,
            backup,
            message,
        }
    }

    /// Writes atomically (the caller holds the lock): temp file in the same directory, fsync,
    /// the current file copied to `.bak`, rename over, fsync the directory. A file of an older
    /// schema version is also kept once as `hosts.toml.v{N}.bak`.
    fn write_locked(&self, on_disk: u32, hosts: &[Profile]) -> Result<(), ProfileError> {
        let file = HostsFile {
            version: CURRENT_VERSION,
            hosts: hosts.to_vec(),
        };
        let text = toml::to_string_pretty(&file).map_err(|e| ProfileError::Io {
            path: self.path.clone(),
            source: std::io::Error::other(e),
        })?;
        let tmp = self.sibling(&format!("tmp-{}", std::process::id()));
        let bak_tmp = self.sibling(&format!("bak.tmp-{}", std::process::id()));
        let written = self.replace_locked(on_disk, text.as_bytes(), &tmp, &bak_tmp);
        if written.is_err() {
            // A failed write leaves the old file in place; its temporary copies must not pile
            // up beside it (one pair per failed process id).
            for leftover in [&tmp, &bak_tmp] {
                let _ = fs::remove_file(leftover);
            }
        }
        written
    }

    /// The steps of [`Self::write_locked`] that touch the disk, through the temporary files
    /// `tmp` (the new contents) and `bak_tmp` (the backup being made).
    fn replace_locked(
        &self,
        on_disk: u32,
        text: &[u8],
        tmp: &Path,
        bak_tmp: &Path,
    ) -> Result<(), ProfileError> {
        write_synced(tmp, text).map_err(self.io(tmp))?;
        if self.path.exists() {
            if on_disk < CURRENT_VERSION {
                let old = self.sibling(&format!("v{on_disk}.bak"));
                if !old.exists() {
                    copy_synced(&self.path, &old).map_err(self.io(&old))?;
                }
            }
            let bak = self.backup_path();
            copy_synced(&self.path, bak_tmp).map_err(self.io(bak_tmp))?;
            fs::rename(bak_tmp, &bak).map_err(self.io(&bak))?;
        }
        fs::rename(tmp, &self.path).map_err(self.io(&self.path))?;
        sync_dir(self.dir());
        Ok(())
    }
}

/// What [`carry_secrets`] did: the copies made under a new name, and the entries to remove
/// once the file is written.
#[derive(Default)]
struct Carried {
    copied: Vec<SecretKey>,
    obsolete: Vec<SecretKey>,
}

/// Copies the secrets of `before` that still apply to `after` under `after`'s name (when it
/// changed) and lists the entries that go once the change is saved: every original of a renamed
/// host, and any password remembered for another destination than `after`'s.
fn carry_secrets(
    store: &dyn SecretStore,
    before: &Profile,
    after: &Profile,
) -> Result<Carried, SecretError> {
    let mut keys = store.list(&before.name)?;
    for key in before.secret_keys() {
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    let current = after.password_key().kind;
    let (keep, stale): (Vec<SecretKey>, Vec<SecretKey>) = keys
        .into_iter()
        .partition(|k| !matches!(k.kind, SecretKind::Password(_)) || k.kind == current);
    let mut carried = Carried {
        copied: Vec::new(),
        obsolete: stale,
    };
    if before.name != after.name {
        carried.copied = copy_secrets(store, &keep, &after.name)?;
        carried.obsolete.extend(keep);
    }
    Ok(carried)
}

/// [`ProfileStore::chain`] over an already loaded list.
pub(super) fn chain_in(all: &[Profile], name: &str) -> Result<Vec<Profile>, ProfileError> {
    let profile = all
        .iter()
        .find(|p| p.name == name)
        .cloned()
        .ok_or_else(|| ProfileError::NotFound(name.to_string()))?;
    super::jump::hops_to(all, profile, &mut vec![name.to_string()], name)
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Copies `from` to `to` and flushes the copy to disk.
///
/// The flush goes through a handle opened for writing: on Windows `sync_all` is
/// `FlushFileBuffers`, which fails with "Access denied" (os error 5) on a read-only handle, and
/// that made every write to an existing `hosts.toml` fail there.
fn copy_synced(from: &Path, to: &Path) -> std::io::Result<()> {
    fs::copy(from, to)?;
    OpenOptions::new().write(true).open(to)?.sync_all()
}

/// Makes the renames durable. Directories cannot be opened for syncing on Windows, where
/// `MoveFileEx` is durable enough; failure here is not worth failing the write for.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// `YYYYMMDD-HHMMSS` in UTC.
pub(super) fn utc_stamp(at: SystemTime) -> String {
    let secs = at
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn utc_stamp_formats_civil_time() {
        assert_eq!(utc_stamp(UNIX_EPOCH), "19700101-000000");
        // 2024-02-29 13:45:07 UTC
        assert_eq!(
            utc_stamp(UNIX_EPOCH + Duration::from_secs(1_709_214_307)),
            "20240229-134507"
        );
    }
}
