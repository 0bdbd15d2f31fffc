//! The local port each notebook server was last forwarded to, kept on this computer in
//! Tunnelbook's home (`notebook-ports.json`), so that reattaching later — the app's "Reopen"
//! after a restart, `tunnelbook attach` — comes back on the same `http://127.0.0.1:PORT` when it
//! is free, and bookmarks and open tabs keep working. Holds no token.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use crate::tunnel::Listen;

/// How many servers are remembered; the oldest entries go first.
const KEEP: usize = 64;

/// The file of remembered ports (`notebook-ports.json` in Tunnelbook's home).
#[derive(Debug, Clone)]
pub struct PortBook {
    path: PathBuf,
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Entries {
    /// `profile/server-id` → port, with the order of writing (oldest first).
    ports: BTreeMap<String, (u64, u16)>,
}

impl PortBook {
    /// The book in Tunnelbook's home `home`.
    pub fn in_home(home: &Path) -> Self {
        Self {
            path: home.join("notebook-ports.json"),
        }
    }

    fn key(profile: &str, server_id: &str) -> String {
        format!("{profile}/{server_id}")
    }

    fn read(&self) -> Entries {
        std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    /// The port server `server_id` of host `profile` was last forwarded to, if remembered.
    pub fn get(&self, profile: &str, server_id: &str) -> Option<u16> {
        self.read()
            .ports
            .get(&Self::key(profile, server_id))
            .map(|(_, port)| *port)
    }

    /// Where to listen for server `server_id` of `profile`: 127.0.0.1 on its remembered port
    /// when that is free (else any free port), or any free port when none is remembered.
    pub fn listen(&self, profile: &str, server_id: &str) -> Listen {
        let mut listen = Listen::loopback_any();
        if let Some(port) = self.get(profile, server_id) {
            listen.port = port;
            listen.port_is_preference = true;
        }
        listen
    }

    /// Remembers `port` for server `server_id` of `profile`. Best effort: a file that cannot be
    /// written only means the next attach picks a free port, so the error is for logging.
    pub fn remember(&self, profile: &str, server_id: &str, port: u16) -> std::io::Result<()> {
        let mut entries = self.read();
        let next = entries
            .ports
            .values()
            .map(|(n, _)| n + 1)
            .max()
            .unwrap_or(0);
        entries
            .ports
            .insert(Self::key(profile, server_id), (next, port));
        while entries.ports.len() > KEEP {
            let oldest = entries
                .ports
                .iter()
                .min_by_key(|(_, (n, _))| *n)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => entries.ports.remove(&k),
                None => break,
            };
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec(&entries).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(&tmp, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_ports_per_host_and_server() {
        let dir = tempfile::tempdir().unwrap();
        let book = PortBook::in_home(dir.path());
        assert_eq!(book.listen("gpu", "tb-1").port, 0);
        book.remember("gpu", "tb-1", 41234).unwrap();
        book.remember("other", "tb-1", 41235).unwrap();
        let again = PortBook::in_home(dir.path());
        assert_eq!(again.get("gpu", "tb-1"), Some(41234));
        let listen = again.listen("gpu", "tb-1");
        assert_eq!((listen.port, listen.port_is_preference), (41234, true));
        assert_eq!(again.get("other", "tb-1"), Some(41235));
        for i in 0..(KEEP as u16 + 5) {
            again
                .remember("many", &format!("tb-{i}"), 40000 + i)
                .unwrap();
        }
        assert_eq!(again.get("gpu", "tb-1"), None, "the oldest entries go");
        assert_eq!(
            again.get("many", &format!("tb-{}", KEEP + 4)),
            Some(40000 + KEEP as u16 + 4)
        );
    }
}
