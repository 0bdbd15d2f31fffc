//! The OS keychain as a [`SecretStore`], through `keyring-core` and the platform store chosen
//! explicitly here (Secret Service over D-Bus on Linux/BSD, Keychain on macOS, Credential Manager
//! on Windows) rather than through keyring's one-shot default-store guess.
//!
//! One keychain entry per secret (service [`SERVICE`], account [`SecretKey::account`]), plus one
//! index entry per profile (account `PROFILE:index`) listing the *names* of that profile's
//! secrets, so that forgetting a host also finds its Jupyter tokens. The index holds no values.
//! Its read-modify-write is serialised across processes (the app, CLI runs) by a lock file in
//! Tunnelbook's home, so two processes remembering secrets at once do not drop each other's names.

use std::{
    collections::HashMap,
    fs::{File, OpenOptions},
    path::PathBuf,
    sync::Arc,
};

use keyring_core::{CredentialStore, Entry, Error as KeyringError};

use super::{SecretError, SecretKey, SecretKind, SecretStore, Sensitive};

/// The keychain service name of every Tunnelbook entry.
pub const SERVICE: &str = "tunnelbook";

/// The largest secret accepted, in bytes of UTF-16: Windows Credential Manager's
/// `CRED_MAX_CREDENTIAL_BLOB_SIZE`. Enforced on every platform so a secret remembered on Linux
/// behaves the same on Windows.
pub const MAX_SECRET_BYTES: usize = 2560;

/// The OS keychain.
///
/// Opened once at start-up with [`KeychainStore::open`]; when that fails, there is no keychain
/// and callers must ask for secrets each time (never fall back to a file).
pub struct KeychainStore {
    store: Arc<CredentialStore>,
    /// The lock file taken around index updates (`None`: no home, in-process only).
    index_lock: Option<PathBuf>,
}

impl std::fmt::Debug for KeychainStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeychainStore")
            .field("vendor", &self.store.vendor())
            .finish()
    }
}

impl KeychainStore {
    /// Opens this platform's keychain and probes it with one harmless read.
    ///
    /// Errors with [`SecretError::Unavailable`] (whose message starts "the OS keychain is not
    /// available") when there is no keychain: no D-Bus session or Secret Service on Linux, a
    /// locked keychain that refuses access, or a platform without one.
    pub fn open() -> Result<KeychainStore, SecretError> {
        let store = platform_store().map_err(|e| SecretError::Unavailable(describe(&e)))?;
        let index_lock = crate::home::dir().map(|home| home.join("keychain-index.lock"));
        let keychain = KeychainStore { store, index_lock };
        // A read of an entry that normally does not exist: succeeds (None) when the keychain
        // answers, fails when it cannot be reached.
        match keychain.read("tunnelbook-probe") {
            Ok(_) => Ok(keychain),
            Err(SecretError::Platform(message) | SecretError::Unavailable(message)) => {
                Err(SecretError::Unavailable(message))
            }
            Err(e) => Err(e),
        }
    }

    /// Who provides the keychain (for diagnostics).
    pub fn vendor(&self) -> String {
        self.store.vendor()
    }

    fn entry(&self, account: &str) -> Result<Entry, SecretError> {
        Entry::new_in_store(&self.store, SERVICE, account).map_err(|e| map_error(&e))
    }

    fn read(&self, account: &str) -> Result<Option<String>, SecretError> {
        match self.entry(account)?.get_password() {
            Ok(value) => Ok(Some(value)),
            Err(KeyringError::NoEntry) => Ok(None),
            Err(e) => Err(map_error(&e)),
        }
    }

    fn write(&self, account: &str, value: &str) -> Result<(), SecretError> {
        check_len(value)?;
        self.entry(account)?
            .set_password(value)
            .map_err(|e| map_error(&e))
    }

    fn remove(&self, account: &str) -> Result<(), SecretError> {
        match self.entry(account)?.delete_credential() {
            Ok(()) | Err(KeyringError::NoEntry) => Ok(()),
            Err(e) => Err(map_error(&e)),
        }
    }

    /// Every entry whose service is [`SERVICE`], found by the keychain's own search (on the
    /// Secret Service and macOS by the `service` attribute; Windows' Credential Manager by its
    /// target name, checked against the service afterwards).
    fn search_service(&self) -> Result<Vec<Entry>, SecretError> {
        let spec: HashMap<&str, &str> = if cfg!(windows) {
            HashMap::from([("pattern", SERVICE)])
        } else {
            HashMap::from([("service", SERVICE)])
        };
        let found = match Entry::search_in_store(&self.store, &spec) {
            Ok(found) => found,
            Err(KeyringError::NoEntry) => Vec::new(),
            Err(e) => return Err(map_error(&e)),
        };
        Ok(found
            .into_iter()
            .filter(|e| {
                e.get_specifiers()
                    .is_some_and(|(service, _)| service == SERVICE)
            })
            .collect())
    }

    /// Uses `path` as the lock file around index updates instead of the one in Tunnelbook's home.
    pub fn with_index_lock(mut self, path: PathBuf) -> Self {
        self.index_lock = Some(path);
        self
    }

    /// Holds the index lock until dropped.
    fn lock_index(&self) -> Result<Option<File>, SecretError> {
        let Some(path) = &self.index_lock else {
            return Ok(None);
        };
        let failed = |e: std::io::Error| {
            SecretError::Platform(format!(
                "cannot lock {} to update the keychain index: {e}",
                path.display()
            ))
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(failed)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(failed)?;
        file.lock().map_err(failed)?;
        Ok(Some(file))
    }

    fn index_account(profile: &str) -> String {
        format!("{profile}:index")
    }

    fn index(&self, profile: &str) -> Result<Vec<String>, SecretError> {
        let text = self
            .read(&Self::index_account(profile))?
            .unwrap_or_default();
        Ok(text
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect())
    }

    fn write_index(&self, profile: &str, suffixes: &[String]) -> Result<(), SecretError> {
        let account = Self::index_account(profile);
        if suffixes.is_empty() {
            self.remove(&account)
        } else {
            self.write(&account, &suffixes.join("\n"))
        }
    }
}

impl SecretStore for KeychainStore {
    fn persist(&self, key: &SecretKey, value: &Sensitive<String>) -> Result<(), SecretError> {
        check_len(value.expose())?;
        let suffix = key.kind.suffix();
        let _lock = self.lock_index()?;
        let mut index = self.index(&key.profile)?;
        if !index.contains(&suffix) {
            index.push(suffix);
            // Index first: a secret the index does not name could outlive its host.
            self.write_index(&key.profile, &index)?;
        }
        self.write(&key.account(), value.expose())
    }

    fn retrieve(&self, key: &SecretKey) -> Result<Option<Sensitive<String>>, SecretError> {
        Ok(self.read(&key.account())?.map(Sensitive::new))
    }

    fn delete(&self, key: &SecretKey) -> Result<(), SecretError> {
        self.remove(&key.account())?;
        let suffix = key.kind.suffix();
        let _lock = self.lock_index()?;
        let mut index = self.index(&key.profile)?;
        if index.contains(&suffix) {
            index.retain(|s| *s != suffix);
            self.write_index(&key.profile, &index)?;
        }
        Ok(())
    }

    fn forget_all(&self, also: &[SecretKey]) -> Result<usize, SecretError> {
        let mut removed = 0;
        for key in also {
            for k in self.list(&key.profile)?.into_iter().chain([key.clone()]) {
                if self.read(&k.account())?.is_some() {
                    removed += 1;
                }
                self.delete(&k)?;
            }
        }
        // Then whatever else carries Tunnelbook's service name: hosts deleted while no keychain
        // was reachable, and entries of older versions that kept no index.
        let _lock = self.lock_index()?;
        for entry in self.search_service()? {
            let index = entry
                .get_specifiers()
                .is_some_and(|(_, account)| account.ends_with(":index"));
            match entry.delete_credential() {
                Ok(()) => removed += usize::from(!index),
                Err(KeyringError::NoEntry) => {}
                Err(e) => return Err(map_error(&e)),
            }
        }
        Ok(removed)
    }

    fn list(&self, profile: &str) -> Result<Vec<SecretKey>, SecretError> {
        Ok(self
            .index(profile)?
            .iter()
            .filter_map(|s| SecretKind::from_suffix(s))
            .map(|kind| SecretKey {
                profile: profile.to_string(),
                kind,
            })
            .collect())
    }
}

fn check_len(value: &str) -> Result<(), SecretError> {
    let len = value.encode_utf16().count() * 2;
    if len > MAX_SECRET_BYTES {
        return Err(SecretError::TooLong {
            len,
            limit: MAX_SECRET_BYTES,
        });
    }
    Ok(())
}

#[cfg(all(
    unix,
    not(any(target_os = "macos", target_os = "ios", target_os = "android"))
))]
fn platform_store() -> keyring_core::Result<Arc<CredentialStore>> {
    Ok(zbus_secret_service_keyring_store::Store::new()?)
}

#[cfg(target_os = "macos")]
fn platform_store() -> keyring_core::Result<Arc<CredentialStore>> {
    Ok(apple_native_keyring_store::keychain::Store::new()?)
}

#[cfg(windows)]
fn platform_store() -> keyring_core::Result<Arc<CredentialStore>> {
    Ok(windows_native_keyring_store::Store::new()?)
}

#[cfg(not(any(windows, unix)))]
fn platform_store() -> keyring_core::Result<Arc<CredentialStore>> {
    Err(KeyringError::NotSupportedByStore(
        "this platform has no supported keychain".into(),
    ))
}

#[cfg(any(target_os = "ios", target_os = "android"))]
fn platform_store() -> keyring_core::Result<Arc<CredentialStore>> {
    Err(KeyringError::NotSupportedByStore(
        "this platform has no supported keychain".into(),
    ))
}

fn map_error(e: &KeyringError) -> SecretError {
    match e {
        KeyringError::NoStorageAccess(_) | KeyringError::NoDefaultStore => {
            SecretError::Unavailable(describe(e))
        }
        KeyringError::TooLong(_, limit) => SecretError::TooLong {
            len: 0,
            limit: usize::try_from(*limit).unwrap_or(usize::MAX),
        },
        _ => SecretError::Platform(describe(e)),
    }
}

/// A message for `e` that never includes secret bytes (`BadEncoding` and `BadDataFormat` carry
/// the stored value, and their `Display` would print it).
fn describe(e: &KeyringError) -> String {
    match e {
        KeyringError::PlatformFailure(inner) => format!("platform failure: {inner}"),
        KeyringError::NoStorageAccess(inner) => format!("no access to the keychain: {inner}"),
        KeyringError::NoEntry => "no such entry".to_string(),
        KeyringError::BadEncoding(_) => "the stored value is not UTF-8".to_string(),
        KeyringError::BadDataFormat(_, _) => "the stored value is malformed".to_string(),
        KeyringError::BadStoreFormat(m) => format!("the keychain is malformed: {m}"),
        KeyringError::TooLong(attr, limit) => format!("{attr} is longer than {limit}"),
        KeyringError::Invalid(attr, why) => format!("invalid {attr}: {why}"),
        KeyringError::Ambiguous(_) => "several keychain entries match".to_string(),
        KeyringError::NoDefaultStore => "no keychain store".to_string(),
        KeyringError::NotSupportedByStore(m) => format!("not supported: {m}"),
        _ => "unknown keychain error".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_limit_is_checked_in_utf16_bytes() {
        assert!(check_len(&"a".repeat(1280)).is_ok());
        let err = check_len(&"a".repeat(1281)).unwrap_err();
        assert!(matches!(
            err,
            SecretError::TooLong {
                len: 2562,
                limit: 2560
            }
        ));
        assert!(err.to_string().contains("too long"));
    }

    #[test]
    fn keychain_errors_never_carry_the_value() {
        let e = KeyringError::BadEncoding(b"hunter2".to_vec());
        assert!(!map_error(&e).to_string().contains("hunter2"));
    }
}
