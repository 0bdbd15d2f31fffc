use clap::Parser;
use tunnelbook_core::secret::{MemoryStore, SecretKind, Sensitive};

use super::*;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: HostsCommand,
}

fn exec(home: &Path, mem: &Arc<MemoryStore>, args: &[&str]) -> Result<String, HostsError> {
    let cmd = Cli::try_parse_from(std::iter::once("hosts").chain(args.iter().copied()))
        .map_err(|e| HostsError::Output(std::io::Error::other(e.to_string())))?
        .cmd;
    let mut out = Vec::new();
    let mem = mem.clone();
    run_with(
        cmd,
        home,
        &move || Ok(mem.clone() as Arc<dyn SecretStore>),
        &mut out,
    )?;
    Ok(String::from_utf8(out).unwrap())
}

#[test]
fn add_list_show_edit_forget_rm() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let mem = Arc::new(MemoryStore::default());
    exec(
        home,
        &mem,
        &["add", "bastion", "--host", "bastion.example.edu"],
    )
    .unwrap();
    exec(
        home,
        &mem,
        &[
            "add",
            "gpu",
            "--host",
            "gpu.example.edu",
            "--port",
            "2222",
            "--user",
            "alice",
            "--jump",
            "bastion",
        ],
    )
    .unwrap();
    let password = SecretKey::password("gpu", "alice@gpu.example.edu:2222");
    mem.persist(&password, &Sensitive::new("hunter2".into()))
        .unwrap();
    let token = SecretKey {
        profile: "gpu".into(),
        kind: SecretKind::JupyterToken("t".into()),
    };
    mem.persist(&token, &Sensitive::new("tok3n".into()))
        .unwrap();

    let list = exec(home, &mem, &["list"]).unwrap();
    assert!(
        list.contains("gpu\talice@gpu.example.edu:2222 via bastion"),
        "{list}"
    );
    let json = exec(home, &mem, &["list", "--json"]).unwrap();
    assert!(!json.contains("hunter2") && !json.contains("tok3n"));
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed[1]["name"], "gpu");
    assert_eq!(parsed[1]["keepaliveInterval"], 10);
    let shown = exec(home, &mem, &["show", "gpu"]).unwrap();
    assert!(
        shown.contains("remembered: ") && shown.contains("password") && !shown.contains("hunter2"),
        "{shown}"
    );

    exec(home, &mem, &["edit", "gpu", "--port", "22", "--no-jump"]).unwrap();
    let shown = exec(home, &mem, &["show", "gpu", "--json"]).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(parsed["port"].as_u64(), Some(22));
    assert!(parsed["jump"].is_null());

    exec(
        home,
        &mem,
        &[
            "edit",
            "gpu",
            "--proxy-command",
            "ssh -W %h:%p bastion",
            "--connect-timeout",
            "5",
        ],
    )
    .unwrap();
    let shown = exec(home, &mem, &["show", "gpu"]).unwrap();
    assert!(
        shown.contains("proxy:     ssh -W %h:%p bastion") && shown.contains("timeout:   5s"),
        "{shown}"
    );
    exec(home, &mem, &["edit", "gpu", "--no-proxy-command"]).unwrap();
    // StrictHostKeyChecking and the algorithm lists, under ssh_config's names and values.
    exec(
        home,
        &mem,
        &[
            "edit",
            "gpu",
            "--strict-host-key-checking",
            "accept-new",
            "--host-key-algorithms=+ssh-rsa",
            "--pubkey-accepted-algorithms=-ssh-ed25519",
        ],
    )
    .unwrap();
    let shown = exec(home, &mem, &["show", "gpu"]).unwrap();
    assert!(
        shown.contains("StrictHostKeyChecking accept-new\n")
            && shown.contains("HostKeyAlgorithms +ssh-rsa\n")
            && shown.contains("PubkeyAcceptedAlgorithms -ssh-ed25519\n"),
        "{shown}"
    );
    let err = exec(
        home,
        &mem,
        &["edit", "gpu", "--host-key-algorithms", "ssh-dss"],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("hostKeyAlgorithms") && err.contains("ssh-dss"),
        "{err}"
    );
    exec(
        home,
        &mem,
        &[
            "edit",
            "gpu",
            "--strict-host-key-checking",
            "",
            "--host-key-algorithms",
            "",
        ],
    )
    .unwrap();
    let shown = exec(home, &mem, &["show", "gpu"]).unwrap();
    assert!(
        !shown.contains("StrictHostKeyChecking") && !shown.contains("HostKeyAlgorithms"),
        "{shown}"
    );
    assert!(
        !exec(home, &mem, &["show", "gpu"])
            .unwrap()
            .contains("proxy:")
    );
    // The environment and folder every launch uses, kept in the profile.
    exec(
        home,
        &mem,
        &["edit", "gpu", "--env", "/opt/jlab", "--dir", "~/projects"],
    )
    .unwrap();
    let parsed: serde_json::Value =
        serde_json::from_str(&exec(home, &mem, &["show", "gpu", "--json"]).unwrap()).unwrap();
    assert_eq!(parsed["environment"], "/opt/jlab");
    assert_eq!(parsed["notebookDir"], "~/projects");
    let shown = exec(home, &mem, &["show", "gpu"]).unwrap();
    assert!(
        shown.contains("env:       /opt/jlab") && shown.contains("dir:       ~/projects"),
        "{shown}"
    );
    exec(home, &mem, &["edit", "gpu", "--no-env", "--no-dir"]).unwrap();
    let parsed: serde_json::Value =
        serde_json::from_str(&exec(home, &mem, &["show", "gpu", "--json"]).unwrap()).unwrap();
    assert!(parsed["environment"].is_null() && parsed["notebookDir"].is_null());
    // Lmod modules loaded before every launch, in order.
    exec(
        home,
        &mem,
        &[
            "edit",
            "gpu",
            "--module",
            "cuda/12.4",
            "--module",
            "python/3.11",
        ],
    )
    .unwrap();
    let parsed: serde_json::Value =
        serde_json::from_str(&exec(home, &mem, &["show", "gpu", "--json"]).unwrap()).unwrap();
    assert_eq!(
        parsed["modules"],
        serde_json::json!(["cuda/12.4", "python/3.11"])
    );
    assert!(
        exec(home, &mem, &["show", "gpu"])
            .unwrap()
            .contains("modules:   cuda/12.4 python/3.11")
    );
    exec(home, &mem, &["edit", "gpu", "--no-modules"]).unwrap();
    let parsed: serde_json::Value =
        serde_json::from_str(&exec(home, &mem, &["show", "gpu", "--json"]).unwrap()).unwrap();
    assert_eq!(parsed["modules"], serde_json::json!([]));

    exec(home, &mem, &["forget-secret", "gpu", "--password"]).unwrap();
    assert!(mem.retrieve(&password).unwrap().is_none());
    assert!(mem.retrieve(&token).unwrap().is_some());
    exec(home, &mem, &["rm", "gpu"]).unwrap();
    assert!(mem.retrieve(&token).unwrap().is_none());
    assert!(!exec(home, &mem, &["list"]).unwrap().contains("gpu"));
}

#[test]
fn rename_moves_secrets_a_new_address_drops_the_password_and_forget_all_empties() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let mem = Arc::new(MemoryStore::default());
    let add = ["add", "box", "--host", "box.example.edu", "--user", "alice"];
    exec(home, &mem, &add).unwrap();
    let v = Sensitive::new("hunter2".to_string());
    let token = SecretKey {
        profile: "box".into(),
        kind: SecretKind::JupyterToken("t".into()),
    };
    mem.persist(&SecretKey::password("box", "alice@box.example.edu:22"), &v)
        .unwrap();
    mem.persist(&token, &v).unwrap();

    let out = exec(home, &mem, &["edit", "box", "--name", "gpu-box"]).unwrap();
    assert_eq!(out, "saved gpu-box\n");
    assert!(mem.list("box").unwrap().is_empty());
    let moved = SecretKey::password("gpu-box", "alice@box.example.edu:22");
    assert_eq!(mem.retrieve(&moved).unwrap().unwrap().expose(), "hunter2");
    assert!(mem.retrieve(&token.renamed("gpu-box")).unwrap().is_some());

    // Pointed at another server: its password is not the old one's.
    exec(
        home,
        &mem,
        &["edit", "gpu-box", "--host", "other.example.edu"],
    )
    .unwrap();
    assert!(mem.retrieve(&moved).unwrap().is_none());
    assert!(mem.retrieve(&token.renamed("gpu-box")).unwrap().is_some());

    // A secret of a host that is gone (not derivable from any saved host) goes too.
    mem.persist(&SecretKey::password("gone", "bob@x:22"), &v)
        .unwrap();
    let out = exec(home, &mem, &["forget-all-secrets"]).unwrap();
    assert_eq!(out, "forgot 2 remembered secrets\n");
    assert!(mem.list("gpu-box").unwrap().is_empty());
    assert!(mem.list("gone").unwrap().is_empty());
    assert!(exec(home, &mem, &["list"]).unwrap().contains("gpu-box"));
}

#[test]
fn errors_print_field_messages() {
    let dir = tempfile::tempdir().unwrap();
    let mem = Arc::new(MemoryStore::default());
    let err = exec(
        dir.path(),
        &mem,
        &[
            "add", "x", "--host", "bad host", "--port", "0", "--jump", "x",
        ],
    )
    .unwrap_err()
    .to_string();
    for needle in [
        "x: host:",
        "x: port: the port must be between 1 and 65535",
        "x: jump:",
    ] {
        assert!(err.contains(needle), "{needle} not in {err}");
    }
    let err = exec(dir.path(), &mem, &["rm", "nope"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("no saved host named \"nope\""), "{err}");
    assert!(
        exec(dir.path(), &mem, &["forget-secret", "x"]).is_err(),
        "needs one of the flags"
    );
}
