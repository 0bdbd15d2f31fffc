//! Reattaching and listing read Tunnelbook's own records on the host in one round trip (issue
//! 19): a record whose process is gone, or whose pid now belongs to another program, is neither
//! listed nor attached to (and is removed); a JupyterLab started by hand, which has no record,
//! is still listed (from the server file Jupyter writes in its runtime directory) and `attach`
//! reaches it with its own token, through a URL that answers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    net::SocketAddr,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use tunnelbook_core::{jupyter::http, secret::Sensitive};
use tunnelbook_testbed::{
    Client, Guard, SshdOptions, USER, alive, free_port, jupyter_box::JupyterBox, jupyter_venv, run,
};

fn listed_ids(client: &Client) -> Vec<String> {
    let (code, out, err) = client.run_cli(&["ls", "box", "--json"]);
    assert_eq!(code, 0, "ls failed: {err}");
    let servers: serde_json::Value = serde_json::from_str(&out).unwrap();
    servers
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

fn run_dir() -> String {
    format!("/home/{USER}/.tunnelbook/run")
}

/// Writes a record as `launch` does (mode 0600, owned by the user).
fn write_record(id: &str, pid: u32) -> String {
    let dir = run_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let record = serde_json::json!({
        "id": id, "pid": pid,
        "endpoint": {"kind": "unixSocket", "path": format!("{dir}/{id}.sock")},
        "baseUrl": "/", "env": null, "gpu": null, "started": 1, "rootDir": null,
        "log": format!("{dir}/{id}.log"), "app": "lab", "managed": true,
    });
    let path = format!("{dir}/{id}.json");
    std::fs::write(&path, record.to_string()).unwrap();
    std::fs::write(format!("{dir}/{id}.sock"), "").unwrap();
    run(Command::new("chown")
        .arg("-R")
        .arg(format!("{USER}:"))
        .arg(format!("/home/{USER}/.tunnelbook")));
    path
}

#[test]
fn stale_and_reused_records_are_not_listed_nor_attached_and_are_removed() {
    let bed = JupyterBox::start(SshdOptions::default());
    let client = &bed.client;
    // A record whose process is gone (it ran and was reaped).
    let mut gone = Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    assert!(!alive(gone_pid));
    let gone_id = format!("tb-gone{}", std::process::id());
    let gone_path = write_record(&gone_id, gone_pid);
    // A record whose pid now belongs to another program of the user, with "jupyter" on its
    // command line like any Jupyter process, but not the recorded server's id.
    let mut other = Guard::spawn(
        Command::new("setpriv")
            .args([
                "--reuid",
                USER,
                "--regid",
                USER,
                "--init-groups",
                "/usr/bin/python3",
                "-c",
                "import time; time.sleep(600)",
                "jupyter-lab",
            ])
            .stdout(Stdio::null()),
    );
    let reused_id = format!("tb-reused{}", std::process::id());
    let reused_path = write_record(&reused_id, other.pid());

    for id in [&reused_id, &gone_id] {
        let started = Instant::now();
        let (code, out, err) = client.run_cli(&["attach", "box", id, "--json"]);
        assert_eq!(code, 1, "attach to {id} did not fail: {out} {err}");
        assert!(
            err.contains(&format!("no running Jupyter server \"{id}\"")),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(30));
    }
    let ids = listed_ids(client);
    assert!(!ids.contains(&gone_id), "{ids:?}");
    assert!(!ids.contains(&reused_id), "{ids:?}");
    for path in [&gone_path, &reused_path] {
        assert!(!Path::new(path).exists(), "{path} was not removed");
        let sock = path.replace(".json", ".sock");
        assert!(!Path::new(&sock).exists(), "{sock} was not removed");
    }
    assert!(alive(other.pid()), "the program that reused the pid died");
    other.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jupyterlab_started_by_hand_is_listed_and_attach_reaches_it() {
    let bed = JupyterBox::start(SshdOptions::default());
    let client = &bed.client;
    let port = free_port();
    let token = format!("hand-{}-{:x}", std::process::id(), rand_u64());
    // As the user would: `jupyter lab` in a terminal on the host, token from the environment.
    let mut lab = Guard::spawn(
        Command::new("setpriv")
            .args(["--reuid", USER, "--regid", USER, "--init-groups"])
            .arg(jupyter_venv().join("bin/jupyter-lab"))
            .args([
                "--no-browser",
                "--ServerApp.ip=127.0.0.1",
                &format!("--ServerApp.port={port}"),
                "--ServerApp.port_retries=0",
            ])
            .current_dir(format!("/home/{USER}"))
            .env("HOME", format!("/home/{USER}"))
            .env("JUPYTER_TOKEN", &token)
            .env_remove("XDG_DATA_HOME")
            .env_remove("JUPYTER_RUNTIME_DIR")
            .env_remove("JUPYTER_DATA_DIR")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let pid = lab.pid();
    let file = format!("/home/{USER}/.local/share/jupyter/runtime/jpserver-{pid}.json");
    let deadline = Instant::now() + Duration::from_secs(90);
    while !Path::new(&file).exists() {
        assert!(Instant::now() < deadline, "JupyterLab wrote no {file}");
        assert!(alive(pid), "JupyterLab exited");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (code, out, err) = client.run_cli(&["ls", "box", "--json"]);
    assert_eq!(code, 0, "{err}");
    let servers: serde_json::Value = serde_json::from_str(&out).unwrap();
    let id = format!("pid-{pid}");
    let mine = servers
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} not listed: {servers}"));
    assert_eq!(mine["managed"], false);
    assert_eq!(mine["endpoint"]["port"], port);
    // The listing never carries tokens.
    assert!(!out.contains(&token), "ls printed the token");

    let err_path = client.dir.path().join("attach-stderr");
    let mut attach = Guard::spawn(
        client
            .cli()
            .args(["attach", "box", &id, "--json"])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&err_path).unwrap()),
    );
    let line = attach.read_line();
    let attached: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|_| {
        panic!(
            "attach printed {line:?}: {}",
            std::fs::read_to_string(&err_path).unwrap_or_default()
        )
    });
    let url = attached["url"].as_str().unwrap();
    let local = u16::try_from(attached["localPort"].as_u64().unwrap()).unwrap();
    let got = Sensitive::new(url.split("token=").nth(1).unwrap().to_string());
    assert_eq!(
        got.expose(),
        &token,
        "attach did not find the server's token"
    );
    let status = http::request(
        SocketAddr::from(([127, 0, 0, 1], local)),
        "GET",
        "/api/status",
        Some(&got),
    )
    .await
    .unwrap();
    assert_eq!(status.status, 200);
    attach.kill();
    // Stopped the way a terminal's Ctrl-C would, so it removes its server file.
    let _ = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
    let _ = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    lab.kill();
}

fn rand_u64() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    u64::from(t.subsec_nanos()) ^ t.as_secs().rotate_left(17)
}

/// `up --timings` prints the step timeline of the cold start: each step, when it began and how
/// long it took, and the total until ready.
#[test]
fn up_timings_prints_each_step_and_the_total() {
    let bed = JupyterBox::start(SshdOptions::default());
    let client = &bed.client;
    let err_path = client.dir.path().join("up-stderr");
    let mut up = Guard::spawn(
        client
            .cli()
            .args(["up", "box", "--gpu", "none", "--timings", "--json"])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&err_path).unwrap()),
    );
    let line = up.read_line();
    let stderr = std::fs::read_to_string(&err_path).unwrap();
    let ready: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("up printed {line:?}: {stderr}"));
    let id = ready["serverId"].as_str().unwrap().to_string();
    up.kill();
    let (code, _, err) = client.run_cli(&["down", "box", &id]);
    assert_eq!(code, 0, "{err}");
    let table = stderr
        .split("step timeline (ms since start):")
        .nth(1)
        .unwrap_or_else(|| panic!("no timeline in: {stderr}"));
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .filter(|f: &Vec<&str>| !f.is_empty())
        .collect();
    let row = |step: &str| {
        rows.iter()
            .find(|r| r[0] == step)
            .unwrap_or_else(|| panic!("no {step} row in {table}"))
    };
    for step in ["connect", "environment", "launch", "tunnel", "ready"] {
        let r = row(step);
        let began: u64 = r[1].parse().unwrap();
        let took: u64 = r[2].parse().unwrap();
        assert!(began + took < 120_000, "{table}");
    }
    assert_eq!(row("gpus")[2], "skipped", "{table}");
    let total: u64 = rows
        .iter()
        .find(|r| r[0] == "ready" && r.get(1) == Some(&"(total)"))
        .unwrap_or_else(|| panic!("no total in {table}"))[2]
        .parse()
        .unwrap();
    let ready_row = row("ready");
    let ready_end: u64 =
        ready_row[1].parse::<u64>().unwrap() + ready_row[2].parse::<u64>().unwrap();
    assert!(total >= ready_end, "{table}");
}
