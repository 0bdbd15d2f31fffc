//! Host-key verification against OpenSSH `known_hosts` files.
//!
//! Reads the user's `~/.ssh/known_hosts` and Tunnelbook's own file (plain, hashed `|1|` and
//! `[host]:port` entries, via russh's parser); writes newly accepted keys only to Tunnelbook's
//! own file so the user's OpenSSH files are never modified.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use russh::keys::{HashAlg, PublicKey, known_hosts as kh};

use super::SshError;

/// The known_hosts files consulted for every connection.
#[derive(Debug, Clone)]
pub struct KnownHosts {
    read: Vec<PathBuf>,
    write: PathBuf,
}

/// The result of looking a host key up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyStatus {
    /// The key is listed for this host.
    Known,
    /// No key of this algorithm is listed for this host.
    Unknown,
    /// A different key of the same algorithm is listed: possible man-in-the-middle.
    Changed {
        /// `SHA256:` fingerprint of the listed key.
        expected: String,
        /// File holding the listed key.
        file: PathBuf,
        /// Line of that file (1-based).
        line: usize,
    },
}

impl KnownHosts {
    /// Tunnelbook's own file `own` (written) plus the user's OpenSSH file, if there is a home.
    pub fn new(own: PathBuf) -> Self {
        let mut read = vec![own.clone()];
        if let Some(home) = directories::BaseDirs::new() {
            read.push(home.home_dir().join(".ssh").join("known_hosts"));
        }
        Self { read, write: own }
    }

    /// Exactly these files: `own` is read and written, `others` only read.
    pub fn with_files(own: PathBuf, others: Vec<PathBuf>) -> Self {
        let mut read = vec![own.clone()];
        read.extend(others);
        Self { read, write: own }
    }

    /// Looks `key` up for `host:port` in every file.
    pub fn check(&self, host: &str, port: u16, key: &PublicKey) -> Result<HostKeyStatus, SshError> {
        let mut known = false;
        for file in &self.read {
            let entries =
                kh::known_host_keys_path(host, port, file).map_err(|e| SshError::KnownHosts {
                    path: file.clone(),
                    message: e.to_string(),
                })?;
            for (line, listed) in entries {
                if listed.algorithm() != key.algorithm() {
                    continue;
                }
                if listed.key_data() == key.key_data() {
                    known = true;
                } else {
                    return Ok(HostKeyStatus::Changed {
                        expected: fingerprint(&listed),
                        file: file.clone(),
                        line,
                    });
                }
            }
        }
        Ok(if known {
            HostKeyStatus::Known
        } else {
            HostKeyStatus::Unknown
        })
    }

    /// Remembers `key` for `host:port` in Tunnelbook's own file.
    pub fn learn(&self, host: &str, port: u16, key: &PublicKey) -> Result<(), SshError> {
        let err = |message: String| SshError::KnownHosts {
            path: self.write.clone(),
            message,
        };
        if let Some(dir) = self.write.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        }
        let entry = key.to_openssh().map_err(|e| err(e.to_string()))?;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.write)
            .map_err(|e| err(e.to_string()))?;
        writeln!(file, "{} {entry}", host_pattern(host, port)).map_err(|e| err(e.to_string()))
    }

    /// Tunnelbook's own file.
    pub fn own_file(&self) -> &Path {
        &self.write
    }
}

/// `host` or `[host]:port`, as OpenSSH writes it.
fn host_pattern(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// The `SHA256:…` fingerprint OpenSSH shows for a key.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
    const ED2: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA6rWI3G1sz07DnfFlrouTcysQlj2P+jpNSOEWD9OJ3X";

    fn key(s: &str) -> PublicKey {
        PublicKey::from_openssh(s).unwrap()
    }

    #[test]
    fn unknown_learned_known_changed() {
        let dir = tempfile::tempdir().unwrap();
        let kh = KnownHosts::with_files(dir.path().join("known_hosts"), vec![]);
        assert_eq!(
            kh.check("box", 2222, &key(ED)).unwrap(),
            HostKeyStatus::Unknown
        );
        kh.learn("box", 2222, &key(ED)).unwrap();
        assert_eq!(
            kh.check("box", 2222, &key(ED)).unwrap(),
            HostKeyStatus::Known
        );
        // Same host, other port: a different entry.
        assert_eq!(
            kh.check("box", 22, &key(ED)).unwrap(),
            HostKeyStatus::Unknown
        );
        match kh.check("box", 2222, &key(ED2)).unwrap() {
            HostKeyStatus::Changed { expected, line, .. } => {
                assert_eq!(expected, fingerprint(&key(ED)));
                assert_eq!(line, 1);
            }
            other => panic!("expected Changed, got {other:?}"),
        }
    }

    // Unix only: it runs OpenSSH's `ssh-keygen -H` to hash the names, which a Windows test run
    // (and Wine) does not have on PATH; the hashed-entry reading itself is platform-neutral.
    #[cfg(unix)]
    #[test]
    fn reads_hashed_and_bracketed_entries_written_by_openssh() {
        let dir = tempfile::tempdir().unwrap();
        let user = dir.path().join("user_known_hosts");
        std::fs::write(
            &user,
            format!("example.org {ED}\n[gpu.example.org]:2200 {ED2}\n"),
        )
        .unwrap();
        // Hash the names the way OpenSSH does (`HashKnownHosts yes`).
        let status = std::process::Command::new("ssh-keygen")
            .arg("-H")
            .arg("-f")
            .arg(&user)
            .output()
            .unwrap();
        assert!(status.status.success(), "{status:?}");
        assert!(std::fs::read_to_string(&user).unwrap().starts_with("|1|"));
        let kh = KnownHosts::with_files(dir.path().join("own"), vec![user]);
        assert_eq!(
            kh.check("example.org", 22, &key(ED)).unwrap(),
            HostKeyStatus::Known
        );
        assert_eq!(
            kh.check("gpu.example.org", 2200, &key(ED2)).unwrap(),
            HostKeyStatus::Known
        );
        assert_eq!(
            kh.check("gpu.example.org", 22, &key(ED2)).unwrap(),
            HostKeyStatus::Unknown
        );
        assert!(matches!(
            kh.check("example.org", 22, &key(ED2)).unwrap(),
            HostKeyStatus::Changed { .. }
        ));
    }
}
