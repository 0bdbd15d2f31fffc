//! PuTTY saved sessions read from the real registry (`HKCU\Software\SimonTatham\PuTTY\Sessions`):
//! a session written the way PuTTY writes it is read back and becomes a profile. Windows only
//! (in CI: Wine's registry, in the Windows test run).
#![cfg(windows)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tunnelbook_core::profile::{read_putty_sessions, report_from_sessions};
use winreg::{RegKey, enums::HKEY_CURRENT_USER};

#[test]
fn putty_sessions_in_the_registry_become_profiles() {
    let sessions = r"Software\SimonTatham\PuTTY\Sessions";
    // PuTTY URL-encodes session names; a name of this run's own.
    let key = format!("TB%20test%20{}", std::process::id());
    let name = format!("TB test {}", std::process::id());
    let hkcu = RegKey::predef(HKEY_CURRENT_USER);
    let (session, _) = hkcu.create_subkey(format!(r"{sessions}\{key}")).unwrap();
    session
        .set_value("HostName", &"alice@gpu.lab.example.edu")
        .unwrap();
    session.set_value("PortNumber", &2222u32).unwrap();
    session.set_value("Protocol", &"ssh").unwrap();
    session
        .set_value("PublicKeyFile", &r"C:\Users\alice\gpu.ppk")
        .unwrap();
    let telnet_key = format!("{key}%20router");
    let (telnet, _) = hkcu
        .create_subkey(format!(r"{sessions}\{telnet_key}"))
        .unwrap();
    telnet.set_value("HostName", &"router").unwrap();
    telnet.set_value("Protocol", &"telnet").unwrap();

    let read = read_putty_sessions();
    let root = hkcu.open_subkey(sessions).unwrap();
    root.delete_subkey_all(&key).unwrap();
    root.delete_subkey_all(&telnet_key).unwrap();

    let report = report_from_sessions(&read.unwrap());
    let profile = report
        .imported
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("{name} not imported: {report:?}"));
    assert_eq!(
        (profile.host.as_str(), profile.port, profile.user.as_deref()),
        ("gpu.lab.example.edu", 2222, Some("alice"))
    );
    assert_eq!(
        profile.identity_files,
        vec![std::path::PathBuf::from(r"C:\Users\alice\gpu.ppk")]
    );
    assert!(
        report
            .skipped
            .iter()
            .any(|s| s.name == format!("{name} router") && s.reason.contains("telnet")),
        "{report:?}"
    );
}

/// A host key PuTTY cached (`HKCU\Software\SimonTatham\PuTTY\SshHostKeys`) counts as known; a
/// different key of that type is changed, naming the registry value; other hosts stay unknown.
#[test]
fn putty_cached_host_keys_count_as_known() {
    use russh::keys::PublicKey;
    use tunnelbook_core::ssh::{HostKeyStatus, KnownHosts};

    // PuTTY 0.78's cache string for this ssh-keygen key (as plink stored it).
    let known = PublicKey::from_openssh(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIJNvQEfnhW5a/CEkfK4Dk26SumEVOLEChfQgClyLzf2",
    )
    .unwrap();
    let other = PublicKey::from_openssh(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ",
    )
    .unwrap();
    let data = "0x7ffa26138982ae5ad11bfc3e135e4dc84cf8bcbe175c76c533f108b492173b7b,\
                0x76372f722980d0170ac4e25484e94aba4d0eb8f29184f06bb9159e1f01bd4d82";
    let port = 40000 + (std::process::id() % 20000) as u16;
    let host = format!("tb-putty-{}.example", std::process::id());
    let name = format!("ssh-ed25519@{port}:{host}");
    let hkcu = RegKey::predef(HKEY_CURRENT_USER);
    let (cache, _) = hkcu
        .create_subkey(r"Software\SimonTatham\PuTTY\SshHostKeys")
        .unwrap();
    cache.set_value(&name, &data).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let kh = KnownHosts::with_files(dir.path().join("known_hosts"), Vec::new());
    let on_port = kh.check(&host, port, &known);
    let changed = kh.check(&host, port, &other);
    let elsewhere = kh.check(&host, 22, &known);
    cache.delete_value(&name).unwrap();

    assert_eq!(on_port.unwrap(), HostKeyStatus::Known);
    match changed.unwrap() {
        HostKeyStatus::Changed { file, line, .. } => {
            assert_eq!(line, 0);
            let file = file.display().to_string();
            assert!(
                file.contains(r"SimonTatham\PuTTY\SshHostKeys") && file.contains(&name),
                "{file}"
            );
        }
        s => panic!("expected changed, got {s:?}"),
    }
    assert_eq!(elsewhere.unwrap(), HostKeyStatus::Unknown);
}
