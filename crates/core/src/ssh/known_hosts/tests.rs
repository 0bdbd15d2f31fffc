use super::*;

const ED: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
const ED2: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA6rWI3G1sz07DnfFlrouTcysQlj2P+jpNSOEWD9OJ3X";

fn key(s: &str) -> PublicKey {
    PublicKey::from_openssh(s).unwrap()
}

fn changed_line(status: HostKeyStatus) -> usize {
    match status {
        HostKeyStatus::Changed { line, .. } => line,
        other => panic!("expected Changed, got {other:?}"),
    }
}

#[test]
fn unknown_learned_known_changed() {
    let dir = tempfile::tempdir().unwrap();
    let kh = KnownHosts::with_files(dir.path().join("known_hosts"), vec![]);
    assert_eq!(
        kh.check("box", 2222, &key(ED)).unwrap(),
        HostKeyStatus::Unknown
    );
    kh.learn("box", 2222, &key(ED)).unwrap();
    assert_eq!(
        kh.check("box", 2222, &key(ED)).unwrap(),
        HostKeyStatus::Known
    );
    // Same host, other port: a different entry.
    assert_eq!(
        kh.check("box", 22, &key(ED)).unwrap(),
        HostKeyStatus::Unknown
    );
    match kh.check("box", 2222, &key(ED2)).unwrap() {
        HostKeyStatus::Changed { expected, line, .. } => {
            assert_eq!(expected, fingerprint(&key(ED)));
            assert_eq!(line, 1);
        }
        other => panic!("expected Changed, got {other:?}"),
    }
}

// Unix only: it runs OpenSSH's `ssh-keygen -H` to hash the names, which a Windows test run
// (and Wine) does not have on PATH; the hashed-entry reading itself is platform-neutral.
#[cfg(unix)]
#[test]
fn reads_hashed_and_bracketed_entries_written_by_openssh() {
    let dir = tempfile::tempdir().unwrap();
    let user = dir.path().join("user_known_hosts");
    std::fs::write(
        &user,
        format!("example.org {ED}\n[gpu.example.org]:2200 {ED2}\n"),
    )
    .unwrap();
    // Hash the names the way OpenSSH does (`HashKnownHosts yes`).
    let status = std::process::Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&user)
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    assert!(std::fs::read_to_string(&user).unwrap().starts_with("|1|"));
    let kh = KnownHosts::with_files(dir.path().join("own"), vec![user]);
    assert_eq!(
        kh.check("example.org", 22, &key(ED)).unwrap(),
        HostKeyStatus::Known
    );
    assert_eq!(
        kh.check("gpu.example.org", 2200, &key(ED2)).unwrap(),
        HostKeyStatus::Known
    );
    assert_eq!(
        kh.check("gpu.example.org", 22, &key(ED2)).unwrap(),
        HostKeyStatus::Unknown
    );
    assert!(matches!(
        kh.check("example.org", 22, &key(ED2)).unwrap(),
        HostKeyStatus::Changed { .. }
    ));
}

#[test]
fn patterns_wildcards_negation_and_case() {
    for (hosts, name, expected) in [
        ("*.example.org", "gpu1.example.org", true),
        ("*.example.org", "example.org", false),
        ("gpu?.example.org", "gpu7.example.org", true),
        ("gpu?.example.org", "gpu17.example.org", false),
        ("*.example.org,!bad.example.org", "bad.example.org", false),
        ("!bad.example.org,*.example.org", "good.example.org", true),
        ("!bad.example.org", "good.example.org", false),
        ("GPU.Example.ORG", "gpu.example.org", true),
        ("[gpu]:2200,gpu", "[gpu]:2200", true),
        ("[gpu]:*", "[gpu]:2201", true),
        ("gpu", "[gpu]:2200", false),
    ] {
        assert_eq!(host_matches(hosts, name), expected, "{hosts} vs {name}");
    }
}

#[test]
fn malformed_lines_are_skipped_with_file_and_line_and_line_numbers_count_comments() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kh");
    let text = format!(
        "# a comment\n\n   # indented comment\nbroken-line-without-key\n\
         @bogus host {ED}\nhost ssh-ed25519 not-base64!!\nhost {ED}\n"
    );
    let (entries, warnings) = parse(&file, &text);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].line, 7);
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    for (w, line) in warnings.iter().zip([4, 5, 6]) {
        assert!(w.starts_with(&format!("{}:{line}:", file.display())), "{w}");
    }
    std::fs::write(&file, text).unwrap();
    let kh = KnownHosts::with_files(dir.path().join("own"), vec![file]);
    assert_eq!(changed_line(kh.check("host", 22, &key(ED2)).unwrap()), 7);
}

#[test]
fn revoked_keys_and_several_keys_per_host() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kh");
    std::fs::write(&file, format!("box {ED2}\nbox {ED}\n@revoked * {ED2}\n")).unwrap();
    let kh = KnownHosts::with_files(dir.path().join("own"), vec![file]);
    assert_eq!(kh.check("box", 22, &key(ED)).unwrap(), HostKeyStatus::Known);
    assert!(matches!(
        kh.check("box", 22, &key(ED2)).unwrap(),
        HostKeyStatus::Revoked { line: 3, .. }
    ));
    // Revoked for every host the pattern names, known or not.
    assert!(matches!(
        kh.check("other", 22, &key(ED2)).unwrap(),
        HostKeyStatus::Revoked { .. }
    ));
}

#[test]
#[cfg(unix)] // runs `ssh-keygen`, which a Windows test run does not have on PATH
fn known_types_are_preferred_and_another_type_is_changed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kh");
    let rsa = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "rsa", "-b", "2048", "-N", "", "-f"])
        .arg(dir.path().join("rsa"))
        .status()
        .unwrap();
    assert!(rsa.success());
    let rsa_pub = std::fs::read_to_string(dir.path().join("rsa.pub")).unwrap();
    std::fs::write(&file, format!("[box]:2222 {}\n", rsa_pub.trim())).unwrap();
    let kh = KnownHosts::with_files(dir.path().join("own"), vec![file]);
    let defaults = russh::Preferred::default().key.to_vec();
    let (order, ca) = kh.preferred_algorithms("[box]:2222", &defaults);
    assert!(!ca);
    assert!(matches!(order[0], Algorithm::Rsa { .. }), "{order:?}");
    assert_eq!(order.len(), defaults.len());
    let (order, _) = kh.preferred_algorithms("elsewhere", &defaults);
    assert_eq!(order, defaults);
    // The host is known by RSA; an ed25519 key is not "unknown".
    assert_eq!(changed_line(kh.check("box", 2222, &key(ED)).unwrap()), 1);
}
