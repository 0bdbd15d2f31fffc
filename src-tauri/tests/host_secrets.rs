//! The app's host commands and the real keychain (issue 18): renaming a host in the host form
//! (`save_host` with the previous name) carries its keychain entries to the new name, deleting
//! it (`delete_host`) removes them, and "Forget all secrets" (`forget_all_secrets`) leaves no
//! Tunnelbook item — also items of hosts removed since and of older versions.
//!
//! "Forget all" empties every Tunnelbook item of the keychain it talks to, so the test runs
//! itself again in a private `dbus-run-session` with its own gnome-keyring, `$HOME` and runtime
//! directory: the other keychain tests sharing the suite's session bus keep their items.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use serde_json::json;
use tunnelbook_core::secret::{KeychainStore, SecretKey, SecretKind, SecretStore, Sensitive};

mod common;
use common::{app, call, main_window};

/// Set in the private-bus child of [`app_host_commands_keep_secrets_with_their_host`].
const CHILD_ENV: &str = "TUNNELBOOK_APP_HOST_SECRETS_CHILD";

/// The `username` attribute (Tunnelbook's account) of every keychain item whose `service` is
/// `tunnelbook`, read with libsecret's `secret-tool`.
fn tunnelbook_items() -> Vec<String> {
    let out = Command::new("secret-tool")
        .args(["search", "--all", "service", "tunnelbook"])
        .output()
        .expect("secret-tool (Debian libsecret-tools) runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut items: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("attribute.username = "))
        .map(str::to_string)
        .collect();
    items.sort();
    items
}

/// An item as an older Tunnelbook left it (no index names it).
fn plant_item(account: &str) {
    use std::io::Write;
    let mut child = Command::new("secret-tool")
        .args(["store", "--label", "planted", "service", "tunnelbook"])
        .args(["username", account])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"old").unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn app_host_commands_keep_secrets_with_their_host() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    tunnelbook_testbed::rerun_in_private_keychain(
        "app_host_secrets_in_a_private_keychain",
        CHILD_ENV,
    );
}

/// Not a test on its own: the body [`app_host_commands_keep_secrets_with_their_host`] runs under
/// a private session bus. Without its environment variable it returns at once.
#[test]
fn app_host_secrets_in_a_private_keychain() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    assert!(tunnelbook_items().is_empty(), "a fresh keychain");
    let home = tempfile::tempdir().unwrap();
    let app = app(home.path());
    let main = main_window(&app);
    let profile = json!({ "name": "box", "host": "127.0.0.1", "port": 2222, "user": "alice" });
    call(
        &main,
        "save_host",
        json!({ "profile": profile, "previousName": null }),
    )
    .unwrap();

    // What a login with "Remember" and a launched notebook leave in the keychain.
    let keychain = KeychainStore::open().unwrap();
    let v = Sensitive::new("s3cret".to_string());
    keychain
        .persist(&SecretKey::password("box", "alice@127.0.0.1:2222"), &v)
        .unwrap();
    let token = SecretKey {
        profile: "box".into(),
        kind: SecretKind::JupyterToken("tb-1".into()),
    };
    keychain.persist(&token, &v).unwrap();

    // Renamed in the host form: the entries follow the host.
    let renamed = json!({ "name": "gpu-box", "host": "127.0.0.1", "port": 2222, "user": "alice" });
    call(
        &main,
        "save_host",
        json!({ "profile": renamed, "previousName": "box" }),
    )
    .unwrap();
    assert_eq!(
        tunnelbook_items(),
        vec![
            "gpu-box:index",
            "gpu-box:jupyter-token:tb-1",
            "gpu-box:password:alice@127.0.0.1:2222"
        ]
    );

    // Deleted: its entries go with it.
    call(&main, "delete_host", json!({ "name": "gpu-box" })).unwrap();
    assert!(tunnelbook_items().is_empty(), "{:?}", tunnelbook_items());

    // Forget all: a saved host's entry, one of an older version, one of a host removed while
    // no keychain was reachable — none is left, and the hosts stay.
    call(
        &main,
        "save_host",
        json!({ "profile": profile, "previousName": null }),
    )
    .unwrap();
    keychain
        .persist(&SecretKey::password("box", "alice@127.0.0.1:2222"), &v)
        .unwrap();
    plant_item("box:password");
    plant_item("removed-host:password:bob@elsewhere:22");
    let removed = call(&main, "forget_all_secrets", json!({})).unwrap();
    assert_eq!(removed, 3, "{:?}", tunnelbook_items());
    assert!(tunnelbook_items().is_empty(), "{:?}", tunnelbook_items());
    let hosts = call(&main, "list_hosts", json!({})).unwrap();
    assert_eq!(hosts.as_array().unwrap().len(), 2, "{hosts}");
}
