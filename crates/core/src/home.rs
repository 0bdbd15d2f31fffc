//! Tunnelbook's home directory, where hosts, settings, known hosts, logs and lock files live.
//! Its own module because both the profile store and the keychain's lock need it.

use std::path::PathBuf;

/// The environment variable that overrides Tunnelbook's home directory.
pub const HOME_ENV: &str = "TUNNELBOOK_HOME";

/// `$TUNNELBOOK_HOME` when set, else the OS config directory (`~/.config/tunnelbook` on Linux);
/// `None` when neither can be found.
pub fn dir() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os(HOME_ENV).filter(|h| !h.is_empty()) {
        return Some(PathBuf::from(home));
    }
    directories::ProjectDirs::from("org", "Tunnelbook", "tunnelbook")
        .map(|dirs| dirs.config_dir().to_path_buf())
}
