//! The SSH engine against a real OpenSSH sshd: every auth method, host-key decisions, jump
//! chains, exec semantics and failure messages.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{sync::Arc, time::Duration};

use tunnelbook_core::{
    profile::AuthMethod,
    secret::{MemoryStore, SecretKey, SecretKind, SecretStore},
    ssh::{Connection, HostKeyPolicy, NoPrompter, SshError},
};
use tunnelbook_testbed::{
    Agent, Client, PASSWORD, Sshd, SshdOptions, USER, key_only, make_key, otp_code,
    prompter::ScriptedPrompter, to_ppk,
};

fn keys_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[tokio::test]
async fn exec_returns_stdout_stderr_and_exit_status_separately() {
    let dir = keys_dir();
    let key = make_key(dir.path(), "id", "ed25519", None);
    let sshd = Sshd::start(&[&key], SshdOptions::default());
    let client = Client::new();
    client.trust(&sshd);
    let ctx = client.context(Arc::new(NoPrompter), HostKeyPolicy::Strict, None);
    let conn = Connection::open(&[key_only(sshd.profile("box", USER), &key)], &ctx)
        .await
        .unwrap();

    let out = conn.exec("echo out; echo err >&2; exit 3").await.unwrap();
    assert_eq!(out.stdout_text(), "out\n");
    assert_eq!(out.stderr_text(), "err\n");
    assert_eq!(out.status, Some(3));

    let out = conn.exec("whoami").await.unwrap();
    assert_eq!(out.stdout_text().trim(), USER);
    assert!(out.success());

    // stdin reaches the command and is never part of the command line.
    let out = conn
        .exec_with_stdin("read -r line; echo \"got:$line\"", b"secret-value\n")
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), "got:secret-value\n");

    // Killed by a signal: no status, the signal is reported.
    let out = conn.exec("kill -KILL $$").await.unwrap();
    assert_eq!(out.status, None);
    assert!(out.signal.is_some(), "{out:?}");

    // Several commands at once over the one connection.
    let runs = (0..20).map(|i| {
        let conn = conn.clone();
        async move { conn.exec(&format!("echo {i}")).await.unwrap().stdout_text() }
    });
    let outs = futures::future::join_all(runs).await;
    for (i, out) in outs.iter().enumerate() {
        assert_eq!(out.trim(), i.to_string());
    }
}

#[tokio::test]
async fn exec_runs_through_the_login_shell() {
    let dir = keys_dir();
    let key = make_key(dir.path(), "id", "ed25519", None);
    let sshd = Sshd::start(&[&key], SshdOptions::default());
    let client = Client::new();
    client.trust(&sshd);
    let ctx = client.context(Arc::new(NoPrompter), HostKeyPolicy::Strict, None);
    let conn = Connection::open(&[key_only(sshd.profile("box", USER), &key)], &ctx)
        .await
        .unwrap();
    // Debian's ~/.profile puts ~/bin on PATH only for login shells: the venv/conda problem.
    let out = conn
        .exec("mkdir -p ~/bin && printf '#!/bin/sh\\necho from-bin\\n' > ~/bin/tb-login-probe && chmod +x ~/bin/tb-login-probe")
        .await
        .unwrap();
    assert!(out.success(), "{out:?}");
    let out = conn.exec("tb-login-probe").await.unwrap();
    assert_eq!(out.stdout_text(), "from-bin\n", "{out:?}");
    let raw = conn.exec_raw("tb-login-probe", &[]).await.unwrap();
    assert_ne!(
        raw.status,
        Some(0),
        "without a login shell ~/bin is not on PATH"
    );
}

#[tokio::test]
async fn every_key_type_and_format_authenticates() {
    let dir = keys_dir();
    let ed = make_key(dir.path(), "ed", "ed25519", None);
    let ec = make_key(dir.path(), "ec", "ecdsa", None);
    let rsa = make_key(dir.path(), "rsa", "rsa", None);
    let enc = make_key(dir.path(), "enc", "ed25519", Some("correct horse"));
    let ppk_src = make_key(dir.path(), "putty", "ed25519", None);
    let ppk = to_ppk(&ppk_src, None);
    let ppk_enc_src = make_key(dir.path(), "puttyenc", "rsa", Some("ppk pass"));
    let ppk_enc = to_ppk(&ppk_enc_src, Some("ppk pass"));
    let sshd = Sshd::start(
        &[&ed, &ec, &rsa, &enc, &ppk_src, &ppk_enc_src],
        SshdOptions {
            password: false,
            ..Default::default()
        },
    );
    let client = Client::new();
    client.trust(&sshd);

    for key in [&ed, &ec, &rsa, &ppk] {
        let ctx = client.context(Arc::new(NoPrompter), HostKeyPolicy::Strict, None);
        let conn = Connection::open(&[key_only(sshd.profile("box", USER), key)], &ctx)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", key.path.display()));
        assert!(conn.exec("true").await.unwrap().success());
    }
    // RSA must have used a SHA-2 signature, never legacy ssh-rsa.
    assert!(sshd.log().contains("RSA SHA256"), "{}", sshd.log());

    // Encrypted keys ask for the passphrase; a wrong one is asked again.
    for (key, pass) in [(&enc, "correct horse"), (&ppk_enc, "ppk pass")] {
        let prompter = Arc::new(ScriptedPrompter {
            secrets: vec!["wrong".to_string(), pass.to_string()].into(),
            ..Default::default()
        });
        let ctx = client.context(prompter.clone(), HostKeyPolicy::Strict, None);
        let conn = Connection::open(&[key_only(sshd.profile("box", USER), key)], &ctx)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", key.path.display()));
        assert!(conn.exec("true").await.unwrap().success());
        let asked = prompter.asked();
        assert_eq!(asked.len(), 2, "{asked:?}");
        assert!(
            asked[0].contains("Passphrase") && asked[1].contains("retry: true"),
            "{asked:?}"
        );
    }
}

#[tokio::test]
async fn remembered_passphrase_comes_from_the_store() {
    let dir = keys_dir();
    let enc = make_key(dir.path(), "enc", "ecdsa", Some("s3cret"));
    let sshd = Sshd::start(&[&enc], SshdOptions::default());
    let client = Client::new();
    client.trust(&sshd);
    let store: Arc<dyn SecretStore> = Arc::new(MemoryStore::default());
    let profile = key_only(sshd.profile("box", USER), &enc);

    let prompter = Arc::new(ScriptedPrompter {
        secrets: vec!["s3cret".to_string()].into(),
        remember: true,
        ..Default::default()
    });
    let ctx = client.context(prompter.clone(), HostKeyPolicy::Strict, Some(store.clone()));
    Connection::open(std::slice::from_ref(&profile), &ctx)
        .await
        .unwrap();
    assert_eq!(prompter.asked().len(), 1);
    let key = SecretKey {
        profile: "box".into(),
        kind: SecretKind::Passphrase(enc.path.display().to_string()),
    };
    assert_eq!(store.retrieve(&key).unwrap().unwrap().expose(), "s3cret");

    // Second connection: no question.
    let prompter = Arc::new(ScriptedPrompter::default());
    let ctx = client.context(prompter.clone(), HostKeyPolicy::Strict, Some(store));
    Connection::open(&[profile], &ctx).await.unwrap();
    assert!(prompter.asked().is_empty(), "{:?}", prompter.asked());
}

#[tokio::test]
async fn agent_keys_authenticate() {
    let dir = keys_dir();
    let key = make_key(dir.path(), "agent", "ed25519", None);
    let agent = Agent::start(&[&key]);
    let sshd = Sshd::start(
        &[&key],
        SshdOptions {
            password: false,
            ..Default::default()
        },
    );
    let client = Client::new();
    client.trust(&sshd);
    // SSH_AUTH_SOCK is process-wide; the other tests here never list AuthMethod::Agent.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("SSH_AUTH_SOCK", &agent.socket);
    }
    let mut profile = sshd.profile("box", USER);
    profile.auth = vec![AuthMethod::Agent];
    let ctx = client.context(Arc::new(NoPrompter), HostKeyPolicy::Strict, None);
    let conn = Connection::open(&[profile], &ctx).await.unwrap();
    assert!(conn.exec("true").await.unwrap().success());
    assert!(sshd.log().contains("Accepted publickey"), "{}", sshd.log());
}

#[tokio::test]
async fn password_and_wrong_password() {
    let sshd = Sshd::start(&[], SshdOptions::default());
    let client = Client::new();
    client.trust(&sshd);
    let mut profile = sshd.profile("box", USER);
    profile.auth = vec![AuthMethod::Password];

    let prompter = Arc::new(ScriptedPrompter {
        secrets: vec![PASSWORD.to_string()].into(),
        remember: true,
        ..Default::default()
    });
    let store: Arc<dyn SecretStore> = Arc::new(MemoryStore::default());
    let ctx = client.context(prompter.clone(), HostKeyPolicy::Strict, Some(store.clone()));
    let conn = Connection::open(std::slice::from_ref(&profile), &ctx)
        .await
        .unwrap();
    assert_eq!(
        conn.exec("whoami").await.unwrap().stdout_text().trim(),
        USER
    );
    assert_eq!(prompter.asked().len(), 1);

    // Remembered: the next connection asks nothing.
    let quiet = Arc::new(ScriptedPrompter::default());
    let ctx = client.context(quiet.clone(), HostKeyPolicy::Strict, Some(store));
    Connection::open(std::slice::from_ref(&profile), &ctx)
        .await
        .unwrap();
    assert!(quiet.asked().is_empty());

    // Wrong passwords: three tries, then a clear error naming what the server accepts.
    let wrong = Arc::new(ScriptedPrompter {
        secrets: vec!["a".into(), "b".into(), "c".into(), "d".into()].into(),
        ..Default::default()
    });
    let ctx = client.context(wrong.clone(), HostKeyPolicy::Strict, None);
    let err = Connection::open(&[profile], &ctx).await.unwrap_err();
    assert_eq!(
        wrong.asked().len(),
        3,
        "no endless retry: {:?}",
        wrong.asked()
    );
    match &err {
        SshError::AuthFailed {
            tried, accepted, ..
        } => {
            assert_eq!(tried, "password");
            assert!(
                accepted.contains("publickey") && accepted.contains("password"),
                "{accepted}"
            );
        }
        other => panic!("expected AuthFailed, got {other:?}"),
    }
}

#[tokio::test]
async fn keyboard_interactive_password_then_totp_through_pam() {
    let sshd = Sshd::start(
        &[],
        SshdOptions {
            password: false,
            otp: true,
            extra: vec![],
        },
    );
    let client = Client::new();
    client.trust(&sshd);
    let mut profile = sshd.profile("hpc", USER);
    profile.auth = vec![AuthMethod::KeyboardInteractive];
    // PAM's `Password:` round is the login password (asked as such); the OTP round that
    // follows is still asked as keyboard-interactive.
    let prompter = Arc::new(ScriptedPrompter {
        secrets: vec![PASSWORD.to_string()].into(),
        kbd: Some(Box::new(|round| {
            round.prompts.iter().map(|_| otp_code()).collect()
        })),
        ..Default::default()
    });
    let ctx = client.context(prompter.clone(), HostKeyPolicy::Strict, None);
    let conn = Connection::open(std::slice::from_ref(&profile), &ctx)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", sshd.log()));
    assert_eq!(
        conn.exec("whoami").await.unwrap().stdout_text().trim(),
        USER
    );
    let asked = prompter.asked();
    assert_eq!(
        asked.len(),
        2,
        "password and OTP are separate rounds: {asked:?}"
    );
    assert!(asked[0].starts_with("Password {"), "{asked:?}");
    assert!(asked[1].contains("One-time password"), "{asked:?}");

    // A wrong code fails with a clear error, no retry loop.
    let bad = Arc::new(ScriptedPrompter {
        secrets: vec![PASSWORD.to_string()].into(),
        kbd: Some(Box::new(|round| {
            round.prompts.iter().map(|_| "000000".into()).collect()
        })),
        ..Default::default()
    });
    let ctx = client.context(bad.clone(), HostKeyPolicy::Strict, None);
    let err = Connection::open(&[profile], &ctx).await.unwrap_err();
    assert!(matches!(err, SshError::AuthFailed { .. }), "{err}");
    assert!(bad.asked().len() <= 3, "{:?}", bad.asked());
}

#[tokio::test]
async fn unknown_host_key_accepted_is_remembered_and_rejected_is_refused() {
    let dir = keys_dir();
    let key = make_key(dir.path(), "id", "ed25519", None);
    let sshd = Sshd::start(&[&key], SshdOptions::default());
    let client = Client::new();
    let profile = key_only(sshd.profile("box", USER), &key);
    let expected_fp = tunnelbook_core::ssh::fingerprint(
        &russh::keys::PublicKey::from_openssh(&sshd.host_keys[0]).unwrap(),
    );

    // Rejected.
    let no = Arc::new(ScriptedPrompter::default());
    let ctx = client.context(no.clone(), HostKeyPolicy::Ask, None);
    let err = Connection::open(std::slice::from_ref(&profile), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(err, SshError::HostKeyNotTrusted { .. }), "{err}");
    assert_eq!(
        no.asked(),
        vec![format!("host-key ssh-ed25519 {expected_fp}")]
    );
    assert!(!client.home().join("known_hosts").exists());
    assert!(
        !sshd.log().contains("Accepted"),
        "no authentication after a refused key"
    );

    // Strict: refused without asking.
    let ctx = client.context(no.clone(), HostKeyPolicy::Strict, None);
    assert!(matches!(
        Connection::open(std::slice::from_ref(&profile), &ctx)
            .await
            .unwrap_err(),
        SshError::HostKeyNotTrusted { .. }
    ));
    assert_eq!(no.asked().len(), 1);

    // Accepted: remembered, and not asked again.
    let yes = Arc::new(ScriptedPrompter {
        accept_host_key: true,
        ..Default::default()
    });
    let ctx = client.context(yes.clone(), HostKeyPolicy::Ask, None);
    Connection::open(std::slice::from_ref(&profile), &ctx)
        .await
        .unwrap();
    let ctx = client.context(yes.clone(), HostKeyPolicy::Ask, None);
    Connection::open(&[profile], &ctx).await.unwrap();
    assert_eq!(yes.asked().len(), 1);
    let saved = std::fs::read_to_string(client.home().join("known_hosts")).unwrap();
    assert!(
        saved.starts_with(&format!("[127.0.0.1]:{} ssh-ed25519 ", sshd.port)),
        "{saved}"
    );
}

#[tokio::test]
async fn changed_host_key_is_refused_before_authentication() {
    let dir = keys_dir();
    let key = make_key(dir.path(), "id", "ed25519", None);
    let impostor = make_key(dir.path(), "impostor", "ed25519", None);
    let sshd = Sshd::start(&[&key], SshdOptions::default());
    let client = Client::new();
    std::fs::create_dir_all(client.home()).unwrap();
    std::fs::write(
        client.home().join("known_hosts"),
        format!("[127.0.0.1]:{} {}\n", sshd.port, impostor.public),
    )
    .unwrap();
    let yes = Arc::new(ScriptedPrompter {
        accept_host_key: true,
        ..Default::default()
    });
    for policy in [
        HostKeyPolicy::Ask,
        HostKeyPolicy::AcceptNew,
        HostKeyPolicy::Strict,
    ] {
        let ctx = client.context(yes.clone(), policy, None);
        let err = Connection::open(&[key_only(sshd.profile("box", USER), &key)], &ctx)
            .await
            .unwrap_err();
        match &err {
            SshError::HostKeyChanged {
                expected,
                presented,
                line,
                ..
            } => {
                assert_ne!(expected, presented);
                assert!(expected.starts_with("SHA256:") && presented.starts_with("SHA256:"));
                assert_eq!(*line, 1);
                let msg = err.to_string();
                assert!(msg.contains(expected) && msg.contains(presented), "{msg}");
            }
            other => panic!("{policy:?}: expected HostKeyChanged, got {other:?}"),
        }
    }
    assert!(
        yes.asked().is_empty(),
        "a changed key is never offered for acceptance"
    );
    let log = sshd.log();
    assert!(
        !log.contains("Accepted") && !log.contains("Failed"),
        "no auth attempted:\n{log}"
    );
}

#[tokio::test]
async fn two_hop_jump_chain_checks_each_hop() {
    let dir = keys_dir();
    let key = make_key(dir.path(), "id", "ed25519", None);
    let jump1 = Sshd::start(&[&key], SshdOptions::default());
    let jump2 = Sshd::start(&[&key], SshdOptions::default());
    let target = Sshd::start(&[&key], SshdOptions::default());
    let client = Client::new();
    client.trust(&jump1);
    client.trust(&jump2);
    // The target's key is unknown: only it is asked about, with its own fingerprint.
    let yes = Arc::new(ScriptedPrompter {
        accept_host_key: true,
        ..Default::default()
    });
    let ctx = client.context(yes.clone(), HostKeyPolicy::Ask, None);
    let chain = [
        key_only(jump1.profile("j1", USER), &key),
        key_only(jump2.profile("j2", USER), &key),
        key_only(target.profile("gpu", USER), &key),
    ];
    let conn = Connection::open(&chain, &ctx).await.unwrap();
    let out = conn.exec("echo $SSH_CONNECTION").await.unwrap();
    assert!(out.success());
    let fp = tunnelbook_core::ssh::fingerprint(
        &russh::keys::PublicKey::from_openssh(&target.host_keys[0]).unwrap(),
    );
    assert_eq!(yes.asked(), vec![format!("host-key ssh-ed25519 {fp}")]);
    // The target saw a connection coming from the second jump host (loopback), not from us.
    assert!(target.log().contains("Accepted publickey"));
    assert!(
        jump1.log().contains("Accepted publickey") && jump2.log().contains("Accepted publickey")
    );
}

#[tokio::test]
async fn unreachable_port_and_silent_server_fail_clearly() {
    let client = Client::new();
    let port = tunnelbook_testbed::free_port();
    let mut profile =
        tunnelbook_core::profile::Profile::from_destination(&format!("{USER}@127.0.0.1:{port}"));
    profile.name = "nothing".into();
    let ctx = client.context(Arc::new(NoPrompter), HostKeyPolicy::Strict, None);
    let err = Connection::open(std::slice::from_ref(&profile), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(err, SshError::Unreachable { .. }), "{err}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );

    // A listener that accepts and never speaks SSH: the connect timeout applies.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    profile.port = listener.local_addr().unwrap().port();
    let mut ctx = ctx;
    ctx.options.connect_timeout = Duration::from_millis(800);
    let err = Connection::open(&[profile], &ctx).await.unwrap_err();
    assert!(matches!(err, SshError::Timeout { .. }), "{err}");
    drop(listener);
}

#[tokio::test]
async fn secrets_do_not_appear_in_errors() {
    let sshd = Sshd::start(&[], SshdOptions::default());
    let client = Client::new();
    client.trust(&sshd);
    let mut profile = sshd.profile("box", USER);
    profile.auth = vec![AuthMethod::Password];
    let prompter = Arc::new(ScriptedPrompter {
        secrets: vec!["Zq9-unique-wrong-pw".into()].into(),
        ..Default::default()
    });
    let ctx = client.context(prompter, HostKeyPolicy::Strict, None);
    let err = Connection::open(&[profile], &ctx).await.unwrap_err();
    assert!(!format!("{err} {err:?}").contains("Zq9-unique-wrong-pw"));
}
