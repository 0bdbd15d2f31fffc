//! Saved hosts: the [`Profile`] model, its validation, the TOML store under Tunnelbook's home
//! ([`home_dir`]), and imports from `~/.ssh/config` and PuTTY.
//!
//! Owns what a host is, whether it is well-formed, and where it is kept: `hosts.toml` with a
//! schema version and migrations, atomic writes with a `.bak` of the previous version, corrupt
//! files kept aside, and an advisory lock so the app and the CLI can write at once. Leaves out
//! how to connect (see [`crate::ssh`]) and secrets (see [`crate::secret`]): a profile never holds
//! a password, only names the keychain entries that belong to it ([`Profile::secret_keys`]).

mod entry;
mod forward;
mod import;
mod jump;
mod migrate;
mod putty;
pub(crate) use self::{putty::decode_key as decode_putty_name, ssh_config::wildcard};
pub mod scheduler;
mod ssh_config;
mod store;
mod validate;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[cfg(windows)]
pub use self::putty::read_putty_sessions;
pub use self::{
    entry::{HostEntry, HostKind, host_label, with_saved_launch_defaults},
    forward::{ForwardRule, ForwardSpec},
    import::{
        ImportCandidate, ImportPreview, ImportSkip, ImportSource, import_profiles, preview,
        previews,
    },
    jump::{JumpHop, parse_jump},
    migrate::CURRENT_VERSION,
    putty::{PuttySession, report_from_sessions},
    ssh_config::{
        ConfigForward, DEFAULT_IDENTITY_FILES, DEFAULT_KEY_ALGORITHMS, ImportReport, Skipped,
        SshConfig, SshConfigHost, assemble_key_algorithms, default_ssh_config_path,
        import_ssh_config, read_ssh_config,
    },
    store::ProfileStore,
    validate::{
        FieldError, LOCAL_NAME, host_key_algorithms, key_file_problem, port_problem, validate,
        validate_changes,
    },
};
use crate::secret::{SecretError, SecretKey};

pub use crate::home::HOME_ENV;

/// One saved host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
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
    /// The jump hosts, as OpenSSH's `ProxyJump` writes them: one or more hops separated by
    /// commas (first hop first), each the name of another profile (which may itself have a
    /// jump host) or `[user@]host[:port]`; `user@name:port` takes the saved host `name` with
    /// that user and port.
    pub jump: Option<String>,
    /// A command whose stdin/stdout carry the SSH connection instead of a TCP socket, as
    /// OpenSSH's `ProxyCommand` (e.g. `ssh -W %h:%p bastion`, `cloudflared access ssh
    /// --hostname %h`). Run by `sh -c`; `%h` `%p` `%r` `%n` `%%` are expanded first. Ignored
    /// when `jump` is set.
    pub proxy_command: Option<String>,
    /// Seconds to wait for each hop's TCP connection and SSH handshake (OpenSSH's
    /// `ConnectTimeout`); `None` uses the connection's default (15 s).
    pub connect_timeout: Option<u32>,
    /// Seconds without hearing from the server before a keepalive is sent; 0 turns them off.
    /// A dead connection is found after `keepalive_interval` × (`keepalive_max` + 1) seconds
    /// (30 s by default), and a session then reconnects.
    pub keepalive_interval: u32,
    /// Keepalives without an answer before the connection counts as dead.
    pub keepalive_max: u32,
    /// Remote directory JupyterLab starts in; `None` is the home directory.
    pub notebook_dir: Option<String>,
    /// Preferred Python environment (path or conda env name).
    pub environment: Option<String>,
    /// Default GPU choice: `auto`, `none`, an index or a (MIG) UUID.
    pub gpu: Option<String>,
    /// Lmod / Environment Modules modules loaded, in order, before every launch on this host
    /// (`module load NAME`, e.g. `python/3.11`); also before looking for environments, so the
    /// `python3` they provide is the one used unless `environment` names another.
    pub modules: Vec<String>,
    /// Shell lines run before JupyterLab starts (e.g. `module load cuda`).
    pub pre_launch: Vec<String>,
    /// Forwarding rules that start with the connection.
    pub forwards: Vec<ForwardRule>,
    /// Free-form tags, shown in the tray and host list.
    pub tags: Vec<String>,
    /// Colour used for this host in the UI (CSS colour).
    pub color: Option<String>,
    /// OpenSSH's `IdentitiesOnly`: offer only `identity_files` (through the agent when it holds
    /// them), never the agent's other keys.
    pub identities_only: bool,
    /// OpenSSH's `CertificateFile`: certificates offered with the identity they certify (besides
    /// each identity's own `FILE-cert.pub`).
    pub certificate_files: Vec<PathBuf>,
    /// OpenSSH's `HostKeyAlias`: the name this host's key is looked up and remembered under in
    /// known_hosts, instead of `host` (port 22) or `[host]:port`.
    pub host_key_alias: Option<String>,
    /// OpenSSH's `UserKnownHostsFile`: the user's known_hosts files read for this host instead
    /// of `~/.ssh/known_hosts` and `~/.ssh/known_hosts2` (`~` allowed); empty keeps those.
    pub user_known_hosts_files: Vec<PathBuf>,
    /// OpenSSH's `GlobalKnownHostsFile`: the system's known_hosts files read for this host
    /// instead of `/etc/ssh/ssh_known_hosts` and `ssh_known_hosts2`; empty keeps those.
    pub global_known_hosts_files: Vec<PathBuf>,
    /// OpenSSH's `StrictHostKeyChecking` for this host: what to do with a host key no
    /// known_hosts file lists. `None` follows the default policy in Settings; the CLI's
    /// `--host-key-policy` overrides both. A changed key is refused whatever it says.
    #[cfg_attr(
        feature = "ts",
        ts(type = r#""yes" | "accept-new" | "no" | "ask" | null"#)
    )]
    pub strict_host_key_checking: Option<StrictHostKeyChecking>,
    /// OpenSSH's `HostKeyAlgorithms` as written (`ALG,ALG`, `+ALG`, `-ALG`, `^ALG`; patterns
    /// allowed): the host key types asked for, in that order, with the types known_hosts lists
    /// for the host moved first. `None`: OpenSSH's default list.
    pub host_key_algorithms: Option<String>,
    /// OpenSSH's `PubkeyAcceptedAlgorithms` as written (same forms as `host_key_algorithms`):
    /// the signature algorithms a key (or certificate) may be offered with; a key of a type
    /// not listed is not offered. `None`: OpenSSH's default list.
    pub pubkey_accepted_algorithms: Option<String>,
    // --- SLURM (issue 20) ---
    /// The batch scheduler behind this host's login node: `slurm` runs JupyterLab as a batch
    /// job on a compute node instead of on the host itself. `None` until detected on connect
    /// (`sbatch` on the login PATH and `scontrol ping`); set it to override detection.
    #[cfg_attr(feature = "ts", ts(optional))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<scheduler::Scheduler>,
    /// Saved SLURM launch defaults (partition, account, time, GPUs, extra `#SBATCH` lines,
    /// setup lines); `None`: none saved.
    #[cfg_attr(feature = "ts", ts(optional))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slurm: Option<scheduler::SlurmDefaults>,
}

/// OpenSSH's `StrictHostKeyChecking` values (`off` is read as `no`, `true`/`false` as
/// `yes`/`no`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StrictHostKeyChecking {
    /// Refuse a host key that no known_hosts file lists.
    Yes,
    /// Remember a new host's key without asking.
    AcceptNew,
    /// Like `accept-new` for an unknown key (OpenSSH's `no` also connects despite a changed
    /// key; Tunnelbook never does).
    No,
    /// Ask the human.
    Ask,
}

impl StrictHostKeyChecking {
    /// Reads an ssh_config value (case-insensitive): `yes`/`true`, `accept-new`,
    /// `no`/`false`/`off`, `ask`.
    pub fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_lowercase().as_str() {
            "yes" | "true" => Some(Self::Yes),
            "accept-new" => Some(Self::AcceptNew),
            "no" | "false" | "off" => Some(Self::No),
            "ask" => Some(Self::Ask),
            _ => None,
        }
    }

    /// The value as `ssh -G` prints it: `true`, `accept-new`, `false`, `ask`.
    pub fn openssh(self) -> &'static str {
        match self {
            Self::Yes => "true",
            Self::AcceptNew => "accept-new",
            Self::No => "false",
            Self::Ask => "ask",
        }
    }
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
            proxy_command: None,
            connect_timeout: None,
            keepalive_interval: 10,
            keepalive_max: 2,
            notebook_dir: None,
            environment: None,
            gpu: None,
            modules: Vec::new(),
            pre_launch: Vec::new(),
            forwards: Vec::new(),
            tags: Vec::new(),
            color: None,
            identities_only: false,
            certificate_files: Vec::new(),
            host_key_alias: None,
            user_known_hosts_files: Vec::new(),
            global_known_hosts_files: Vec::new(),
            strict_host_key_checking: None,
            host_key_algorithms: None,
            pubkey_accepted_algorithms: None,
            scheduler: None,
            slurm: None,
        }
    }
}

/// An authentication method a profile may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
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
    /// The file did not parse. It was moved aside (never overwritten); the store now starts
    /// empty, and the previous good version may be in the `.bak` file.
    #[error(
        "{path} could not be read ({message}); it was moved to {kept_at} and the host list starts \
         empty{}",
        backup_hint(.backup)
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where the unreadable file now is.
        kept_at: PathBuf,
        /// The previous good version, when there is one.
        backup: Option<PathBuf>,
        /// The parser's message.
        message: String,
    },
    /// The file was written by a newer Tunnelbook; it is left untouched.
    #[error(
        "{path} has schema version {found}, newer than this Tunnelbook understands ({supported}); \
         update Tunnelbook"
    )]
    TooNew {
        /// The file.
        path: PathBuf,
        /// Its schema version.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// An ssh_config file cannot be read as text (an encoding it is not in, …).
    #[error("{0}")]
    SshConfig(String),
    /// A jump-host chain loops.
    #[error("the jump hosts of \"{0}\" form a cycle")]
    JumpCycle(String),
    /// One or more fields are invalid; nothing was written.
    #[error("{}", FieldError::summary(.0))]
    Invalid(Vec<FieldError>),
    /// There is no configuration directory and `TUNNELBOOK_HOME` is not set.
    #[error("cannot find a configuration directory for Tunnelbook; set {HOME_ENV}")]
    NoHome,
    /// The host's secrets could not be removed from the keychain, so the host was kept.
    #[error(
        "could not remove the secrets of \"{profile}\" from the keychain, so it was kept: {source}"
    )]
    Secrets {
        /// The profile.
        profile: String,
        /// The keychain's error.
        source: SecretError,
    },
}

fn backup_hint(backup: &Option<PathBuf>) -> String {
    backup
        .as_ref()
        .map(|b| format!(" (the previous version is in {})", b.display()))
        .unwrap_or_default()
}

/// Tunnelbook's home: `$TUNNELBOOK_HOME` when set and not empty, otherwise the platform
/// configuration directory (`~/.config/tunnelbook` on Linux, `~/Library/Application
/// Support/org.Tunnelbook.tunnelbook` on macOS, `%APPDATA%\Tunnelbook\tunnelbook\config` on
/// Windows). Nothing is created.
pub fn home_dir() -> Result<PathBuf, ProfileError> {
    crate::home::dir().ok_or(ProfileError::NoHome)
}

/// `~/x` becomes `$HOME/x` (on Windows also `~\x`, under `%USERPROFILE%`); other paths, such as
/// `C:\keys\id`, are returned as they are.
pub fn expand_home(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), directories::BaseDirs::new()) {
        (Ok(rest), Some(dirs)) => dirs.home_dir().join(rest),
        _ => path.to_path_buf(),
    }
}

impl Profile {
    /// The keychain entries this profile's settings imply: its password and the passphrase of
    /// every key file it may offer (each path as written and as the SSH engine expands it; the
    /// default keys when it names none). Jupyter tokens are not derivable; the keychain's index
    /// lists them ([`crate::secret::SecretStore::list`]).
    pub fn secret_keys(&self) -> Vec<SecretKey> {
        let mut keys = vec![
            self.password_key(),
            // Left by a Tunnelbook that did not tie passwords to a destination.
            SecretKey::password(&self.name, ""),
        ];
        let files: Vec<PathBuf> = if self.identity_files.is_empty() {
            ["id_ed25519", "id_ecdsa", "id_rsa"]
                .iter()
                .map(|f| expand_home(&Path::new("~/.ssh").join(f)))
                .collect()
        } else {
            self.identity_files.clone()
        };
        for file in files {
            for path in [file.clone(), expand_home(&file)] {
                let key = SecretKey::passphrase(&self.name, &path);
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
        }
        keys
    }

    /// Where this host's password goes: `user@host:port`, the user as logged in (the local
    /// user name when none is saved) and the port always written.
    pub fn login_destination(&self) -> String {
        format!("{}@{}:{}", login_user(self), self.host, self.port)
    }

    /// The keychain entry of this host's login password, tied to [`Profile::login_destination`]: a
    /// host saved under a name another host used before, or edited to point elsewhere, does
    /// not find the old password and is asked for its own.
    pub fn password_key(&self) -> SecretKey {
        SecretKey::password(&self.name, &self.login_destination())
    }

    /// [`Profile::proxy_command`] with OpenSSH's tokens expanded for this host: `%h` the host,
    /// `%p` the port, `%r` the login user (the local one when unset), `%n` the profile's name,
    /// `%%` a `%`. `None` when there is no proxy command; the error names an unknown token.
    pub fn expanded_proxy_command(&self) -> Option<Result<String, String>> {
        let command = self.proxy_command.as_deref()?;
        let user = login_user(self);
        let port = self.port.to_string();
        Some(ssh_config::expand_tokens(
            command,
            &[
                ('h', &self.host),
                ('p', &port),
                ('r', &user),
                ('n', &self.name),
            ],
            false,
        ))
    }

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

/// The login user of a profile: its own, else the local user.
pub fn login_user(profile: &Profile) -> String {
    profile.user.clone().unwrap_or_else(|| {
        std::env::var("USER")
            .or_else(|_| std::env::var("USERNAME"))
            .unwrap_or_else(|_| "root".to_string())
    })
}
