//! Tunnelbook's home directory, where hosts, settings, known hosts, logs and lock files live,
//! and the claim one app process holds on it ([`claim_instance`]). Its own module because the
//! profile store, the keychain's lock and the app all need it.

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

/// Name of the file in Tunnelbook's home that the running app holds locked.
pub const INSTANCE_LOCK: &str = "app.lock";

/// What [`claim_instance`] found.
#[derive(Debug)]
pub enum Instance {
    /// This is the only app on this home; keep the file open (and so locked) while running.
    First(std::fs::File),
    /// Another Tunnelbook app runs on this home.
    Second,
}

/// Claims `home` for this app process: an exclusive lock on [`INSTANCE_LOCK`] there, released
/// by the system when the process ends (a crash leaves nothing stale). The single-instance
/// plugin brings the first app forward over D-Bus; without a session bus it cannot, and two
/// apps on the same home would fight over its sessions, ports and tray. This is the check that
/// still works then.
///
/// Errors: the lock file cannot be created or locked for another reason than another holder.
pub fn claim_instance(home: &std::path::Path) -> std::io::Result<Instance> {
    std::fs::create_dir_all(home)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(home.join(INSTANCE_LOCK))?;
    match file.try_lock() {
        Ok(()) => Ok(Instance::First(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(Instance::Second),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// What a second app says when [`claim_instance`] found the first one running and the
/// single-instance plugin could not bring it forward (no D-Bus session bus).
pub const ALREADY_RUNNING: &str = "Tunnelbook is already running on this computer. Use its \
     window, or Show in its tray icon's menu. (This second start could not bring it forward: the \
     desktop's message bus, D-Bus, is not available.)";

#[cfg(test)]
mod tests {
    use super::*;

    /// Trial of #14, finding 7: without D-Bus a second start ran a second app on the same home.
    #[test]
    fn a_second_app_on_the_same_home_is_told_the_first_runs() {
        let home = tempfile::tempdir().unwrap();
        let first = claim_instance(home.path()).unwrap();
        assert!(matches!(first, Instance::First(_)));
        assert!(matches!(
            claim_instance(home.path()).unwrap(),
            Instance::Second
        ));
        // Another home is another app's.
        let other = tempfile::tempdir().unwrap();
        assert!(matches!(
            claim_instance(other.path()).unwrap(),
            Instance::First(_)
        ));
        // The first one ends (or crashes): the next start is the first again.
        drop(first);
        assert!(matches!(
            claim_instance(home.path()).unwrap(),
            Instance::First(_)
        ));
        assert!(ALREADY_RUNNING.contains("already running"));
    }
}
