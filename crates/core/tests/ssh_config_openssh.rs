//! Differential test against OpenSSH: every ssh_config under `tests/fixtures/ssh_config/`,
//! every host it names, every option Tunnelbook maps — what Tunnelbook resolves and imports is
//! compared with what `ssh -G -F FILE HOST` prints. Any difference fails with file, host, option
//! and both values.
//!
//! Fixtures may use `@DIR@` (the fixture directory, for absolute `Include`s) and `@SSHREL@` (a
//! directory under `~/.ssh` holding `home-ssh/`, for `Include`s relative to `~/.ssh`); a line
//! `# ask: h1 h2` adds hosts that only patterns match. Files with a byte-order mark or in UTF-16
//! are given to ssh as plain UTF-8 (ssh refuses them; Tunnelbook reads them).

// Runs OpenSSH's `ssh -G`, which the Windows test run (under Wine) does not have.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use tunnelbook_core::{
    profile::{
        DEFAULT_IDENTITY_FILES, DEFAULT_KEY_ALGORITHMS, Profile, SshConfig,
        assemble_key_algorithms, read_ssh_config,
    },
    tunnel::ForwardSpec,
};

/// Options compared with `ssh -G` (all lines of each, in order).
const COMPARED: &[&str] = &[
    "hostname",
    "user",
    "port",
    "identityfile",
    "certificatefile",
    "identitiesonly",
    "proxyjump",
    "proxycommand",
    "serveraliveinterval",
    "serveralivecountmax",
    "connecttimeout",
    "stricthostkeychecking",
    "userknownhostsfile",
    "globalknownhostsfile",
    "hostkeyalias",
    "hostkeyalgorithms",
    "pubkeyacceptedalgorithms",
    "localforward",
    "remoteforward",
    "dynamicforward",
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/ssh_config")
}

/// The fixture text as UTF-8 without a byte-order mark (what ssh is given).
fn plain_utf8(bytes: &[u8]) -> String {
    let utf16 = |rest: &[u8], le: bool| {
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| {
                if le {
                    u16::from_le_bytes([c[0], c[1]])
                } else {
                    u16::from_be_bytes([c[0], c[1]])
                }
            })
            .collect();
        String::from_utf16(&units).unwrap()
    };
    if let Some(rest) = bytes.strip_prefix(b"\xef\xbb\xbf") {
        String::from_utf8(rest.to_vec()).unwrap()
    } else if let Some(rest) = bytes.strip_prefix(b"\xff\xfe") {
        utf16(rest, true)
    } else if let Some(rest) = bytes.strip_prefix(b"\xfe\xff") {
        utf16(rest, false)
    } else {
        String::from_utf8(bytes.to_vec()).unwrap()
    }
}

/// Replaces the placeholders in text (UTF-8) or in UTF-16 bytes alike.
fn substitute(bytes: &[u8], dir: &str, sshrel: &str) -> Vec<u8> {
    let text = plain_utf8(bytes);
    if !text.contains('@') {
        return bytes.to_vec();
    }
    assert!(
        bytes.is_ascii() || std::str::from_utf8(bytes).is_ok(),
        "placeholders only in UTF-8 fixtures"
    );
    String::from_utf8_lossy(bytes)
        .replace("@DIR@", dir)
        .replace("@SSHREL@", sshrel)
        .into_bytes()
}

/// `ssh -G` output as option → values.
fn openssh(file: &Path, host: &str) -> Result<BTreeMap<String, Vec<String>>, String> {
    let out = Command::new("ssh")
        .arg("-G")
        .arg("-F")
        .arg(file)
        .arg(host)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ssh: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ssh -G -F {} {host} failed: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let (k, v) = line.split_once(' ').unwrap_or((line, ""));
        map.entry(k.to_string()).or_default().push(v.to_string());
    }
    Ok(map)
}

/// Removes `~/.ssh/<name>` when the test ends, however it ends.
struct SshDirCopy(PathBuf);

impl Drop for SshDirCopy {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The imported profile's fields in `ssh -G` terms, for the options a profile holds.
fn profile_view(p: &Profile, local_user: &str, home: &Path) -> Vec<(&'static str, Vec<String>)> {
    // An empty known_hosts list means OpenSSH's default files; /dev/null stands for `none`.
    let files = |list: &[PathBuf], default: [String; 2]| -> Vec<String> {
        if list.is_empty() {
            return vec![default.join(" ")];
        }
        let names: Vec<String> = list
            .iter()
            .map(|f| {
                if f == Path::new("/dev/null") {
                    "none".to_string()
                } else {
                    f.display().to_string()
                }
            })
            .collect();
        vec![names.join(" ")]
    };
    let ssh = home.join(".ssh");
    let fwd = |want: &str| -> Vec<String> {
        p.forwards
            .iter()
            .filter_map(|r| match (&r.spec, want) {
                (
                    ForwardSpec::Local {
                        bind,
                        port,
                        host,
                        host_port,
                    },
                    "localforward",
                )
                | (
                    ForwardSpec::Remote {
                        bind,
                        port,
                        host,
                        host_port,
                    },
                    "remoteforward",
                ) => Some(format!("{} [{host}]:{host_port}", listen(bind, *port))),
                (ForwardSpec::Dynamic { bind, port }, "dynamicforward") => {
                    Some(listen(bind, *port))
                }
                _ => None,
            })
            .collect()
    };
    vec![
        ("hostname", vec![p.host.clone()]),
        (
            "user",
            vec![p.user.clone().unwrap_or_else(|| local_user.to_string())],
        ),
        ("port", vec![p.port.to_string()]),
        ("proxyjump", p.jump.iter().cloned().collect()),
        ("proxycommand", p.proxy_command.iter().cloned().collect()),
        (
            "connecttimeout",
            vec![
                p.connect_timeout
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| "none".into()),
            ],
        ),
        ("localforward", fwd("localforward")),
        ("remoteforward", fwd("remoteforward")),
        ("dynamicforward", fwd("dynamicforward")),
        (
            "identitiesonly",
            vec![if p.identities_only { "yes" } else { "no" }.to_string()],
        ),
        ("hostkeyalias", p.host_key_alias.iter().cloned().collect()),
        (
            "userknownhostsfile",
            files(
                &p.user_known_hosts_files,
                [
                    ssh.join("known_hosts").display().to_string(),
                    ssh.join("known_hosts2").display().to_string(),
                ],
            ),
        ),
        (
            "globalknownhostsfile",
            files(
                &p.global_known_hosts_files,
                [
                    "/etc/ssh/ssh_known_hosts".into(),
                    "/etc/ssh/ssh_known_hosts2".into(),
                ],
            ),
        ),
        (
            "stricthostkeychecking",
            vec![
                p.strict_host_key_checking
                    .map_or("ask", |s| s.openssh())
                    .to_string(),
            ],
        ),
        (
            "hostkeyalgorithms",
            vec![algorithms(&p.host_key_algorithms)],
        ),
        (
            "pubkeyacceptedalgorithms",
            vec![algorithms(&p.pubkey_accepted_algorithms)],
        ),
    ]
}

/// A saved algorithm list as `ssh -G` prints it (`None`: the default list).
fn algorithms(spec: &Option<String>) -> String {
    match spec {
        Some(spec) => assemble_key_algorithms(spec)
            .map(|l| l.join(","))
            .unwrap_or_else(|e| format!("<{e}>")),
        None => DEFAULT_KEY_ALGORITHMS.join(","),
    }
}

/// A listen address as `ssh -G` prints it; the import writes OpenSSH's default (loopback) as
/// 127.0.0.1, which `ssh -G` leaves out.
fn listen(bind: &str, port: u16) -> String {
    if bind == "127.0.0.1" {
        format!("{port}")
    } else {
        format!("[{bind}]:{port}")
    }
}

#[test]
fn every_fixture_resolves_like_openssh_ssh_g() {
    let src = fixtures();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("fixtures");
    // Copy the corpus, filling in @DIR@ (absolute includes) and @SSHREL@ (~/.ssh-relative).
    let home = PathBuf::from(std::env::var("HOME").expect("HOME is set"));
    let sshrel = format!("tunnelbook-fixtures-{}", std::process::id());
    let ssh_dir = home.join(".ssh").join(&sshrel);
    fs::create_dir_all(&ssh_dir).unwrap();
    let _cleanup = SshDirCopy(ssh_dir.clone());
    let dir_s = dir.display().to_string();
    let copy = |from: &Path, to: &Path| {
        for entry in walk(from) {
            let rel = entry.strip_prefix(from).unwrap();
            let target = to.join(rel);
            fs::create_dir_all(target.parent().unwrap()).unwrap();
            let bytes = fs::read(&entry).unwrap();
            fs::write(&target, substitute(&bytes, &dir_s, &sshrel)).unwrap();
        }
    };
    copy(&src, &dir);
    copy(&src.join("home-ssh"), &ssh_dir);

    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    files.sort();
    assert!(files.len() >= 40, "the corpus has {} files", files.len());

    let plain_dir = work.path().join("plain");
    fs::create_dir_all(&plain_dir).unwrap();
    let local_user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let mut differences = Vec::new();
    let mut compared = 0;
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = fs::read(file).unwrap();
        let text = plain_utf8(&bytes);
        // ssh refuses byte-order marks and UTF-16: it gets the same text as plain UTF-8.
        let for_ssh = plain_dir.join(&name);
        fs::write(&for_ssh, &text).unwrap();

        let config = SshConfig::load(file).unwrap_or_else(|e| panic!("{name}: {e}"));
        let report = read_ssh_config(file).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut hosts = config.aliases.clone();
        for line in text.lines() {
            if let Some(extra) = line.trim().strip_prefix("# ask:") {
                hosts.extend(extra.split_whitespace().map(str::to_string));
            }
        }
        assert!(!hosts.is_empty(), "{name} names no host");
        for host in &hosts {
            let expected = match openssh(&for_ssh, host) {
                Ok(map) => map,
                Err(e) => {
                    differences.push(format!("{name}: {e}"));
                    continue;
                }
            };
            let resolved = config.resolve(host);
            let mut ours: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (k, v) in resolved.openssh_view() {
                ours.entry(k).or_default().push(v);
            }
            for option in COMPARED {
                let theirs = expected.get(*option).cloned().unwrap_or_default();
                let mine = ours.get(*option).cloned().unwrap_or_default();
                compared += 1;
                if theirs != mine {
                    differences.push(format!(
                        "{name}: host {host}: {option}: Tunnelbook resolves {mine:?}, OpenSSH {theirs:?}"
                    ));
                }
            }
            // What is saved: the imported profile of each concrete alias.
            if let Some(profile) = report.imported.iter().find(|p| &p.name == host) {
                for (option, mine) in profile_view(profile, &local_user, &home) {
                    // An explicit 127.0.0.1 listener and OpenSSH's default one are the same.
                    let theirs: Vec<String> = expected
                        .get(option)
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .map(|v| {
                            v.strip_prefix("[127.0.0.1]:")
                                .map(str::to_string)
                                .unwrap_or(v)
                        })
                        .collect();
                    if theirs != mine {
                        differences.push(format!(
                            "{name}: host {host}: imported {option}: Tunnelbook saves {mine:?}, OpenSSH {theirs:?}"
                        ));
                    }
                }
                let interval = expected["serveraliveinterval"][0].parse::<u32>().unwrap();
                if resolved.server_alive_interval.is_some()
                    && profile.keepalive_interval != interval
                {
                    differences.push(format!(
                        "{name}: host {host}: imported serveraliveinterval: Tunnelbook saves {}, OpenSSH {interval}",
                        profile.keepalive_interval
                    ));
                }
                // Key files: those that exist, ~ and tokens expanded, in OpenSSH's order; none
                // named means the default keys, which an empty list also means to Tunnelbook.
                let named = expected.get("identityfile").cloned().unwrap_or_default();
                let files: Vec<PathBuf> = if named == DEFAULT_IDENTITY_FILES {
                    Vec::new()
                } else {
                    named
                        .iter()
                        .map(|f| PathBuf::from(resolved.expand_path(f).unwrap()))
                        .filter(|p| p.is_file())
                        .collect()
                };
                if profile.identity_files != files {
                    differences.push(format!(
                        "{name}: host {host}: imported identityfile: Tunnelbook saves {:?}, OpenSSH {files:?}",
                        profile.identity_files
                    ));
                }
                // Certificates: those that exist, expanded as OpenSSH does when it connects.
                let certificates: Vec<PathBuf> = expected
                    .get("certificatefile")
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|f| PathBuf::from(resolved.expand_path(f).unwrap()))
                    .filter(|p| p.is_file())
                    .collect();
                if profile.certificate_files != certificates {
                    differences.push(format!(
                        "{name}: host {host}: imported certificatefile: Tunnelbook saves {:?}, OpenSSH {certificates:?}",
                        profile.certificate_files
                    ));
                }
            } else if config.aliases.contains(host) {
                let why = report
                    .skipped
                    .iter()
                    .find(|s| &s.name == host)
                    .map(|s| s.reason.clone());
                differences.push(format!("{name}: host {host} was not imported: {why:?}"));
            }
        }
    }
    assert!(
        differences.is_empty(),
        "{} differences from OpenSSH ({compared} options compared):\n{}",
        differences.len(),
        differences.join("\n")
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn imported(report: &tunnelbook_core::profile::ImportReport, name: &str) -> Profile {
    report
        .imported
        .iter()
        .find(|p| p.name == name)
        .cloned()
        .unwrap_or_else(|| panic!("{name} not imported: {report:?}"))
}

/// Case 01: a config saved by a Windows editor (UTF-8 with BOM, UTF-16 LE/BE with BOM, CRLF):
/// both hosts are imported exactly as written, and the BOM / UTF-16 is pointed out.
#[test]
fn case_01_bom_utf16_and_crlf_configs_import_each_host_as_written() {
    for file in [
        "01-bom-utf8.conf",
        "01-utf16le-bom.conf",
        "01-utf16be-bom.conf",
        "01-crlf.conf",
    ] {
        let report = read_ssh_config(&fixtures().join(file)).unwrap();
        let names: Vec<&str> = report.imported.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["gpu-a", "gpu-b"], "{file}: {report:?}");
        let a = imported(&report, "gpu-a");
        assert_eq!(
            (a.host.as_str(), a.user.as_deref(), a.port),
            ("gpu-a.lab.example.org", Some("alice"), 2222),
            "{file}"
        );
        let b = imported(&report, "gpu-b");
        assert_eq!(
            (b.host.as_str(), b.user.as_deref(), b.port),
            ("gpu-b.lab.example.org", None, 22),
            "{file}"
        );
        let notes = report.notes.join("\n");
        if file != "01-crlf.conf" {
            assert!(
                notes.contains("byte-order mark") || notes.contains("UTF-16"),
                "{file}: {notes}"
            );
        }
        assert!(!notes.contains('\u{feff}'), "{file}: {notes}");
    }
    // UTF-16 without a byte-order mark cannot be told apart safely: refused, saying what to do.
    let dir = tempfile::tempdir().unwrap();
    let bare: Vec<u8> = "Host x\n"
        .encode_utf16()
        .flat_map(|u| u.to_le_bytes())
        .collect();
    fs::write(dir.path().join("config"), bare).unwrap();
    let err = read_ssh_config(&dir.path().join("config")).unwrap_err();
    assert!(err.to_string().contains("save it as UTF-8"), "{err}");
}

/// Case 02: `ProxyJump user@alias[:port]` is saved as written and resolves to the `alias`
/// host with that user (and port).
#[test]
fn case_02_proxyjump_user_at_alias_resolves_through_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let store = tunnelbook_core::profile::ProfileStore::in_home(dir.path());
    let report = tunnelbook_core::profile::import_ssh_config(
        &store,
        &fixtures().join("02-proxyjump-user-at-alias.conf"),
    )
    .unwrap();
    assert!(report.skipped.is_empty(), "{report:?}");
    let behind = store.get("gpu-behind").unwrap();
    assert_eq!(behind.jump.as_deref(), Some("bcuser@bastion"));
    let chain = store.chain("gpu-behind").unwrap();
    let hops: Vec<(&str, u16, Option<&str>)> = chain
        .iter()
        .map(|p| (p.host.as_str(), p.port, p.user.as_deref()))
        .collect();
    assert_eq!(
        hops,
        [
            ("127.0.0.1", 2201, Some("bcuser")),
            ("127.0.0.1", 2202, Some("bcuser"))
        ]
    );
    assert_eq!(chain[0].name, "bastion");
    let chain = store.chain("gpu-behind-port").unwrap();
    assert_eq!((chain[0].host.as_str(), chain[0].port), ("127.0.0.1", 2222));
    assert_eq!(chain[0].user.as_deref(), Some("bcuser"));
}

/// Case 03: settings after a top-of-file `Include` are global again.
#[test]
fn case_03_settings_after_include_are_global() {
    let work = tempfile::tempdir().unwrap();
    let text = fs::read_to_string(fixtures().join("03-include-then-global.conf"))
        .unwrap()
        .replace("@DIR@", &fixtures().display().to_string());
    let file = work.path().join("config");
    fs::write(&file, text).unwrap();
    let report = read_ssh_config(&file).unwrap();
    let gpu = imported(&report, "gpu");
    assert_eq!(
        (
            gpu.host.as_str(),
            gpu.user.as_deref(),
            gpu.port,
            gpu.keepalive_interval
        ),
        ("gpu.lab.example.org", Some("globaluser"), 22, 60)
    );
    let orb = imported(&report, "orb");
    assert_eq!(
        (orb.user.as_deref(), orb.port, orb.keepalive_interval),
        (Some("default"), 32222, 60)
    );
}

/// A jump host that only pattern blocks describe is dialled as written: the import says which
/// of its settings are not applied.
#[test]
fn a_jump_host_known_only_to_patterns_is_reported() {
    let report = read_ssh_config(&fixtures().join("33-proxyjump-chains.conf")).unwrap();
    let notes = report.notes.join("\n");
    assert!(
        notes.contains("via-pattern-hop: jump host j1.hops.example.org")
            && notes.contains("user (")
            && notes.contains("33-proxyjump-chains.conf:"),
        "{notes}"
    );
}

/// Every setting Tunnelbook does not map, and every missing key file, is reported with the
/// file and line it comes from.
#[test]
fn unmapped_settings_and_missing_keys_name_their_line() {
    let file = fixtures().join("47-real-world.conf");
    let report = read_ssh_config(&file).unwrap();
    let notes = report.notes.join("\n");
    let at = |line: u32| format!("{}:{line}", file.display());
    assert!(
        notes.contains(&format!(
            "AddKeysToAgent has no Tunnelbook equivalent and was ignored ({})",
            at(29)
        )),
        "{notes}"
    );
    assert!(
        notes.contains(&format!("{}: github.com: key file", at(5))) && notes.contains("id_github"),
        "{notes}"
    );
    // IdentitiesOnly (line 6) is applied now: saved, not reported.
    assert!(
        imported(&report, "github.com").identities_only,
        "{report:?}"
    );
    assert!(!notes.contains("IdentitiesOnly"), "{notes}");
    let report = read_ssh_config(&fixtures().join("14-match-exec.conf")).unwrap();
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("14-match-exec.conf:3: Match exec is not run")),
        "{:?}",
        report.notes
    );
}

/// IdentityFile paths are expanded as OpenSSH expands them when it connects: `~`, `${ENV}`
/// and the tokens `%d %h %r %p %n %u %%`.
#[test]
fn identity_file_tokens_expand_like_openssh() {
    let home = PathBuf::from(std::env::var("HOME").unwrap());
    let rel = format!("tunnelbook-idtokens-{}", std::process::id());
    let keys = home.join(".ssh").join(&rel);
    fs::create_dir_all(&keys).unwrap();
    let _cleanup = SshDirCopy(keys.clone());
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let expected = [
        keys.join("id_tok.example.org_alice_2200"),
        keys.join("id_tok"),
        keys.join(format!("id_{user}_%")),
    ];
    for k in &expected {
        fs::write(
            k,
            "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
        )
        .unwrap();
    }
    let config = keys.join("config");
    fs::write(
        &config,
        format!(
            "Host tok\n    HostName tok.example.org\n    User alice\n    Port 2200\n    \
             IdentityFile ${{HOME}}/.ssh/{rel}/id_%h_%r_%p\n    IdentityFile ~/.ssh/{rel}/id_%n\n    \
             IdentityFile %d/.ssh/{rel}/id_%u_%%\n    IdentityFile ~/.ssh/{rel}/missing_%h\n"
        ),
    )
    .unwrap();
    let report = read_ssh_config(&config).unwrap();
    let tok = imported(&report, "tok");
    assert_eq!(tok.identity_files, expected.to_vec());
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("missing_tok.example.org") && n.contains("does not exist")),
        "{:?}",
        report.notes
    );
}

/// Forwards OpenSSH accepts but Tunnelbook cannot save (Unix sockets, a remote SOCKS forward)
/// are left out with a note naming the line; the host and its TCP forwards are imported.
#[test]
fn unix_socket_and_remote_socks_forwards_are_reported_not_dropped_silently() {
    let file = fixtures().join("unmappable/socket-forwards.conf");
    let report = read_ssh_config(&file).unwrap();
    let sock = imported(&report, "sock");
    assert_eq!(sock.forwards.len(), 1, "{:?}", sock.forwards);
    let notes = report.notes.join("\n");
    for line in [3, 4, 5] {
        assert!(
            notes.contains(&format!("sock: {}:{line}: ", file.display())),
            "line {line}: {notes}"
        );
    }
}

/// IdentitiesOnly, CertificateFile, HostKeyAlias, UserKnownHostsFile, GlobalKnownHostsFile,
/// StrictHostKeyChecking and HostKeyAlgorithms are saved on the profile (the differential
/// test compares their values with `ssh -G`), none is reported as "not applied", a missing
/// certificate is named with its line, and `StrictHostKeyChecking no` says how it differs.
#[test]
fn host_key_and_identity_options_are_saved_not_reported() {
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("57.conf");
    fs::write(
        &file,
        fs::read_to_string(fixtures().join("57-known-hosts-certificates-policy.conf"))
            .unwrap()
            .replace("@SSHREL@", "no-such-dir"),
    )
    .unwrap();
    let report = read_ssh_config(&file).unwrap();
    let notes = report.notes.join("\n");
    assert!(!notes.contains("not applied"), "{notes}");
    assert!(
        report.notes.iter().any(|n| n
            .starts_with(&format!("{}:9: gk1: certificate file ", file.display()))
            && n.ends_with("certs/missing-cert.pub does not exist; left out")),
        "{notes}"
    );
    assert!(
        notes.contains("gk2: StrictHostKeyChecking no") && notes.contains("changed"),
        "{notes}"
    );
    use tunnelbook_core::profile::StrictHostKeyChecking as S;
    let gk1 = imported(&report, "gk1");
    assert!(gk1.identities_only);
    assert_eq!(gk1.host_key_alias.as_deref(), Some("gpu-cluster"));
    assert_eq!(gk1.user_known_hosts_files, [PathBuf::from("/dev/null")]);
    assert_eq!(gk1.strict_host_key_checking, Some(S::AcceptNew));
    assert_eq!(gk1.host_key_algorithms.as_deref(), Some("-ssh-rsa*"));
    let gk2 = imported(&report, "gk2");
    assert_eq!(gk2.strict_host_key_checking, Some(S::No));
    assert_eq!(gk2.global_known_hosts_files, [PathBuf::from("/dev/null")]);
    let gk3 = imported(&report, "gk3");
    assert_eq!(gk3.strict_host_key_checking, Some(S::Yes));
    assert_eq!(gk3.host_key_algorithms.as_deref(), Some("^ssh-rsa"));
    // Saved through the store, the options survive the round trip.
    let home = tempfile::tempdir().unwrap();
    let store = tunnelbook_core::profile::ProfileStore::in_home(home.path());
    let report = tunnelbook_core::profile::import_ssh_config(&store, &file).unwrap();
    assert!(report.skipped.iter().all(|s| s.name == "*"), "{report:?}");
    assert_eq!(store.get("gk3").unwrap(), gk3);
}
