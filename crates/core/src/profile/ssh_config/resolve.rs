//! What OpenSSH's client resolves for one host from a config file: the same passes over the
//! same lines as `readconf.c` (first value wins; `Host` and `Match` switch lines on and off;
//! an `Include`d file starts its own context and the including file's is restored after it;
//! `Match final` asks for a second pass), so that the result equals `ssh -G -F FILE HOST`.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use super::{
    forward::ConfigForward,
    parse::{self, Line},
    pass::Pass,
    patterns::{glob_files, include_pattern},
    tokens::{self, Local},
};
use crate::profile::ProfileError;

/// The key files OpenSSH 9.2 tries when the config names none.
pub const DEFAULT_IDENTITY_FILES: &[&str] = &[
    "~/.ssh/id_rsa",
    "~/.ssh/id_ecdsa",
    "~/.ssh/id_ecdsa_sk",
    "~/.ssh/id_ed25519",
    "~/.ssh/id_ed25519_sk",
    "~/.ssh/id_xmss",
    "~/.ssh/id_dsa",
];

/// OpenSSH's `READCONF_MAX_DEPTH`.
pub(super) const MAX_DEPTH: u32 = 16;

/// An ssh_config file with everything it includes, read once; [`SshConfig::resolve`] then
/// answers for any host.
#[derive(Debug, Clone)]
pub struct SshConfig {
    pub(super) root: PathBuf,
    pub(super) files: HashMap<PathBuf, Vec<Line>>,
    /// `(file, line number)` of each `Include` → the files it names, in glob order.
    pub(super) includes: HashMap<(PathBuf, usize), Vec<PathBuf>>,
    pub(super) local: Local,
    /// Things the user should know about the files themselves (encodings, missing includes,
    /// settings Tunnelbook does not map), each naming file and line.
    pub notes: Vec<String>,
    /// Concrete host aliases (no wildcard, not negated) in order of first appearance.
    pub aliases: Vec<String>,
    /// `Host` patterns with a wildcard or a negation, with the `file:line` that names them.
    pub patterns: Vec<(String, String)>,
}

/// The settings OpenSSH resolves for one host, as written in the config (before the
/// expansions OpenSSH does when it connects). `None` / empty: not set, OpenSSH's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshConfigHost {
    /// The alias asked for (`%n`).
    pub alias: String,
    /// `HostName`, tokens not yet expanded.
    pub hostname: Option<String>,
    /// `User`.
    pub user: Option<String>,
    /// `Port`.
    pub port: Option<u16>,
    /// `IdentityFile`, every one in order (duplicates dropped as OpenSSH does).
    pub identity_files: Vec<String>,
    /// `CertificateFile`, every one in order.
    pub certificate_files: Vec<String>,
    /// `IdentitiesOnly`.
    pub identities_only: Option<bool>,
    /// `ProxyJump` as written (`none` included).
    pub proxy_jump: Option<String>,
    /// `ProxyCommand`: the rest of its line (`none` included).
    pub proxy_command: Option<String>,
    /// `ServerAliveInterval` in seconds.
    pub server_alive_interval: Option<u32>,
    /// `ServerAliveCountMax`.
    pub server_alive_count_max: Option<u32>,
    /// `ConnectTimeout` in seconds.
    pub connect_timeout: Option<u32>,
    /// `StrictHostKeyChecking` as `ssh -G` names it: `true`, `false`, `ask`, `accept-new`.
    pub strict_host_key_checking: Option<String>,
    /// `UserKnownHostsFile`, every file of the first such line, unexpanded.
    pub user_known_hosts_files: Option<Vec<String>>,
    /// `GlobalKnownHostsFile`, every file of the first such line, as written (OpenSSH expands
    /// neither `~` nor tokens in it).
    pub global_known_hosts_files: Option<Vec<String>>,
    /// `HostKeyAlias`.
    pub host_key_alias: Option<String>,
    /// `HostKeyAlgorithms` as written (`+ssh-rsa`, …).
    pub host_key_algorithms: Option<String>,
    /// `PubkeyAcceptedAlgorithms` (or its old name `PubkeyAcceptedKeyTypes`) as written.
    pub pubkey_accepted_algorithms: Option<String>,
    /// `LocalForward`s in order.
    pub local_forwards: Vec<ConfigForward>,
    /// `RemoteForward`s in order.
    pub remote_forwards: Vec<ConfigForward>,
    /// `DynamicForward`s in order.
    pub dynamic_forwards: Vec<ConfigForward>,
    /// `ClearAllForwardings`.
    pub clear_all_forwardings: Option<bool>,
    /// `file:line` of the line that set each keyword (lower case), and of each identity file
    /// (`identityfile PATH`), for messages.
    pub origins: HashMap<String, String>,
    /// Lines that OpenSSH would refuse or that could not be evaluated for this host (a
    /// `Match exec`, a bad value), each naming file and line.
    pub problems: Vec<String>,
    /// Forwards that are valid for OpenSSH but that Tunnelbook cannot save (Unix sockets, a
    /// remote SOCKS forward), each naming file and line: the host is imported without them.
    pub unimported_forwards: Vec<String>,
    local: Option<Local>,
}

impl SshConfig {
    /// Reads `path` and every file it includes. Relative `Include` paths are taken from
    /// `~/.ssh`, as OpenSSH does for a user's config. Fails only when `path` itself cannot be
    /// read or decoded.
    pub fn load(path: &Path) -> Result<SshConfig, ProfileError> {
        Self::load_with(path, Local::current())
    }

    pub(super) fn load_with(path: &Path, local: Local) -> Result<SshConfig, ProfileError> {
        let bytes = std::fs::read(path).map_err(|source| ProfileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let decoded = parse::decode(&bytes, path).map_err(ProfileError::SshConfig)?;
        let mut config = SshConfig {
            root: path.to_path_buf(),
            files: HashMap::new(),
            includes: HashMap::new(),
            local,
            notes: Vec::new(),
            aliases: Vec::new(),
            patterns: Vec::new(),
        };
        config.notes.extend(decoded.remark);
        let mut unmapped: Vec<(String, Vec<String>)> = Vec::new();
        config.survey(path, parse::lines(&decoded.text), 0, &mut unmapped);
        for (keyword, at) in unmapped {
            config.notes.push(format!(
                "{keyword} has no Tunnelbook equivalent and was ignored ({})",
                at.join(", ")
            ));
        }
        Ok(config)
    }

    /// Records a file's lines, follows its includes, and notes aliases and unmapped keywords.
    fn survey(
        &mut self,
        path: &Path,
        lines: Vec<Line>,
        depth: u32,
        unmapped: &mut Vec<(String, Vec<String>)>,
    ) {
        if self.files.contains_key(path) {
            return;
        }
        self.files.insert(path.to_path_buf(), lines.clone());
        for line in &lines {
            let at = format!("{}:{}", path.display(), line.number);
            if line.bad_quotes {
                self.notes
                    .push(format!("{at}: quotes do not close; the line was ignored"));
                continue;
            }
            match line.keyword.as_str() {
                "host" => {
                    for arg in &line.args {
                        if arg.starts_with('!') || arg.contains(['*', '?']) {
                            self.patterns.push((arg.clone(), at.clone()));
                        } else if !self.aliases.contains(arg) {
                            self.aliases.push(arg.clone());
                        }
                    }
                }
                "match" => {
                    if line
                        .args
                        .iter()
                        .any(|a| a.trim_start_matches('!').eq_ignore_ascii_case("exec"))
                    {
                        self.notes.push(format!(
                            "{at}: Match exec is not run by Tunnelbook; the block counts as not \
                             matching"
                        ));
                    }
                }
                "include" => {
                    if depth + 1 > MAX_DEPTH {
                        self.notes
                            .push(format!("{at}: Include nested too deeply; not followed"));
                        continue;
                    }
                    let mut targets = Vec::new();
                    for arg in &line.args {
                        let pattern = include_pattern(arg, &self.local.home);
                        let found = glob_files(&pattern);
                        if found.is_empty() {
                            self.notes
                                .push(format!("{at}: Include {pattern} matches no file"));
                        }
                        targets.extend(found);
                    }
                    for target in &targets {
                        if self.files.contains_key(target) {
                            continue;
                        }
                        match std::fs::read(target)
                            .map_err(|e| e.to_string())
                            .and_then(|b| parse::decode(&b, target))
                        {
                            Ok(decoded) => {
                                self.notes.extend(decoded.remark);
                                self.survey(
                                    target,
                                    parse::lines(&decoded.text),
                                    depth + 1,
                                    unmapped,
                                );
                            }
                            Err(e) => self.notes.push(format!(
                                "{at}: cannot read included {}: {e}",
                                target.display()
                            )),
                        }
                    }
                    self.includes
                        .insert((path.to_path_buf(), line.number), targets);
                }
                k if MAPPED.contains(&k) => {}
                _ => match unmapped.iter_mut().find(|(k, _)| *k == line.written) {
                    Some((_, ats)) => ats.push(at),
                    None => unmapped.push((line.written.clone(), vec![at])),
                },
            }
        }
    }

    /// What OpenSSH resolves for `alias` (`ssh -G -F FILE alias`).
    pub fn resolve(&self, alias: &str) -> SshConfigHost {
        let mut out = SshConfigHost {
            alias: alias.to_string(),
            local: Some(self.local.clone()),
            ..SshConfigHost::default()
        };
        Pass::run(self, alias, &mut out);
        out
    }
}

/// Keywords Tunnelbook reads (the rest are reported).
pub(super) const MAPPED: &[&str] = &[
    "host",
    "match",
    "include",
    "hostname",
    "user",
    "port",
    "identityfile",
    "certificatefile",
    "identitiesonly",
    "proxyjump",
    "proxycommand",
    "serveraliveinterval",
    "serveralivecountmax",
    "connecttimeout",
    "stricthostkeychecking",
    "userknownhostsfile",
    "globalknownhostsfile",
    "hostkeyalias",
    "hostkeyalgorithms",
    "pubkeyacceptedalgorithms",
    "pubkeyacceptedkeytypes",
    "localforward",
    "remoteforward",
    "dynamicforward",
    "clearallforwardings",
];

impl SshConfigHost {
    /// The host name OpenSSH connects to: `HostName` with `%h` expanded (or the alias), lower
    /// case unless it is an IP address.
    pub fn final_hostname(&self) -> String {
        let host = match &self.hostname {
            Some(h) => {
                tokens::expand(h, &[('h', &self.alias)], false).unwrap_or_else(|_| h.clone())
            }
            None => self.alias.clone(),
        };
        if host.parse::<std::net::IpAddr>().is_ok() {
            host
        } else {
            host.to_lowercase()
        }
    }

    /// The login user: `User`, else the local user.
    pub fn final_user(&self) -> String {
        self.user.clone().unwrap_or_else(|| {
            self.local
                .as_ref()
                .map(|l| l.user.clone())
                .unwrap_or_default()
        })
    }

    /// `Port`, else 22.
    pub fn final_port(&self) -> u16 {
        self.port.unwrap_or(22)
    }

    /// The tokens OpenSSH expands in paths (`IdentityFile`, `CertificateFile`,
    /// `UserKnownHostsFile`): `%C %d %h %i %k %L %l %n %p %r %u`.
    fn path_tokens(&self) -> Vec<(char, String)> {
        let local = self.local.clone().unwrap_or_else(Local::current);
        let host = self.final_hostname();
        let port = self.final_port();
        let user = self.final_user();
        let short = local.host.split('.').next().unwrap_or_default().to_string();
        vec![
            (
                'C',
                tokens::connection_hash(&local.host, &host, port, &user),
            ),
            ('d', local.home.clone()),
            ('h', host),
            ('i', local.uid.clone()),
            (
                'k',
                // ssh lowercases HostKeyAlias before it expands %k.
                self.host_key_alias
                    .as_ref()
                    .map(|a| a.to_lowercase())
                    .unwrap_or_else(|| self.alias.clone()),
            ),
            ('L', short),
            ('l', local.host.clone()),
            ('n', self.alias.clone()),
            ('p', port.to_string()),
            ('r', user),
            ('u', local.user.clone()),
        ]
    }

    /// A path setting as OpenSSH expands it when it connects: `~`, then `%` tokens and
    /// `${ENV}`.
    pub fn expand_path(&self, value: &str) -> Result<String, String> {
        let home = self
            .local
            .as_ref()
            .map(|l| l.home.clone())
            .unwrap_or_default();
        let owned = self.path_tokens();
        let tokens: Vec<(char, &str)> = owned.iter().map(|(c, s)| (*c, s.as_str())).collect();
        tokens::expand(&tokens::tilde(value, &home), &tokens, true)
    }

    /// The settings Tunnelbook maps, as `ssh -G` prints them (keyword, value; several lines for
    /// lists), defaults included, so the two can be compared line by line.
    pub fn openssh_view(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = Vec::new();
        let mut put = |k: &str, val: String| v.push((k.to_string(), val));
        put("hostname", self.final_hostname());
        put("user", self.final_user());
        put("port", self.final_port().to_string());
        let defaults: Vec<String> = DEFAULT_IDENTITY_FILES
            .iter()
            .map(|f| f.to_string())
            .collect();
        let identity_files = if self.identity_files.is_empty() {
            &defaults
        } else {
            &self.identity_files
        };
        for f in identity_files {
            put("identityfile", f.clone());
        }
        for f in &self.certificate_files {
            put("certificatefile", f.clone());
        }
        put(
            "identitiesonly",
            if self.identities_only == Some(true) {
                "yes"
            } else {
                "no"
            }
            .into(),
        );
        if let Some(j) = self
            .proxy_jump
            .as_ref()
            .filter(|j| !j.eq_ignore_ascii_case("none"))
        {
            put("proxyjump", j.clone());
        }
        if let Some(c) = self
            .proxy_command
            .as_ref()
            .filter(|c| !c.eq_ignore_ascii_case("none"))
        {
            put("proxycommand", c.clone());
        }
        put(
            "serveraliveinterval",
            self.server_alive_interval.unwrap_or(0).to_string(),
        );
        put(
            "serveralivecountmax",
            self.server_alive_count_max.unwrap_or(3).to_string(),
        );
        put(
            "connecttimeout",
            self.connect_timeout
                .map(|t| t.to_string())
                .unwrap_or_else(|| "none".into()),
        );
        put(
            "stricthostkeychecking",
            self.strict_host_key_checking
                .clone()
                .unwrap_or_else(|| "ask".into()),
        );
        let files = self
            .user_known_hosts_files
            .clone()
            .unwrap_or_else(|| vec!["~/.ssh/known_hosts".into(), "~/.ssh/known_hosts2".into()]);
        let expanded: Vec<String> = files
            .iter()
            .map(|f| self.expand_path(f).unwrap_or_else(|e| format!("<{e}>")))
            .collect();
        put("userknownhostsfile", expanded.join(" "));
        let global = self.global_known_hosts_files.clone().unwrap_or_else(|| {
            vec![
                "/etc/ssh/ssh_known_hosts".into(),
                "/etc/ssh/ssh_known_hosts2".into(),
            ]
        });
        put("globalknownhostsfile", global.join(" "));
        if let Some(a) = &self.host_key_alias {
            put("hostkeyalias", a.to_lowercase());
        }
        for (key, spec) in [
            ("hostkeyalgorithms", &self.host_key_algorithms),
            ("pubkeyacceptedalgorithms", &self.pubkey_accepted_algorithms),
        ] {
            let list = match spec {
                Some(s) => tokens::assemble_key_algorithms(s)
                    .map(|l| l.join(","))
                    .unwrap_or_else(|e| format!("<{e}>")),
                None => tokens::DEFAULT_KEY_ALGORITHMS.join(","),
            };
            put(key, list);
        }
        if self.clear_all_forwardings != Some(true) {
            for (key, list) in [
                ("dynamicforward", &self.dynamic_forwards),
                ("localforward", &self.local_forwards),
                ("remoteforward", &self.remote_forwards),
            ] {
                for f in list {
                    put(key, f.openssh());
                }
            }
        }
        v
    }
}
