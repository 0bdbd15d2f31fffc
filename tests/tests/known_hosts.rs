//! known_hosts as OpenSSH reads it, against real sshd instances and compared with OpenSSH's own
//! `ssh` / `ssh-keygen -F` on the same files: the system file (`GlobalKnownHostsFile`), a host
//! certificate signed by a `@cert-authority`, a `@revoked` key, a second key type offered by a
//! known host, patterns and hashed names, malformed lines.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::Arc,
};

use tunnelbook_core::{
    profile::{AuthMethod, Profile},
    ssh::{Connection, HostKeyPolicy, KnownHosts, NoPrompter, SshError, lookup_name},
};
use tunnelbook_testbed::{
    Client, KeyFile, Sshd, SshdOptions, USER, key_only, make_key, prompter::ScriptedPrompter, run,
};

/// A server accepting `key`, its host keys replaced by `host_keys` (with `certificate`).
fn sshd_with_host_keys(key: &KeyFile, host_keys: &[&Path], certificate: Option<&Path>) -> Sshd {
    let mut extra: Vec<String> = host_keys
        .iter()
        .map(|k| format!("HostKey {}", k.display()))
        .collect();
    if let Some(cert) = certificate {
        extra.push(format!("HostCertificate {}", cert.display()));
    }
    Sshd::start(
        &[key],
        SshdOptions {
            password: false,
            extra,
            ..Default::default()
        },
    )
}

/// OpenSSH's verdict: does `ssh` with exactly these known_hosts files (strict checking, no
/// other files) log in?
fn openssh_accepts(sshd: &Sshd, key: &KeyFile, user_file: &Path, global_file: &Path) -> bool {
    let out = Command::new("ssh")
        .args(["-F", "/dev/null", "-p", &sshd.port.to_string(), "-i"])
        .arg(&key.path)
        .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", user_file.display()))
        .arg("-o")
        .arg(format!("GlobalKnownHostsFile={}", global_file.display()))
        .arg(format!("{USER}@127.0.0.1"))
        .arg("true")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    out.status.success()
}

/// Tunnelbook with the same files, strict.
async fn tunnelbook(
    client: &Client,
    sshd: &Sshd,
    key: &KeyFile,
    user_file: &Path,
    global_file: &Path,
    policy: HostKeyPolicy,
) -> Result<(), SshError> {
    let mut profile: Profile = key_only(sshd.profile("box", USER), key);
    profile.user_known_hosts_files = vec![user_file.to_path_buf()];
    profile.global_known_hosts_files = vec![global_file.to_path_buf()];
    let ctx = client.context(Arc::new(NoPrompter), policy, None);
    let conn = Connection::open(&[profile], &ctx).await?;
    assert!(conn.exec("true").await.unwrap().success());
    Ok(())
}

fn ssh_keygen(args: &[&str], paths: &[&Path]) {
    let mut cmd = Command::new("ssh-keygen");
    cmd.arg("-q").args(args).args(paths);
    run(&mut cmd);
}

#[tokio::test]
async fn system_known_hosts_file_is_read_like_openssh() {
    let dir = tempfile::tempdir().unwrap();
    let key = make_key(dir.path(), "id", "ed25519", None);
    let sshd = Sshd::start(&[&key], SshdOptions::default());
    let client = Client::new();
    let global = dir.path().join("ssh_known_hosts");
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "").unwrap();
    // Comments first, a wildcard port pattern, hashed by OpenSSH.
    std::fs::write(
        &global,
        format!(
            "# managed by the site\n\n[127.0.0.1]:*,!nothing {}\n",
            sshd.host_keys[0]
        ),
    )
    .unwrap();
    assert!(openssh_accepts(&sshd, &key, &empty, &global));
    tunnelbook(&client, &sshd, &key, &empty, &global, HostKeyPolicy::Strict)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    ssh_keygen(&["-H", "-f"], &[&global]);
    assert!(openssh_accepts(&sshd, &key, &empty, &global));
    tunnelbook(&client, &sshd, &key, &empty, &global, HostKeyPolicy::Strict)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Nothing was written to the system file or the user's: only Tunnelbook's own.
    assert!(!client.home().join("known_hosts").exists());

    // The defaults are OpenSSH's.
    let defaults = KnownHosts::new(dir.path().join("own"));
    for f in ["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"] {
        assert!(defaults.files().contains(&PathBuf::from(f)), "{f}");
    }
}

#[tokio::test]
async fn host_certificate_signed_by_a_listed_ca_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let key = make_key(dir.path(), "id", "ed25519", None);
    let ca = make_key(dir.path(), "ca", "ed25519", None);
    let other_ca = make_key(dir.path(), "other_ca", "ed25519", None);
    let host = make_key(dir.path(), "host", "ed25519", None);
    let host_pub = dir.path().join("host.pub");
    let cert = dir.path().join("host-cert.pub");
    let sign = |principals: &str, validity: &str| {
        ssh_keygen(
            &[
                "-s",
                ca.path.to_str().unwrap(),
                "-I",
                "hostcert",
                "-h",
                "-n",
                principals,
                "-V",
                validity,
            ],
            &[&host_pub],
        );
    };
    sign("127.0.0.1", "-5m:+1h");
    let mut sshd = sshd_with_host_keys(&key, &[&host.path], Some(&cert));
    let client = Client::new();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "").unwrap();
    let known = dir.path().join("known_hosts");
    let check = |ca: &KeyFile| {
        std::fs::write(
            &known,
            format!("# site CA\n@cert-authority * {}\n", ca.public),
        )
        .unwrap();
    };

    check(&ca);
    assert!(openssh_accepts(&sshd, &key, &known, &empty));
    tunnelbook(&client, &sshd, &key, &known, &empty, HostKeyPolicy::Strict)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", sshd.log()));

    // Another CA: the certificate proves nothing, and the plain key is unknown.
    check(&other_ca);
    assert!(!openssh_accepts(&sshd, &key, &known, &empty));
    let err = tunnelbook(&client, &sshd, &key, &known, &empty, HostKeyPolicy::Strict)
        .await
        .unwrap_err();
    assert!(matches!(err, SshError::HostKeyNotTrusted { .. }), "{err}");

    // Signed for another name, or expired: refused with the reason.
    check(&ca);
    for (principals, validity, reason) in [
        ("gpu.example.org", "-5m:+1h", "not for 127.0.0.1"),
        ("127.0.0.1", "-2h:-1h", "expired"),
    ] {
        sign(principals, validity);
        // sshd reads its certificate when it starts.
        sshd.restart(std::time::Duration::ZERO);
        assert!(
            !openssh_accepts(&sshd, &key, &known, &empty),
            "{principals} {validity}"
        );
        let err = tunnelbook(&client, &sshd, &key, &known, &empty, HostKeyPolicy::Strict)
            .await
            .unwrap_err();
        match &err {
            SshError::HostCertificateInvalid { .. } => {
                assert!(err.to_string().contains(reason), "{err}")
            }
            other => panic!("{principals}: expected HostCertificateInvalid, got {other:?}"),
        }
    }

    // A revoked CA is refused even under accept-new.
    sign("127.0.0.1", "-5m:+1h");
    sshd.restart(std::time::Duration::ZERO);
    std::fs::write(
        &known,
        format!(
            "@cert-authority * {}\n@revoked * {}\n",
            ca.public, ca.public
        ),
    )
    .unwrap();
    assert!(!openssh_accepts(&sshd, &key, &known, &empty));
    let err = tunnelbook(
        &client,
        &sshd,
        &key,
        &known,
        &empty,
        HostKeyPolicy::AcceptNew,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, SshError::HostKeyRevoked { line: 2, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn revoked_host_key_is_refused_under_every_policy() {
    let dir = tempfile::tempdir().unwrap();
    let key = make_key(dir.path(), "id", "ed25519", None);
    let sshd = Sshd::start(&[&key], SshdOptions::default());
    let client = Client::new();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "").unwrap();
    let known = dir.path().join("known_hosts");
    std::fs::write(
        &known,
        format!(
            "{}\n# revoked after the 2026 incident\n@revoked * {}\n",
            sshd.known_hosts_line(),
            sshd.host_keys[0]
        ),
    )
    .unwrap();
    assert!(!openssh_accepts(&sshd, &key, &known, &empty));
    for policy in [
        HostKeyPolicy::Strict,
        HostKeyPolicy::AcceptNew,
        HostKeyPolicy::Ask,
    ] {
        let err = tunnelbook(&client, &sshd, &key, &known, &empty, policy)
            .await
            .unwrap_err();
        match &err {
            SshError::HostKeyRevoked { line, file, .. } => {
                assert_eq!(*line, 3, "{err}");
                assert_eq!(file, &known.display().to_string());
                assert!(err.to_string().contains("REVOKED"), "{err}");
            }
            other => panic!("{policy:?}: expected HostKeyRevoked, got {other:?}"),
        }
    }
    assert!(!client.home().join("known_hosts").exists());
}

#[tokio::test]
async fn a_known_host_is_asked_for_its_known_key_type_and_another_type_is_changed() {
    let dir = tempfile::tempdir().unwrap();
    let key = make_key(dir.path(), "id", "ed25519", None);
    // The bed's server has an ed25519 and an RSA host key; only the RSA one is known.
    let sshd = Sshd::start(&[&key], SshdOptions::default());
    let client = Client::new();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "").unwrap();
    let known = dir.path().join("known_hosts");
    std::fs::write(
        &known,
        format!("[127.0.0.1]:{} {}\n", sshd.port, sshd.host_keys[1]),
    )
    .unwrap();
    assert!(openssh_accepts(&sshd, &key, &known, &empty));
    tunnelbook(&client, &sshd, &key, &known, &empty, HostKeyPolicy::Strict)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", sshd.log()));

    // A server known by RSA that now offers only an ed25519 key is not "unknown": it is a
    // changed key, refused even under accept-new, and nothing is learned.
    let host = make_key(dir.path(), "host", "ed25519", None);
    let other = sshd_with_host_keys(&key, &[&host.path], None);
    std::fs::write(
        &known,
        format!("[127.0.0.1]:{} {}\n", other.port, sshd.host_keys[1]),
    )
    .unwrap();
    assert!(!openssh_accepts(&other, &key, &known, &empty));
    let err = tunnelbook(
        &client,
        &other,
        &key,
        &known,
        &empty,
        HostKeyPolicy::AcceptNew,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, SshError::HostKeyChanged { line: 1, .. }),
        "{err}"
    );
    assert!(!client.home().join("known_hosts").exists());
}

/// The lines OpenSSH's `ssh-keygen -F NAME -f FILE` finds, as 1-based line numbers.
fn keygen_finds(file: &Path, name: &str) -> Vec<usize> {
    let out = Command::new("ssh-keygen")
        .args(["-F", name, "-f"])
        .arg(file)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split("found: line ").nth(1))
        .map(|n| n.trim().parse().unwrap())
        .collect()
}

#[test]
fn lookups_match_ssh_keygen_f() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("known_hosts");
    let k = |i: usize| make_key(dir.path(), &format!("k{i}"), "ed25519", None).public;
    let lines = [
        "# comment".to_string(),
        String::new(),
        format!("gpu1.example.org,10.0.0.1 {}", k(1)),
        format!("*.example.org,!bad.example.org {}", k(2)),
        format!("[gpu1.example.org]:2222 {}", k(3)),
        format!("gpu? {}", k(4)),
        format!("GPU9 {}", k(5)),
        "garbage line".to_string(),
        format!("[*.cluster]:22022 {}", k(6)),
        format!("!login*,*.cluster {}", k(7)),
    ];
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let names = [
        "gpu1.example.org",
        "bad.example.org",
        "example.org",
        "10.0.0.1",
        "[gpu1.example.org]:2222",
        "gpu7",
        "gpu9",
        "gpu10",
        "[node3.cluster]:22022",
        "node3.cluster",
        "login1.cluster",
    ];
    let check = |file: &Path| {
        let ours = KnownHosts::with_files(dir.path().join("own"), vec![file.to_path_buf()]);
        for name in names {
            let mine: Vec<usize> = ours
                .lines_for(name)
                .unwrap()
                .into_iter()
                .map(|(_, line)| line)
                .collect();
            assert_eq!(
                mine,
                keygen_finds(file, name),
                "{name} in\n{}",
                std::fs::read_to_string(file).unwrap()
            );
        }
    };
    check(&file);
    // Hashed by OpenSSH (which hashes each name of a list on a line of its own and will not
    // hash wildcard patterns, so only the plain names).
    let hashed = dir.path().join("hashed");
    let plain: Vec<&String> = lines
        .iter()
        .filter(|l| !l.contains(['*', '?', '!']) && !l.starts_with("garbage"))
        .collect();
    std::fs::write(
        &hashed,
        plain
            .iter()
            .map(|l| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
            + "\n",
    )
    .unwrap();
    ssh_keygen(&["-H", "-f"], &[&hashed]);
    assert!(std::fs::read_to_string(&hashed).unwrap().contains("|1|"));
    check(&hashed);
    assert_eq!(
        lookup_name("GPU1.example.org", 2222, None),
        "[gpu1.example.org]:2222"
    );
    assert_eq!(lookup_name("h", 2222, Some("alias")), "alias");
}

/// HostKeyAlias: the key is looked up and remembered under the alias, port or not.
#[tokio::test]
async fn host_key_alias_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = make_key(dir.path(), "id", "ed25519", None);
    let sshd = Sshd::start(&[&key], SshdOptions::default());
    let client = Client::new();
    let mut profile = key_only(sshd.profile("box", USER), &key);
    profile.host_key_alias = Some("gpu-login".into());
    profile.auth = vec![AuthMethod::KeyFile];
    let ctx = client.context(Arc::new(NoPrompter), HostKeyPolicy::AcceptNew, None);
    Connection::open(std::slice::from_ref(&profile), &ctx)
        .await
        .unwrap();
    let own = std::fs::read_to_string(client.home().join("known_hosts")).unwrap();
    assert!(own.starts_with("gpu-login ssh-"), "{own}");
    // Known under the alias from now on.
    let asked = Arc::new(ScriptedPrompter::default());
    let ctx = client.context(asked.clone(), HostKeyPolicy::Strict, None);
    Connection::open(&[profile], &ctx).await.unwrap();
    assert!(asked.asked().is_empty());
}

/// A malformed line is skipped with a warning naming file and line; the rest of the file
/// still counts (the CLI shows the warning).
#[test]
fn malformed_line_is_reported_by_file_and_line_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let key = make_key(dir.path(), "id", "ed25519", None);
    let sshd = Sshd::start(&[&key], SshdOptions::default());
    let client = Client::new();
    let home = client.dir.path().join(".ssh");
    std::fs::create_dir_all(&home).unwrap();
    let user_file = home.join("known_hosts");
    std::fs::write(
        &user_file,
        format!(
            "# one\n# two\n[127.0.0.1]:{} ssh-ed25519 AAAA-not-base64\n{}\n",
            sshd.port,
            sshd.known_hosts_line()
        ),
    )
    .unwrap();
    tunnelbook_core::profile::ProfileStore::in_home(&client.home())
        .save(&[key_only(sshd.profile("box", USER), &key)])
        .unwrap();
    let out = client
        .cli()
        .args([
            "--host-key-policy",
            "strict",
            "exec",
            "box",
            "--",
            "echo",
            "ok",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n", "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:3: malformed", user_file.display())),
        "{err}"
    );
}

/// The CLI saves the OpenSSH options (`hosts add/edit --host-key-alias --global-known-hosts-file
/// --known-hosts-file --identities-only`) and the connection follows them.
#[test]
fn cli_host_options_reach_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let key = make_key(dir.path(), "id", "ed25519", None);
    let sshd = Sshd::start(&[&key], SshdOptions::default());
    let client = Client::new();
    let global = dir.path().join("site_known_hosts");
    std::fs::write(&global, format!("gpu-login {}\n", sshd.host_keys[0])).unwrap();
    let port = sshd.port.to_string();
    let out = client
        .cli()
        .args([
            "hosts",
            "add",
            "box",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
        ])
        .args(["--user", USER, "--key", key.path.to_str().unwrap()])
        .args(["--identities-only", "yes", "--host-key-alias", "gpu-login"])
        .arg("--global-known-hosts-file")
        .arg(&global)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let exec = || {
        client
            .cli()
            .args([
                "--host-key-policy",
                "strict",
                "exec",
                "box",
                "--",
                "echo",
                "ok",
            ])
            .output()
            .unwrap()
    };
    let out = exec();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n", "{out:?}");
    let shown = run(client.cli().args(["hosts", "show", "box", "--json"]));
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["identitiesOnly"], true, "{shown}");

    // Without the alias the host is listed under no name this file knows: refused.
    run(client
        .cli()
        .args(["hosts", "edit", "box", "--host-key-alias", ""]));
    let out = exec();
    assert_eq!(out.status.code(), Some(255), "{out:?}");
    // A user file that knows it by [host]:port.
    let user_file = dir.path().join("mine");
    std::fs::write(&user_file, sshd.known_hosts_line() + "\n").unwrap();
    run(client
        .cli()
        .args(["hosts", "edit", "box", "--known-hosts-file"])
        .arg(&user_file));
    let out = exec();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n", "{out:?}");
}
