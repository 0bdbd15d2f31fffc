//! `tunnelbook open` end to end over a real sshd with a real JupyterLab (the test bed's venv as
//! the host's environment) and the `nvidia-smi` shim playing two GPUs: a local folder with
//! `analysis.ipynb` and `data/small.csv` goes up (excluded and oversized files stay here), the
//! notebook's first cell, run through the Jupyter kernel API in a session on that notebook, reads
//! `data/small.csv` by relative path and sees the chosen GPU; a cell added and saved through the
//! Jupyter contents API comes back to the local file; a local edit made meanwhile is never
//! overwritten (the host's save lands beside it as `analysis (box).ipynb`); a file the kernel
//! writes comes back too; a save made while the connection is down comes back once `open` has
//! reconnected.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tunnelbook_core::{jupyter::http, profile::ProfileStore, secret::Sensitive};
use tunnelbook_testbed::{
    Client, NvidiaSmiShim, OTHER_USER, Sshd, SshdOptions, USER, alive, jupyter_venv,
    kernel::execute, key_only, make_key, sleeper,
};

const BUSY: &str = "GPU-cccccccc-0000-4000-8000-000000000000";
const FREE: &str = "GPU-dddddddd-1111-4111-8111-111111111111";

/// Two H100s on the host, GPU 0 busy with `busy_pid`.
fn two_gpus(busy_pid: u32) -> (NvidiaSmiShim, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        dir.path().join("query-gpu.csv"),
        format!(
            "0, {BUSY}, NVIDIA H100 80GB HBM3, 81559, 40000, 41559, 90, 10, 60, 300.00, 700.00, Disabled, 00000000:00:06.0, Default\n\
             1, {FREE}, NVIDIA H100 80GB HBM3, 81559, 0, 81559, 0, 0, 30, 60.00, 700.00, Disabled, 00000000:00:07.0, Default\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("list.txt"),
        format!(
            "GPU 0: NVIDIA H100 80GB HBM3 (UUID: {BUSY})\nGPU 1: NVIDIA H100 80GB HBM3 (UUID: {FREE})\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("apps.csv"),
        format!("{BUSY}, {busy_pid}, python3, 39000\n"),
    )
    .unwrap();
    (NvidiaSmiShim::install(USER, dir.path()), dir)
}

/// The `open` process, killed on drop.
struct Open(Child);

impl Drop for Open {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A notebook with one code cell per source.
fn notebook(cells: &[&str]) -> serde_json::Value {
    let cells: Vec<serde_json::Value> = cells
        .iter()
        .map(|src| {
            serde_json::json!({
                "cell_type": "code", "execution_count": null, "metadata": {},
                "outputs": [], "source": src,
            })
        })
        .collect();
    serde_json::json!({
        "cells": cells,
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5,
    })
}

/// One Jupyter REST call with a JSON body, through the tunnel: (status, JSON answer).
async fn call(
    port: u16,
    token: &Sensitive<String>,
    method: &str,
    path: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let body = body.to_string();
    let mut s = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nAuthorization: token {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        token.expose(),
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let r = http::parse(&raw).unwrap();
    (
        r.status,
        serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null),
    )
}

/// Waits until `check` holds (up to `secs`), polling.
fn wait_for(secs: u64, what: &str, stderr: &Path, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "{what} within {secs} s; open's stderr:\n{}",
        std::fs::read_to_string(stderr).unwrap_or_default()
    );
}

fn on_host(remote: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![remote.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                dirs.push(e.path());
            } else {
                out.push(e.path().strip_prefix(remote).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

struct RemoteDir(PathBuf);

impl Drop for RemoteDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_runs_the_local_notebook_on_the_gpu_and_its_saves_come_back() {
    let venv = jupyter_venv();
    let keys = tempfile::tempdir().unwrap();
    let key = make_key(keys.path(), "id", "ed25519", None);
    let mut sshd = Sshd::start(&[&key], SshdOptions::default());
    let client = Client::new();
    client.trust(&sshd);
    let mut profile = key_only(sshd.profile("box", USER), &key);
    profile.environment = Some(venv.display().to_string());
    ProfileStore::in_home(&client.home())
        .save(&[profile])
        .unwrap();
    // The project's folder on the host: ~/tunnelbook/<local folder name>.
    let folder = format!("tb-open-{}", std::process::id());
    let remote = RemoteDir(PathBuf::from(format!("/home/{USER}/tunnelbook/{folder}")));

    // The local project.
    let local = tempfile::tempdir().unwrap();
    let root = local.path().join(&folder);
    let put = |rel: &str, body: &[u8]| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    };
    let first_cell = "import os, pathlib\nprint(pathlib.Path('data/small.csv').read_text().splitlines()[1])\nprint('GPU=' + str(os.environ.get('CUDA_VISIBLE_DEVICES')))";
    put(
        "analysis.ipynb",
        serde_json::to_string_pretty(&notebook(&[first_cell]))
            .unwrap()
            .as_bytes(),
    );
    put("data/small.csv", b"city,temp\nOslo,4.5\nLima,19.0\n");
    put(".git/HEAD", b"ref: refs/heads/main\n");
    put("__pycache__/helpers.cpython-311.pyc", b"\0\0");
    put(".venv/pyvenv.cfg", b"home = /usr/bin\n");
    put(".venv/bin/python", b"#!/bin/false\n");
    put("draft.tmp", b"scratch");
    put(".tunnelbookignore", b"*.tmp\n");
    // Over the 100 MB default limit (sparse: costs nothing); without a terminal it is left out.
    std::fs::File::create(root.join("weights.bin"))
        .unwrap()
        .set_len(150_000_000)
        .unwrap();

    let holder = sleeper(OTHER_USER);
    let shim = two_gpus(holder.pid());
    let err_path = client.dir.path().join("open-stderr");
    let mut open = Open(
        client
            .cli()
            .args(["open", "box"])
            .arg(root.join("analysis.ipynb"))
            .args(["--gpu", "1", "--json", "--interval", "1", "--stop-on-exit"])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .spawn()
            .unwrap(),
    );
    let stdout = open.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(120))
        .unwrap_or_default();
    drop(shim);
    let ready: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|_| {
        panic!(
            "open printed {line:?}; stderr:\n{}",
            std::fs::read_to_string(&err_path).unwrap_or_default()
        )
    });
    let stderr = std::fs::read_to_string(&err_path).unwrap();
    assert_eq!(ready["gpu"], FREE, "{ready}");
    assert_eq!(ready["remoteDir"], remote.0.display().to_string());
    let port = u16::try_from(ready["localPort"].as_u64().unwrap()).unwrap();
    let url = ready["notebookUrl"].as_str().unwrap();
    // The server serves the projects folder (~/tunnelbook), so other projects can share it.
    let nb_path = format!("{folder}/analysis.ipynb");
    assert_eq!(ready["notebookPath"], nb_path.as_str(), "{ready}");
    assert_eq!(ready["reused"], false, "{ready}");
    assert!(
        url.starts_with(&format!(
            "http://127.0.0.1:{port}/lab/tree/{nb_path}?token="
        )),
        "{url}"
    );
    let token = Sensitive::new(url.split("token=").nth(1).unwrap().to_string());

    // Up: the project, not its excludes or the oversized file (which was named).
    assert_eq!(
        on_host(&remote.0),
        [".tunnelbookignore", "analysis.ipynb", "data/small.csv"],
        "{stderr}"
    );
    assert!(stderr.contains("weights.bin (150.0 MB)"), "{stderr}");
    assert!(stderr.contains("--include-large"), "{stderr}");

    // The notebook page answers, and a session on the notebook starts its kernel in its folder.
    let page = http::request(
        SocketAddr::from(([127, 0, 0, 1], port)),
        "GET",
        &format!("/lab/tree/{nb_path}"),
        Some(&token),
    )
    .await
    .unwrap();
    assert_eq!(page.status, 200);
    let (status, session) = call(
        port,
        &token,
        "POST",
        "/api/sessions",
        &serde_json::json!({"path": nb_path, "name": "analysis.ipynb", "type": "notebook", "kernel": {"name": "python3"}}),
    )
    .await;
    assert_eq!(status, 201, "{session}");
    let kernel = session["kernel"]["id"].as_str().unwrap().to_string();

    // The first cell, as saved in the uploaded notebook, run in that kernel.
    let (status, model) = call(
        port,
        &token,
        "GET",
        &format!("/api/contents/{nb_path}?content=1"),
        &serde_json::Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{model}");
    let source = model["content"]["cells"][0]["source"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(source, first_cell);
    let out = execute(port, &token, &kernel, &source).await;
    assert_eq!(out.trim(), format!("Oslo,4.5\nGPU={FREE}"), "{out}");

    // A cell added and saved on the host comes back here.
    let mut nb = model["content"].clone();
    nb["cells"].as_array_mut().unwrap().extend(
        notebook(&["print('added on the GPU box')"])["cells"]
            .as_array()
            .unwrap()
            .clone(),
    );
    let (status, saved) = call(
        port,
        &token,
        "PUT",
        &format!("/api/contents/{nb_path}"),
        &serde_json::json!({"type": "notebook", "format": "json", "content": nb}),
    )
    .await;
    assert_eq!(status, 200, "{saved}");
    let local_nb = root.join("analysis.ipynb");
    wait_for(10, "the save did not come back", &err_path, || {
        std::fs::read_to_string(&local_nb).is_ok_and(|t| t.contains("added on the GPU box"))
    });
    let back: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&local_nb).unwrap()).unwrap();
    assert_eq!(back["cells"].as_array().unwrap().len(), 2);
    // Followed, it is remembered for the next connection (the app's) to resume, were this one
    // lost; the interrupt below forgets it.
    let followed = tunnelbook_core::sync::followed(&client.home(), "box");
    assert_eq!(followed.len(), 1, "{followed:?}");
    assert_eq!(followed[0].notebook, "analysis.ipynb");
    assert_eq!(followed[0].remote_root, remote.0.display().to_string());

    // A file the notebook writes comes back too.
    assert_eq!(
        execute(
            port,
            &token,
            &kernel,
            "import pathlib; pathlib.Path('results').mkdir(exist_ok=True); pathlib.Path('results/mean.txt').write_text('11.75')"
        )
        .await
        .trim(),
        "5"
    );
    wait_for(10, "the output file did not come back", &err_path, || {
        std::fs::read_to_string(root.join("results/mean.txt")).is_ok_and(|t| t == "11.75")
    });

    // Edited here, then saved on the host: both versions exist here, nothing overwritten.
    std::thread::sleep(Duration::from_millis(1100));
    let local_edit = notebook(&[first_cell, "print('edited on the laptop')"]).to_string();
    std::fs::write(&local_nb, &local_edit).unwrap();
    nb["cells"].as_array_mut().unwrap().extend(
        notebook(&["print('second save on the GPU box')"])["cells"]
            .as_array()
            .unwrap()
            .clone(),
    );
    let (status, _) = call(
        port,
        &token,
        "PUT",
        &format!("/api/contents/{nb_path}"),
        &serde_json::json!({"type": "notebook", "format": "json", "content": nb}),
    )
    .await;
    assert_eq!(status, 200);
    let beside = root.join("analysis (box).ipynb");
    wait_for(10, "the host's save did not land beside", &err_path, || {
        std::fs::read_to_string(&beside).is_ok_and(|t| t.contains("second save on the GPU box"))
    });
    assert_eq!(std::fs::read_to_string(&local_nb).unwrap(), local_edit);
    let told = std::fs::read_to_string(&err_path).unwrap();
    assert!(
        told.contains("analysis.ipynb changed here since it went up")
            && told.contains("analysis (box).ipynb"),
        "{told}"
    );

    // The connection is lost (sshd and every session under it killed, back after 4 s) and the
    // notebook is saved on the host meanwhile: once `open` has reconnected, the save comes back.
    let during_outage =
        notebook(&[first_cell, "print('saved while the connection was down')"]).to_string();
    // (sshd is restarted from this thread: the bed ties it to the thread that started it.)
    let host_file = remote.0.join("analysis.ipynb");
    let writer = std::thread::spawn({
        let body = during_outage.clone();
        move || {
            std::thread::sleep(Duration::from_secs(1));
            std::fs::write(host_file, body).unwrap();
        }
    });
    sshd.restart(Duration::from_secs(4));
    writer.join().unwrap();
    // (The local file was edited before, so the host's version lands beside it.)
    wait_for(
        60,
        "the save made during the outage did not come back",
        &err_path,
        || {
            std::fs::read_to_string(&beside)
                .is_ok_and(|t| t.contains("saved while the connection was down"))
        },
    );
    assert_eq!(std::fs::read_to_string(&local_nb).unwrap(), local_edit);
    let told = std::fs::read_to_string(&err_path).unwrap();
    assert!(told.contains("connection lost"), "{told}");

    // SIGTERM: syncing stops, the server too (--stop-on-exit), the process exits cleanly.
    // SAFETY: signalling our own child.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(open.0.id() as i32, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = open.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "open did not end on SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}");
    assert!(tunnelbook_core::sync::followed(&client.home(), "box").is_empty());
    let pid = u32::try_from(ready["remotePid"].as_u64().unwrap()).unwrap();
    wait_for(
        10,
        "the server outlived open --stop-on-exit",
        &err_path,
        || !alive(pid),
    );
}

/// Two H100s with these UUIDs (this test's own, so no other test's server matches them), GPU 0
/// busy with `busy_pid`.
fn two_gpus_named(busy: &str, free: &str, busy_pid: u32) -> (NvidiaSmiShim, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        dir.path().join("query-gpu.csv"),
        format!(
            "0, {busy}, NVIDIA H100 80GB HBM3, 81559, 40000, 41559, 90, 10, 60, 300.00, 700.00, Disabled, 00000000:00:06.0, Default\n\
             1, {free}, NVIDIA H100 80GB HBM3, 81559, 0, 81559, 0, 0, 30, 60.00, 700.00, Disabled, 00000000:00:07.0, Default\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("list.txt"),
        format!(
            "GPU 0: NVIDIA H100 80GB HBM3 (UUID: {busy})\nGPU 1: NVIDIA H100 80GB HBM3 (UUID: {free})\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("apps.csv"),
        format!("{busy}, {busy_pid}, python3, 39000\n"),
    )
    .unwrap();
    (NvidiaSmiShim::install(USER, dir.path()), dir)
}

/// Servers this test started, stopped by id at the end (never `down --all`: other tests run
/// servers as the same user).
struct Servers<'a>(&'a Client, Vec<String>);

impl Drop for Servers<'_> {
    fn drop(&mut self) {
        for id in &self.1 {
            let _ = self.0.run_cli(&["down", "box", id]);
        }
    }
}

/// A second project opened on the same GPU reuses the JupyterLab the first `open` started (it
/// serves the projects folder, ~/tunnelbook): one server, and each notebook's kernel works in its
/// own project folder, so its relative data file is its own, and sees the chosen GPU. A project
/// outside that folder (`--remote-dir`) gets a new server, and `open` says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_project_on_the_same_gpu_reuses_the_running_jupyterlab() {
    const BUSY2: &str = "GPU-21212121-0000-4000-8000-000000000000";
    const FREE2: &str = "GPU-21212121-1111-4111-8111-111111111111";
    let venv = jupyter_venv();
    let keys = tempfile::tempdir().unwrap();
    let key = make_key(keys.path(), "id", "ed25519", None);
    let sshd = Sshd::start(&[&key], SshdOptions::default());
    let client = Client::new();
    client.trust(&sshd);
    let mut profile = key_only(sshd.profile("box", USER), &key);
    profile.environment = Some(venv.display().to_string());
    ProfileStore::in_home(&client.home())
        .save(&[profile])
        .unwrap();
    let mut servers = Servers(&client, Vec::new());
    let pid = std::process::id();
    let local = tempfile::tempdir().unwrap();
    let elsewhere = RemoteDir(PathBuf::from(format!("/home/{USER}/tb-elsewhere-{pid}")));
    let cell = "import os\nprint(open('data/small.csv').read().splitlines()[1])\nprint('GPU=' + str(os.environ.get('CUDA_VISIBLE_DEVICES')))";
    let mut remotes = Vec::new();
    let mut project = |name: &str, city: &str| {
        let root = local.path().join(name);
        std::fs::create_dir_all(root.join("data")).unwrap();
        std::fs::write(
            root.join("analysis.ipynb"),
            serde_json::to_string(&notebook(&[cell])).unwrap(),
        )
        .unwrap();
        std::fs::write(root.join("data/small.csv"), format!("city\n{city}\n")).unwrap();
        remotes.push(RemoteDir(PathBuf::from(format!(
            "/home/{USER}/tunnelbook/{name}"
        ))));
        root.join("analysis.ipynb")
    };
    let a = project(&format!("tb-reuse-a-{pid}"), "Oslo");
    let b = project(&format!("tb-reuse-b-{pid}"), "Lima");
    let c = project(&format!("tb-reuse-c-{pid}"), "Pune");

    let holder = sleeper(OTHER_USER);
    let shim = two_gpus_named(BUSY2, FREE2, holder.pid());
    let open = |nb: &Path, extra: &[&str]| {
        let nb = nb.display().to_string();
        let mut args = vec!["open", "box", nb.as_str(), "--gpu", "auto"];
        args.extend_from_slice(extra);
        client.spawn_json(&args)
    };
    let (open_a, ready_a, err_a) = open(&a, &[]);
    servers
        .1
        .push(ready_a["serverId"].as_str().unwrap().to_string());
    let (open_b, ready_b, err_b) = open(&b, &[]);
    let remote_c = format!("{}/proj", elsewhere.0.display());
    let (open_c, ready_c, err_c) = open(&c, &["--remote-dir", &remote_c]);
    servers
        .1
        .push(ready_c["serverId"].as_str().unwrap().to_string());
    drop(shim);
    let told_b = std::fs::read_to_string(&err_b).unwrap();
    let told_c = std::fs::read_to_string(&err_c).unwrap();

    // One server for a and b, on the free GPU, serving the projects folder; b says it reused it.
    assert_eq!(ready_a["reused"], false, "{ready_a}");
    assert_eq!(ready_b["reused"], true, "{ready_b}\n{told_b}");
    assert_eq!(ready_b["serverId"], ready_a["serverId"], "{told_b}");
    assert_eq!(ready_b["remotePid"], ready_a["remotePid"]);
    assert_eq!(ready_a["gpu"], FREE2);
    assert_eq!(ready_b["gpu"], FREE2);
    assert_eq!(
        ready_a["rootDir"],
        format!("/home/{USER}/tunnelbook").as_str(),
        "{ready_a}"
    );
    assert!(told_b.contains("reusing JupyterLab"), "{told_b}");
    assert!(told_b.contains("already running: reused"), "{told_b}");
    // c lives outside that folder: a new server, and the reason.
    assert_eq!(ready_c["reused"], false, "{ready_c}");
    assert_ne!(ready_c["serverId"], ready_a["serverId"]);
    assert_eq!(ready_c["rootDir"], remote_c.as_str(), "{ready_c}");
    assert!(
        told_c.contains(&format!(
            "which does not hold {remote_c}: starting a new one"
        )),
        "{told_c}"
    );

    // Each notebook, opened in its server at its own path, runs in its own folder on the GPU.
    for (ready, city, err) in [
        (&ready_a, "Oslo", &err_a),
        (&ready_b, "Lima", &err_b),
        (&ready_c, "Pune", &err_c),
    ] {
        let port = u16::try_from(ready["localPort"].as_u64().unwrap()).unwrap();
        let url = ready["notebookUrl"].as_str().unwrap();
        let token = Sensitive::new(url.split("token=").nth(1).unwrap().to_string());
        let path = ready["notebookPath"].as_str().unwrap();
        assert!(
            url.starts_with(&format!("http://127.0.0.1:{port}/lab/tree/{path}?")),
            "{url}"
        );
        let (status, session) = call(
            port,
            &token,
            "POST",
            "/api/sessions",
            &serde_json::json!({"path": path, "name": "analysis.ipynb", "type": "notebook", "kernel": {"name": "python3"}}),
        )
        .await;
        assert_eq!(
            status,
            201,
            "{session}\n{}",
            std::fs::read_to_string(err).unwrap_or_default()
        );
        let kernel = session["kernel"]["id"].as_str().unwrap();
        let out = execute(port, &token, kernel, cell).await;
        assert_eq!(out.trim(), format!("{city}\nGPU={FREE2}"), "{path}: {out}");
    }
    drop((open_a, open_b, open_c));
    drop(servers);
    drop(remotes);
}
