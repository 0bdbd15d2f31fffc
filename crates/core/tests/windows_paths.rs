//! Where a Windows user's OpenSSH files are: `%USERPROFILE%\.ssh\config` is the config imported by
//! default, and `%USERPROFILE%\.ssh\known_hosts` (Windows' OpenSSH client writes it) is read when
//! checking host keys. Windows only (in CI: under Wine, whose `%USERPROFILE%` is
//! `C:\users\<user>`).
#![cfg(windows)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use russh::keys::PublicKey;
use tunnelbook_core::{
    profile::default_ssh_config_path,
    ssh::{HostKeyStatus, KnownHosts},
};

const ED: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";

fn user_ssh_dir() -> PathBuf {
    PathBuf::from(std::env::var_os("USERPROFILE").unwrap()).join(".ssh")
}

#[test]
fn ssh_config_is_under_userprofile() {
    assert_eq!(
        default_ssh_config_path(),
        Some(user_ssh_dir().join("config"))
    );
}

#[test]
fn known_hosts_under_userprofile_is_read() {
    let dir = user_ssh_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("known_hosts");
    let before = std::fs::read_to_string(&file).unwrap_or_default();
    let host = format!("tb-test-{}.example.org", std::process::id());
    std::fs::write(&file, format!("{before}{host} {ED}\n")).unwrap();

    let own = tempfile::tempdir().unwrap();
    let status = KnownHosts::new(own.path().join("known_hosts")).check(
        &host,
        22,
        &PublicKey::from_openssh(ED).unwrap(),
    );
    std::fs::write(&file, before).unwrap();
    assert_eq!(status.unwrap(), HostKeyStatus::Known);
}

/// Tunnelbook's own state (hosts, known hosts, logs) lives under `%APPDATA%` (roaming).
#[test]
fn state_is_under_appdata() {
    assert!(
        std::env::var_os("TUNNELBOOK_HOME").is_none(),
        "run without TUNNELBOOK_HOME: this checks the default"
    );
    let appdata = PathBuf::from(std::env::var_os("APPDATA").unwrap());
    assert_eq!(
        tunnelbook_core::profile::home_dir().unwrap(),
        appdata.join("Tunnelbook").join("tunnelbook").join("config")
    );
}
