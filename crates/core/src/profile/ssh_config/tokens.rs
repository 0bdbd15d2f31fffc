//! OpenSSH's expansions: `%` tokens, `${ENV}` variables and a leading `~`, each applied only
//! where OpenSSH applies it, and the algorithm lists (`+`, `-`, `^`) of OpenSSH 9.2.

/// What the local machine contributes to tokens: `%d %u %l %L %i`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Local {
    /// `%d` and `~`: the local home directory.
    pub home: String,
    /// `%u`: the local user name.
    pub user: String,
    /// `%l`: the local host name, including the domain.
    pub host: String,
    /// `%i`: the local user id.
    pub uid: String,
}

impl Local {
    /// This machine and this user.
    pub fn current() -> Local {
        let home = directories::BaseDirs::new()
            .map(|d| d.home_dir().display().to_string())
            .unwrap_or_default();
        Local {
            home,
            user: crate::profile::login_user(&super::super::Profile::default()),
            host: local_host_name(),
            uid: local_uid(),
        }
    }
}

#[cfg(unix)]
fn local_host_name() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(not(unix))]
fn local_host_name() -> String {
    std::env::var("COMPUTERNAME").unwrap_or_default()
}

#[cfg(unix)]
fn local_uid() -> String {
    nix::unistd::getuid().to_string()
}

#[cfg(not(unix))]
fn local_uid() -> String {
    "0".to_string()
}

/// Replaces `%x` tokens from `tokens` (`%%` is `%`) and, when `dollar`, `${NAME}` with the
/// environment variable. An unknown token, a lone `%` at the end or an unset variable is an
/// error, as in OpenSSH (which refuses to connect).
pub(crate) fn expand(s: &str, tokens: &[(char, &str)], dollar: bool) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && dollar && chars.peek() == Some(&'{') {
            chars.next();
            let name: String = chars.by_ref().take_while(|c| *c != '}').collect();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "\"{s}\": invalid environment variable \"${{{name}}}\""
                ));
            }
            match std::env::var(&name) {
                Ok(v) => out.push_str(&v),
                Err(_) => {
                    return Err(format!("\"{s}\": environment variable {name} is not set"));
                }
            }
            continue;
        }
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(t) => match tokens.iter().find(|(k, _)| *k == t) {
                Some((_, v)) => out.push_str(v),
                None => return Err(format!("\"{s}\": unknown token %{t} here")),
            },
            None => return Err(format!("\"{s}\": a lone % at the end")),
        }
    }
    Ok(out)
}

/// OpenSSH's `tilde_expand_filename`: `~` or `~/x` becomes the home directory; `~user` is left
/// as written (other users' homes are not looked up).
pub(super) fn tilde(s: &str, home: &str) -> String {
    if s == "~" {
        home.to_string()
    } else if let Some(rest) = s.strip_prefix("~/") {
        // String concatenation with `/`, as OpenSSH's tilde_expand_filename does (also on Windows).
        format!("{}/{rest}", home.trim_end_matches(['/', '\\']))
    } else {
        s.to_string()
    }
}

/// `%C`: the SHA-1 (hex) of `%l%h%p%r`, as OpenSSH 9.2 computes it.
pub(super) fn connection_hash(local_host: &str, host: &str, port: u16, user: &str) -> String {
    use sha1::{Digest, Sha1};
    let digest = Sha1::digest(format!("{local_host}{host}{port}{user}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// OpenSSH 9.2's default `HostKeyAlgorithms` and `PubkeyAcceptedAlgorithms`.
pub const DEFAULT_KEY_ALGORITHMS: &[&str] = &[
    "ssh-ed25519-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "rsa-sha2-512-cert-v01@openssh.com",
    "rsa-sha2-256-cert-v01@openssh.com",
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "rsa-sha2-512",
    "rsa-sha2-256",
];

/// Every signature algorithm OpenSSH 9.2 knows (`ssh -Q HostKeyAlgorithms`), in its order.
const ALL_KEY_ALGORITHMS: &[&str] = &[
    "ssh-ed25519",
    "ssh-ed25519-cert-v01@openssh.com",
    "sk-ssh-ed25519@openssh.com",
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "webauthn-sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-dss",
    "ssh-dss-cert-v01@openssh.com",
    "ssh-rsa",
    "ssh-rsa-cert-v01@openssh.com",
    "rsa-sha2-256",
    "rsa-sha2-256-cert-v01@openssh.com",
    "rsa-sha2-512",
    "rsa-sha2-512-cert-v01@openssh.com",
];

/// OpenSSH's `kex_assemble_names` over the key algorithms: `+list` appends to the defaults,
/// `-list` removes from them, `^list` puts in front of them, a plain list replaces them; names
/// may be `*`/`?` patterns. The result is the list OpenSSH offers, in its order.
pub fn assemble_key_algorithms(spec: &str) -> Result<Vec<String>, String> {
    let defaults: Vec<String> = DEFAULT_KEY_ALGORITHMS
        .iter()
        .map(|s| s.to_string())
        .collect();
    let cat = |a: &[String], b: &[String]| -> Vec<String> {
        let mut out = a.to_vec();
        for x in b {
            if !out.contains(x) {
                out.push(x.clone());
            }
        }
        out
    };
    let names = |s: &str| -> Vec<String> {
        s.split(',')
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect()
    };
    let list = if let Some(rest) = spec.strip_prefix('+') {
        cat(&defaults, &names(rest))
    } else if let Some(rest) = spec.strip_prefix('-') {
        let patterns = names(rest);
        return Ok(defaults
            .into_iter()
            .filter(|d| !patterns.iter().any(|p| super::patterns::wildcard(p, d)))
            .collect());
    } else if let Some(rest) = spec.strip_prefix('^') {
        cat(&names(rest), &defaults)
    } else {
        names(spec)
    };
    let mut out: Vec<String> = Vec::new();
    for pattern in &list {
        if pattern.starts_with('!') {
            return Err(format!("\"{spec}\": negated names are not allowed here"));
        }
        let matching: Vec<String> = ALL_KEY_ALGORITHMS
            .iter()
            .filter(|a| super::patterns::wildcard(pattern, a))
            .map(|a| a.to_string())
            .collect();
        out = cat(&out, &matching);
    }
    if out.is_empty() {
        return Err(format!("\"{spec}\" names no algorithm OpenSSH knows"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_variables() {
        let t = [('h', "gpu"), ('p', "22")];
        assert_eq!(expand("%h:%p %%", &t, false).unwrap(), "gpu:22 %");
        assert!(expand("%x", &t, false).unwrap_err().contains("%x"));
        assert_eq!(expand("${TB_UNSET_X}", &t, false).unwrap(), "${TB_UNSET_X}");
        assert!(
            expand("${TB_UNSET_X}", &t, true)
                .unwrap_err()
                .contains("TB_UNSET_X")
        );
        assert_eq!(tilde("~/.ssh/k", "/home/a"), "/home/a/.ssh/k");
        assert_eq!(tilde("~bob/k", "/home/a"), "~bob/k");
    }

    #[test]
    fn algorithm_lists() {
        let plus = assemble_key_algorithms("+ssh-rsa").unwrap();
        assert_eq!(plus.last().map(String::as_str), Some("ssh-rsa"));
        assert_eq!(plus.len(), DEFAULT_KEY_ALGORITHMS.len() + 1);
        let minus = assemble_key_algorithms("-*-cert-v01@openssh.com").unwrap();
        assert!(minus.iter().all(|a| !a.contains("cert")));
        let caret = assemble_key_algorithms("^ssh-rsa").unwrap();
        assert_eq!(caret[0], "ssh-rsa");
        assert_eq!(
            assemble_key_algorithms("ssh-ed25519*").unwrap(),
            ["ssh-ed25519", "ssh-ed25519-cert-v01@openssh.com"]
        );
    }
}
