//! The CLI honours the app's default host-key policy from settings.toml; the flag still wins.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tunnelbook_core::{
    profile::ProfileStore,
    settings::{Settings, SettingsStore},
    ssh::HostKeyPolicy,
};
use tunnelbook_testbed::{Client, Sshd, SshdOptions, USER, key_only, make_key};

#[test]
fn default_host_key_policy_comes_from_settings() {
    let dir = tempfile::tempdir().unwrap();
    let key = make_key(dir.path(), "id", "ed25519", None);
    let first = Sshd::start(&[&key], SshdOptions::default());
    let second = Sshd::start(&[&key], SshdOptions::default());
    let client = Client::new();
    ProfileStore::in_home(&client.home())
        .save(&[
            key_only(first.profile("first", USER), &key),
            key_only(second.profile("second", USER), &key),
        ])
        .unwrap();
    SettingsStore::in_home(&client.home())
        .save(&Settings {
            host_key_policy: HostKeyPolicy::AcceptNew,
            ..Settings::default()
        })
        .unwrap();

    // No flag, no terminal: the setting (accept-new) applies instead of ask-as-strict.
    let out = client
        .cli()
        .args(["exec", "first", "--", "echo hi"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n", "{out:?}");
    let known = std::fs::read_to_string(client.home().join("known_hosts")).unwrap();
    assert!(
        known.contains(&format!("[127.0.0.1]:{}", first.port)),
        "{known}"
    );

    // The flag overrides the setting.
    let out = client
        .cli()
        .args([
            "--host-key-policy",
            "strict",
            "exec",
            "second",
            "--",
            "true",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255), "{out:?}");
}
