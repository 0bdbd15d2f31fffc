//! Host-key verification against OpenSSH `known_hosts` files, read the way OpenSSH reads them.
//!
//! Reads Tunnelbook's own file, the user's (`~/.ssh/known_hosts`, `~/.ssh/known_hosts2`) and the
//! system's (`/etc/ssh/ssh_known_hosts`, `ssh_known_hosts2`), or the files a profile names
//! instead (`UserKnownHostsFile` / `GlobalKnownHostsFile`), and looks the host up under its name
//! (`host`, `[host]:port`, or the `HostKeyAlias`) as OpenSSH does: comma-separated patterns with
//! `*`, `?` and `!` negation (case-insensitive), hashed `|1|salt|hash` names, several keys per
//! host, `@revoked` keys refused and `@cert-authority` keys trusted to sign host certificates.
//! A malformed line is skipped with a warning naming its file and line.
//!
//! Newly accepted keys are written only to Tunnelbook's own file, so the user's OpenSSH files
//! are never modified. Leaves out `CheckHostIP` (off by default since OpenSSH 8.5) and
//! `VerifyHostKeyDNS`.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use data_encoding::BASE64;
use hmac::{Hmac, KeyInit, Mac};
use russh::keys::{Algorithm, Certificate, HashAlg, PublicKey, ssh_key::certificate::CertType};
use sha1::Sha1;
use tracing::warn;

use super::SshError;
use crate::profile::wildcard;

/// The known_hosts files consulted for every connection.
#[derive(Debug, Clone)]
pub struct KnownHosts {
    read: Vec<PathBuf>,
    write: PathBuf,
}

/// The result of looking a host key up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyStatus {
    /// The key is listed for this host, or it is a host certificate signed by a listed
    /// `@cert-authority`.
    Known,
    /// No key is listed for this host.
    Unknown,
    /// Other keys are listed for this host (of the same or another type): possible
    /// man-in-the-middle.
    Changed {
        /// `SHA256:` fingerprint of the listed key.
        expected: String,
        /// File holding the listed key.
        file: PathBuf,
        /// Line of that file (1-based, counting comments and blank lines); 0 when the key is
        /// PuTTY's (Windows), `file` then naming the registry value.
        line: usize,
    },
    /// The key (or the CA that signed the certificate) is marked `@revoked`.
    Revoked {
        /// File holding the `@revoked` line.
        file: PathBuf,
        /// Its line (1-based).
        line: usize,
    },
    /// A host certificate signed by a listed CA that is not valid for this host now.
    CertificateInvalid {
        /// Why, e.g. "expired" or "not valid for host x".
        reason: String,
    },
}

/// What a line says about the key on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    /// A host key.
    None,
    /// `@cert-authority`: a CA trusted to sign host certificates.
    CertAuthority,
    /// `@revoked`: never accept this key.
    Revoked,
}

/// One usable line of a known_hosts file.
#[derive(Debug, Clone)]
struct Entry {
    file: PathBuf,
    line: usize,
    marker: Marker,
    hosts: String,
    key: PublicKey,
}

/// Parses `text` (the contents of `file`); malformed lines come back as warnings naming file
/// and line.
fn parse(file: &Path, text: &str) -> (Vec<Entry>, Vec<String>) {
    let mut entries = Vec::new();
    let mut warnings = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut fields = trimmed.split_whitespace();
        let mut first = fields.next().unwrap_or_default();
        let marker = match first {
            "@cert-authority" => Marker::CertAuthority,
            "@revoked" => Marker::Revoked,
            m if m.starts_with('@') => {
                warnings.push(format!(
                    "{}:{line}: unknown marker {m}; line skipped",
                    file.display()
                ));
                continue;
            }
            _ => Marker::None,
        };
        if marker != Marker::None {
            first = fields.next().unwrap_or_default();
        }
        let hosts = first;
        let rest: Vec<&str> = fields.collect();
        let key = match rest.as_slice() {
            [algorithm, base64, ..] => {
                PublicKey::from_openssh(&format!("{algorithm} {base64}")).map_err(|e| e.to_string())
            }
            _ => Err("no key".to_string()),
        };
        match key {
            Ok(key) if !hosts.is_empty() => entries.push(Entry {
                file: file.to_path_buf(),
                line,
                marker,
                hosts: hosts.to_string(),
                key,
            }),
            Ok(_) => {}
            Err(e) => warnings.push(format!(
                "{}:{line}: malformed known_hosts line ({e}); line skipped",
                file.display()
            )),
        }
    }
    (entries, warnings)
}

/// Whether a host field matches `name` (already lowercased): a hashed `|1|salt|hash` name, or
/// OpenSSH's pattern list where a matching `!pattern` wins over every other.
fn host_matches(hosts: &str, name: &str) -> bool {
    if let Some(hashed) = hosts.strip_prefix("|1|") {
        let mut parts = hashed.split('|');
        let (Some(salt), Some(hash)) = (parts.next(), parts.next()) else {
            return false;
        };
        let (Ok(salt), Ok(hash)) = (
            BASE64.decode(salt.as_bytes()),
            BASE64.decode(hash.as_bytes()),
        ) else {
            return false;
        };
        return <Hmac<Sha1> as KeyInit>::new_from_slice(&salt).is_ok_and(|mac| {
            mac.chain_update(name.as_bytes())
                .verify_slice(&hash)
                .is_ok()
        });
    }
    let mut matched = false;
    for pattern in hosts.split(',') {
        let pattern = pattern.to_lowercase();
        if let Some(negated) = pattern.strip_prefix('!') {
            if wildcard(negated, name) {
                return false;
            }
        } else if wildcard(&pattern, name) {
            matched = true;
        }
    }
    matched
}

/// The name a host is listed under: the `HostKeyAlias` as given, else `host` on port 22 and
/// `[host]:port` on any other (as OpenSSH writes them).
pub fn lookup_name(host: &str, port: u16, alias: Option<&str>) -> String {
    match alias {
        Some(alias) => alias.to_lowercase(),
        None if port == 22 => host.to_lowercase(),
        None => format!("[{}]:{port}", host.to_lowercase()),
    }
}

/// Keys of one algorithm family match whatever signature hash RSA uses.
fn same_type(a: &Algorithm, b: &Algorithm) -> bool {
    match (a, b) {
        (Algorithm::Rsa { .. }, Algorithm::Rsa { .. }) => true,
        _ => a == b,
    }
}

impl KnownHosts {
    /// Tunnelbook's own file `own` (read and written) plus OpenSSH's default files: the user's
    /// `~/.ssh/known_hosts` and `known_hosts2`, the system's `/etc/ssh/ssh_known_hosts` and
    /// `ssh_known_hosts2` (missing files are skipped).
    pub fn new(own: PathBuf) -> Self {
        let mut others = default_user_files();
        others.extend(default_global_files());
        Self::with_files(own, others)
    }

    /// Exactly these files: `own` is read and written, `others` only read.
    pub fn with_files(own: PathBuf, others: Vec<PathBuf>) -> Self {
        let mut read = vec![own.clone()];
        read.extend(others);
        Self { read, write: own }
    }

    /// The same own file with the user and global files a profile names replacing OpenSSH's
    /// defaults (`UserKnownHostsFile` / `GlobalKnownHostsFile`; `~` expanded). Either list
    /// empty keeps the defaults for that kind.
    pub fn with_profile_files(&self, user: &[PathBuf], global: &[PathBuf]) -> Self {
        if user.is_empty() && global.is_empty() {
            return self.clone();
        }
        let expand = |files: &[PathBuf]| -> Vec<PathBuf> {
            files
                .iter()
                .map(|p| crate::profile::expand_home(p))
                .collect()
        };
        let mut others = if user.is_empty() {
            default_user_files()
        } else {
            expand(user)
        };
        others.extend(if global.is_empty() {
            default_global_files()
        } else {
            expand(global)
        });
        Self::with_files(self.write.clone(), others)
    }

    /// Every line listing `name`, in file order; malformed lines are logged as warnings when
    /// `report`.
    fn entries(&self, name: &str, report: bool) -> Result<Vec<Entry>, SshError> {
        let mut out = Vec::new();
        for file in &self.read {
            let text = match std::fs::read(file) {
                Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(SshError::KnownHosts {
                        path: file.clone(),
                        message: e.to_string(),
                    });
                }
            };
            let (entries, warnings) = parse(file, &text);
            if report {
                for warning in warnings {
                    warn!("{warning}");
                }
            }
            out.extend(entries.into_iter().filter(|e| host_matches(&e.hosts, name)));
        }
        #[cfg(windows)]
        out.extend(putty_entries(name, report));
        Ok(out)
    }

    /// Looks `key` up for `host:port` in every file.
    pub fn check(&self, host: &str, port: u16, key: &PublicKey) -> Result<HostKeyStatus, SshError> {
        self.check_named(&lookup_name(host, port, None), key)
    }

    /// Looks a plain `key` up under `name` (see [`lookup_name`]).
    pub fn check_named(&self, name: &str, key: &PublicKey) -> Result<HostKeyStatus, SshError> {
        let entries = self.entries(name, true)?;
        Ok(plain_status(&entries, key))
    }

    /// Checks a host certificate presented by `host` (listed under `name`): accepted when a
    /// matching `@cert-authority` signed it for `host` and it is valid now; with no listed CA
    /// for it, its plain key is looked up as a host key, as OpenSSH does.
    pub fn check_certificate(
        &self,
        name: &str,
        host: &str,
        cert: &Certificate,
    ) -> Result<HostKeyStatus, SshError> {
        let entries = self.entries(name, true)?;
        let plain = PublicKey::from(cert.public_key().clone());
        let ca = cert.signature_key();
        if let Some(e) = entries
            .iter()
            .find(|e| e.marker == Marker::Revoked && (e.key.key_data() == ca))
        {
            return Ok(HostKeyStatus::Revoked {
                file: e.file.clone(),
                line: e.line,
            });
        }
        let cas: Vec<_> = entries
            .iter()
            .filter(|e| e.marker == Marker::CertAuthority && e.key.key_data() == ca)
            .collect();
        if cas.is_empty() {
            return Ok(plain_status(&entries, &plain));
        }
        if let Some(status) = revoked(&entries, &plain) {
            return Ok(status);
        }
        let reason = if cert.cert_type() != CertType::Host {
            Some("it is a user certificate, not a host certificate".to_string())
        } else if !cert.valid_principals().is_empty()
            && !cert
                .valid_principals()
                .iter()
                .any(|p| p.eq_ignore_ascii_case(host))
        {
            Some(format!(
                "it is valid for {} but not for {host}",
                cert.valid_principals().join(", ")
            ))
        } else if !cert.critical_options().is_empty() {
            Some("it has critical options, which host certificates must not have".to_string())
        } else {
            let fingerprints: Vec<_> = cas
                .iter()
                .map(|e| e.key.fingerprint(HashAlg::Sha256))
                .collect();
            cert.validate(fingerprints.iter())
                .err()
                .map(|e| format!("it did not validate ({e}): expired, not yet valid or forged"))
        };
        Ok(match reason {
            None => HostKeyStatus::Known,
            Some(reason) => HostKeyStatus::CertificateInvalid { reason },
        })
    }

    /// The key algorithms listed for `name` (in the order OpenSSH prefers them, see
    /// [`Self::preferred_algorithms`]) and whether a `@cert-authority` is listed for it.
    pub fn listed(&self, name: &str) -> (Vec<Algorithm>, bool) {
        let Ok(entries) = self.entries(name, false) else {
            return (Vec::new(), false);
        };
        let mut algorithms: Vec<Algorithm> = Vec::new();
        let mut has_ca = false;
        for e in &entries {
            match e.marker {
                Marker::None => {
                    if !algorithms.iter().any(|a| same_type(a, &e.key.algorithm())) {
                        algorithms.push(e.key.algorithm());
                    }
                }
                Marker::CertAuthority => has_ca = true,
                Marker::Revoked => {}
            }
        }
        (algorithms, has_ca)
    }

    /// OpenSSH's `HostKeyAlgorithms` ordering: of `defaults`, the algorithms of keys already
    /// listed for `name` come first (each keeping its place among them), so a known host is
    /// asked for a key type it is known by. Also says whether to ask for host certificates
    /// (only when a `@cert-authority` is listed for `name`).
    pub fn preferred_algorithms(
        &self,
        name: &str,
        defaults: &[Algorithm],
    ) -> (Vec<Algorithm>, bool) {
        let (listed, has_ca) = self.listed(name);
        let (mut known, others): (Vec<Algorithm>, Vec<Algorithm>) = defaults
            .iter()
            .cloned()
            .partition(|a| listed.iter().any(|l| same_type(l, a)));
        known.extend(others);
        (known, has_ca)
    }

    /// The lines (file, 1-based line) listing `name`, in file order — what `ssh-keygen -F name`
    /// finds.
    pub fn lines_for(&self, name: &str) -> Result<Vec<(PathBuf, usize)>, SshError> {
        Ok(self
            .entries(name, false)?
            .into_iter()
            .map(|e| (e.file, e.line))
            .collect())
    }

    /// Remembers `key` under `name` (see [`lookup_name`]) in Tunnelbook's own file.
    pub fn learn_named(&self, name: &str, key: &PublicKey) -> Result<(), SshError> {
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
        writeln!(file, "{name} {entry}").map_err(|e| err(e.to_string()))
    }

    /// Remembers `key` for `host:port` in Tunnelbook's own file.
    pub fn learn(&self, host: &str, port: u16, key: &PublicKey) -> Result<(), SshError> {
        self.learn_named(&lookup_name(host, port, None), key)
    }

    /// Tunnelbook's own file.
    pub fn own_file(&self) -> &Path {
        &self.write
    }

    /// Every file read, Tunnelbook's own first.
    pub fn files(&self) -> &[PathBuf] {
        &self.read
    }
}

/// On Windows, PuTTY's cached host keys for `name` count like known_hosts lines; their `file` is
/// the registry value (see [`super::putty_host_keys::location`]) and their `line` 0.
#[cfg(windows)]
fn putty_entries(name: &str, report: bool) -> Vec<Entry> {
    let (keys, warnings) = super::putty_host_keys::read_registry(name);
    if report {
        for warning in warnings {
            warn!("{warning}");
        }
    }
    keys.into_iter()
        .map(|k| Entry {
            file: PathBuf::from(super::putty_host_keys::location(&k.value_name)),
            line: 0,
            marker: Marker::None,
            hosts: k.lookup_name,
            key: k.key,
        })
        .collect()
}

/// Where a listed key is, for messages: `FILE:LINE`, or the PuTTY registry value (line 0).
pub(crate) fn describe(file: &str, line: usize) -> String {
    if line == 0 {
        file.to_string()
    } else {
        format!("{file}:{line}")
    }
}

/// What to do when the key listed at `file`/`line` no longer matches and the change is expected.
pub(crate) fn remedy(file: &str, line: usize) -> String {
    if line == 0 {
        format!("delete {file} (PuTTY asks again on its next connection)")
    } else {
        format!("remove line {line} of {file}")
    }
}

/// The `@revoked` line listing `key`, if any.
fn revoked(entries: &[Entry], key: &PublicKey) -> Option<HostKeyStatus> {
    entries
        .iter()
        .find(|e| e.marker == Marker::Revoked && e.key.key_data() == key.key_data())
        .map(|e| HostKeyStatus::Revoked {
            file: e.file.clone(),
            line: e.line,
        })
}

fn plain_status(entries: &[Entry], key: &PublicKey) -> HostKeyStatus {
    if let Some(status) = revoked(entries, key) {
        return status;
    }
    let keys: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.marker == Marker::None)
        .collect();
    if keys.iter().any(|e| e.key.key_data() == key.key_data()) {
        return HostKeyStatus::Known;
    }
    // A listed key of the same type is the one to show; else any listed key (the host is known
    // by another type, and negotiation asked for the known types first).
    let listed = keys
        .iter()
        .find(|e| same_type(&e.key.algorithm(), &key.algorithm()))
        .or_else(|| keys.first());
    match listed {
        Some(e) => HostKeyStatus::Changed {
            expected: fingerprint(&e.key),
            file: e.file.clone(),
            line: e.line,
        },
        None => HostKeyStatus::Unknown,
    }
}

fn default_user_files() -> Vec<PathBuf> {
    directories::BaseDirs::new()
        .map(|home| {
            let ssh = home.home_dir().join(".ssh");
            vec![ssh.join("known_hosts"), ssh.join("known_hosts2")]
        })
        .unwrap_or_default()
}

fn default_global_files() -> Vec<PathBuf> {
    if cfg!(windows) {
        // Win32-OpenSSH's __PROGRAMDATA__\ssh\ssh_known_hosts.
        let data = std::env::var_os("ProgramData").map(PathBuf::from);
        return data
            .map(|d| vec![d.join("ssh").join("ssh_known_hosts")])
            .unwrap_or_default();
    }
    vec![
        PathBuf::from("/etc/ssh/ssh_known_hosts"),
        PathBuf::from("/etc/ssh/ssh_known_hosts2"),
    ]
}

/// The `SHA256:…` fingerprint OpenSSH shows for a key.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

#[cfg(test)]
mod tests;
