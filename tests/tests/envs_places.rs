//! Environments where people keep them (issue 16): besides conda on PATH and venvs in the home,
//! `envs` finds conda's configured `envs_dirs` (without `conda` on PATH), the environment of the
//! `jupyter` on the login PATH, and system-wide installs under `/opt`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{os::unix::fs::PermissionsExt, process::Command};

use tunnelbook_core::profile::ProfileStore;
use tunnelbook_testbed::{
    Client, JUPYTER_VENV, Sshd, SshdOptions, jupyter_venv, key_only, make_key, run, user_bin_lock,
    zoo::{self, JUPYTER_CONFIG},
};

const USER: &str = JUPYTER_CONFIG.name;

#[test]
fn envs_finds_condarc_envs_dirs_the_login_jupyter_and_opt() {
    zoo::ensure_zoo();
    let venv = jupyter_venv();
    let _lock = user_bin_lock(USER);
    let home = format!("/home/{USER}");
    let cleanup = || {
        for rel in [".condarc", "condaenvs", ".lab-link", "bin/jupyter"] {
            let p = format!("{home}/{rel}");
            let _ = std::fs::remove_file(&p);
            let _ = std::fs::remove_dir_all(&p);
        }
    };
    cleanup();
    // A conda env in a directory only ~/.condarc names (no conda binary anywhere).
    std::fs::write(
        format!("{home}/.condarc"),
        "channels:\n  - conda-forge\nenvs_dirs:\n  - ~/condaenvs\nauto_activate_base: false\n",
    )
    .unwrap();
    run(Command::new("/usr/bin/python3").args([
        "-m",
        "venv",
        "--without-pip",
        &format!("{home}/condaenvs/proj"),
    ]));
    std::fs::create_dir_all(format!("{home}/condaenvs/proj/conda-meta")).unwrap();
    // `jupyter` on the login PATH (~/bin), launching from an environment found no other way.
    std::os::unix::fs::symlink(&venv, format!("{home}/.lab-link")).unwrap();
    std::fs::create_dir_all(format!("{home}/bin")).unwrap();
    let launcher = format!("{home}/bin/jupyter");
    std::fs::write(
        &launcher,
        format!(
            "#!{home}/.lab-link/bin/python\nimport sys\nfrom jupyter_core.command import main\nsys.exit(main())\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&launcher, std::fs::Permissions::from_mode(0o755)).unwrap();
    run(Command::new("chown")
        .arg("-R")
        .arg(format!("{USER}:"))
        .arg(&home));

    let keys = tempfile::tempdir().unwrap();
    let key = make_key(keys.path(), "id", "ed25519", None);
    let sshd = Sshd::start(&[&key], SshdOptions::default());
    let client = Client::new();
    client.trust(&sshd);
    ProfileStore::in_home(&client.home())
        .save(&[key_only(sshd.profile("e", USER), &key)])
        .unwrap();
    let out = client.cli().args(["envs", "e", "--json"]).output().unwrap();
    cleanup();
    assert!(out.status.success(), "{out:?}");
    let envs: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let find = |prefix: &str| {
        envs.iter()
            .find(|e| e["prefix"] == prefix)
            .unwrap_or_else(|| panic!("{prefix} not listed: {envs:#?}"))
            .clone()
    };
    let conda = find(&format!("{home}/condaenvs/proj"));
    assert_eq!(conda["kind"], "conda");
    assert_eq!(conda["problem"], serde_json::Value::Null, "{conda}");
    let login = find(&format!("{home}/.lab-link"));
    assert_eq!(login["jupyterLab"], true, "{login}");
    let opt = find(JUPYTER_VENV);
    assert_eq!(opt["jupyterLab"], true, "{opt}");
}
