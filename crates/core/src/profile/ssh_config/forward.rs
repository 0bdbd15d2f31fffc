//! Forwards from `LocalForward`, `RemoteForward` and `DynamicForward` lines, read as OpenSSH's
//! `parse_forward` reads them (TCP forms only).

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

/// One field of a forward spec (`parse_fwd_field`): `[literal]` or up to the next `:`, with
/// `\` escapes. Returns the field, whether it looks like a path, and the rest.
pub(super) fn fwd_field(s: &str) -> Option<(String, bool, Option<&str>)> {
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
pub(super) fn parse_forward(spec: &str, dynamic: bool, remote: bool) -> Option<ConfigForward> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_like_parse_forward() {
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
