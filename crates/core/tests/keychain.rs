//! The real OS keychain (on Linux the Secret Service over D-Bus). Run under a session bus with
//! an unlocked collection:
//!
//! ```sh
//! dbus-run-session -- sh -c 'printf "\n" | gnome-keyring-daemon --unlock --components=secrets >/dev/null; \
//!     cargo test -p tunnelbook-core --test keychain'
//! ```
//!
//! Skipped, with a note, only when `DBUS_SESSION_BUS_ADDRESS` is unset.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tunnelbook_core::secret::{
    KeychainStore, MAX_SECRET_BYTES, SecretError, SecretKey, SecretKind, SecretStore, Sensitive,
};

fn keychain() -> Option<KeychainStore> {
    if cfg!(target_os = "linux") && std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
        eprintln!(
            "SKIPPED: DBUS_SESSION_BUS_ADDRESS is unset; run this test under dbus-run-session"
        );
        return None;
    }
    Some(KeychainStore::open().expect("a session bus is set, so the keychain must open"))
}

#[test]
fn secret_service_store_read_replace_delete() {
    let Some(keychain) = keychain() else { return };
    let profile = format!("keychain-test-{}", std::process::id());
    let key = SecretKey::password(&profile, "tbtest@127.0.0.1:22");
    let token = SecretKey {
        profile: profile.clone(),
        kind: SecretKind::JupyterToken("srv1".into()),
    };

    assert!(keychain.retrieve(&key).unwrap().is_none());
    keychain
        .persist(&key, &Sensitive::new("first pässword".into()))
        .unwrap();
    assert_eq!(
        keychain.retrieve(&key).unwrap().unwrap().expose(),
        "first pässword"
    );
    keychain
        .persist(&key, &Sensitive::new("second".into()))
        .unwrap();
    assert_eq!(keychain.retrieve(&key).unwrap().unwrap().expose(), "second");

    keychain
        .persist(&token, &Sensitive::new("0123abcd".into()))
        .unwrap();
    let mut listed = keychain.list(&profile).unwrap();
    listed.sort_by_key(SecretKey::account);
    assert_eq!(listed, vec![token.clone(), key.clone()]);

    keychain.delete(&key).unwrap();
    keychain.delete(&key).unwrap();
    assert!(keychain.retrieve(&key).unwrap().is_none());
    assert_eq!(keychain.list(&profile).unwrap(), vec![token.clone()]);

    // Forgetting the profile finds the token through the index.
    keychain.forget_profile(&profile, &[]).unwrap();
    assert!(keychain.retrieve(&token).unwrap().is_none());
    assert!(keychain.list(&profile).unwrap().is_empty());

    let long = "x".repeat(MAX_SECRET_BYTES / 2 + 1);
    let err = keychain.persist(&key, &Sensitive::new(long)).unwrap_err();
    assert!(matches!(err, SecretError::TooLong { .. }), "{err}");
    assert!(keychain.retrieve(&key).unwrap().is_none());
    assert!(keychain.list(&profile).unwrap().is_empty());
}

/// Set in the child processes of `two_processes_remembering_at_once_keep_every_name`.
const CHILD_ENV: &str = "TUNNELBOOK_KEYCHAIN_CHILD";
const PER_CHILD: usize = 15;

#[test]
fn two_processes_remembering_at_once_keep_every_name() {
    let Some(keychain) = keychain() else { return };
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("keychain-index.lock");
    let profile = format!("keychain-race-{}", std::process::id());
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = ["a", "b"]
        .iter()
        .map(|tag| {
            std::process::Command::new(&exe)
                .args(["--exact", "keychain_index_writer_child", "--nocapture"])
                .env(CHILD_ENV, format!("{profile}\n{tag}\n{}", lock.display()))
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let keychain = keychain.with_index_lock(lock);
    let listed = keychain.list(&profile).unwrap();
    // Every token each process remembered is named in the index, so forgetting finds them all.
    assert_eq!(listed.len(), 2 * PER_CHILD, "{listed:?}");
    keychain.forget_profile(&profile, &[]).unwrap();
    assert!(keychain.list(&profile).unwrap().is_empty());
}

/// Not a test on its own: the writer that `two_processes_remembering_at_once_keep_every_name`
/// starts twice. Without its environment variable it returns at once.
#[test]
fn keychain_index_writer_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut parts = spec.lines();
    let (profile, tag, lock) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let keychain = KeychainStore::open().unwrap().with_index_lock(lock.into());
    for i in 0..PER_CHILD {
        let key = SecretKey {
            profile: profile.to_string(),
            kind: SecretKind::JupyterToken(format!("{tag}{i}")),
        };
        keychain
            .persist(&key, &Sensitive::new(format!("token-{i}")))
            .unwrap();
    }
}
