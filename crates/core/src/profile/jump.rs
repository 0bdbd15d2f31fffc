//! Jump hosts as OpenSSH's `ProxyJump` writes them: `[user@]host[:port]` or
//! `ssh://[user@]host[:port]`, several separated by commas (first hop first), where `host` may
//! be the name of a saved profile. Resolving a profile's jump into the hops to dial follows
//! OpenSSH: a hop that names a saved host takes that host's settings with only the user and port
//! given in the hop overriding them; for `a,b` the hop `b` is reached through `a` (its own jump
//! is replaced, as `ssh -J a b` does), while `a` keeps its own jump.

use super::{Profile, ProfileError};

/// One hop of a jump list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JumpHop {
    /// The user given in the hop (`user@`), overriding the saved host's.
    pub user: Option<String>,
    /// A saved host's name or a host name / address.
    pub host: String,
    /// The port given in the hop (`:port`), overriding the saved host's.
    pub port: Option<u16>,
}

impl JumpHop {
    /// The hop written back as `[user@]host[:port]` (IPv6 addresses in brackets).
    pub fn to_destination(&self) -> String {
        let mut s = String::new();
        if let Some(u) = &self.user {
            s.push_str(u);
            s.push('@');
        }
        if self.host.contains(':') {
            s.push_str(&format!("[{}]", self.host));
        } else {
            s.push_str(&self.host);
        }
        if let Some(p) = self.port {
            s.push_str(&format!(":{p}"));
        }
        s
    }
}

/// Parses a jump list (OpenSSH's `parse_jump`): hops separated by commas, first hop first.
/// The error says which hop is malformed.
pub fn parse_jump(value: &str) -> Result<Vec<JumpHop>, String> {
    value.split(',').map(parse_hop).collect()
}

fn parse_hop(hop: &str) -> Result<JumpHop, String> {
    let bad = |why: &str| format!("jump host \"{hop}\": {why}");
    let text = hop.trim();
    let text = match text.strip_prefix("ssh://") {
        Some(rest) => {
            let rest = rest.strip_suffix('/').unwrap_or(rest);
            if rest.contains('/') {
                return Err(bad("an ssh:// address cannot have a path"));
            }
            rest
        }
        None => text,
    };
    let (user, rest) = match text.rsplit_once('@') {
        Some((u, r)) => (Some(u.to_string()), r),
        None => (None, text),
    };
    if user.as_deref().is_some_and(str::is_empty) {
        return Err(bad("the user before @ is empty"));
    }
    let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
        let end = inner.find(']').ok_or_else(|| bad("\"[\" without \"]\""))?;
        let after = &inner[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(bad("text after \"]\"")),
        };
        (inner[..end].to_string(), port)
    } else {
        match rest.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (rest.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err(bad("the host is empty"));
    }
    let port = match port {
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad(&format!("\"{p}\" is not a port number")))?,
        ),
        None => None,
    };
    Ok(JumpHop { user, host, port })
}

/// The hops to reach `profile` (jump hosts first, `profile` last), resolving names against
/// `all`. `seen` holds the saved hosts already on the way, to find cycles.
pub(super) fn hops_to(
    all: &[Profile],
    profile: Profile,
    seen: &mut Vec<String>,
    target: &str,
) -> Result<Vec<Profile>, ProfileError> {
    let Some(jump) = profile.jump.clone().filter(|j| !j.trim().is_empty()) else {
        return Ok(vec![profile]);
    };
    if seen.len() > 32 {
        return Err(ProfileError::JumpCycle(target.to_string()));
    }
    let hops = match parse_jump(&jump) {
        Ok(hops) => hops,
        // Not a jump list OpenSSH would accept: dial it as written (validation reports it).
        Err(_) => vec![JumpHop {
            user: None,
            host: jump.clone(),
            port: None,
        }],
    };
    let Some((last, before)) = hops.split_last() else {
        return Ok(vec![profile]);
    };
    let mut hop = match all.iter().find(|p| p.name == last.host) {
        Some(saved) => {
            if seen.contains(&saved.name) || saved.name == profile.name {
                return Err(ProfileError::JumpCycle(target.to_string()));
            }
            seen.push(saved.name.clone());
            let mut hop = saved.clone();
            if let Some(u) = &last.user {
                hop.user = Some(u.clone());
            }
            if let Some(p) = last.port {
                hop.port = p;
            }
            hop
        }
        None => Profile {
            name: last.to_destination(),
            host: last.host.clone(),
            port: last.port.unwrap_or(22),
            user: last.user.clone(),
            ..Profile::default()
        },
    };
    if !before.is_empty() {
        let rest: Vec<String> = before.iter().map(JumpHop::to_destination).collect();
        hop.jump = Some(rest.join(","));
    }
    let mut chain = hops_to(all, hop, seen, target)?;
    chain.push(profile);
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hops_parse_like_openssh() {
        let hops = parse_jump("ssh://u@j2:33,k,alice@[::1]:2200").unwrap();
        assert_eq!(
            hops,
            vec![
                JumpHop {
                    user: Some("u".into()),
                    host: "j2".into(),
                    port: Some(33)
                },
                JumpHop {
                    user: None,
                    host: "k".into(),
                    port: None
                },
                JumpHop {
                    user: Some("alice".into()),
                    host: "::1".into(),
                    port: Some(2200)
                },
            ]
        );
        assert_eq!(hops[2].to_destination(), "alice@[::1]:2200");
        assert!(parse_jump("a:notaport").unwrap_err().contains("notaport"));
        assert!(parse_jump("@a").is_err());
    }

    #[test]
    fn chain_takes_saved_hosts_with_overrides() {
        let bastion = Profile {
            name: "bastion".into(),
            host: "10.0.0.1".into(),
            port: 2222,
            identity_files: vec!["/k".into()],
            ..Profile::default()
        };
        let outer = Profile {
            name: "outer".into(),
            host: "10.0.0.9".into(),
            jump: Some("nowhere".into()),
            ..Profile::default()
        };
        let gpu = Profile {
            name: "gpu".into(),
            host: "10.0.0.2".into(),
            jump: Some("outer,bcuser@bastion:2200".into()),
            ..Profile::default()
        };
        let all = vec![bastion, outer, gpu.clone()];
        let chain = hops_to(&all, gpu, &mut Vec::new(), "gpu").unwrap();
        let names: Vec<(&str, &str, u16, Option<&str>)> = chain
            .iter()
            .map(|p| (p.name.as_str(), p.host.as_str(), p.port, p.user.as_deref()))
            .collect();
        assert_eq!(
            names,
            [
                ("nowhere", "nowhere", 22, None),
                ("outer", "10.0.0.9", 22, None),
                ("bastion", "10.0.0.1", 2200, Some("bcuser")),
                ("gpu", "10.0.0.2", 22, None),
            ]
        );
        assert_eq!(
            chain[2].identity_files,
            vec![std::path::PathBuf::from("/k")]
        );
    }
}
