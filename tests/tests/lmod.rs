//! Lmod / Environment Modules (issue 16): on a site with Debian's `lmod` whose module tree the
//! user adds in `~/.bash_profile`, `envs` lists the module that provides Python and JupyterLab
//! (as a module), a saved list of modules (`hosts edit --module`) is loaded before `up` launches
//! (the kernel, reached through the tunnel, runs in the module's venv with the module's
//! environment), and a module that does not load fails `up` with a message naming it. `exec`
//! and `gpus` run in the same login environment.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{process::Stdio, time::Duration};

use tunnelbook_core::{profile::ProfileStore, secret::Sensitive};
use tunnelbook_testbed::{
    Client, FREE_GPU, Guard, JUPYTER_VENV, NvidiaSmiShim, Sshd, SshdOptions, alive,
    kernel::{execute, start_kernel},
    key_only, make_key, two_gpu_scenario,
    zoo::{self, LMOD, OTHER_MODULE, PYTHON_MODULE},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lmod_module_is_listed_saved_and_loaded_before_up() {
    zoo::ensure_zoo();
    zoo::ensure_modules();
    let keys = tempfile::tempdir().unwrap();
    let key = make_key(keys.path(), "id", "ed25519", None);
    let sshd = Sshd::start(&[&key], SshdOptions::default());
    let client = Client::new();
    client.trust(&sshd);
    ProfileStore::in_home(&client.home())
        .save(&[key_only(sshd.profile("lmod", LMOD.name), &key)])
        .unwrap();

    // JupyterLab is not on the login PATH: only the module provides it.
    let (code, out, err) =
        client.run_cli(&["exec", "lmod", "--", "command -v jupyter || echo none"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "none");

    // gpus: the query runs in the same login environment (Lmod's startup files included).
    let scenario = two_gpu_scenario(1);
    let shim = NvidiaSmiShim::install(LMOD.name, scenario.path());
    let (code, out, err) = client.run_cli(&["gpus", "lmod", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(FREE_GPU), "{out}");
    drop(shim);

    // envs: the Python module is listed as a module, with its venv and JupyterLab; the compiler
    // module is not an environment.
    let (code, out, err) = client.run_cli(&["envs", "lmod", "--json"]);
    assert_eq!(code, 0, "{err}");
    let envs: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let module = envs
        .iter()
        .find(|e| e["name"] == PYTHON_MODULE)
        .unwrap_or_else(|| panic!("{PYTHON_MODULE} not listed: {envs:#?}"));
    assert_eq!(module["kind"], "module", "{module}");
    assert_eq!(module["prefix"], JUPYTER_VENV, "{module}");
    assert_eq!(module["jupyterLab"], true, "{module}");
    assert!(!envs.iter().any(|e| e["name"] == OTHER_MODULE), "{envs:#?}");
    let (code, out, _) = client.run_cli(&["envs", "lmod"]);
    assert_eq!(code, 0);
    assert!(
        out.lines()
            .any(|l| l.contains("module") && l.contains(PYTHON_MODULE)),
        "{out}"
    );

    // The saved list of modules.
    let (code, _, err) = client.run_cli(&["hosts", "edit", "lmod", "--module", PYTHON_MODULE]);
    assert_eq!(code, 0, "{err}");
    let saved = ProfileStore::in_home(&client.home()).get("lmod").unwrap();
    assert_eq!(saved.modules, vec![PYTHON_MODULE.to_string()]);
    let (_, out, _) = client.run_cli(&["envs", "lmod", "--json"]);
    let envs: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert!(
        envs.iter().any(|e| e["configured"] == true
            && e["kind"] == "module"
            && e["prefix"] == JUPYTER_VENV),
        "{envs:#?}"
    );

    // up: the module is loaded before the launch; kernel code runs through the tunnel in the
    // module's venv, with the module's environment.
    up_runs_in_the_module(&client, &["up", "lmod", "--gpu", "none", "--json"]).await;
    // Without saved modules, choosing the module's environment by its path (as the app's list
    // does) loads the module too.
    let (code, _, err) = client.run_cli(&["hosts", "edit", "lmod", "--no-modules"]);
    assert_eq!(code, 0, "{err}");
    up_runs_in_the_module(
        &client,
        &[
            "up",
            "lmod",
            "--env",
            JUPYTER_VENV,
            "--gpu",
            "none",
            "--json",
        ],
    )
    .await;

    // A module that does not load: `up` fails at once, naming it and with Lmod's own reason.
    let (code, out, err) = client.run_cli(&[
        "up", "lmod", "--module", "nope/9.9", "--gpu", "none", "--json",
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("`module load nope/9.9` failed") && err.contains("unknown"),
        "{err}"
    );
    assert!(err.contains("--no-modules"), "{err}");
    // A name that is no module name is refused when saved.
    let (code, _, err) = client.run_cli(&["hosts", "edit", "lmod", "--module", "a b"]);
    assert_ne!(code, 0);
    assert!(err.contains("not a module name"), "{err}");
}

/// Runs `up` with `args`, then kernel code through the tunnel: its `sys.prefix` must be the
/// module's venv and `TB_MODULE_PROBE` (set only by the module) the module's name. Stops the
/// server.
async fn up_runs_in_the_module(client: &Client, args: &[&str]) {
    let err_path = client.dir.path().join("up-stderr");
    let mut up = Guard::spawn(
        client
            .cli()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&err_path).unwrap()),
    );
    let line = up.read_line();
    let ready: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|_| {
        panic!(
            "up printed {line:?}; stderr:\n{}",
            std::fs::read_to_string(&err_path).unwrap_or_default()
        )
    });
    let url = ready["url"].as_str().unwrap();
    let port = u16::try_from(ready["localPort"].as_u64().unwrap()).unwrap();
    let pid = u32::try_from(ready["remotePid"].as_u64().unwrap()).unwrap();
    let token = Sensitive::new(url.split("token=").nth(1).unwrap().to_string());
    let kernel = start_kernel(port, &token).await;
    let seen = execute(
        port,
        &token,
        &kernel,
        "import os, sys; print(sys.prefix, os.environ.get('TB_MODULE_PROBE'))",
    )
    .await;
    assert_eq!(seen.trim(), format!("{JUPYTER_VENV} {PYTHON_MODULE}"));
    up.kill();
    let (code, _, err) = client.run_cli(&["down", "lmod", ready["serverId"].as_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while alive(pid) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!alive(pid), "the server {pid} is still alive");
}
