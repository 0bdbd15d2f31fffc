//! Secrets belong to the host they were for (issue 18), against the real Secret Service
//! (gnome-keyring) and real sshd: deleting a host removes its remembered password, a rename
//! carries it along, a host saved under an old name (or pointed at another server) is asked for
//! its own password instead of being sent the old one, and "forget all" leaves no Tunnelbook
//! item in the keychain — also items of hosts removed since and of older versions.
//!
//! "Forget all" empties every Tunnelbook item of the keychain it talks to, so this test runs
//! itself again in a private `dbus-run-session` with its own gnome-keyring and `$HOME`: the
//! other keychain tests sharing the suite's session bus keep their items.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{process::Command, sync::Arc};

use tunnelbook_core::{
    profile::{AuthMethod, ProfileStore},
    secret::{KeychainStore, SecretStore},
    ssh::{Connection, HostKeyPolicy},
};
use tunnelbook_testbed::{Client, PASSWORD, Sshd, SshdOptions, USER, prompter::ScriptedPrompter};

/// Set in the private-bus child of [`secrets_follow_their_host_in_the_real_keychain`].
const CHILD_ENV: &str = "TUNNELBOOK_HOST_SECRETS_CHILD";

/// The `username` attribute (Tunnelbook's account) of every keychain item whose `service` is
/// `tunnelbook`, read with libsecret's `secret-tool`, independently of Tunnelbook's code.
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

/// An item as an older Tunnelbook (or another copy whose index is gone) left it.
fn plant_item(account: &str, value: &str) {
    let mut child = Command::new("secret-tool")
        .args([
            "store",
            "--label",
            "planted by the test",
            "service",
            "tunnelbook",
            "username",
            account,
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(value.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn secrets_follow_their_host_in_the_real_keychain() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    for tool in ["dbus-run-session", "gnome-keyring-daemon", "secret-tool"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| !o.status.success())
        {
            panic!("{tool} is missing: run scripts/setup.sh (gnome-keyring, libsecret-tools)");
        }
    }
    tunnelbook_testbed::rerun_in_private_keychain("host_secrets_in_a_private_keychain", CHILD_ENV);
}

/// Not a test on its own: the body that [`secrets_follow_their_host_in_the_real_keychain`] runs
/// under a private session bus. Without its environment variable it returns at once.
#[tokio::test]
async fn host_secrets_in_a_private_keychain() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    assert!(tunnelbook_items().is_empty(), "a fresh keychain");
    let first = Sshd::start(&[], SshdOptions::default());
    let second = Sshd::start(&[], SshdOptions::default());
    let client = Client::new();
    client.trust(&first);
    client.trust(&second);
    let store = ProfileStore::in_home(&client.home());
    let mut profile = first.profile("box", USER);
    profile.auth = vec![AuthMethod::Password];
    store.add(profile.clone()).unwrap();
    let keychain: Arc<dyn SecretStore> = Arc::new(
        KeychainStore::open()
            .unwrap()
            .with_index_lock(client.home().join("keychain-index.lock")),
    );
    let cli = |args: &[&str], password: Option<&str>| {
        let mut cmd = client.cli();
        cmd.args(args);
        if let Some(pw) = password {
            cmd.env("TUNNELBOOK_PASSWORD", pw);
        }
        let out = cmd.output().unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let whoami = |name: &str| cli(&["exec", name, "--", "whoami"], None);

    // Remembered through the CLI: one item for tbtest@127.0.0.1:PORT, plus the host's index.
    let (ok, out) = cli(
        &["--remember", "exec", "box", "--", "whoami"],
        Some(PASSWORD),
    );
    assert!(ok, "{out}");
    let destination = format!("{USER}@127.0.0.1:{}", first.port);
    assert_eq!(
        tunnelbook_items(),
        vec![format!("box:index"), format!("box:password:{destination}")]
    );

    // Rename: the password follows, nothing is left under the old name, and the renamed host
    // logs in with it (no password given, no terminal: nothing else could answer).
    let (ok, out) = cli(&["hosts", "edit", "box", "--name", "gpu-box"], None);
    assert!(ok, "{out}");
    assert_eq!(
        tunnelbook_items(),
        vec![
            format!("gpu-box:index"),
            format!("gpu-box:password:{destination}")
        ]
    );
    let (ok, out) = whoami("gpu-box");
    assert!(ok && out.starts_with(USER), "{out}");

    // Delete: the item goes with the host.
    let (ok, out) = cli(&["hosts", "rm", "gpu-box"], None);
    assert!(ok && out.contains("and its remembered secrets"), "{out}");
    assert!(tunnelbook_items().is_empty(), "{:?}", tunnelbook_items());

    // A new host under an old name, on another server, while the keychain still holds what an
    // older Tunnelbook kept under that name (`gpu-box:password`, tied to no server): it is
    // asked for its own password once, and the old one is never sent (sshd would log it).
    plant_item("gpu-box:password", "the-old-servers-password");
    let mut new_host = second.profile("gpu-box", USER);
    new_host.auth = vec![AuthMethod::Password];
    store.add(new_host.clone()).unwrap();
    let prompter = Arc::new(ScriptedPrompter {
        secrets: vec![PASSWORD.to_string()].into(),
        remember: true,
        ..Default::default()
    });
    let ctx = client.context(
        prompter.clone(),
        HostKeyPolicy::Strict,
        Some(keychain.clone()),
    );
    let conn = Connection::open(std::slice::from_ref(&new_host), &ctx)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", second.log()));
    assert_eq!(
        conn.exec("whoami").await.unwrap().stdout_text().trim(),
        USER
    );
    drop(conn);
    let asked = prompter.asked();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(asked[0].starts_with("Password {"), "{asked:?}");
    assert!(
        !second.log().contains("Failed password"),
        "the old password was sent:\n{}",
        second.log()
    );

    // The same name edited (by hand, outside Tunnelbook) to point back at the first server: the
    // password remembered for the second is not sent there; it is asked again.
    store.edit("gpu-box", |p| p.port = first.port).unwrap();
    let moved = store.get("gpu-box").unwrap();
    let prompter = Arc::new(ScriptedPrompter {
        secrets: vec![PASSWORD.to_string()].into(),
        ..Default::default()
    });
    let ctx = client.context(
        prompter.clone(),
        HostKeyPolicy::Strict,
        Some(keychain.clone()),
    );
    Connection::open(std::slice::from_ref(&moved), &ctx)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", first.log()));
    assert_eq!(prompter.asked().len(), 1, "{:?}", prompter.asked());

    // Forget all: every Tunnelbook item goes — the saved host's, the planted old one, and one of
    // a host that is no longer saved — and the hosts stay.
    plant_item("removed-host:password:someone@elsewhere:22", "x");
    assert!(tunnelbook_items().len() >= 3, "{:?}", tunnelbook_items());
    let (ok, out) = cli(&["hosts", "forget-all-secrets"], None);
    assert!(ok, "{out}");
    assert!(tunnelbook_items().is_empty(), "{:?}", tunnelbook_items());
    assert_eq!(store.load().unwrap().len(), 1);
}
