//! Field-by-field validation of profiles, every error at once, in a shape the UI can show next
//! to each field.

use std::{
    collections::HashSet,
    net::{IpAddr, Ipv6Addr},
};

use serde::{Deserialize, Serialize};

use super::ForwardSpec;
use super::{Profile, ProfileError, expand_home};

/// The name that means this computer on the command line (`tunnelbook up local`) and in the
/// app's host list, so no saved host may take it.
pub const LOCAL_NAME: &str = "local";

/// One problem with one field of one profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldError {
    /// The profile's name (as given, possibly empty).
    pub profile: String,
    /// The field, in wire spelling: `host`, `port`, `identityFiles[0]`, `forwards[1].hostPort`.
    pub field: String,
    /// What is wrong, for a human.
    pub message: String,
}

impl FieldError {
    fn new(profile: &Profile, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            profile: profile.name.clone(),
            field: field.into(),
            message: message.into(),
        }
    }

    /// One line per error: `NAME: field: message`.
    pub fn summary(errors: &[FieldError]) -> String {
        let lines: Vec<String> = errors
            .iter()
            .map(|e| format!("{}: {}: {}", e.profile, e.field, e.message))
            .collect();
        lines.join("\n")
    }
}

/// What is wrong with `text` typed as a port (the host form's field, before it is a number), in
/// words, or `None` for a port from 1 to 65535: `the port "5O609" is not a number` (never port
/// 5 from its first digit), `the port is empty`, `the port must be between 1 and 65535`.
pub fn port_problem(text: &str) -> Option<String> {
    let t = text.trim();
    if t.is_empty() {
        return Some("the port is empty".into());
    }
    if !t.bytes().all(|b| b.is_ascii_digit()) {
        return Some(format!("the port \"{t}\" is not a number"));
    }
    match t.parse::<u32>() {
        Ok(1..=65535) => None,
        _ => Some("the port must be between 1 and 65535".into()),
    }
}

/// What is wrong with `file` as a private key file (an `identityFiles` entry; `~` allowed), in
/// words with what to do, or `None` when it can be offered: empty, a folder, missing, a public
/// key (`id_ed25519.pub` chosen instead of `id_ed25519`), or not a private key at all (`config`,
/// `known_hosts` chosen in `~/.ssh`). Only the file's first line is looked at; the key itself is
/// read only when connecting (a passphrase may be needed).
pub fn key_file_problem(file: &std::path::Path) -> Option<String> {
    if file.as_os_str().is_empty() {
        return Some("the key file path is empty".into());
    }
    let path = expand_home(file);
    if path.is_dir() {
        return Some(format!("{} is a folder, not a key file", path.display()));
    }
    if !path.is_file() {
        return Some(format!("key file {} does not exist", path.display()));
    }
    if is_public_key(&path) {
        let private = path.with_extension("");
        let hint = if path.extension().is_some_and(|e| e == "pub") && private.is_file() {
            format!(": choose {} instead", private.display())
        } else {
            ": choose the private key (the file without .pub)".into()
        };
        return Some(format!(
            "{} is a public key; the login needs the private key{hint}",
            path.display()
        ));
    }
    if !is_private_key(&path) {
        let what = match looks_like(&path) {
            Some(what) => format!(" (it looks like {what})"),
            None => String::new(),
        };
        return Some(format!(
            "{} is not a private key file{what}: choose your private key, such as \
             ~/.ssh/id_ed25519 or ~/.ssh/id_rsa (the file next to the one ending in .pub), or a \
             PuTTY .ppk file",
            path.display()
        ));
    }
    None
}

/// Whether the file at `path` starts like a private key: OpenSSH's own format, PEM (PKCS#1,
/// SEC1, PKCS#8, encrypted or not) or a PuTTY `.ppk`. Only the first line is read, so an
/// encrypted key needs no passphrase here.
fn is_private_key(path: &std::path::Path) -> bool {
    let head = file_head(path);
    let first = head.trim_start().lines().next().unwrap_or("").trim();
    (first.starts_with("-----BEGIN ") && first.ends_with("PRIVATE KEY-----"))
        || first.starts_with("PuTTY-User-Key-File-")
}

/// What a file that is not a key seems to be, in words (the usual mistakes in `~/.ssh`).
fn looks_like(path: &std::path::Path) -> Option<&'static str> {
    let head = file_head(path);
    if head.trim().is_empty() {
        return Some("an empty file");
    }
    let line = head
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))?;
    let mut words = line.split_whitespace();
    let first = words.next().unwrap_or("").to_ascii_lowercase();
    let second = words.next().unwrap_or("");
    if second.starts_with("ssh-")
        || second.starts_with("ecdsa-")
        || second.starts_with("sk-")
        || first.starts_with('|')
        || first.starts_with('@')
    {
        return Some("a known_hosts file");
    }
    if matches!(first.as_str(), "host" | "match" | "include")
        || first.contains('=')
        || ["hostname", "user", "port", "identityfile", "proxyjump"].contains(&first.as_str())
    {
        return Some("an SSH config file");
    }
    None
}

/// The first 1 KiB of the file at `path`, as text ("" when unreadable).
fn file_head(path: &std::path::Path) -> String {
    use std::io::Read;
    let mut head = [0u8; 1024];
    match std::fs::File::open(path).and_then(|mut f| f.read(&mut head)) {
        Ok(n) => String::from_utf8_lossy(&head[..n]).into_owned(),
        Err(_) => String::new(),
    }
}

/// Whether the file at `path` starts like an OpenSSH public key line (`ssh-ed25519 AAAA…`,
/// `ecdsa-sha2-…`, `sk-…`) or an RFC 4716 public key (`---- BEGIN SSH2 PUBLIC KEY ----`).
fn is_public_key(path: &std::path::Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 64];
    let Ok(n) = std::fs::File::open(path).and_then(|mut f| f.read(&mut head)) else {
        return false;
    };
    let text = String::from_utf8_lossy(&head[..n]);
    let text = text.trim_start();
    let algo = text.split_whitespace().next().unwrap_or("");
    let openssh =
        (algo.starts_with("ssh-") || algo.starts_with("ecdsa-") || algo.starts_with("sk-"))
            && text[algo.len()..].trim_start().starts_with("AAAA");
    openssh || text.starts_with("---- BEGIN SSH2 PUBLIC KEY")
}

/// Every field error of every profile in `hosts`, including the ones between profiles
/// (duplicate names, jump cycles, jumps naming nothing).
pub fn validate(hosts: &[Profile]) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    for profile in hosts {
        errors.extend(check_profile(profile, hosts));
        if !profile.name.is_empty() && !seen.insert(profile.name.as_str()) {
            errors.push(FieldError::new(
                profile,
                "name",
                format!("a saved host named \"{}\" already exists", profile.name),
            ));
        }
    }
    errors
}

/// The errors of the profiles in `after` that are new or differ from `before`; unchanged
/// profiles are not re-checked (a key file deleted since should not block unrelated edits).
/// A second copy of a saved profile counts as new, so an exact duplicate is refused by name.
pub fn validate_changes(before: &[Profile], after: &[Profile]) -> Vec<FieldError> {
    let changed: HashSet<&str> = after
        .iter()
        .enumerate()
        .filter(|(i, p)| {
            let copies = |list: &[Profile]| list.iter().filter(|q| q.name == p.name).count();
            !before.contains(p) || (copies(&after[..*i]) > 0 && copies(after) > copies(before))
        })
        .map(|(_, p)| p.name.as_str())
        .collect();
    validate(after)
        .into_iter()
        .filter(|e| changed.contains(e.profile.as_str()))
        .collect()
}

fn check_profile(p: &Profile, all: &[Profile]) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut err = |field: &str, message: String| errors.push(FieldError::new(p, field, message));

    if p.name.trim().is_empty() {
        err("name", "the name is empty".into());
    } else if p.name.trim() != p.name {
        err("name", "the name starts or ends with a space".into());
    } else if p.name.contains([':', '@', ',']) || p.name.chars().any(char::is_control) {
        // ':', '@' and ',' separate port, user and hops where a name is used in a jump list
        // (`--jump user@name:port,next`, as OpenSSH's ProxyJump): a name holding one is ambiguous.
        err(
            "name",
            "the name must not contain ':', '@', ',' or control characters (the user goes in \
             the user field)"
                .into(),
        );
    } else if p.name == LOCAL_NAME {
        err(
            "name",
            format!("\"{LOCAL_NAME}\" means this computer; choose another name"),
        );
    }

    if let Some(message) = host_problem(&p.host) {
        err("host", message);
    }
    if p.port == 0 {
        err("port", "the port must be between 1 and 65535".into());
    }
    if let Some(user) = &p.user
        && let Some(message) = user_problem(user)
    {
        err("user", message);
    }
    for (i, module) in p.modules.iter().enumerate() {
        if module.is_empty() || module.starts_with('-') || module.chars().any(char::is_whitespace) {
            err(
                &format!("modules[{i}]"),
                format!(
                    "\"{}\" is not a module name (as `module avail` lists them, e.g. python/3.11): \
                     no spaces, not starting with '-'",
                    module.escape_debug()
                ),
            );
        }
    }
    for (i, file) in p.identity_files.iter().enumerate() {
        if let Some(message) = key_file_problem(file) {
            err(&format!("identityFiles[{i}]"), message);
        }
    }
    if let Some(message) = jump_problem(p, all) {
        err("jump", message);
    }
    // The alias is written as the host field of a known_hosts line: one plain word.
    if let Some(alias) = &p.host_key_alias
        && (alias.is_empty()
            || alias.chars().any(|c| c.is_whitespace() || c == ',')
            || alias.starts_with(['@', '#', '|', '!']))
    {
        err(
            "hostKeyAlias",
            "must be one name, without spaces or commas, not starting with @ # | or !".into(),
        );
    }
    if let Some(spec) = &p.host_key_algorithms
        && let Err(message) = host_key_algorithms(spec)
    {
        err(
            "hostKeyAlgorithms",
            format!(
                "{message}; write it as ssh_config does, e.g. +ssh-rsa or ssh-ed25519,rsa-sha2-512"
            ),
        );
    }
    if let Some(spec) = &p.pubkey_accepted_algorithms
        && let Err(message) = super::assemble_key_algorithms(spec)
    {
        err(
            "pubkeyAcceptedAlgorithms",
            format!("PubkeyAcceptedAlgorithms \"{spec}\": {message}"),
        );
    }
    let lists = [
        ("userKnownHostsFiles", &p.user_known_hosts_files),
        ("globalKnownHostsFiles", &p.global_known_hosts_files),
        ("certificateFiles", &p.certificate_files),
    ];
    for (name, files) in lists {
        for (i, file) in files.iter().enumerate() {
            if file.as_os_str().is_empty() {
                err(&format!("{name}[{i}]"), "the path is empty".into());
            }
        }
    }
    if p.keepalive_interval > 0 && p.keepalive_max == 0 {
        err(
            "keepaliveMax",
            "must be at least 1 when keepalives are on".into(),
        );
    }
    let mut listeners = HashSet::new();
    for (i, rule) in p.forwards.iter().enumerate() {
        let field = |name: &str| format!("forwards[{i}].{name}");
        let (bind, port, target) = match &rule.spec {
            ForwardSpec::Local {
                bind,
                port,
                host,
                host_port,
            } => (bind, *port, Some((host, *host_port))),
            ForwardSpec::Remote {
                bind,
                port,
                host,
                host_port,
            } => (bind, *port, Some((host, *host_port))),
            ForwardSpec::Dynamic { bind, port } => {
                if *port == 0 {
                    err(
                        &field("port"),
                        "a SOCKS proxy needs a port between 1 and 65535".into(),
                    );
                }
                (bind, *port, None)
            }
        };
        if bind != "*" && bind != "localhost" && host_problem(bind).is_some() {
            err(
                &field("bind"),
                format!("\"{bind}\" is not an address to listen on"),
            );
        }
        if let Some((host, host_port)) = target {
            if let Some(message) = host_problem(host) {
                err(&field("host"), message);
            }
            if host_port == 0 {
                err(
                    &field("hostPort"),
                    "the port must be between 1 and 65535".into(),
                );
            }
        }
        let local = !matches!(rule.spec, ForwardSpec::Remote { .. });
        if rule.enabled && local && port != 0 && !listeners.insert((bind.clone(), port)) {
            err(
                &field("port"),
                format!("another forward already listens on {bind}:{port}"),
            );
        }
    }
    errors
}

/// Why `host` is not a host name or address, if it is not.
fn host_problem(host: &str) -> Option<String> {
    if host.trim().is_empty() {
        return Some("the host is empty".into());
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if bare.parse::<IpAddr>().is_ok() || bare.parse::<Ipv6Addr>().is_ok() {
        return None;
    }
    if host.contains('@') {
        return Some("put the user name in the user field, not in the host".into());
    }
    if let Some((_, port)) = host.rsplit_once(':')
        && port.parse::<u16>().is_ok()
    {
        return Some("put the port in the port field, not in the host".into());
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.len() > 253 || !name.split('.').all(label_ok) {
        return Some(format!("\"{host}\" is not a valid host name or IP address"));
    }
    None
}

fn user_problem(user: &str) -> Option<String> {
    if user.is_empty() {
        Some("the user is empty; leave it out to use your local user name".into())
    } else if user.starts_with('-') {
        Some("a user name cannot start with '-'".into())
    } else if user
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '@' || c == ':')
    {
        Some("a user name cannot contain spaces, '@' or ':'".into())
    } else {
        None
    }
}

fn jump_problem(p: &Profile, all: &[Profile]) -> Option<String> {
    let jump = p.jump.as_deref()?;
    if jump.trim().is_empty() {
        return Some("the jump host is empty; leave it out to connect directly".into());
    }
    if jump == p.name {
        return Some("a host cannot be its own jump host".into());
    }
    let hops = match super::jump::parse_jump(jump) {
        Ok(hops) => hops,
        Err(message) => return Some(message),
    };
    for hop in &hops {
        if all.iter().any(|q| q.name == hop.host) {
            continue;
        }
        // Not a saved host: must read as `[user@]host[:port]`.
        let plain_word = hop.user.is_none()
            && hop.port.is_none()
            && !hop.host.contains(['.', ':'])
            && hop.host != "localhost";
        if plain_word {
            return Some(format!(
                "no saved host is named \"{}\"; to jump through a server that is not saved, \
                 write it as user@host, host.domain or host:port",
                hop.host
            ));
        }
        if let Some(message) = host_problem(&hop.host) {
            return Some(format!(
                "\"{}\" names no saved host and no server: {message}",
                hop.to_destination()
            ));
        }
        if let Some(user) = &hop.user
            && let Some(message) = user_problem(user)
        {
            return Some(format!("\"{}\": {message}", hop.to_destination()));
        }
    }
    // Follow the chain of saved profiles; a loop back to anything seen is a cycle.
    let mut with_p: Vec<Profile> = all.iter().filter(|q| q.name != p.name).cloned().collect();
    with_p.push(p.clone());
    match super::store::chain_in(&with_p, &p.name) {
        Err(ProfileError::JumpCycle(_)) => Some(format!(
            "the jump hosts form a cycle: {}",
            cycle_path(p, &with_p).join(" → ")
        )),
        _ => None,
    }
}

/// The saved hosts on the way from `p` until one repeats (for the cycle message).
fn cycle_path<'a>(p: &'a Profile, all: &'a [Profile]) -> Vec<&'a str> {
    let mut path = vec![p.name.as_str()];
    let mut current = p;
    while path.len() <= all.len() {
        let hops = current
            .jump
            .as_deref()
            .and_then(|j| super::jump::parse_jump(j).ok())
            .unwrap_or_default();
        let Some(next) = hops
            .iter()
            .rev()
            .find_map(|h| all.iter().find(|q| q.name == h.host))
        else {
            break;
        };
        let seen = path.contains(&next.name.as_str());
        path.push(next.name.as_str());
        if seen {
            break;
        }
        current = next;
    }
    path
}

/// An OpenSSH `HostKeyrussh::keys::Algorithms` value (`+`, `-`, `^` forms and patterns) as the russh host
/// key algorithms to ask for, in order: the plain key types, and the types whose certificates
/// (`…-cert-v01@openssh.com`) are allowed. Names russh does not implement are left out; a list
/// left with no plain type and no certificate type is an error naming the value.
pub fn host_key_algorithms(
    spec: &str,
) -> Result<(Vec<russh::keys::Algorithm>, Vec<russh::keys::Algorithm>), String> {
    let names = super::assemble_key_algorithms(spec)?;
    let supported = russh::Preferred::default().key;
    let mut plain = Vec::new();
    let mut certificates = Vec::new();
    for name in &names {
        let (list, base) = match name.strip_suffix("-cert-v01@openssh.com") {
            // Certificates are signed with the base type; RSA ones are negotiated by the
            // rsa-sha2 names, as OpenSSH does.
            Some("ssh-rsa") => {
                for hash in ["rsa-sha2-512", "rsa-sha2-256"] {
                    if let Ok(a) = russh::keys::Algorithm::new(hash)
                        && !certificates.contains(&a)
                    {
                        certificates.push(a);
                    }
                }
                continue;
            }
            Some(base) => (&mut certificates, base),
            None => (&mut plain, name.as_str()),
        };
        if let Ok(a) = russh::keys::Algorithm::new(base)
            && supported.contains(&a)
            && !list.contains(&a)
        {
            list.push(a);
        }
    }
    if plain.is_empty() && certificates.is_empty() {
        return Err(format!(
            "HostKeyrussh::keys::Algorithms \"{spec}\" names no host key type Tunnelbook implements ({})",
            supported
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok((plain, certificates))
}

#[cfg(test)]
mod port_tests {
    use super::port_problem;

    /// Trial of issue 14, finding 18: "5O609" (a letter O) is "not a number", not port 5 and not
    /// "between 1 and 65535".
    #[test]
    fn a_typed_port_that_is_not_a_number_says_so() {
        assert_eq!(
            port_problem("5O609").as_deref(),
            Some("the port \"5O609\" is not a number")
        );
        assert_eq!(
            port_problem(" 22 x").as_deref(),
            Some("the port \"22 x\" is not a number")
        );
        assert_eq!(port_problem("").as_deref(), Some("the port is empty"));
        for out_of_range in ["0", "65536", "99999999999"] {
            assert_eq!(
                port_problem(out_of_range).as_deref(),
                Some("the port must be between 1 and 65535"),
                "{out_of_range}"
            );
        }
        assert_eq!(port_problem(" 50609 "), None);
        assert_eq!(port_problem("22"), None);
    }
}
