//! Importing PuTTY saved sessions (`HKCU\Software\SimonTatham\PuTTY\Sessions`).
//!
//! The registry reading is Windows-only and cannot be compiled on the Linux CI; it is kept to a
//! few lines that only fetch values. Turning one session's values into a profile is plain code,
//! compiled and tested everywhere.

use std::path::PathBuf;

use super::{ImportReport, Profile, Skipped};

/// The values of one PuTTY session that Tunnelbook uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PuttySession {
    /// The registry key name (URL-encoded by PuTTY: `My%20server`).
    pub key: String,
    /// `HostName`, which may be `user@host`.
    pub host_name: String,
    /// `PortNumber`.
    pub port: u32,
    /// `UserName`.
    pub user: String,
    /// `PublicKeyFile` (a `.ppk` path).
    pub key_file: String,
    /// `Protocol` (`ssh`, `telnet`, `serial`, …).
    pub protocol: String,
}

impl PuttySession {
    /// The profile this session describes, or why it cannot be one.
    pub fn to_profile(&self) -> Result<Profile, Skipped> {
        let name = decode_key(&self.key);
        let skip = |reason: &str| Skipped {
            name: name.clone(),
            reason: reason.to_string(),
        };
        if name == "Default Settings" {
            return Err(skip("PuTTY's defaults, not a host"));
        }
        if !self.protocol.is_empty() && self.protocol != "ssh" {
            return Err(skip(&format!("uses {}, not SSH", self.protocol)));
        }
        let (user, host) = match self.host_name.rsplit_once('@') {
            Some((u, h)) => (Some(u.to_string()), h.to_string()),
            None => (None, self.host_name.clone()),
        };
        if host.trim().is_empty() {
            return Err(skip("has no host name"));
        }
        let port = u16::try_from(self.port)
            .ok()
            .filter(|p| *p != 0)
            .unwrap_or(22);
        let user = user.or_else(|| Some(self.user.clone()).filter(|u| !u.is_empty()));
        let identity_files = if self.key_file.is_empty() {
            Vec::new()
        } else {
            vec![PathBuf::from(&self.key_file)]
        };
        Ok(Profile {
            name,
            host,
            port,
            user,
            identity_files,
            ..Profile::default()
        })
    }
}

/// Undoes PuTTY's `%XX` escaping of registry names (session names, host-key value names).
pub(crate) fn decode_key(key: &str) -> String {
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = key.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Turns sessions into an import report (nothing is saved).
pub fn report_from_sessions(sessions: &[PuttySession]) -> ImportReport {
    let mut report = ImportReport::default();
    for session in sessions {
        match session.to_profile() {
            Ok(p) => report.imported.push(p),
            Err(s) => report.skipped.push(s),
        }
    }
    report
}

/// Reads every PuTTY saved session of the current user. No PuTTY key means no sessions.
#[cfg(windows)]
pub fn read_putty_sessions() -> std::io::Result<Vec<PuttySession>> {
    use winreg::{RegKey, enums::HKEY_CURRENT_USER};
    let root = match RegKey::predef(HKEY_CURRENT_USER)
        .open_subkey(r"Software\SimonTatham\PuTTY\Sessions")
    {
        Ok(root) => root,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut sessions = Vec::new();
    for key in root.enum_keys() {
        let key = key?;
        let s = root.open_subkey(&key)?;
        sessions.push(PuttySession {
            host_name: s.get_value("HostName").unwrap_or_default(),
            port: s.get_value("PortNumber").unwrap_or(22),
            user: s.get_value("UserName").unwrap_or_default(),
            key_file: s.get_value("PublicKeyFile").unwrap_or_default(),
            protocol: s.get_value("Protocol").unwrap_or_default(),
            key,
        });
    }
    Ok(sessions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn putty_session_becomes_profile() {
        let s = PuttySession {
            key: "GPU%20box".into(),
            host_name: "alice@gpu.lab.example.edu".into(),
            port: 2222,
            key_file: r"C:\Users\alice\gpu.ppk".into(),
            protocol: "ssh".into(),
            ..PuttySession::default()
        };
        let p = s.to_profile().unwrap();
        assert_eq!(
            (p.name.as_str(), p.host.as_str(), p.port),
            ("GPU box", "gpu.lab.example.edu", 2222)
        );
        assert_eq!(p.user.as_deref(), Some("alice"));
        let report = report_from_sessions(&[
            s,
            PuttySession {
                key: "Default%20Settings".into(),
                ..PuttySession::default()
            },
            PuttySession {
                key: "router".into(),
                host_name: "r".into(),
                protocol: "telnet".into(),
                ..PuttySession::default()
            },
        ]);
        assert_eq!(report.imported.len(), 1);
        assert_eq!(report.skipped.len(), 2);
    }
}
