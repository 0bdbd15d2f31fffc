//! Importing OpenSSH's `~/.ssh/config`: every concrete `Host` alias becomes a profile with the
//! settings OpenSSH resolves for it ([`SshConfig::resolve`] equals `ssh -G`). Wildcard
//! patterns, `Match exec` and settings Tunnelbook has no field for are reported by name and
//! line, never silently dropped.

mod forward;
mod parse;
mod pass;
mod patterns;
mod resolve;
mod tokens;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use self::{
    forward::ConfigForward,
    resolve::{DEFAULT_IDENTITY_FILES, SshConfig, SshConfigHost},
    tokens::{DEFAULT_KEY_ALGORITHMS, assemble_key_algorithms},
};
pub(crate) use self::{patterns::wildcard, tokens::expand as expand_tokens};
use super::{Profile, ProfileError, ProfileStore, StrictHostKeyChecking, validate::validate};
use crate::profile::{ForwardRule, ForwardSpec};

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    /// The profiles imported (or, from [`read_ssh_config`], importable).
    pub imported: Vec<Profile>,
    /// Hosts or patterns not imported, with the reason.
    pub skipped: Vec<Skipped>,
    /// Other things the user should know: ignored settings, missing includes, approximations.
    pub notes: Vec<String>,
}

/// A host or pattern that was not imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    /// The `Host` alias or pattern.
    pub name: String,
    /// Why it was not imported.
    pub reason: String,
}

/// `~/.ssh/config`, when there is a home directory.
pub fn default_ssh_config_path() -> Option<PathBuf> {
    directories::BaseDirs::new().map(|d| d.home_dir().join(".ssh").join("config"))
}

/// Reads an ssh config (following `Include`) into profiles without saving anything.
/// Relative `Include` paths are taken from `~/.ssh`, as OpenSSH does.
pub fn read_ssh_config(path: &Path) -> Result<ImportReport, ProfileError> {
    let config = SshConfig::load(path)?;
    let mut report = ImportReport {
        notes: config.notes.clone(),
        ..ImportReport::default()
    };
    for (pattern, at) in &config.patterns {
        report.skipped.push(Skipped {
            name: pattern.clone(),
            reason: format!(
                "{at}: a pattern, not a host; its settings apply to the matching hosts"
            ),
        });
    }
    for alias in &config.aliases {
        let host = config.resolve(alias);
        match profile_for(&host, &mut report.notes) {
            Ok(profile) => {
                note_unsaved_hops(&config, &profile, &mut report.notes);
                report.imported.push(profile);
            }
            Err(reason) => report.skipped.push(Skipped {
                name: alias.clone(),
                reason,
            }),
        }
    }
    Ok(report)
}

/// Imports an ssh config into `store`: names already saved are skipped (the saved host is kept
/// as it is), and so are hosts that do not validate, each with its reason.
pub fn import_ssh_config(store: &ProfileStore, path: &Path) -> Result<ImportReport, ProfileError> {
    let mut report = read_ssh_config(path)?;
    let candidates = std::mem::take(&mut report.imported);
    store.update(|hosts| {
        let mut fresh = Vec::new();
        for profile in candidates {
            if hosts.iter().any(|h| h.name == profile.name) {
                report.skipped.push(Skipped {
                    name: profile.name,
                    reason: "a saved host with this name exists; it was left unchanged".into(),
                });
            } else {
                fresh.push(profile);
            }
        }
        // Dropping one host can break another's jump, so repeat until all that remain pass.
        loop {
            let mut all = hosts.clone();
            all.extend(fresh.iter().cloned());
            let errors = validate(&all);
            let failing: Vec<String> = fresh
                .iter()
                .filter(|p| errors.iter().any(|e| e.profile == p.name))
                .map(|p| p.name.clone())
                .collect();
            if failing.is_empty() {
                break;
            }
            for name in failing {
                let reason: Vec<String> = errors
                    .iter()
                    .filter(|e| e.profile == name)
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .collect();
                report.skipped.push(Skipped {
                    name: name.clone(),
                    reason: reason.join("; "),
                });
                fresh.retain(|p| p.name != name);
            }
        }
        report.imported = fresh.clone();
        hosts.extend(fresh);
        Ok(())
    })?;
    Ok(report)
}

/// OpenSSH resolves every jump host through the config, pattern blocks included; a hop that
/// is no `Host` alias of its own is dialled as written, so say which of its settings are lost.
fn note_unsaved_hops(config: &SshConfig, profile: &Profile, notes: &mut Vec<String>) {
    let Some(hops) = profile
        .jump
        .as_deref()
        .and_then(|j| super::parse_jump(j).ok())
    else {
        return;
    };
    for hop in hops {
        if config.aliases.contains(&hop.host) {
            continue;
        }
        let resolved = config.resolve(&hop.host);
        let mut lost: Vec<String> = [
            "hostname",
            "user",
            "port",
            "identityfile",
            "proxyjump",
            "proxycommand",
        ]
        .iter()
        .filter_map(|k| resolved.origins.get(*k).map(|at| format!("{k} ({at})")))
        .collect();
        lost.sort();
        if !lost.is_empty() {
            notes.push(format!(
                "{}: jump host {} gets settings from pattern blocks that are not applied to it: \
                 {}; add a Host {} block so that it is imported as a host",
                profile.name,
                hop.to_destination(),
                lost.join(", "),
                hop.host
            ));
        }
    }
}

/// The profile OpenSSH's settings make of one host; a host whose settings OpenSSH would refuse
/// is not imported.
fn profile_for(host: &SshConfigHost, notes: &mut Vec<String>) -> Result<Profile, String> {
    let alias = host.alias.as_str();
    if !host.problems.is_empty() {
        return Err(host.problems.join("; "));
    }
    let at = |keyword: &str| host.origins.get(keyword).cloned().unwrap_or_default();
    if let Some(h) = &host.hostname {
        tokens::expand(h, &[('h', alias)], false).map_err(|e| {
            format!(
                "{}: HostName {e} (only %h and %% are allowed)",
                at("hostname")
            )
        })?;
    }
    let mut profile = Profile {
        name: alias.to_string(),
        host: host.final_hostname(),
        port: host.final_port(),
        user: host.user.clone(),
        ..Profile::default()
    };
    for file in &host.identity_files {
        if file.eq_ignore_ascii_case("none") {
            continue;
        }
        let line = host
            .origins
            .get(&format!("identityfile {file}"))
            .cloned()
            .unwrap_or_else(|| at("identityfile"));
        let expanded = host
            .expand_path(file)
            .map_err(|e| format!("{line}: IdentityFile {e}"))?;
        let path = PathBuf::from(expanded);
        if path.is_file() {
            if !profile.identity_files.contains(&path) {
                profile.identity_files.push(path);
            }
        } else {
            // OpenSSH skips a missing key file without a word; say so once.
            notes.push(format!(
                "{line}: {alias}: key file {} does not exist; left out",
                path.display()
            ));
        }
    }
    if let Some(jump) = host
        .proxy_jump
        .as_ref()
        .filter(|j| !j.eq_ignore_ascii_case("none"))
    {
        profile.jump = Some(jump.clone());
    }
    if let Some(command) = host
        .proxy_command
        .as_ref()
        .filter(|c| !c.eq_ignore_ascii_case("none"))
    {
        profile.proxy_command = Some(command.clone());
    }
    profile.connect_timeout = host.connect_timeout;
    if let Some(secs) = host.server_alive_interval {
        profile.keepalive_interval = secs;
    }
    if let Some(n) = host.server_alive_count_max {
        profile.keepalive_max = n;
    }
    if host.clear_all_forwardings != Some(true) {
        for message in &host.unimported_forwards {
            notes.push(format!("{alias}: {message}"));
        }
        let bind = |f: &ConfigForward| {
            f.listen_host
                .clone()
                .unwrap_or_else(|| "127.0.0.1".to_string())
        };
        for f in &host.local_forwards {
            if let Some((h, p)) = &f.connect {
                profile.forwards.push(ForwardRule {
                    last_port: None,
                    enabled: true,
                    spec: ForwardSpec::Local {
                        bind: bind(f),
                        port: f.listen_port,
                        host: h.clone(),
                        host_port: *p,
                    },
                });
            }
        }
        for f in &host.remote_forwards {
            if let Some((h, p)) = &f.connect {
                profile.forwards.push(ForwardRule {
                    last_port: None,
                    enabled: true,
                    spec: ForwardSpec::Remote {
                        bind: bind(f),
                        port: f.listen_port,
                        host: h.clone(),
                        host_port: *p,
                    },
                });
            }
        }
        for f in &host.dynamic_forwards {
            profile.forwards.push(ForwardRule {
                last_port: None,
                enabled: true,
                spec: ForwardSpec::Dynamic {
                    bind: bind(f),
                    port: f.listen_port,
                },
            });
        }
    }
    apply_openssh_options(host, &mut profile, notes)?;
    Ok(profile)
}

/// The identity and host-key options, as OpenSSH applies them when it connects: paths with `~`
/// and tokens expanded (`UserKnownHostsFile`, `CertificateFile`; `GlobalKnownHostsFile` is
/// taken as written, as OpenSSH does), `HostKeyAlias` in lower case.
fn apply_openssh_options(
    host: &SshConfigHost,
    profile: &mut Profile,
    notes: &mut Vec<String>,
) -> Result<(), String> {
    let alias = host.alias.as_str();
    let at = |keyword: &str| host.origins.get(keyword).cloned().unwrap_or_default();
    profile.identities_only = host.identities_only == Some(true);
    for file in &host.certificate_files {
        let line = host
            .origins
            .get(&format!("certificatefile {file}"))
            .cloned()
            .unwrap_or_else(|| at("certificatefile"));
        let expanded = host
            .expand_path(file)
            .map_err(|e| format!("{line}: CertificateFile {e}"))?;
        let path = PathBuf::from(expanded);
        if path.is_file() {
            if !profile.certificate_files.contains(&path) {
                profile.certificate_files.push(path);
            }
        } else {
            notes.push(format!(
                "{line}: {alias}: certificate file {} does not exist; left out",
                path.display()
            ));
        }
    }
    profile.host_key_alias = host.host_key_alias.as_ref().map(|a| a.to_lowercase());
    let none = |files: &[String]| files.iter().any(|f| f.eq_ignore_ascii_case("none"));
    if let Some(files) = &host.user_known_hosts_files {
        if none(files) {
            // OpenSSH reads no user file; Tunnelbook's own file is still read and written.
            profile.user_known_hosts_files = vec![PathBuf::from(NULL_DEVICE)];
        } else {
            for file in files {
                let expanded = host
                    .expand_path(file)
                    .map_err(|e| format!("{}: UserKnownHostsFile {e}", at("userknownhostsfile")))?;
                profile.user_known_hosts_files.push(PathBuf::from(expanded));
            }
        }
    }
    if let Some(files) = &host.global_known_hosts_files {
        profile.global_known_hosts_files = if none(files) {
            vec![PathBuf::from(NULL_DEVICE)]
        } else {
            files.iter().map(PathBuf::from).collect()
        };
    }
    if let Some(value) = &host.strict_host_key_checking {
        let strict = StrictHostKeyChecking::parse(value).ok_or_else(|| {
            format!(
                "{}: StrictHostKeyChecking {value} is not yes, no, ask or accept-new",
                at("stricthostkeychecking")
            )
        })?;
        if strict == StrictHostKeyChecking::No {
            notes.push(format!(
                "{}: {alias}: StrictHostKeyChecking no: a new host key is accepted and \
                 remembered, but unlike OpenSSH Tunnelbook still refuses a changed one",
                at("stricthostkeychecking")
            ));
        }
        profile.strict_host_key_checking = Some(strict);
    }
    profile.host_key_algorithms = host.host_key_algorithms.clone();
    profile.pubkey_accepted_algorithms = host.pubkey_accepted_algorithms.clone();
    Ok(())
}

/// What OpenSSH's `none` known_hosts file stands for: no file.
#[cfg(windows)]
const NULL_DEVICE: &str = "NUL";
#[cfg(not(windows))]
const NULL_DEVICE: &str = "/dev/null";
