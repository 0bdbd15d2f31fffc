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
