//! What OpenSSH's client resolves for one host from a config file: the same passes over the
//! same lines as `readconf.c` (first value wins; `Host` and `Match` switch lines on and off;
//! an `Include`d file starts its own context and the including file's is restored after it;
//! `Match final` asks for a second pass), so that the result equals `ssh -G -F FILE HOST`.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use super::{
    parse::{self, Line},
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
const MAX_DEPTH: u32 = 16;

/// An ssh_config file with everything it includes, read once; [`SshConfig::resolve`] then
/// answers for any host.
#[derive(Debug, Clone)]
pub struct SshConfig {
    root: PathBuf,
    files: HashMap<PathBuf, Vec<Line>>,
    /// `(file, line number)` of each `Include` → the files it names, in glob order.
    includes: HashMap<(PathBuf, usize), Vec<PathBuf>>,
    local: Local,
    /// Things the user should know about the files themselves (encodings, missing includes,
    /// settings Tunnelbook does not map), each naming file and line.
    pub notes: Vec<String>,
    /// Concrete host aliases (no wildcard, not negated) in order of first appearance.
    pub aliases: Vec<String>,
    /// `Host` patterns with a wildcard or a negation, with the `file:line` that names them.
    pub patterns: Vec<(String, String)>,
}

/// A TCP forward from `LocalForward`, `RemoteForward` or `DynamicForward`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigForward {
    /// The listening address as written (`None`: OpenSSH's default, the loopback interface).
    pub listen_host: Option<String>,
    /// The listening port.
    pub listen_port: u16,
    /// Where connections go; `None` for a dynamic (SOCKS) forward.
    pub connect: Option<(String, u16)>,
}

impl ConfigForward {
    /// The forward as `ssh -G` prints it: `LISTEN [CONNECT]` with hosts in brackets.
    pub fn openssh(&self) -> String {
        let listen = match &self.listen_host {
            Some(h) => format!("[{h}]:{}", self.listen_port),
            None => self.listen_port.to_string(),
        };
        match &self.connect {
            Some((h, p)) => format!("{listen} [{h}]:{p}"),
            None => listen,
        }
    }
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
        let mut pass = Pass {
            config: self,
            original: alias,
            host: alias.to_string(),
            final_pass: false,
            want_final: false,
            out: &mut out,
        };
        let mut active = true;
        pass.file(&self.root, false, &mut active, 0);
        if pass.want_final {
            // ssh.c: the second pass matches `Host` against the final, lower-cased host name.
            pass.host = pass.out.final_hostname();
            pass.final_pass = true;
            let mut active = true;
            pass.file(&self.root, false, &mut active, 0);
        }
        out
    }
}

/// Keywords Tunnelbook reads (the rest are reported).
const MAPPED: &[&str] = &[
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

/// An `Include` argument as a glob pattern: `~` expanded, relative paths under `~/.ssh`.
fn include_pattern(arg: &str, home: &str) -> String {
    if arg.starts_with('~') {
        tokens::tilde(arg, home)
    } else if Path::new(arg).is_absolute() || arg.starts_with('/') {
        arg.to_string()
    } else {
        Path::new(home).join(".ssh").join(arg).display().to_string()
    }
}

/// The regular files matching `pattern` (C `glob(3)` rules: sorted, hidden files only for a
/// pattern that starts with a dot).
fn glob_files(pattern: &str) -> Vec<PathBuf> {
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: true,
    };
    let mut found: Vec<PathBuf> = match glob::glob_with(pattern, options) {
        Ok(paths) => paths.flatten().filter(|p| p.is_file()).collect(),
        Err(_) => Vec::new(),
    };
    found.sort();
    found
}

/// OpenSSH's `match_pattern`: `*` any run, `?` one character; case-sensitive.
pub(super) fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// OpenSSH's `match_pattern_list`: comma-separated patterns, `!` negates; a negated hit wins.
/// `lower` lower-cases the patterns (the text must already be lower case).
fn pattern_list(text: &str, list: &str, lower: bool) -> bool {
    let mut positive = false;
    for sub in list.split(',') {
        let (negated, sub) = match sub.strip_prefix('!') {
            Some(s) => (true, s),
            None => (false, sub),
        };
        let sub = if lower {
            sub.to_lowercase()
        } else {
            sub.to_string()
        };
        if wildcard(&sub, text) {
            if negated {
                return false;
            }
            positive = true;
        }
    }
    positive
}

/// OpenSSH's `convtime`: `90`, `1m30s`, `2h`, `1w` → seconds.
fn convtime(s: &str) -> Option<u32> {
    if s.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' | 'S' => 1,
            'm' | 'M' => 60,
            'h' | 'H' => 3600,
            'd' | 'D' => 86400,
            'w' | 'W' => 604800,
            _ => return None,
        };
        let n: u64 = digits.parse().ok()?;
        total = total.checked_add(n.checked_mul(unit)?)?;
        digits.clear();
    }
    if !digits.is_empty() {
        total = total.checked_add(digits.parse().ok()?)?;
    }
    u32::try_from(total).ok().filter(|t| *t <= i32::MAX as u32)
}

/// One pass over the config for one host.
struct Pass<'a> {
    config: &'a SshConfig,
    /// `originalhost` and `%n`.
    original: &'a str,
    /// What `Host` lines match against.
    host: String,
    final_pass: bool,
    want_final: bool,
    out: &'a mut SshConfigHost,
}

impl Pass<'_> {
    fn file(&mut self, path: &Path, never: bool, active: &mut bool, depth: u32) {
        let config = self.config;
        let Some(lines) = config.files.get(path) else {
            return;
        };
        *active = !never;
        for line in lines {
            if line.bad_quotes {
                continue;
            }
            let at = format!("{}:{}", path.display(), line.number);
            match line.keyword.as_str() {
                "host" => {
                    *active = false;
                    if never {
                        continue;
                    }
                    for arg in &line.args {
                        let (negated, pattern) = match arg.strip_prefix('!') {
                            Some(p) => (true, p),
                            None => (false, arg.as_str()),
                        };
                        if wildcard(pattern, &self.host) {
                            if negated {
                                *active = false;
                                break;
                            }
                            *active = true;
                        }
                    }
                }
                "match" => {
                    let matched = self.match_line(&line.args, &at);
                    *active = !never && matched;
                }
                "include" => {
                    if !*active {
                        continue;
                    }
                    let targets = config
                        .includes
                        .get(&(path.to_path_buf(), line.number))
                        .cloned()
                        .unwrap_or_default();
                    for target in targets {
                        let outer = *active;
                        if depth < MAX_DEPTH {
                            self.file(&target, !outer, active, depth + 1);
                        }
                        *active = outer;
                    }
                }
                _ if *active => self.set(line, &at),
                _ => {}
            }
        }
    }

    /// OpenSSH's `match_cfg_line`.
    fn match_line(&mut self, args: &[String], at: &str) -> bool {
        let host = if self.final_pass {
            self.out.final_hostname()
        } else {
            match &self.out.hostname {
                Some(h) => h.replace("%h", self.original).to_lowercase(),
                None => self.original.to_lowercase(),
            }
        };
        let config = self.config;
        let local = &config.local;
        let user = self.out.user.clone().unwrap_or_else(|| local.user.clone());
        let mut result = true;
        let mut args = args.iter();
        let mut criteria = 0;
        while let Some(attr) = args.next() {
            let (negate, name) = match attr.strip_prefix('!') {
                Some(n) => (true, n.to_ascii_lowercase()),
                None => (false, attr.to_ascii_lowercase()),
            };
            if name == "all" {
                if criteria > 0 || args.len() > 0 {
                    self.out.problems.push(format!(
                        "{at}: Match all cannot be combined with other criteria"
                    ));
                    return false;
                }
                return result && !negate;
            }
            criteria += 1;
            if name == "canonical" || name == "final" {
                if name == "final" {
                    self.want_final = true;
                }
                if self.final_pass == negate {
                    result = false;
                }
                continue;
            }
            let Some(arg) = args.next() else {
                self.out
                    .problems
                    .push(format!("{at}: Match {name} has no argument"));
                return false;
            };
            let hit = match name.as_str() {
                "host" => pattern_list(&host, arg, true),
                "originalhost" => pattern_list(&self.original.to_lowercase(), arg, true),
                "user" => pattern_list(&user, arg, false),
                "localuser" => pattern_list(&local.user, arg, false),
                "exec" => false,
                other => {
                    self.out.problems.push(format!(
                        "{at}: Match {other} is not a criterion OpenSSH 9.2 knows"
                    ));
                    return false;
                }
            };
            if hit == negate {
                result = false;
            }
        }
        result
    }

    fn set(&mut self, line: &Line, at: &str) {
        let o = &mut *self.out;
        let keyword = line.keyword.as_str();
        let arg = line.args.first().cloned();
        let Some(arg) = arg else {
            if MAPPED.contains(&keyword) {
                o.problems
                    .push(format!("{at}: {} has no value", line.written));
            }
            return;
        };
        let origin = |o: &mut SshConfigHost| {
            o.origins
                .entry(keyword.to_string())
                .or_insert_with(|| at.to_string());
        };
        let bad = |o: &mut SshConfigHost, what: &str| {
            o.problems
                .push(format!("{at}: {} \"{arg}\" {what}", line.written));
        };
        macro_rules! first {
            ($field:expr, $value:expr) => {
                if $field.is_none() {
                    $field = Some($value);
                    origin(o);
                }
            };
        }
        match keyword {
            "hostname" => first!(o.hostname, arg),
            "user" => first!(o.user, arg),
            "port" => match arg.parse::<u16>() {
                Ok(p) if p > 0 => first!(o.port, p),
                _ => bad(o, "is not a port number"),
            },
            "identityfile" if !o.identity_files.contains(&arg) => {
                o.origins
                    .insert(format!("identityfile {arg}"), at.to_string());
                o.identity_files.push(arg);
                origin(o);
            }
            "certificatefile" if !o.certificate_files.contains(&arg) => {
                o.origins
                    .insert(format!("certificatefile {arg}"), at.to_string());
                o.certificate_files.push(arg);
                origin(o);
            }
            "identitiesonly" | "clearallforwardings" => {
                let value = match arg.to_ascii_lowercase().as_str() {
                    "yes" | "true" => true,
                    "no" | "false" => false,
                    _ => return bad(o, "is not yes or no"),
                };
                if keyword == "identitiesonly" {
                    first!(o.identities_only, value);
                } else {
                    first!(o.clear_all_forwardings, value);
                }
            }
            "proxyjump" if o.proxy_jump.is_none() && o.proxy_command.is_none() => {
                let value = if arg.eq_ignore_ascii_case("none") {
                    arg
                } else {
                    // As OpenSSH keeps it: the hops before the last as written, the last
                    // one parsed (`ssh://` and defaults dropped).
                    let hops = match crate::profile::jump::parse_jump(&arg) {
                        Ok(hops) => hops,
                        Err(e) => return bad(o, &e),
                    };
                    let last = hops.last().map(|h| h.to_destination()).unwrap_or_default();
                    match arg.rsplit_once(',') {
                        Some((before, _)) => format!("{before},{last}"),
                        None => last,
                    }
                };
                o.proxy_jump = Some(value);
                origin(o);
            }
            "proxycommand" => {
                let jump_set = o
                    .proxy_jump
                    .as_deref()
                    .is_some_and(|j| !j.eq_ignore_ascii_case("none"));
                if !jump_set {
                    first!(o.proxy_command, line.raw.clone());
                }
            }
            "serveraliveinterval" | "connecttimeout" => {
                let Some(secs) = convtime(&arg) else {
                    return bad(o, "is not a time (e.g. 30, 1m30s)");
                };
                if keyword == "connecttimeout" {
                    first!(o.connect_timeout, secs);
                } else {
                    first!(o.server_alive_interval, secs);
                }
            }
            "serveralivecountmax" => match arg.parse::<u32>() {
                Ok(n) if n <= i32::MAX as u32 => first!(o.server_alive_count_max, n),
                _ => bad(o, "is not a number"),
            },
            "stricthostkeychecking" => {
                let value = match arg.to_ascii_lowercase().as_str() {
                    "yes" | "true" => "true",
                    "no" | "false" | "off" => "false",
                    "ask" => "ask",
                    "accept-new" => "accept-new",
                    _ => return bad(o, "is not yes, no, ask or accept-new"),
                };
                first!(o.strict_host_key_checking, value.to_string());
            }
            "userknownhostsfile" => first!(o.user_known_hosts_files, line.args.clone()),
            "globalknownhostsfile" => first!(o.global_known_hosts_files, line.args.clone()),
            "hostkeyalias" => first!(o.host_key_alias, arg),
            "hostkeyalgorithms" | "pubkeyacceptedalgorithms" | "pubkeyacceptedkeytypes" => {
                if let Err(e) = tokens::assemble_key_algorithms(&arg) {
                    return bad(o, &e);
                }
                if keyword == "hostkeyalgorithms" {
                    first!(o.host_key_algorithms, arg);
                } else {
                    first!(o.pubkey_accepted_algorithms, arg);
                }
            }
            "localforward" | "remoteforward" | "dynamicforward" => {
                let second = line.args.get(1);
                let (spec, dynamic) = match (keyword, second) {
                    ("dynamicforward", _) => (arg.clone(), true),
                    (_, Some(second)) => (format!("{arg}:{second}"), false),
                    ("remoteforward", None) => (arg.clone(), true),
                    _ => return bad(o, "needs a second argument (HOST:PORT)"),
                };
                let Some(forward) = parse_forward(&spec, dynamic, keyword == "remoteforward")
                else {
                    o.unimported_forwards.push(format!(
                        "{at}: {} {spec} is not a TCP forward ([bind:]port host:port) that \
                         Tunnelbook can save; left out",
                        line.written
                    ));
                    return;
                };
                let list = match keyword {
                    "localforward" => &mut o.local_forwards,
                    "remoteforward" if !dynamic => &mut o.remote_forwards,
                    "remoteforward" => {
                        o.unimported_forwards.push(format!(
                            "{at}: RemoteForward {spec} is a remote SOCKS forward, which \
                             Tunnelbook lacks; left out"
                        ));
                        return;
                    }
                    _ => &mut o.dynamic_forwards,
                };
                if !list.contains(&forward) {
                    list.push(forward);
                    origin(o);
                }
            }
            _ => {}
        }
    }
}

/// One field of a forward spec (`parse_fwd_field`): `[literal]` or up to the next `:`, with
/// `\` escapes. Returns the field, whether it looks like a path, and the rest.
fn fwd_field(s: &str) -> Option<(String, bool, Option<&str>)> {
    if s.is_empty() {
        return None;
    }
    if let Some(inner) = s.strip_prefix('[') {
        let end = inner.find(']')?;
        let field = &inner[..end];
        let after = &inner[end + 1..];
        return match after.strip_prefix(':') {
            Some(rest) => Some((field.to_string(), field.contains('/'), Some(rest))),
            None if after.is_empty() => Some((field.to_string(), field.contains('/'), None)),
            None => None,
        };
    }
    let mut field = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => field.push(chars.next()?.1),
            ':' => {
                let path = field.contains('/');
                return Some((field, path, Some(&s[i + 1..])));
            }
            c => field.push(c),
        }
    }
    let path = field.contains('/');
    Some((field, path, None))
}

/// OpenSSH's `parse_forward` for TCP forwards (Unix-socket forms give `None`).
fn parse_forward(spec: &str, dynamic: bool, remote: bool) -> Option<ConfigForward> {
    let mut fields = Vec::new();
    let mut rest = Some(spec.trim_start());
    while let Some(r) = rest {
        if fields.len() == 4 {
            return None;
        }
        let (field, path, next) = fwd_field(r)?;
        if path {
            return None;
        }
        fields.push(field);
        rest = next;
    }
    let port = |s: &str| s.parse::<u16>().ok();
    let (listen_host, listen_port, connect) = match (dynamic, fields.as_slice()) {
        (true, [p]) => (None, port(p)?, None),
        (true, [h, p]) => (Some(h.clone()), port(p)?, None),
        (false, [p, h, cp]) => (None, port(p)?, Some((h.clone(), port(cp)?))),
        (false, [lh, p, h, cp]) => (Some(lh.clone()), port(p)?, Some((h.clone(), port(cp)?))),
        _ => return None,
    };
    if (!remote && listen_port == 0) || connect.as_ref().is_some_and(|(_, p)| *p == 0) {
        return None;
    }
    Some(ConfigForward {
        listen_host,
        listen_port,
        connect,
    })
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_like_openssh() {
        assert!(wildcard("*.corp", "gpu1.corp"));
        assert!(wildcard("gpu?", "gpu7"));
        assert!(!wildcard("gpu?", "gpu10"));
        assert!(wildcard("*", ""));
        assert!(!wildcard("a*b", "ac"));
        assert!(!wildcard("A", "a"), "Host patterns are case-sensitive");
        assert!(pattern_list("gpu1", "GPU*,!gpu2", true));
        assert!(!pattern_list("gpu2", "gpu*,!gpu2", true));
        assert!(!pattern_list("x", "!y", true), "only negations never match");
    }

    #[test]
    fn times_and_forwards() {
        assert_eq!(convtime("90"), Some(90));
        assert_eq!(convtime("1m30s"), Some(90));
        assert_eq!(convtime("1h"), Some(3600));
        assert_eq!(convtime("x"), None);
        let f = parse_forward("127.0.0.1:8080:localhost:80", false, false).unwrap();
        assert_eq!(f.openssh(), "[127.0.0.1]:8080 [localhost]:80");
        let f = parse_forward("[::1]:9000:[fe80::1]:22", false, false).unwrap();
        assert_eq!(f.openssh(), "[::1]:9000 [fe80::1]:22");
        assert_eq!(
            parse_forward("1080", true, false).unwrap().openssh(),
            "1080"
        );
        assert!(parse_forward("/tmp/s:h:1", false, false).is_none());
    }
}
