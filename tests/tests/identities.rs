//! Identities as OpenSSH picks them, against a real sshd and ssh-agent: `IdentitiesOnly`, the
//! configured key before the agent's other keys, `MaxAuthTries`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{process::Command, sync::Arc};

use tunnelbook_core::ssh::{Connection, HostKeyPolicy, NoPrompter, SshError};
use tunnelbook_testbed::{Agent, Client, KeyFile, Sshd, SshdOptions, USER, make_key};

fn use_agent(agent: &Agent) {
    // SSH_AUTH_SOCK is process-wide; nextest runs each test in a process of its own.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("SSH_AUTH_SOCK", &agent.socket);
    }
}

/// OpenSSH with the agent, `-i key` and `extra` options: does it log in?
fn openssh(sshd: &Sshd, agent: &Agent, key: Option<&KeyFile>, extra: &[&str]) -> bool {
    let mut cmd = Command::new("ssh");
    cmd.args(["-F", "/dev/null", "-p", &sshd.port.to_string()])
        .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no"])
        .args(["-o", "UserKnownHostsFile=/dev/null"])
        .args(extra)
        .env("SSH_AUTH_SOCK", &agent.socket);
    if let Some(key) = key {
        cmd.arg("-i").arg(&key.path);
    }
    cmd.arg(format!("{USER}@127.0.0.1")).arg("true");
    cmd.output().unwrap().status.success()
}

#[tokio::test]
async fn agent_with_eight_keys_against_max_auth_tries_3() {
    let dir = tempfile::tempdir().unwrap();
    let mut keys: Vec<KeyFile> = (0..7)
        .map(|i| make_key(dir.path(), &format!("other{i}"), "ed25519", None))
        .collect();
    let right = make_key(dir.path(), "right", "ed25519", None);
    keys.push(right.clone());
    // The right key is the agent's last of 8.
    let agent = Agent::start(&keys.iter().collect::<Vec<_>>());
    use_agent(&agent);
    let sshd = Sshd::start(
        &[&right],
        SshdOptions {
            password: false,
            extra: vec!["MaxAuthTries 3".into()],
            ..Default::default()
        },
    );
    // The trap is real: OpenSSH offering every agent key is cut off; with IdentitiesOnly it
    // logs in.
    assert!(!openssh(&sshd, &agent, None, &[]));
    assert!(openssh(
        &sshd,
        &agent,
        Some(&right),
        &["-o", "IdentitiesOnly=yes"]
    ));

    let client = Client::new();
    client.trust(&sshd);
    let ctx = client.context(Arc::new(NoPrompter), HostKeyPolicy::Strict, None);
    for identities_only in [true, false] {
        let mut profile = sshd.profile("box", USER);
        profile.identity_files = vec![right.path.clone()];
        profile.identities_only = identities_only;
        let before = sshd.log().matches("Failed publickey").count();
        let conn = Connection::open(&[profile], &ctx)
            .await
            .unwrap_or_else(|e| panic!("IdentitiesOnly={identities_only}: {e}\n{}", sshd.log()));
        assert!(conn.exec("true").await.unwrap().success());
        // The configured key was the first one offered.
        assert_eq!(
            sshd.log().matches("Failed publickey").count(),
            before,
            "{}",
            sshd.log()
        );
    }
}

#[tokio::test]
async fn identities_only_never_offers_the_agents_other_keys() {
    let dir = tempfile::tempdir().unwrap();
    let in_agent = make_key(dir.path(), "in_agent", "ed25519", None);
    let configured = make_key(dir.path(), "configured", "ed25519", None);
    let agent = Agent::start(&[&in_agent]);
    use_agent(&agent);
    // The server accepts only the agent's key.
    let sshd = Sshd::start(
        &[&in_agent],
        SshdOptions {
            password: false,
            ..Default::default()
        },
    );
    assert!(!openssh(
        &sshd,
        &agent,
        Some(&configured),
        &["-o", "IdentitiesOnly=yes"]
    ));
    let client = Client::new();
    client.trust(&sshd);
    let ctx = client.context(Arc::new(NoPrompter), HostKeyPolicy::Strict, None);
    let mut profile = sshd.profile("box", USER);
    profile.identity_files = vec![configured.path.clone()];
    profile.identities_only = true;
    let err = Connection::open(std::slice::from_ref(&profile), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(err, SshError::AuthFailed { .. }), "{err}");
    assert!(!sshd.log().contains("Accepted publickey"), "{}", sshd.log());

    // Without IdentitiesOnly the agent's key is offered after the configured one.
    assert!(openssh(&sshd, &agent, Some(&configured), &[]));
    profile.identities_only = false;
    Connection::open(&[profile], &ctx)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

/// A user certificate signed by a CA the server trusts (`TrustedUserCAKeys`): offered from
/// `FILE-cert.pub` beside the key, or from a `CertificateFile`, as OpenSSH does.
#[tokio::test]
async fn user_certificates_beside_the_key_or_from_certificate_file() {
    let dir = tempfile::tempdir().unwrap();
    let ca = make_key(dir.path(), "ca", "ed25519", None);
    let key = make_key(dir.path(), "id", "ed25519", None);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-s"])
        .arg(&ca.path)
        .args(["-I", "tb-user", "-n", USER, "-V", "-5m:+1h"])
        .arg(dir.path().join("id.pub"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let ca_file = dir.path().join("ca.pub");
    // No authorized key: only the certificate can log in.
    let sshd = Sshd::start(
        &[],
        SshdOptions {
            password: false,
            extra: vec![format!("TrustedUserCAKeys {}", ca_file.display())],
            ..Default::default()
        },
    );
    let agent = Agent::start(&[]);
    assert!(openssh(
        &sshd,
        &agent,
        Some(&key),
        &["-o", "IdentitiesOnly=yes"]
    ));

    let client = Client::new();
    client.trust(&sshd);
    let ctx = client.context(Arc::new(NoPrompter), HostKeyPolicy::Strict, None);
    let mut profile = tunnelbook_testbed::key_only(sshd.profile("box", USER), &key);
    let conn = Connection::open(std::slice::from_ref(&profile), &ctx)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", sshd.log()));
    assert!(conn.exec("true").await.unwrap().success());
    assert!(sshd.log().contains("ED25519-CERT"), "{}", sshd.log());

    // Elsewhere, named by CertificateFile.
    let moved = dir.path().join("elsewhere-cert.pub");
    std::fs::rename(dir.path().join("id-cert.pub"), &moved).unwrap();
    let err = Connection::open(std::slice::from_ref(&profile), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(err, SshError::AuthFailed { .. }), "{err}");
    profile.certificate_files = vec![moved];
    Connection::open(&[profile], &ctx)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", sshd.log()));
}
