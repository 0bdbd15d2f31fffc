//! Secrets: passwords, key passphrases and Jupyter tokens.
//!
//! Owns the [`Sensitive`] wrapper (never printed, never serialized) and the [`SecretStore`]
//! contract that the OS keychain implements. What it deliberately leaves out: any on-disk
//! fallback. When no keychain is available, callers ask the human each time instead.

use std::{collections::HashMap, fmt, sync::Mutex};

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
    /// The login password of the profile's user.
    Password,
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
        match &self.kind {
            SecretKind::Password => format!("{}:password", self.profile),
            SecretKind::Passphrase(path) => format!("{}:passphrase:{path}", self.profile),
            SecretKind::JupyterToken(id) => format!("{}:jupyter-token:{id}", self.profile),
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
}

/// Where remembered secrets live.
///
/// Contract for implementors: `retrieve` returns `Ok(None)` for a secret that was never stored
/// or was deleted; `delete` of a missing secret is `Ok(())`; nothing is ever written to a plain
/// file, a log line or an error message.
pub trait SecretStore: Send + Sync {
    /// Stores (or replaces) a secret.
    fn persist(&self, key: &SecretKey, value: &Sensitive<String>) -> Result<(), SecretError>;
    /// Reads a secret, `None` when there is none.
    fn retrieve(&self, key: &SecretKey) -> Result<Option<Sensitive<String>>, SecretError>;
    /// Removes a secret; removing a missing one is not an error.
    fn delete(&self, key: &SecretKey) -> Result<(), SecretError>;
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
        let key = SecretKey {
            profile: "box".into(),
            kind: SecretKind::Password,
        };
        assert!(store.retrieve(&key).unwrap().is_none());
        store.persist(&key, &Sensitive::new("pw".into())).unwrap();
        assert_eq!(store.retrieve(&key).unwrap().unwrap().expose(), "pw");
        store.delete(&key).unwrap();
        store.delete(&key).unwrap();
        assert!(store.retrieve(&key).unwrap().is_none());
    }
}
