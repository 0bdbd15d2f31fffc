//! The sync settings: `$TUNNELBOOK_HOME/sync.toml`.

use std::{collections::BTreeMap, path::Path};

use serde::{Deserialize, Serialize};

/// How project folders are synced (`sync.toml` in Tunnelbook's state folder):
///
/// ```toml
/// size_limit_mb = 100          # files over this are listed and asked about
/// bring_back_new_files = true  # new files the notebook writes come back too
/// [hosts.gpu-box]
/// projects_dir = "~/tunnelbook" # where project folders go on that host
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncSettings {
    /// Files larger than this many megabytes (10^6 bytes) are not uploaded unless asked for.
    pub size_limit_mb: u64,
    /// Whether new files in the remote project folder (a notebook's outputs) are brought back,
    /// not just the files that went up.
    pub bring_back_new_files: bool,
    /// Per-host settings by saved host name.
    pub hosts: BTreeMap<String, HostSync>,
}

/// Sync settings of one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct HostSync {
    /// The folder project folders go in (`~/tunnelbook` when unset).
    pub projects_dir: Option<String>,
}

/// Where project folders go when a host does not say.
pub const DEFAULT_PROJECTS_DIR: &str = "~/tunnelbook";

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            size_limit_mb: 100,
            bring_back_new_files: true,
            hosts: BTreeMap::new(),
        }
    }
}

impl SyncSettings {
    /// The settings in `home/sync.toml`; the defaults when there is none.
    ///
    /// # Errors
    /// The file's path and the parser's words when it is unreadable or invalid.
    pub fn load(home: &Path) -> Result<SyncSettings, String> {
        let path = home.join("sync.toml");
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SyncSettings::default()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// The size limit in bytes.
    pub fn size_limit_bytes(&self) -> u64 {
        self.size_limit_mb.saturating_mul(1_000_000)
    }

    /// The projects folder on the host `name`.
    pub fn projects_dir(&self, name: &str) -> String {
        self.hosts
            .get(name)
            .and_then(|h| h.projects_dir.clone())
            .unwrap_or_else(|| DEFAULT_PROJECTS_DIR.to_string())
    }
}
