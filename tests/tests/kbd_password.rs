//! Case 15: a server that asks for the password only through keyboard-interactive (PAM's single
//! hidden `Password:` prompt; `UsePAM yes`, `KbdInteractiveAuthentication yes`,
//! `PasswordAuthentication no`) — the real OpenSSH sshd with Debian's stock `/etc/pam.d/sshd`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{os::unix::fs::PermissionsExt, sync::Arc};

use tunnelbook_core::{
    profile::AuthMethod,
    secret::{MemoryStore, SecretStore},
    ssh::{Connection, HostKeyPolicy, SshError},
};
use tunnelbook_testbed::{
    Client, PASSWORD, Sshd, SshdOptions, USER, prompter::ScriptedPrompter, run,
};

/// Case 15's exact commands: `hosts add`, then `TUNNELBOOK_PASSWORD=… tunnelbook exec` with no
/// terminal. OpenSSH answering the same prompt through an askpass helper is the reference.
#[test]
fn case15_tunnelbook_password_answers_the_pam_password_prompt_like_openssh() {
    let sshd = Sshd::start(&[], SshdOptions::pam_password());
    let client = Client::new();
    let out = run(client.cli().args([
        "hosts",
        "add",
        "kb",
        "--host",
        "127.0.0.1",
        "--port",
        &sshd.port.to_string(),
        "--user",
        USER,
    ]));
    assert!(out.status.success(), "{out:?}");

    // OpenSSH with an askpass helper that prints the password: the reference behaviour.
    let askpass = client.dir.path().join("askpass.sh");
    std::fs::write(&askpass, format!("#!/bin/sh\necho '{PASSWORD}'\n")).unwrap();
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o755)).unwrap();
    let reference = std::process::Command::new("ssh")
        .args(["-F", "/dev/null", "-p", &sshd.port.to_string()])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .args(["-o", "PreferredAuthentications=keyboard-interactive"])
        .arg(format!("{USER}@127.0.0.1"))
        .args(["echo", "kbd-ok"])
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&reference.stdout),
        "kbd-ok\n",
        "OpenSSH reference: {reference:?}\n{}",
        sshd.log()
    );

    let out = client
        .cli()
        .env("TUNNELBOOK_PASSWORD", PASSWORD)
        .args([
            "--host-key-policy",
            "accept-new",
            "exec",
            "kb",
            "--",
            "echo",
            "kbd-ok",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "kbd-ok\n",
        "{out:?}\n{}",
        sshd.log()
    );
    assert_eq!(out.status.code(), Some(0));
    let log = sshd.log();
    assert!(
        log.matches("Accepted keyboard-interactive/pam").count() >= 2,
        "{log}"
    );

    // A wrong TUNNELBOOK_PASSWORD is not retried without a human: exit 255, a clear message.
    let out = client
        .cli()
        .env("TUNNELBOOK_PASSWORD", "not-the-password")
        .args(["exec", "kb", "--", "echo", "kbd-ok"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("authentication") && err.contains("keyboard-interactive"),
        "{err}"
    );
    assert!(
        !err.contains("not-the-password"),
        "secret in the error: {err}"
    );
}

/// The remembered password answers the prompt with no question; a wrong remembered one is
/// asked again (`retry`), and the right answer with "Remember" replaces it in the keychain.
#[tokio::test]
async fn remembered_password_answers_pam_and_a_wrong_one_is_asked_again() {
    let sshd = Sshd::start(&[], SshdOptions::pam_password());
    let client = Client::new();
    client.trust(&sshd);
    let profile = sshd.profile("pam", USER);
    let key = profile.password_key();
    let store: Arc<dyn SecretStore> = Arc::new(MemoryStore::default());
    store
        .persist(
            &key,
            &tunnelbook_core::secret::Sensitive::new("stale".into()),
        )
        .unwrap();

    let prompter = Arc::new(ScriptedPrompter {
        secrets: vec![PASSWORD.to_string()].into(),
        remember: true,
        ..Default::default()
    });
    let ctx = client.context(prompter.clone(), HostKeyPolicy::Strict, Some(store.clone()));
    let conn = Connection::open(std::slice::from_ref(&profile), &ctx)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", sshd.log()));
    assert_eq!(
        conn.exec("whoami").await.unwrap().stdout_text().trim(),
        USER
    );
    let asked = prompter.asked();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(
        asked[0].starts_with("Password {") && asked[0].contains("retry: true"),
        "{asked:?}"
    );
    assert_eq!(store.retrieve(&key).unwrap().unwrap().expose(), PASSWORD);
    // The `password` method is never offered to a server that does not accept it.
    assert!(!sshd.log().contains("Failed password"), "{}", sshd.log());

    // Next connection: from the keychain, nothing asked.
    let quiet = Arc::new(ScriptedPrompter::default());
    let ctx = client.context(quiet.clone(), HostKeyPolicy::Strict, Some(store));
    Connection::open(std::slice::from_ref(&profile), &ctx)
        .await
        .unwrap();
    assert!(quiet.asked().is_empty(), "{:?}", quiet.asked());

    // Declined: a clear failure naming keyboard-interactive, no endless loop.
    let mut kbd_only = profile;
    kbd_only.auth = vec![AuthMethod::KeyboardInteractive];
    let declined = Arc::new(ScriptedPrompter::default());
    let ctx = client.context(declined.clone(), HostKeyPolicy::Strict, None);
    let err = Connection::open(&[kbd_only], &ctx).await.unwrap_err();
    match &err {
        SshError::AuthFailed { accepted, .. } => {
            assert!(accepted.contains("keyboard-interactive"), "{err}")
        }
        other => panic!("expected AuthFailed, got {other:?}"),
    }
    assert_eq!(declined.asked().len(), 1, "{:?}", declined.asked());
}
