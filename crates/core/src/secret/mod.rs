//! Secrets: passwords, key passphrases and Jupyter tokens.
//!
//! Owns the [`Sensitive`] wrapper (never printed, never serialized), the [`SecretStore`]
//! contract, and its OS implementation [`KeychainStore`] (one keychain entry per secret, service
//! `tunnelbook`, account [`SecretKey::account`]: `PROFILE:password:USER@HOST:PORT`,
//! `PROFILE:passphrase:PATH`, `PROFILE:jupyter-token:ID`), moving a renamed host's secrets
//! ([`move_secrets`]) and forgetting every Tunnelbook entry ([`SecretStore::forget_all`]). What it deliberately leaves out: any on-disk
//! fallback — when no keychain is available ([`KeychainStore::open`] says so), callers ask the
//! human each time instead — and which secrets a saved host implies (that is
//! [`crate::profile`]'s knowledge).

mod keychain;

use std::{collections::HashMap, fmt, sync::Mutex};

pub use keychain::{KeychainStore, MAX_SECRET_BYTES, SERVICE};

/// A value that must not leak: `Debug` and `Display` print `<redacted>`, and it implements
/// neither `Serialize` nor `Clone`-into-string helpers. Read it with [`Sensitive::expose`].
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Sensitive<T>(T);

impl<T> Sensitive<T> {
    /// Wraps a secret value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The secret itself. Call sites of `expose` are the places to audit for leaks.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<T> fmt::Display for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for Sensitive<String> {
    fn from(value: String) -> Self {
        Self(value)
    }
}

/// What a secret unlocks. Together with the profile name it names one keychain entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SecretKind {
    /// The login password for one destination, `user@host:port` (the user as logged in, the
    /// port always written): a password is only ever sent to the server it was typed for, so a
    /// host saved again under an old name, or edited to point elsewhere, is asked afresh.
    ///
    /// An empty destination is an entry remembered by a Tunnelbook that did not record where
    /// (account `PROFILE:password`): it is never sent, only found and forgotten.
    Password(String),
    /// The passphrase of a private key file (the path as written in the profile).
    Passphrase(String),
    /// The token of a Jupyter server started by Tunnelbook (its id on the host).
    JupyterToken(String),
}

/// The address of one secret: which profile, and what it unlocks.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SecretKey {
    /// The profile's name.
    pub profile: String,
    /// What the secret unlocks.
    pub kind: SecretKind,
}

impl SecretKey {
    /// The keychain account name for this secret, stable across versions.
    pub fn account(&self) -> String {
        format!("{}:{}", self.profile, self.kind.suffix())
    }

    /// The password profile `profile` remembered for `destination` (`user@host:port`, see
    /// [`SecretKind::Password`]; `crate::profile::Profile::password_key` builds it from a saved
    /// host).
    pub fn password(profile: &str, destination: &str) -> SecretKey {
        SecretKey {
            profile: profile.to_string(),
            kind: SecretKind::Password(destination.to_string()),
        }
    }

    /// The same secret kept under another profile name (a renamed host).
    pub fn renamed(&self, profile: &str) -> SecretKey {
        SecretKey {
            profile: profile.to_string(),
            kind: self.kind.clone(),
        }
    }

    /// The passphrase of a key file, as the SSH engine names it (the path as given to it).
    pub fn passphrase(profile: &str, path: &std::path::Path) -> SecretKey {
        SecretKey {
            profile: profile.to_string(),
            kind: SecretKind::Passphrase(path.display().to_string()),
        }
    }
}

/// Errors from a secret store.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The store cannot be reached (no Secret Service, keychain locked, …).
    #[error("the OS keychain is not available: {0}")]
    Unavailable(String),
    /// The store refused the operation.
    #[error("the OS keychain refused the operation: {0}")]
    Platform(String),
    /// The value is longer than the keychain can hold (Windows Credential Manager keeps at most
    /// 2560 bytes of UTF-16, so Tunnelbook refuses longer values on every platform).
    #[error(
        "the secret is too long for the OS keychain ({len} bytes as UTF-16, the limit is {limit})"
    )]
    TooLong {
        /// The value's size as UTF-16, in bytes.
        len: usize,
        /// The limit, in bytes.
        limit: usize,
    },
}

/// Where remembered secrets live.
///
/// Contract for implementors: `retrieve` returns `Ok(None)` for a secret that was never stored
/// or was deleted; `delete` of a missing secret is `Ok(())`; `list` names every secret of a
/// profile that `persist` stored and `delete` has not removed since; nothing is ever written to a
/// plain file, a log line or an error message.
pub trait SecretStore: Send + Sync {
    /// Stores (or replaces) a secret.
    fn persist(&self, key: &SecretKey, value: &Sensitive<String>) -> Result<(), SecretError>;
    /// Reads a secret, `None` when there is none.
    fn retrieve(&self, key: &SecretKey) -> Result<Option<Sensitive<String>>, SecretError>;
    /// Removes a secret; removing a missing one is not an error.
    fn delete(&self, key: &SecretKey) -> Result<(), SecretError>;
    /// The keys of the secrets stored for `profile` (never their values), in no particular order.
    fn list(&self, profile: &str) -> Result<Vec<SecretKey>, SecretError>;

    /// Removes every secret of `profile`: those [`SecretStore::list`] knows and `also` (keys
    /// derived from the profile, in case the store lost track of one). Missing ones are skipped.
    fn forget_profile(&self, profile: &str, also: &[SecretKey]) -> Result<(), SecretError> {
        let mut keys = self.list(profile)?;
        keys.extend(also.iter().filter(|k| k.profile == profile).cloned());
        for key in keys {
            self.delete(&key)?;
        }
        Ok(())
    }

    /// Removes every secret Tunnelbook remembered in this store, whichever host it was for —
    /// also hosts no longer saved and entries left by older versions — and returns how many
    /// entries went. `also` names keys derived from the saved hosts, in case neither the index
    /// nor a search finds them.
    ///
    /// The default removes `also` and every secret [`SecretStore::list`] names for their
    /// profiles; stores that can search (the OS keychain) also remove whatever else carries
    /// Tunnelbook's name.
    fn forget_all(&self, also: &[SecretKey]) -> Result<usize, SecretError> {
        let mut keys: Vec<SecretKey> = Vec::new();
        for key in also {
            for k in self.list(&key.profile)?.into_iter().chain([key.clone()]) {
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
        }
        let mut removed = 0;
        for key in keys {
            if self.retrieve(&key)?.is_some() {
                removed += 1;
            }
            self.delete(&key)?;
        }
        Ok(removed)
    }
}

/// Moves the secrets `keys` (those that exist) to profile `to`, for a host renamed to `to`:
/// each is copied first, and only when every copy is stored are the originals removed, so a
/// keychain that fails half-way loses nothing. Returns the keys of the copies.
///
/// Errors: the store's; a failed copy removes the copies already made before returning.
pub fn move_secrets(
    store: &dyn SecretStore,
    keys: &[SecretKey],
    to: &str,
) -> Result<Vec<SecretKey>, SecretError> {
    let copied = copy_secrets(store, keys, to)?;
    for key in keys {
        store.delete(key)?;
    }
    Ok(copied)
}

/// The copying half of [`move_secrets`]: stores each existing secret of `keys` under profile
/// `to` and returns the new keys; on failure removes the copies made so far.
pub fn copy_secrets(
    store: &dyn SecretStore,
    keys: &[SecretKey],
    to: &str,
) -> Result<Vec<SecretKey>, SecretError> {
    let mut copied = Vec::new();
    for key in keys {
        let result = store.retrieve(key).and_then(|value| match value {
            Some(value) => {
                let new = key.renamed(to);
                store.persist(&new, &value)?;
                Ok(Some(new))
            }
            None => Ok(None),
        });
        match result {
            Ok(Some(new)) => copied.push(new),
            Ok(None) => {}
            Err(e) => {
                for new in &copied {
                    let _ = store.delete(new);
                }
                return Err(e);
            }
        }
    }
    Ok(copied)
}

impl SecretKind {
    /// The part of the account name after the profile (`password`, `passphrase:PATH`, …).
    fn suffix(&self) -> String {
        match self {
            SecretKind::Password(destination) if destination.is_empty() => "password".to_string(),
            SecretKind::Password(destination) => format!("password:{destination}"),
            SecretKind::Passphrase(path) => format!("passphrase:{path}"),
            SecretKind::JupyterToken(id) => format!("jupyter-token:{id}"),
        }
    }

    /// The inverse of [`SecretKind::suffix`].
    fn from_suffix(suffix: &str) -> Option<SecretKind> {
        if suffix == "password" {
            Some(SecretKind::Password(String::new()))
        } else if let Some(destination) = suffix.strip_prefix("password:") {
            Some(SecretKind::Password(destination.to_string()))
        } else if let Some(path) = suffix.strip_prefix("passphrase:") {
            Some(SecretKind::Passphrase(path.to_string()))
        } else {
            suffix
                .strip_prefix("jupyter-token:")
                .map(|id| SecretKind::JupyterToken(id.to_string()))
        }
    }
}

/// A process-local store for tests and for "remember for this session only".
#[derive(Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<SecretKey, Sensitive<String>>>,
}

impl SecretStore for MemoryStore {
    fn persist(&self, key: &SecretKey, value: &Sensitive<String>) -> Result<(), SecretError> {
        let mut entries = self
            .entries
            .lock()
            .map_err(|e| SecretError::Platform(e.to_string()))?;
        entries.insert(key.clone(), value.clone());
        Ok(())
    }

    fn retrieve(&self, key: &SecretKey) -> Result<Option<Sensitive<String>>, SecretError> {
        let entries = self
            .entries
            .lock()
            .map_err(|e| SecretError::Platform(e.to_string()))?;
        Ok(entries.get(key).cloned())
    }

    fn delete(&self, key: &SecretKey) -> Result<(), SecretError> {
        let mut entries = self
            .entries
            .lock()
            .map_err(|e| SecretError::Platform(e.to_string()))?;
        entries.remove(key);
        Ok(())
    }

    fn list(&self, profile: &str) -> Result<Vec<SecretKey>, SecretError> {
        let entries = self
            .entries
            .lock()
            .map_err(|e| SecretError::Platform(e.to_string()))?;
        Ok(entries
            .keys()
            .filter(|k| k.profile == profile)
            .cloned()
            .collect())
    }

    fn forget_all(&self, _also: &[SecretKey]) -> Result<usize, SecretError> {
        let mut entries = self
            .entries
            .lock()
            .map_err(|e| SecretError::Platform(e.to_string()))?;
        let removed = entries.len();
        entries.clear();
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_never_prints_its_value() {
        let s = Sensitive::new("hunter2".to_string());
        assert_eq!(format!("{s:?} {s}"), "<redacted> <redacted>");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn memory_store_round_trip() {
        let store = MemoryStore::default();
        let key = SecretKey::password("box", "me@box:22");
        assert!(store.retrieve(&key).unwrap().is_none());
        store.persist(&key, &Sensitive::new("pw".into())).unwrap();
        assert_eq!(store.retrieve(&key).unwrap().unwrap().expose(), "pw");
        store.delete(&key).unwrap();
        store.delete(&key).unwrap();
        assert!(store.retrieve(&key).unwrap().is_none());
    }

    #[test]
    fn account_suffix_round_trips() {
        for kind in [
            SecretKind::Password(String::new()),
            SecretKind::Password("u@h.example:2222".into()),
            SecretKind::Passphrase("/home/a/.ssh/id_ed25519".into()),
            SecretKind::JupyterToken("srv:1".into()),
        ] {
            assert_eq!(SecretKind::from_suffix(&kind.suffix()), Some(kind));
        }
        assert_eq!(SecretKind::from_suffix("other"), None);
    }

    #[test]
    fn forget_profile_removes_listed_and_derived_secrets_only() {
        let store = MemoryStore::default();
        let v = Sensitive::new("v".to_string());
        let token = SecretKey {
            profile: "box".into(),
            kind: SecretKind::JupyterToken("1".into()),
        };
        let other = SecretKey::password("other", "me@other:22");
        store
            .persist(&SecretKey::password("box", "me@box:22"), &v)
            .unwrap();
        store.persist(&token, &v).unwrap();
        store.persist(&other, &v).unwrap();
        store
            .forget_profile(
                "box",
                &[SecretKey::passphrase("box", "/k".as_ref()), other.clone()],
            )
            .unwrap();
        assert!(store.list("box").unwrap().is_empty());
        assert!(store.retrieve(&other).unwrap().is_some());
    }

    #[test]
    fn legacy_password_account_is_read_as_a_password_for_nowhere() {
        let legacy = SecretKey::password("box", "");
        assert_eq!(legacy.account(), "box:password");
        assert_eq!(
            SecretKey::password("box", "me@box:22").account(),
            "box:password:me@box:22"
        );
        assert_ne!(legacy, SecretKey::password("box", "me@box:22"));
    }

    #[test]
    fn move_secrets_copies_then_removes_the_originals() {
        let store = MemoryStore::default();
        let v = Sensitive::new("v".to_string());
        let pw = SecretKey::password("old", "me@box:22");
        let token = SecretKey {
            profile: "old".into(),
            kind: SecretKind::JupyterToken("1".into()),
        };
        store.persist(&pw, &v).unwrap();
        store.persist(&token, &v).unwrap();
        let missing = SecretKey::passphrase("old", "/k".as_ref());
        let moved = move_secrets(&store, &[pw.clone(), token, missing], "new").unwrap();
        assert_eq!(moved.len(), 2);
        assert!(store.list("old").unwrap().is_empty());
        assert_eq!(
            store
                .retrieve(&pw.renamed("new"))
                .unwrap()
                .unwrap()
                .expose(),
            "v"
        );
    }

    #[test]
    fn forget_all_empties_the_memory_store() {
        let store = MemoryStore::default();
        let v = Sensitive::new("v".to_string());
        store
            .persist(&SecretKey::password("a", "me@a:22"), &v)
            .unwrap();
        store
            .persist(&SecretKey::password("gone", "me@b:22"), &v)
            .unwrap();
        assert_eq!(store.forget_all(&[]).unwrap(), 2);
        assert!(store.list("gone").unwrap().is_empty());
    }
}
