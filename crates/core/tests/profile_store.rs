//! The profiles store on a real file system: round trip, migration, corrupt files, backups,
//! validation and the ssh config import.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{fs, path::PathBuf};

use tunnelbook_core::{
    profile::{
        AuthMethod, CURRENT_VERSION, FieldError, Profile, ProfileError, ProfileStore,
        import_ssh_config, read_ssh_config, validate,
    },
    secret::{MemoryStore, SecretKey, SecretKind, SecretStore, Sensitive},
    tunnel::{ForwardRule, ForwardSpec},
};

fn full_profile(dir: &std::path::Path) -> Profile {
    let key = dir.join("id_ed25519");
    fs::write(
        &key,
        "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
    )
    .unwrap();
    Profile {
        name: "a100".into(),
        host: "gpu1.lab.example.edu".into(),
        port: 2222,
        user: Some("alice".into()),
        auth: vec![AuthMethod::Agent, AuthMethod::KeyFile],
        identity_files: vec![key],
        jump: Some("alice@bastion.example.edu:2200".into()),
        proxy_command: Some("ssh -W %h:%p bastion".into()),
        connect_timeout: Some(20),
        keepalive_interval: 30,
        keepalive_max: 4,
        notebook_dir: Some("~/work".into()),
        environment: Some("torch".into()),
        gpu: Some("auto".into()),
        modules: vec!["python/3.11".into()],
        pre_launch: vec!["module load cuda/12.4".into()],
        forwards: vec![
            ForwardRule {
                last_port: None,
                enabled: true,
                spec: ForwardSpec::Local {
                    bind: "127.0.0.1".into(),
                    port: 6006,
                    host: "localhost".into(),
                    host_port: 6006,
                },
            },
            ForwardRule {
                last_port: None,
                enabled: false,
                spec: ForwardSpec::Remote {
                    bind: "localhost".into(),
                    port: 9000,
                    host: "127.0.0.1".into(),
                    host_port: 9000,
                },
            },
            ForwardRule {
                last_port: None,
                enabled: true,
                spec: ForwardSpec::Dynamic {
                    bind: "127.0.0.1".into(),
                    port: 1080,
                },
            },
        ],
        tags: vec!["lab".into(), "a100".into()],
        color: Some("#3b82f6".into()),
        identities_only: true,
        certificate_files: vec!["~/.ssh/id_lab-cert.pub".into()],
        host_key_alias: Some("a100-login".into()),
        user_known_hosts_files: vec!["~/.ssh/known_hosts_lab".into()],
        global_known_hosts_files: vec!["/etc/ssh/ssh_known_hosts_lab".into()],
        strict_host_key_checking: Some(tunnelbook_core::profile::StrictHostKeyChecking::AcceptNew),
        host_key_algorithms: Some("+ssh-rsa".into()),
        pubkey_accepted_algorithms: Some("-ssh-rsa,ssh-dss".into()),
        scheduler: Some(tunnelbook_core::slurm::Scheduler::Slurm),
        slurm: Some(tunnelbook_core::slurm::SlurmDefaults {
            partition: Some("gpu".into()),
            account: Some("lab".into()),
            time: Some("2:00:00".into()),
            gpus: Some("a100:1".into()),
            gpu_flag: tunnelbook_core::slurm::GpuFlag::GpusPerNode,
            sbatch_lines: vec!["--mem=32G".into()],
            setup: vec!["module load cuda".into()],
        }),
    }
}

fn simple(name: &str) -> Profile {
    Profile {
        name: name.into(),
        host: format!("{name}.example.edu"),
        ..Profile::default()
    }
}

#[test]
fn round_trip_keeps_every_field_and_backs_up() {
    let dir = tempfile::tempdir().unwrap();
    let store = ProfileStore::in_home(dir.path());
    assert_eq!(store.load().unwrap(), vec![]);
    let p = full_profile(dir.path());
    store.add(p.clone()).unwrap();
    store.add(simple("b")).unwrap();
    assert_eq!(store.load().unwrap(), vec![p.clone(), simple("b")]);
    assert_eq!(store.get("a100").unwrap(), p);
    let text = fs::read_to_string(store.path()).unwrap();
    assert!(
        text.contains(&format!("version = {CURRENT_VERSION}")),
        "{text}"
    );
    // The previous version (one host) is the backup.
    let bak = fs::read_to_string(store.backup_path()).unwrap();
    assert!(
        bak.contains("a100") && !bak.contains("name = \"b\""),
        "{bak}"
    );
    // No temp files left behind.
    let names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains("tmp")), "{names:?}");
}

/// A write that fails half-way (here: the backup cannot replace `hosts.toml.bak`, which is a
/// directory) keeps the old file and removes its temporary copies, so failed writes do not pile
/// up `*.tmp-PID` files; the next write after the obstacle is gone works.
#[test]
fn failed_write_keeps_the_file_and_leaves_no_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = ProfileStore::in_home(dir.path());
    store.add(simple("a")).unwrap();
    let before = fs::read_to_string(store.path()).unwrap();
    fs::create_dir(store.backup_path()).unwrap();
    fs::write(store.backup_path().join("in-the-way"), "x").unwrap();

    let err = store.add(simple("b")).unwrap_err();
    assert!(matches!(err, ProfileError::Io { .. }), "{err:?}");
    assert_eq!(fs::read_to_string(store.path()).unwrap(), before);
    let names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains("tmp")), "{names:?}");

    fs::remove_dir_all(store.backup_path()).unwrap();
    store.add(simple("b")).unwrap();
    store.add(simple("c")).unwrap();
    assert_eq!(
        store.load().unwrap(),
        vec![simple("a"), simple("b"), simple("c")]
    );
}

#[test]
fn edit_and_remove_with_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let store = ProfileStore::in_home(dir.path());
    store.add(full_profile(dir.path())).unwrap();
    store.add(simple("other")).unwrap();
    let edited = store.edit("a100", |p| p.port = 22).unwrap();
    assert_eq!(edited.port, 22);
    assert_eq!(store.get("a100").unwrap().port, 22);

    let secrets = MemoryStore::default();
    let v = Sensitive::new("s3cret".to_string());
    let key_path = dir.path().join("id_ed25519");
    let mine = [
        store.get("a100").unwrap().password_key(),
        // Left by an older Tunnelbook, not tied to a destination.
        SecretKey::password("a100", ""),
        SecretKey::passphrase("a100", &key_path),
        SecretKey {
            profile: "a100".into(),
            kind: SecretKind::JupyterToken("gpu1:8888".into()),
        },
    ];
    for k in &mine {
        secrets.persist(k, &v).unwrap();
    }
    let other = store.get("other").unwrap().password_key();
    secrets.persist(&other, &v).unwrap();
    let removed = store.remove("a100", Some(&secrets)).unwrap();
    assert_eq!(removed.name, "a100");
    for k in &mine {
        assert!(secrets.retrieve(k).unwrap().is_none(), "{k:?} survived");
    }
    assert!(secrets.retrieve(&other).unwrap().is_some());
    assert!(matches!(store.get("a100"), Err(ProfileError::NotFound(_))));
    assert!(matches!(
        store.remove("a100", None),
        Err(ProfileError::NotFound(_))
    ));
}

#[test]
fn migrates_v0_prototype_file() {
    let dir = tempfile::tempdir().unwrap();
    let v0 = r#"# Tunnelbook 0.0.3 hosts
[[hosts]]
name = "a100"
hostname = "gpu1.lab.example.edu"
port = 2222
username = "alice"
identity_file = "~/.ssh/id_lab"
proxy_jump = "bastion"
keepalive = 30
notebook_dir = "~/work"
conda_env = "torch"
gpu = 1
local_forwards = ["6006:localhost:6006", "127.0.0.1:8265:localhost:8265"]

[[hosts]]
name = "bastion"
hostname = "bastion.example.edu"
username = "alice"
"#;
    fs::write(dir.path().join("hosts.toml"), v0).unwrap();
    let store = ProfileStore::in_home(dir.path());
    let hosts = store.load().unwrap();
    assert_eq!(hosts.len(), 2);
    let a = &hosts[0];
    assert_eq!(
        (a.host.as_str(), a.port, a.user.as_deref()),
        ("gpu1.lab.example.edu", 2222, Some("alice"))
    );
    assert_eq!(a.identity_files, vec![PathBuf::from("~/.ssh/id_lab")]);
    assert_eq!(a.jump.as_deref(), Some("bastion"));
    assert_eq!((a.keepalive_interval, a.keepalive_max), (30, 2));
    assert_eq!(
        (
            a.notebook_dir.as_deref(),
            a.environment.as_deref(),
            a.gpu.as_deref()
        ),
        (Some("~/work"), Some("torch"), Some("1"))
    );
    assert_eq!(
        a.forwards[1].spec,
        ForwardSpec::Local {
            bind: "127.0.0.1".into(),
            port: 8265,
            host: "localhost".into(),
            host_port: 8265
        }
    );
    assert_eq!(hosts[1].port, 22);
    // Loading does not rewrite; the next change writes v1 and keeps the v0 file.
    assert_eq!(fs::read_to_string(store.path()).unwrap(), v0);
    store.edit("bastion", |p| p.port = 2200).unwrap();
    assert!(
        fs::read_to_string(store.path())
            .unwrap()
            .contains("version = 1")
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("hosts.toml.v0.bak")).unwrap(),
        v0
    );
    assert_eq!(store.load().unwrap()[0], hosts[0]);
}

#[test]
fn corrupt_file_is_kept_aside_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let store = ProfileStore::in_home(dir.path());
    store.add(simple("a")).unwrap();
    store.add(simple("b")).unwrap();
    let garbage = "version = 1\n[[host]\nname = \"half-written";
    fs::write(store.path(), garbage).unwrap();
    let err = store.update(|h| {
        h.push(simple("c"));
        Ok(())
    });
    let Err(ProfileError::Corrupt {
        kept_at,
        backup,
        message,
        ..
    }) = err
    else {
        panic!("{err:?}")
    };
    assert!(!message.is_empty());
    let name = kept_at.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("hosts.toml.corrupt-")
            && name.len() == "hosts.toml.corrupt-YYYYMMDD-HHMMSS".len(),
        "{name}"
    );
    assert_eq!(
        fs::read_to_string(&kept_at).unwrap(),
        garbage,
        "kept byte for byte"
    );
    assert_eq!(backup.as_deref(), Some(store.backup_path().as_path()));
    let shown = ProfileError::Corrupt {
        path: store.path().into(),
        kept_at: kept_at.clone(),
        backup,
        message,
    }
    .to_string();
    assert!(
        shown.contains("moved to") && shown.contains(".bak"),
        "{shown}"
    );
    // The user was told; from now on the store starts empty and the kept file is untouched.
    assert_eq!(store.load().unwrap(), vec![]);
    store.add(simple("c")).unwrap();
    assert_eq!(fs::read_to_string(&kept_at).unwrap(), garbage);

    // Valid TOML with the wrong shape is also set aside, not overwritten.
    fs::write(
        store.path(),
        "version = 1\n[[host]]\nname = \"x\"\nport = \"ssh\"\n",
    )
    .unwrap();
    assert!(matches!(store.load(), Err(ProfileError::Corrupt { .. })));
}

#[test]
fn newer_schema_is_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let store = ProfileStore::in_home(dir.path());
    fs::write(store.path(), "version = 99\n").unwrap();
    assert!(matches!(
        store.add(simple("a")),
        Err(ProfileError::TooNew { found: 99, .. })
    ));
    assert_eq!(fs::read_to_string(store.path()).unwrap(), "version = 99\n");
}

fn fields(errors: &[FieldError], profile: &str) -> Vec<String> {
    errors
        .iter()
        .filter(|e| e.profile == profile)
        .map(|e| e.field.clone())
        .collect()
}

#[test]
fn validation_reports_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let bad = Profile {
        name: "bad".into(),
        host: "gpu 1.example.edu".into(),
        port: 0,
        user: Some("al ice".into()),
        identity_files: vec![dir.path().join("missing_key")],
        jump: Some("nosuchhost".into()),
        forwards: vec![
            ForwardRule {
                last_port: None,
                enabled: true,
                spec: ForwardSpec::Local {
                    bind: "127.0.0.1".into(),
                    port: 8888,
                    host: "".into(),
                    host_port: 0,
                },
            },
            ForwardRule {
                last_port: None,
                enabled: true,
                spec: ForwardSpec::Dynamic {
                    bind: "127.0.0.1".into(),
                    port: 8888,
                },
            },
        ],
        ..Profile::default()
    };
    let errors = validate(&[bad]);
    assert_eq!(
        fields(&errors, "bad"),
        [
            "host",
            "port",
            "user",
            "identityFiles[0]",
            "jump",
            "forwards[0].host",
            "forwards[0].hostPort",
            "forwards[1].port"
        ]
    );
    assert!(errors.iter().all(|e| !e.message.is_empty()));
    let json = serde_json::to_value(&errors[0]).unwrap();
    assert_eq!(json["field"], "host");
    assert!(json["message"].is_string());

    // Empty host, user@host in the host field, host:port in the host field.
    for (host, needle) in [("", "empty"), ("alice@gpu", "user"), ("gpu:22", "port")] {
        let errors = validate(&[Profile {
            name: "x".into(),
            host: host.into(),
            ..Profile::default()
        }]);
        assert!(errors[0].message.contains(needle), "{host}: {errors:?}");
    }

    // "local" is this computer (`tunnelbook up local`, the app's first host entry).
    let errors = validate(&[simple("local")]);
    assert_eq!(fields(&errors, "local"), ["name"], "{errors:?}");
    assert!(errors[0].message.contains("this computer"), "{errors:?}");

    // Duplicates, cycles, a jump to a saved host and to a server that is not saved.
    let with_jump = |name: &str, jump: &str| Profile {
        jump: Some(jump.into()),
        ..simple(name)
    };
    let errors = validate(&[
        with_jump("a", "b"),
        with_jump("b", "c"),
        with_jump("c", "a"),
        simple("d"),
        simple("d"),
        with_jump("e", "d"),
        with_jump("f", "bob@bastion.example.edu:2200"),
        with_jump("g", "g"),
    ]);
    for name in ["a", "b", "c"] {
        assert_eq!(fields(&errors, name), ["jump"], "{errors:?}");
    }
    assert!(
        errors.iter().any(|e| e.message.contains("a → b → c → a")),
        "{errors:?}"
    );
    assert_eq!(fields(&errors, "d"), ["name"]);
    assert!(fields(&errors, "e").is_empty() && fields(&errors, "f").is_empty());
    assert_eq!(fields(&errors, "g"), ["jump"]);
    assert!(
        validate(&[
            simple("ok"),
            Profile {
                host: "10.0.0.7".into(),
                ..simple("ip")
            },
            Profile {
                host: "fe80::1".into(),
                ..simple("ip6")
            }
        ])
        .is_empty()
    );
}

#[test]
fn store_refuses_invalid_changes_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = ProfileStore::in_home(dir.path());
    store.add(simple("a")).unwrap();
    let err = store
        .add(Profile {
            port: 0,
            ..simple("a")
        })
        .unwrap_err();
    let ProfileError::Invalid(errors) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(fields(errors, "a"), ["port", "name"]);
    assert!(
        err.to_string()
            .contains("a: port: the port must be between 1 and 65535"),
        "{err}"
    );
    assert_eq!(store.load().unwrap(), vec![simple("a")]);

    // A key file that disappeared does not block editing another host.
    let key = dir.path().join("k");
    fs::write(
        &key,
        "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
    )
    .unwrap();
    store
        .add(Profile {
            identity_files: vec![key.clone()],
            ..simple("keyed")
        })
        .unwrap();
    fs::remove_file(&key).unwrap();
    store.edit("a", |p| p.port = 2222).unwrap();
    assert!(matches!(
        store.edit("keyed", |p| p.port = 2222),
        Err(ProfileError::Invalid(_))
    ));
}

#[test]
fn imports_ssh_config_with_patterns_and_includes() {
    let dir = tempfile::tempdir().unwrap();
    let ssh = dir.path().join("ssh");
    fs::create_dir_all(ssh.join("config.d")).unwrap();
    let key = ssh.join("id_lab");
    fs::write(
        &key,
        "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
    )
    .unwrap();
    fs::write(
        ssh.join("config"),
        format!(
            r#"# my hosts
Include {ssh}/config.d/*.conf
Include missing.conf

Host gpu1 gpu2
    HostName %h.lab.example.edu
    User alice
    IdentityFile {key}
    IdentityFile {dir}/nope
    ProxyJump bastion

Host gpu2
    Port 2222
    User bob

Host *.lab.example.edu !secret.lab.example.edu
    User labuser

Match host foo
    User matched

Host broken
    HostName broken.example.edu
    Port notaport

Host *
    ServerAliveInterval 60
    ServerAliveCountMax 5
    Port 2200
    ForwardAgent yes
    Compression yes
"#,
            key = key.display(),
            dir = dir.path().display(),
            ssh = ssh.display()
        ),
    )
    .unwrap();
    fs::write(
        ssh.join("config.d/10-bastion.conf"),
        "Host bastion\n  HostName bastion.example.edu\n  User alice\n  Port 22\n",
    )
    .unwrap();

    let report = read_ssh_config(&ssh.join("config")).unwrap();
    let names: Vec<&str> = report.imported.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["bastion", "gpu1", "gpu2"]);
    let gpu1 = &report.imported[1];
    assert_eq!(gpu1.host, "gpu1.lab.example.edu");
    assert_eq!(gpu1.user.as_deref(), Some("alice"));
    assert_eq!(gpu1.port, 2200, "from Host *");
    assert_eq!((gpu1.keepalive_interval, gpu1.keepalive_max), (60, 5));
    assert_eq!(gpu1.identity_files, vec![key.clone()]);
    assert_eq!(gpu1.jump.as_deref(), Some("bastion"));
    let gpu2 = &report.imported[2];
    assert_eq!(
        (gpu2.port, gpu2.user.as_deref()),
        (2222, Some("alice")),
        "first value wins"
    );
    assert_eq!(report.imported[0].port, 22);

    let skipped: Vec<&str> = report.skipped.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        skipped,
        [
            "*.lab.example.edu",
            "!secret.lab.example.edu",
            "*",
            "broken"
        ]
    );
    assert!(report.skipped[0].reason.contains("pattern"));
    assert!(report.skipped[3].reason.contains("notaport"));
    let notes = report.notes.join("\n");
    for needle in ["missing.conf", "nope", "ForwardAgent", "Compression"] {
        assert!(notes.contains(needle), "{needle} not in {notes}");
    }

    // Importing into a store: an existing name is kept, the rest are added and validate.
    let store = ProfileStore::in_home(&dir.path().join("home"));
    store.add(simple("gpu2")).unwrap();
    let report = import_ssh_config(&store, &ssh.join("config")).unwrap();
    let names: Vec<&str> = report.imported.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["bastion", "gpu1"]);
    assert!(
        report
            .skipped
            .iter()
            .any(|s| s.name == "gpu2" && s.reason.contains("exists"))
    );
    assert_eq!(store.get("gpu2").unwrap(), simple("gpu2"));
    assert_eq!(store.chain("gpu1").unwrap().len(), 2);
}

/// A HostKeyAlias becomes the host field of a known_hosts line: one plain word; known_hosts and
/// certificate paths are not empty.
#[test]
fn host_key_alias_and_known_hosts_paths_are_validated() {
    for (alias, ok) in [
        ("gpu-login", true),
        ("gpu.example.org", true),
        ("", false),
        ("two words", false),
        ("a,b", false),
        ("@revoked", false),
        ("|1|x", false),
        ("!neg", false),
    ] {
        let errors = validate(&[Profile {
            host_key_alias: Some(alias.into()),
            ..simple("x")
        }]);
        assert_eq!(errors.is_empty(), ok, "{alias:?}: {errors:?}");
        if !ok {
            assert_eq!(errors[0].field, "hostKeyAlias");
        }
    }
    let errors = validate(&[Profile {
        user_known_hosts_files: vec!["".into()],
        global_known_hosts_files: vec!["/etc/ssh/ssh_known_hosts".into()],
        certificate_files: vec!["".into()],
        ..simple("x")
    }]);
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["userKnownHostsFiles[0]", "certificateFiles[0]"]);
}

/// Windows users write key files as `~\.ssh\id` or `C:\…`: `~\` is the user's profile folder
/// (`%USERPROFILE%`), a drive path stays as written, and a profile naming `~\.ssh\…` validates
/// when the file is there. Runs in the Windows test run (under Wine in CI).
#[cfg(windows)]
#[test]
fn windows_key_paths_resolve() {
    use tunnelbook_core::profile::expand_home;
    let profile_dir = PathBuf::from(std::env::var_os("USERPROFILE").unwrap());
    assert_eq!(
        expand_home(std::path::Path::new(r"~\.ssh\id_ed25519")),
        profile_dir.join(".ssh").join("id_ed25519")
    );
    assert_eq!(
        expand_home(std::path::Path::new(r"C:\keys\id_ed25519")),
        PathBuf::from(r"C:\keys\id_ed25519")
    );

    // A key under the profile folder, named with `~\`.
    let ssh = profile_dir.join(".ssh");
    fs::create_dir_all(&ssh).unwrap();
    let name = format!("tb-test-key-{}", std::process::id());
    fs::write(
        ssh.join(&name),
        "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = ProfileStore::in_home(dir.path());
    let mut p = simple("win");
    p.identity_files = vec![PathBuf::from(format!(r"~\.ssh\{name}"))];
    let added = store.add(p.clone());
    fs::remove_file(ssh.join(&name)).unwrap();
    added.unwrap();
    assert_eq!(store.get("win").unwrap(), p);
    // A missing one is a field error naming the path.
    let mut missing = simple("win2");
    missing.identity_files = vec![PathBuf::from(r"~\.ssh\tb-no-such-key")];
    assert!(matches!(store.add(missing), Err(ProfileError::Invalid(_))));
}

/// A name holding ':', '@' or ',' would be ambiguous where names are used in a jump list
/// (`--jump user@name:port,next`, as OpenSSH's ProxyJump), e.g. `tbapp@bed` read as user tbapp on
/// host `bed`: refused, as a name field error.
#[test]
fn names_that_read_as_user_port_or_jump_lists_are_refused() {
    for (name, ok) in [
        ("gpu-box", true),
        ("lab a100", true),
        ("tbapp@bed", false),
        ("bed:2222", false),
        ("a,b", false),
    ] {
        let errors = validate(&[Profile {
            name: name.into(),
            host: "gpu.example.edu".into(),
            ..Profile::default()
        }]);
        assert_eq!(errors.is_empty(), ok, "{name:?}: {errors:?}");
        if !ok {
            assert_eq!(errors[0].field, "name");
            assert!(errors[0].message.contains("'@'"), "{errors:?}");
        }
    }
}

/// A key path that is a folder says so instead of "does not exist".
#[test]
fn a_folder_given_as_key_file_is_named_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let errors = validate(&[Profile {
        identity_files: vec![dir.path().to_path_buf()],
        ..simple("gpu")
    }]);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].field, "identityFiles[0]");
    assert!(errors[0].message.contains("is a folder"), "{errors:?}");
}

/// A public key chosen as the key file (Browse… in the app picks `id_ed25519.pub` next to
/// `id_ed25519`) is refused with the private key's path; a private key passes.
#[test]
fn a_public_key_given_as_key_file_names_the_private_one() {
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("id_ed25519");
    fs::write(
        &private,
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
    )
    .unwrap();
    let public = dir.path().join("id_ed25519.pub");
    fs::write(
        &public,
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG ana@laptop\n",
    )
    .unwrap();
    let errors = validate(&[Profile {
        identity_files: vec![public.clone()],
        ..simple("gpu")
    }]);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].field, "identityFiles[0]");
    assert!(errors[0].message.contains("is a public key"), "{errors:?}");
    assert!(
        errors[0]
            .message
            .contains(&format!("choose {} instead", private.display())),
        "{errors:?}"
    );
    assert_eq!(tunnelbook_core::profile::key_file_problem(&private), None);
    let rfc4716 = dir.path().join("key.pub2");
    fs::write(&rfc4716, "---- BEGIN SSH2 PUBLIC KEY ----\nAAAA\n").unwrap();
    assert!(
        tunnelbook_core::profile::key_file_problem(&rfc4716)
            .unwrap()
            .contains("(the file without .pub)")
    );
}

/// Browse… opens in `~/.ssh`, where `config` and `known_hosts` sit beside the keys: choosing one
/// of them is refused at the field, saying what it is and what to choose (the trial saved
/// `~/.ssh/config` and Connect failed later with "Could not read key"). PEM, OpenSSH and PuTTY
/// private keys, encrypted or not, pass without a passphrase.
#[test]
fn a_file_that_is_not_a_private_key_is_refused_with_what_to_choose() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        fs::write(&p, text).unwrap();
        p
    };
    let config = write(
        "config",
        "# mine\nHost lab\n    HostName lab.example.edu\n    User ana\n",
    );
    let known = write(
        "known_hosts",
        "lab.example.edu ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG\n",
    );
    let hashed = write("known_hosts2", "|1|abc=|def= ecdsa-sha2-nistp256 AAAAE2\n");
    let empty = write("empty", "");
    let other = write("notes.txt", "remember the GPU quota\n");
    let problem = |p: &std::path::Path| tunnelbook_core::profile::key_file_problem(p);
    let msg = problem(&config).expect("config refused");
    assert!(msg.contains("is not a private key file"), "{msg}");
    assert!(msg.contains("an SSH config file"), "{msg}");
    assert!(msg.contains("choose your private key"), "{msg}");
    assert!(problem(&known).unwrap().contains("a known_hosts file"));
    assert!(problem(&hashed).unwrap().contains("a known_hosts file"));
    assert!(problem(&empty).unwrap().contains("an empty file"));
    assert!(
        problem(&other)
            .unwrap()
            .contains("is not a private key file")
    );
    // Refused on Save too, at the field.
    let errors = validate(&[Profile {
        identity_files: vec![config.clone()],
        ..simple("gpu")
    }]);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].field, "identityFiles[0]");
    for (name, text) in [
        (
            "id_ed25519",
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----\n",
        ),
        (
            "id_rsa",
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n",
        ),
        ("pkcs8", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIF\n"),
        ("ec", "\n-----BEGIN EC PRIVATE KEY-----\nMHcC\n"),
        (
            "gpu.ppk",
            "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\n",
        ),
    ] {
        let key = write(name, text);
        assert_eq!(problem(&key), None, "{name}");
    }
}

/// A rename carries every secret to the new name; a change of address forgets the password
/// (it belongs to the old server); a refused change (validation) moves nothing.
#[test]
fn renaming_moves_secrets_and_a_new_address_drops_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let store = ProfileStore::in_home(dir.path());
    store.add(full_profile(dir.path())).unwrap();
    store.add(simple("other")).unwrap();
    let secrets = MemoryStore::default();
    let v = Sensitive::new("s3cret".to_string());
    let before = store.get("a100").unwrap();
    let key_path = dir.path().join("id_ed25519");
    let token = SecretKey {
        profile: "a100".into(),
        kind: SecretKind::JupyterToken("gpu1:8888".into()),
    };
    for k in [
        before.password_key(),
        SecretKey::passphrase("a100", &key_path),
        token.clone(),
    ] {
        secrets.persist(&k, &v).unwrap();
    }

    // A refused rename (the name is taken) leaves the keychain as it was.
    let err = store
        .edit_host("a100", |p| p.name = "other".into(), Some(&secrets))
        .unwrap_err();
    assert!(matches!(err, ProfileError::Invalid(_)), "{err}");
    assert_eq!(secrets.list("a100").unwrap().len(), 3);

    let all = store
        .save_host(
            Some("a100"),
            Profile {
                name: "h100".into(),
                ..before.clone()
            },
            Some(&secrets),
        )
        .unwrap();
    assert!(all.iter().any(|p| p.name == "h100"));
    assert!(secrets.list("a100").unwrap().is_empty());
    let renamed = store.get("h100").unwrap();
    assert_eq!(
        secrets
            .retrieve(&renamed.password_key())
            .unwrap()
            .unwrap()
            .expose(),
        "s3cret"
    );
    assert!(secrets.retrieve(&token.renamed("h100")).unwrap().is_some());
    assert!(
        secrets
            .retrieve(&SecretKey::passphrase("h100", &key_path))
            .unwrap()
            .is_some()
    );

    // Same name, another server: its password is not this one's.
    let moved = store
        .edit_host(
            "h100",
            |p| p.host = "gpu2.lab.example.edu".into(),
            Some(&secrets),
        )
        .unwrap();
    assert!(secrets.retrieve(&moved.password_key()).unwrap().is_none());
    assert!(secrets.retrieve(&renamed.password_key()).unwrap().is_none());
    assert!(secrets.retrieve(&token.renamed("h100")).unwrap().is_some());
}
