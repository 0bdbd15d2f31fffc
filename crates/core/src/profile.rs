//! Saved hosts: the [`Profile`] model and the TOML store under Tunnelbook's home.
//!
//! Owns what a host is and where it is kept. Leaves out how to connect (see [`crate::ssh`]) and
//! secrets (see [`crate::secret`]): a profile never holds a password, only the wish to remember it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::tunnel::ForwardRule;

/// One saved host.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Profile {
    /// Unique display name, also used on the command line (`tunnelbook exec NAME`).
    pub name: String,
    /// Host name or address to connect to.
    pub host: String,
    /// SSH port.
    pub port: u16,
    /// Login user; `None` means the local user name.
    pub user: Option<String>,
    /// Authentication methods to try, in order; empty means the default order
    /// (agent, key files, password, keyboard-interactive).
    pub auth: Vec<AuthMethod>,
    /// Private key files to offer (OpenSSH or PuTTY `.ppk`); empty means the usual
    /// `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa`.
    pub identity_files: Vec<PathBuf>,
    /// The jump host: the name of another profile (which may itself have a jump host), or
    /// `[user@]host[:port]`.
    pub jump: Option<String>,
    /// Seconds between keepalives; 0 turns them off.
    pub keepalive_interval: u32,
    /// Keepalives without an answer before the connection counts as dead.
    pub keepalive_max: u32,
    /// Remote directory JupyterLab starts in; `None` is the home directory.
    pub notebook_dir: Option<String>,
    /// Preferred Python environment (path or conda env name).
    pub environment: Option<String>,
    /// Default GPU choice: `auto`, `none`, an index or a (MIG) UUID.
    pub gpu: Option<String>,
    /// Shell lines run before JupyterLab starts (e.g. `module load cuda`).
    pub pre_launch: Vec<String>,
    /// Forwarding rules that start with the connection.
    pub forwards: Vec<ForwardRule>,
    /// Free-form tags, shown in the tray and host list.
    pub tags: Vec<String>,
    /// Colour used for this host in the UI (CSS colour).
    pub color: Option<String>,
}

impl Default for Profile {
    fn default() -> Self {
        Self {
            name: String::new(),
            host: String::new(),
            port: 22,
            user: None,
            auth: Vec::new(),
            identity_files: Vec::new(),
            jump: None,
            keepalive_interval: 15,
            keepalive_max: 2,
            notebook_dir: None,
            environment: None,
            gpu: None,
            pre_launch: Vec::new(),
            forwards: Vec::new(),
            tags: Vec::new(),
            color: None,
        }
    }
}

/// An authentication method a profile may ask for.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMethod {
    /// Keys held by ssh-agent (Pageant or the OpenSSH named pipe on Windows).
    Agent,
    /// Private key files.
    KeyFile,
    /// Password.
    Password,
    /// Keyboard-interactive (OTP, Duo, …).
    KeyboardInteractive,
}

impl AuthMethod {
    /// The order used when a profile names none.
    pub const DEFAULT_ORDER: [AuthMethod; 4] = [
        AuthMethod::Agent,
        AuthMethod::KeyFile,
        AuthMethod::Password,
        AuthMethod::KeyboardInteractive,
    ];
}

/// Errors reading or writing profiles.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// No profile with this name.
    #[error("no saved host named \"{0}\" (see `tunnelbook hosts list`)")]
    NotFound(String),
    /// The file could not be read or written.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for profiles.
    #[error("{path} is not a valid profiles file: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A jump-host chain loops.
    #[error("the jump hosts of \"{0}\" form a cycle")]
    JumpCycle(String),
}

/// The on-disk shape of `hosts.toml`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct HostsFile {
    #[serde(default)]
    version: u32,
    #[serde(default, rename = "host")]
    hosts: Vec<Profile>,
}

/// The profiles file in Tunnelbook's home.
#[derive(Debug, Clone)]
pub struct ProfileStore {
    path: PathBuf,
}

impl ProfileStore {
    /// The store in `home` (the file is `home/hosts.toml`).
    pub fn in_home(home: &Path) -> Self {
        Self {
            path: home.join("hosts.toml"),
        }
    }

    /// All saved profiles, in the order they were added.
    pub fn load(&self) -> Result<Vec<Profile>, ProfileError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(ProfileError::Io {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let file: HostsFile = toml::from_str(&text).map_err(|e| ProfileError::Corrupt {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        Ok(file.hosts)
    }

    /// Replaces all profiles.
    pub fn save(&self, hosts: &[Profile]) -> Result<(), ProfileError> {
        let io = |source| ProfileError::Io {
            path: self.path.clone(),
            source,
        };
        let file = HostsFile {
            version: 1,
            hosts: hosts.to_vec(),
        };
        let text = toml::to_string_pretty(&file).map_err(|e| ProfileError::Corrupt {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = self.path.with_extension("toml.tmp");
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)
    }

    /// One profile by name.
    pub fn get(&self, name: &str) -> Result<Profile, ProfileError> {
        self.load()?
            .into_iter()
            .find(|p| p.name == name)
            .ok_or_else(|| ProfileError::NotFound(name.to_string()))
    }

    /// The hops to reach `name`, first hop first, the target last.
    ///
    /// A jump that names no saved profile is read as `[user@]host[:port]`.
    pub fn chain(&self, name: &str) -> Result<Vec<Profile>, ProfileError> {
        let all = self.load()?;
        let mut chain = Vec::new();
        let mut next = Some(name.to_string());
        while let Some(current) = next {
            if chain.iter().any(|p: &Profile| p.name == current) {
                return Err(ProfileError::JumpCycle(name.to_string()));
            }
            let profile = match all.iter().find(|p| p.name == current) {
                Some(p) => p.clone(),
                None if !chain.is_empty() => Profile::from_destination(&current),
                None => return Err(ProfileError::NotFound(current)),
            };
            next = profile.jump.clone();
            chain.push(profile);
        }
        chain.reverse();
        Ok(chain)
    }
}

impl Profile {
    /// A profile from an ssh-style destination `[user@]host[:port]`, named after it.
    pub fn from_destination(dest: &str) -> Profile {
        let (user, rest) = match dest.rsplit_once('@') {
            Some((u, r)) => (Some(u.to_string()), r),
            None => (None, dest),
        };
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => match p.parse() {
                Ok(port) => (h.to_string(), port),
                Err(_) => (rest.to_string(), 22),
            },
            _ => (rest.to_string(), 22),
        };
        Profile {
            name: dest.to_string(),
            host,
            port,
            user,
            ..Profile::default()
        }
    }
}
