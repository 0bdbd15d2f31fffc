//! The app on tauri's mock runtime: the real commands, the real capabilities (from
//! `tauri.conf.json` and `capabilities/`), no window system.

// Test helpers outside #[test] fns unwrap too; a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{path::Path, sync::mpsc, time::Duration};

use serde_json::{Value, json};
use tauri::{Listener, Manager, WebviewUrl, WebviewWindowBuilder, test::MockRuntime};
use ts_rs::TS;
use tunnelbook_app::{
    AppState,
    error::AppError,
    prompt::{AppPrompter, PROMPT_EVENT, PromptAnswer, PromptEvent},
    wire::{
        EnvironmentView, ExecOutput, GpuEvent, GpuReport, HostEntry, InstallEvent, ServerView,
        SessionEvent, SessionSummary,
    },
};
use tunnelbook_core::ssh::{HostKeyQuestion, Prompter, SecretQuestion};

mod common;
mod contract;
use common::{APP_ORIGIN, HostBed, app, invoke, main_window, session_until};
use tunnelbook_testbed::{BUSY_GPU, FREE_GPU, two_gpu_scenario};

/// Where a notebook window's page comes from: the local end of a tunnel.
const NOTEBOOK_URL: &str = "http://127.0.0.1:18888/lab?token=abc";

#[test]
fn main_window_lists_this_computer_first() {
    let home = tempfile::tempdir().unwrap();
    let app = app(home.path());
    let hosts = invoke(&main_window(&app), APP_ORIGIN, "list_hosts", json!({})).unwrap();
    assert_eq!(hosts[0]["id"], "local");
    assert_eq!(hosts[0]["label"], "This computer");
    assert_eq!(hosts[0]["kind"], "local");
}

#[test]
fn notebook_window_has_no_ipc() {
    let home = tempfile::tempdir().unwrap();
    let app = app(home.path());
    let main = main_window(&app);
    let notebook = WebviewWindowBuilder::new(
        &app,
        "jupyter-1",
        WebviewUrl::External(NOTEBOOK_URL.parse().unwrap()),
    )
    .build()
    .unwrap();

    // The page JupyterLab serves, calling an app command and a core plugin command: refused.
    for cmd in [
        "list_hosts",
        "open_in_browser",
        "plugin:event|listen",
        "plugin:window|close",
    ] {
        let refused = invoke(
            &notebook,
            NOTEBOOK_URL,
            cmd,
            json!({ "url": "https://example.com" }),
        );
        assert!(
            refused.is_err(),
            "{cmd} from the notebook window was allowed: {refused:?}"
        );
    }
    // Even a request claiming the app's own origin gets nothing in a jupyter-* window.
    assert!(invoke(&notebook, APP_ORIGIN, "list_hosts", json!({})).is_err());
    // And a remote page that somehow ended up in the main window gets nothing either.
    assert!(invoke(&main, NOTEBOOK_URL, "list_hosts", json!({})).is_err());
    // Control: the same command from the app's own page works.
    assert!(invoke(&main, APP_ORIGIN, "list_hosts", json!({})).is_ok());
}

#[test]
fn save_host_reports_invalid_fields_then_saves() {
    let home = tempfile::tempdir().unwrap();
    let app = app(home.path());
    let main = main_window(&app);

    let err = invoke(
        &main,
        APP_ORIGIN,
        "save_host",
        json!({ "profile": { "name": "", "host": "" } }),
    )
    .unwrap_err();
    assert_eq!(err["code"], "validation");
    let fields: Vec<&str> = err["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["name", "host"]);

    let profile = json!({ "name": "gpu-box", "host": "10.0.0.5", "port": 2222, "user": "ana" });
    let hosts = invoke(
        &main,
        APP_ORIGIN,
        "save_host",
        json!({ "profile": profile }),
    )
    .unwrap();
    assert_eq!(hosts[1]["id"], "gpu-box");
    assert_eq!(hosts[1]["profile"]["port"], 2222);

    let again = invoke(
        &main,
        APP_ORIGIN,
        "save_host",
        json!({ "profile": profile }),
    )
    .unwrap_err();
    assert_eq!(again["fields"][0]["field"], "name");
    // Editing under the same name is not a duplicate.
    let edited =
        json!({ "previousName": "gpu-box", "profile": { "name": "gpu-box", "host": "10.0.0.6" } });
    let hosts = invoke(&main, APP_ORIGIN, "save_host", edited).unwrap();
    assert_eq!(hosts.as_array().unwrap().len(), 2);
    assert_eq!(hosts[1]["profile"]["host"], "10.0.0.6");

    let missing = invoke(
        &main,
        APP_ORIGIN,
        "start_session",
        json!({ "hostId": "nope" }),
    )
    .unwrap_err();
    assert_eq!(missing["code"], "notFound");

    // Core's validator, not a copy: user@host in Host, a key file that is not there, "local".
    let key = home.path().join("no_such_key");
    let err = invoke(
        &main,
        APP_ORIGIN,
        "save_host",
        json!({ "profile": { "name": "local", "host": "ana@gpu.example.edu",
                             "identityFiles": [key] } }),
    )
    .unwrap_err();
    let messages: Vec<(String, String)> = err["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["field"].as_str().unwrap().into(),
                f["message"].as_str().unwrap().into(),
            )
        })
        .collect();
    let field = |name: &str| {
        messages
            .iter()
            .find(|(f, _)| f == name)
            .map(|(_, m)| m.clone())
            .unwrap_or_else(|| panic!("no {name} error in {messages:?}"))
    };
    assert!(field("name").contains("this computer"), "{messages:?}");
    assert!(field("host").contains("user field"), "{messages:?}");
    assert!(
        field("identityFiles[0]").contains("does not exist"),
        "{messages:?}"
    );

    // Delete removes the host (and forgets its secrets: none here).
    let hosts = invoke(
        &main,
        APP_ORIGIN,
        "delete_host",
        json!({ "name": "gpu-box" }),
    )
    .unwrap();
    assert_eq!(hosts.as_array().unwrap().len(), 1);
}

/// Waits for the next `prompt` event and returns its payload.
fn next_prompt(rx: &mpsc::Receiver<String>) -> Value {
    serde_json::from_str(&rx.recv_timeout(Duration::from_secs(10)).unwrap()).unwrap()
}

#[test]
fn prompts_round_trip_through_answer_prompt() {
    let home = tempfile::tempdir().unwrap();
    let app = app(home.path());
    let main = main_window(&app);
    let (tx, rx) = mpsc::channel();
    app.listen(PROMPT_EVENT, move |event| {
        let _ = tx.send(event.payload().to_string());
    });
    let state = app.state::<AppState>();
    let prompter = AppPrompter::new(app.handle().clone(), state.prompts.clone());

    // Host key: trusted.
    let question = HostKeyQuestion {
        host: "gpu-box".into(),
        port: 22,
        algorithm: "ssh-ed25519".into(),
        fingerprint: "SHA256:abc".into(),
    };
    let asking = {
        let prompter = AppPrompter::new(app.handle().clone(), state.prompts.clone());
        tauri::async_runtime::spawn(async move { prompter.confirm_host_key(&question).await })
    };
    let event = next_prompt(&rx);
    assert_eq!(event["question"]["kind"], "hostKey");
    assert_eq!(event["question"]["detail"]["fingerprint"], "SHA256:abc");
    let answer = json!({ "id": event["id"], "answer": { "kind": "hostKey", "trust": true } });
    invoke(&main, APP_ORIGIN, "answer_prompt", answer).unwrap();
    assert!(tauri::async_runtime::block_on(asking).unwrap());

    // Password: answered, with "remember".
    let asking = tauri::async_runtime::spawn(async move {
        let question = SecretQuestion::Password {
            user: "ana".into(),
            host: "gpu-box".into(),
            retry: false,
        };
        prompter
            .secret(&question)
            .await
            .map(|a| (a.value.expose().clone(), a.remember))
    });
    let event = next_prompt(&rx);
    assert_eq!(event["question"]["detail"]["kind"], "password");
    let answer = json!({ "id": event["id"], "answer": { "kind": "secret", "value": "hunter2", "remember": true } });
    invoke(&main, APP_ORIGIN, "answer_prompt", answer).unwrap();
    assert_eq!(
        tauri::async_runtime::block_on(asking).unwrap(),
        Some(("hunter2".to_string(), true))
    );

    // Dismissed dialog: core sees "declined".
    let prompter = AppPrompter::new(app.handle().clone(), state.prompts.clone());
    let asking = tauri::async_runtime::spawn(async move {
        let question = SecretQuestion::Passphrase {
            path: "/k".into(),
            retry: false,
        };
        prompter.secret(&question).await.is_none()
    });
    let event = next_prompt(&rx);
    invoke(
        &main,
        APP_ORIGIN,
        "answer_prompt",
        json!({ "id": event["id"], "answer": { "kind": "cancel" } }),
    )
    .unwrap();
    assert!(tauri::async_runtime::block_on(asking).unwrap());

    // An id nobody asked: a typed error, not a hang.
    let err = invoke(
        &main,
        APP_ORIGIN,
        "answer_prompt",
        json!({ "id": 999, "answer": { "kind": "cancel" } }),
    )
    .unwrap_err();
    assert_eq!(err["code"], "notFound");
}

#[test]
fn local_session_reports_its_steps() {
    let home = tempfile::tempdir().unwrap();
    let app = app(home.path());
    let main = main_window(&app);
    let (tx, rx) = mpsc::channel();
    app.listen("session", move |event| {
        let _ = tx.send(event.payload().to_string());
    });
    let id = invoke(
        &main,
        APP_ORIGIN,
        "start_session",
        json!({ "hostId": "local" }),
    )
    .unwrap();
    let mut steps = Vec::new();
    while let Ok(payload) = rx.recv_timeout(Duration::from_secs(5)) {
        let event: Value = serde_json::from_str(&payload).unwrap();
        assert_eq!(event["sessionId"], id);
        steps.push(event["step"].as_str().unwrap().to_string());
        if event["step"] == "readGpus" && event["state"] != "running" {
            break;
        }
    }
    assert_eq!(steps.first().map(String::as_str), Some("connect"));
    assert_eq!(steps.last().map(String::as_str), Some("readGpus"));
    let sessions = invoke(&main, APP_ORIGIN, "list_sessions", json!({})).unwrap();
    assert_eq!(sessions[0]["status"], "connected");
    invoke(
        &main,
        APP_ORIGIN,
        "close_session",
        json!({ "sessionId": id }),
    )
    .unwrap();
    let sessions = invoke(&main, APP_ORIGIN, "list_sessions", json!({})).unwrap();
    assert_eq!(sessions[0]["status"], "closed");
}

/// Writes the TypeScript twins of the wire types into `ui/src/lib/bindings/`.
/// `scripts/check-bindings.sh` runs this and fails when the committed files differ.
#[test]
fn export_bindings() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/src/lib/bindings");
    let cfg_dir = dir.clone();
    // u64 and friends cross as JSON numbers, never as BigInt.
    let cfg = ts_rs::Config::new()
        .with_out_dir(cfg_dir)
        .with_large_int("number");
    HostEntry::export_all(&cfg).unwrap();
    SessionEvent::export_all(&cfg).unwrap();
    SessionSummary::export_all(&cfg).unwrap();
    ExecOutput::export_all(&cfg).unwrap();
    GpuReport::export_all(&cfg).unwrap();
    GpuEvent::export_all(&cfg).unwrap();
    PromptEvent::export_all(&cfg).unwrap();
    PromptAnswer::export_all(&cfg).unwrap();
    AppError::export_all(&cfg).unwrap();
    tunnelbook_app::tray::TrayMenu::export_all(&cfg).unwrap();
    tunnelbook_app::commands::tunnels::TunnelsView::export_all(&cfg).unwrap();
    tunnelbook_app::commands::settings::AppPaths::export_all(&cfg).unwrap();
    tunnelbook_core::settings::Settings::export_all(&cfg).unwrap();
    tunnelbook_core::tunnel::ForwardSpec::export_all(&cfg).unwrap();
    EnvironmentView::export_all(&cfg).unwrap();
    InstallEvent::export_all(&cfg).unwrap();
    ServerView::export_all(&cfg).unwrap();
    tunnelbook_core::profile::ImportPreview::export_all(&cfg).unwrap();
    // The Files view.
    tunnelbook_app::commands::files::FilesListing::export_all(&cfg).unwrap();
    tunnelbook_app::commands::files::FilesProgress::export_all(&cfg).unwrap();
    tunnelbook_app::commands::files::DragOut::export_all(&cfg).unwrap();
    tunnelbook_app::commands::projects::ProjectEvent::export_all(&cfg).unwrap();
    tunnelbook_app::commands::projects::ProjectSummary::export_all(&cfg).unwrap();
    // Terminal tabs (issue 23).
    tunnelbook_app::commands::terminal::TerminalOpened::export_all(&cfg).unwrap();
    tunnelbook_app::commands::terminal::TerminalEvent::export_all(&cfg).unwrap();
    // SLURM hosts (issue 20).
    tunnelbook_app::commands::slurm::SlurmView::export_all(&cfg).unwrap();
    tunnelbook_app::commands::slurm::SlurmRequestForm::export_all(&cfg).unwrap();
    tunnelbook_app::commands::slurm::SlurmEvent::export_all(&cfg).unwrap();
    tunnelbook_app::commands::slurm::SlurmJobView::export_all(&cfg).unwrap();
    tunnelbook_app::commands::slurm::QuitQuestion::export_all(&cfg).unwrap();

    // The commands, events and error codes (ipc.ts), from the same Rust source.
    let events = [
        (
            tunnelbook_app::wire::SESSION_EVENT,
            SessionEvent::name(&cfg),
        ),
        (
            tunnelbook_app::commands::gpus::GPUS_EVENT,
            GpuEvent::name(&cfg),
        ),
        (
            tunnelbook_app::prompt::PROMPT_EVENT,
            PromptEvent::name(&cfg),
        ),
        (
            tunnelbook_app::commands::jupyter::INSTALL_EVENT,
            InstallEvent::name(&cfg),
        ),
        (
            tunnelbook_app::tray::TRAY_SESSION_EVENT,
            "{ sessionId: string; hostId: string }".to_string(),
        ),
        (
            tunnelbook_app::tray::TRAY_RUNNING_EVENT,
            "{ sessionId: string; hostId: string }".to_string(),
        ),
        (
            tunnelbook_app::tray::TRAY_PROJECT_EVENT,
            "{ projectId: string; sessionId: string }".to_string(),
        ),
        (
            tunnelbook_app::tray::QUIT_EVENT,
            tunnelbook_app::commands::slurm::QuitQuestion::name(&cfg),
        ),
        (
            tunnelbook_app::commands::terminal::TERMINAL_EVENT,
            tunnelbook_app::commands::terminal::TerminalEvent::name(&cfg),
        ),
        (
            tunnelbook_app::commands::files::FILES_PROGRESS_EVENT,
            tunnelbook_app::commands::files::FilesProgress::name(&cfg),
        ),
        (
            tunnelbook_app::commands::projects::PROJECT_EVENT,
            tunnelbook_app::commands::projects::ProjectEvent::name(&cfg),
        ),
        (
            tunnelbook_app::commands::projects::NOTEBOOK_REQUESTED_EVENT,
            "string".to_string(),
        ),
        (
            tunnelbook_app::commands::jupyter::NOTEBOOK_STOPPED_EVENT,
            "{ sessionId: string; serverId: string }".to_string(),
        ),
        (
            tunnelbook_app::commands::slurm::SLURM_EVENT,
            tunnelbook_app::commands::slurm::SlurmEvent::name(&cfg),
        ),
    ]
    .map(|(name, payload)| contract::Event { name, payload });
    let codes: Vec<String> = tunnelbook_core::error::ErrorCode::ALL
        .iter()
        .map(|c| {
            serde_json::to_value(c)
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let ipc = contract::typescript(Path::new(env!("CARGO_MANIFEST_DIR")), &events, &codes);
    std::fs::write(dir.join("ipc.ts"), ipc).unwrap();
}

#[test]
fn unreachable_host_fails_at_the_connect_step() {
    let home = tempfile::tempdir().unwrap();
    let app = app(home.path());
    let main = main_window(&app);
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let profile = json!({ "name": "closed", "host": "127.0.0.1", "port": port, "user": "nobody" });
    invoke(
        &main,
        APP_ORIGIN,
        "save_host",
        json!({ "profile": profile }),
    )
    .unwrap();
    let (tx, rx) = mpsc::channel();
    app.listen("session", move |event| {
        let _ = tx.send(event.payload().to_string());
    });
    invoke(
        &main,
        APP_ORIGIN,
        "start_session",
        json!({ "hostId": "closed" }),
    )
    .unwrap();
    let failed = loop {
        let event: Value =
            serde_json::from_str(&rx.recv_timeout(Duration::from_secs(20)).unwrap()).unwrap();
        if event["state"] == "failed" {
            break event;
        }
    };
    assert_eq!(failed["step"], "connect");
    assert_eq!(failed["error"]["code"], "unreachable");
    let sessions = invoke(&main, APP_ORIGIN, "list_sessions", json!({})).unwrap();
    assert_eq!(sessions[0]["status"], "failed");
}

/// A throwaway OpenSSH sshd on 127.0.0.1 accepting one fresh key for the current user.
struct Sshd {
    child: std::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keygen(path: &Path) {
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

/// `None` where OpenSSH's sshd is not installed.
fn sshd() -> Option<Sshd> {
    let binary = Path::new("/usr/sbin/sshd");
    if !binary.exists() {
        eprintln!("skipping: {} not installed", binary.display());
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    keygen(&d.join("host_key"));
    keygen(&d.join("id_ed25519"));
    std::fs::copy(d.join("id_ed25519.pub"), d.join("authorized_keys")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nAuthorizedKeysFile {keys}\n\
         StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
         PermitRootLogin prohibit-password\nPidFile none\n",
        host_key = d.join("host_key").display(),
        keys = d.join("authorized_keys").display(),
    );
    std::fs::write(d.join("sshd_config"), config).unwrap();
    let _ = std::fs::create_dir_all("/run/sshd");
    let child = std::process::Command::new(binary)
        .args(["-D", "-f"])
        .arg(d.join("sshd_config"))
        .arg("-E")
        .arg(d.join("sshd.log"))
        .spawn()
        .unwrap();
    let sshd = Sshd { child, port, dir };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(sshd);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "sshd did not start: {}",
        std::fs::read_to_string(d.join("sshd.log")).unwrap_or_default()
    );
}

#[test]
fn connects_to_real_sshd_asking_for_the_host_key() {
    let Some(sshd) = sshd() else { return };
    let home = tempfile::tempdir().unwrap();
    let app = app(home.path());
    let main = main_window(&app);
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let key = sshd.dir.path().join("id_ed25519");
    let profile = json!({
        "name": "sshd", "host": "127.0.0.1", "port": sshd.port, "user": user,
        "auth": ["key-file"], "identityFiles": [key],
    });
    invoke(
        &main,
        APP_ORIGIN,
        "save_host",
        json!({ "profile": profile }),
    )
    .unwrap();

    let (tx, rx) = mpsc::channel::<(&'static str, String)>();
    let prompts = tx.clone();
    app.listen(PROMPT_EVENT, move |e| {
        let _ = prompts.send(("prompt", e.payload().to_string()));
    });
    app.listen("session", move |e| {
        let _ = tx.send(("session", e.payload().to_string()));
    });

    let id = invoke(
        &main,
        APP_ORIGIN,
        "start_session",
        json!({ "hostId": "sshd" }),
    )
    .unwrap();
    let mut asked = 0;
    loop {
        let (kind, payload) = rx.recv_timeout(Duration::from_secs(20)).unwrap();
        let event: Value = serde_json::from_str(&payload).unwrap();
        match kind {
            "prompt" => {
                assert_eq!(
                    event["question"]["kind"], "hostKey",
                    "unexpected prompt {event}"
                );
                let fingerprint = event["question"]["detail"]["fingerprint"].as_str().unwrap();
                assert!(fingerprint.starts_with("SHA256:"), "{fingerprint}");
                asked += 1;
                let answer =
                    json!({ "id": event["id"], "answer": { "kind": "hostKey", "trust": true } });
                invoke(&main, APP_ORIGIN, "answer_prompt", answer).unwrap();
            }
            _ => {
                assert_ne!(event["state"], "failed", "session failed: {event}");
                if event["step"] == "readGpus" && event["state"] != "running" {
                    break;
                }
            }
        }
    }
    assert_eq!(asked, 1, "the unknown host key is asked about exactly once");
    let known = std::fs::read_to_string(home.path().join("known_hosts")).unwrap();
    assert!(
        known.contains(&format!("[127.0.0.1]:{}", sshd.port)),
        "{known}"
    );

    let args = json!({ "sessionId": id, "command": "echo tunnelbook-$((6*7))" });
    let output = invoke(&main, APP_ORIGIN, "run_command", args).unwrap();
    assert_eq!(output["status"], 0);
    assert_eq!(output["stdout"].as_str().unwrap().trim(), "tunnelbook-42");
    invoke(
        &main,
        APP_ORIGIN,
        "close_session",
        json!({ "sessionId": id }),
    )
    .unwrap();
}

#[test]
fn open_notebook_makes_a_jupyter_window_for_web_urls_only() {
    let home = tempfile::tempdir().unwrap();
    let app = app(home.path());
    let main = main_window(&app);
    let args = json!({ "url": NOTEBOOK_URL, "title": "JupyterLab — gpu-box" });
    let label = invoke(&main, APP_ORIGIN, "open_notebook", args).unwrap();
    assert_eq!(label, "jupyter-1");
    let window = app.get_webview_window("jupyter-1").unwrap();
    // The new window is as powerless as the one in `notebook_window_has_no_ipc`.
    assert!(invoke(&window, NOTEBOOK_URL, "list_hosts", json!({})).is_err());

    let args = json!({ "url": "file:///etc/passwd", "title": "x" });
    let err = invoke(&main, APP_ORIGIN, "open_notebook", args).unwrap_err();
    assert_eq!(err["code"], "validation");
}

/// Trial of #14, finding 5: "Open notebook" (Connect, the host card, Sessions, the tray) while
/// that server's window is open brings that window back instead of opening a second one, which
/// JupyterLab would put on a fresh workspace (`…/lab/workspaces/auto-E?reset=1`). Another server
/// gets its own window.
#[test]
fn open_notebook_again_focuses_the_servers_window_one_window_per_server() {
    let home = tempfile::tempdir().unwrap();
    let app = app(home.path());
    let main = main_window(&app);
    let open = |url: &str| {
        invoke(
            &main,
            APP_ORIGIN,
            "open_notebook",
            json!({ "url": url, "title": "JupyterLab — gpu-box — GPU 1" }),
        )
        .unwrap()
    };
    assert_eq!(open(NOTEBOOK_URL), "jupyter-1");
    let first = app.get_webview_window("jupyter-1").unwrap();
    first.minimize().unwrap();
    // The same server, as the main window knows it (no token) and at another page of it.
    assert_eq!(open("http://127.0.0.1:18888/lab"), "jupyter-1");
    assert_eq!(open("http://127.0.0.1:18888/lab/tree/a.ipynb"), "jupyter-1");
    assert!(
        app.get_webview_window("jupyter-2").is_none(),
        "a second window opened"
    );
    // Another server (another local port): a window of its own.
    assert_eq!(open("http://127.0.0.1:18889/lab"), "jupyter-2");
    assert_eq!(open("http://127.0.0.1:18889/lab"), "jupyter-2");
    assert_eq!(open(NOTEBOOK_URL), "jupyter-1");
}

#[test]
fn gpus_over_real_sshd_with_the_shim_two_gpus_one_busy() {
    use tunnelbook_testbed::{OTHER_USER, USER};
    if !Path::new("/usr/sbin/sshd").exists() {
        eprintln!("skipping: /usr/sbin/sshd not installed");
        return;
    }
    let bed = HostBed::start("gpu-box", None);
    // Someone else's job on GPU 0: a real process, so the remote `ps` maps it to its user.
    let theirs = tunnelbook_testbed::sleeper(OTHER_USER);
    let scenario = two_gpu_scenario(theirs.pid());
    let _shim = tunnelbook_testbed::NvidiaSmiShim::install(USER, scenario.path());
    let app = &bed.app;
    let main = main_window(app);
    let (tx, rx) = mpsc::channel::<(&'static str, String)>();
    let gpus_tx = tx.clone();
    app.listen("session", move |e| {
        let _ = tx.send(("session", e.payload().to_string()));
    });
    app.listen("gpus", move |e| {
        let _ = gpus_tx.send(("gpus", e.payload().to_string()));
    });
    let id = invoke(
        &main,
        APP_ORIGIN,
        "start_session",
        json!({ "hostId": "gpu-box" }),
    )
    .unwrap();

    // The session's "reading GPUs" step really reads them.
    let read = loop {
        let (_, payload) = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        let event: Value = serde_json::from_str(&payload).unwrap();
        assert_ne!(event["state"], "failed", "session failed: {event}");
        if event["step"] == "readGpus" && event["state"] == "done" {
            break event;
        }
    };
    assert_eq!(read["message"], "2 GPUs, 1 free (best: GPU 1)");

    let report = invoke(
        &main,
        APP_ORIGIN,
        "gpu_snapshot",
        json!({ "sessionId": id }),
    )
    .unwrap();
    let gpus = report["snapshot"]["gpus"].as_array().unwrap();
    assert_eq!(gpus.len(), 2, "{report:#}");
    assert_eq!(report["snapshot"]["currentUser"], USER);
    let procs = report["snapshot"]["processes"].as_array().unwrap();
    assert_eq!(procs.len(), 1, "{report:#}");
    assert_eq!(procs[0]["gpuUuid"], BUSY_GPU);
    assert_eq!(procs[0]["user"], OTHER_USER);
    assert_eq!(procs[0]["own"], false);
    let choices = report["choices"].as_array().unwrap();
    assert_eq!(choices[0]["cudaVisibleDevices"], FREE_GPU);
    assert_eq!(choices[0]["free"], true);
    assert_eq!(choices[1]["cudaVisibleDevices"], BUSY_GPU);
    assert_eq!(choices[1]["free"], false);
    assert_eq!(choices[1]["busyProcesses"], 1);
    assert_eq!(report["recommended"], FREE_GPU);

    // Live refresh: events while watched, none after unwatch_gpus.
    let gpu_events = |timeout: Duration| -> Vec<Value> {
        let deadline = std::time::Instant::now() + timeout;
        let mut events = Vec::new();
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(("gpus", payload)) => events.push(serde_json::from_str(&payload).unwrap()),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        events
    };
    invoke(&main, APP_ORIGIN, "watch_gpus", json!({ "sessionId": id })).unwrap();
    let events = gpu_events(Duration::from_millis(3500));
    assert!(
        events.len() >= 2,
        "expected 2 refreshes in 3.5 s: {events:?}"
    );
    for event in &events {
        assert_eq!(event["sessionId"], id);
        assert_eq!(event["report"]["recommended"], FREE_GPU, "{event}");
        assert_eq!(event["error"], Value::Null);
    }
    invoke(
        &main,
        APP_ORIGIN,
        "unwatch_gpus",
        json!({ "sessionId": id }),
    )
    .unwrap();
    // One poll may already be in flight when the watch stops; nothing comes after it.
    let _ = gpu_events(Duration::from_millis(300));
    let after = gpu_events(Duration::from_millis(2500));
    assert!(
        after.is_empty(),
        "gpus events after unwatch_gpus: {after:?}"
    );

    // Closing the session stops a running watch too.
    invoke(&main, APP_ORIGIN, "watch_gpus", json!({ "sessionId": id })).unwrap();
    assert!(!gpu_events(Duration::from_millis(1000)).is_empty());
    invoke(
        &main,
        APP_ORIGIN,
        "close_session",
        json!({ "sessionId": id }),
    )
    .unwrap();
    let _ = gpu_events(Duration::from_millis(300));
    assert!(gpu_events(Duration::from_millis(2500)).is_empty());
    drop(theirs);
}

/// The picker for the box of issue 17 over a real sshd: the GPU that fell off the bus is listed
/// with nvidia-smi's words, the GPU busy in another container says so and is not recommended,
/// the idle one is; when nvidia-smi then hangs, the refresh fails within the time limit with a
/// `timeout` error (the picker keeps the last report, marked stale) and heals afterwards.
#[test]
fn gpu_picker_with_a_lost_gpu_a_container_busy_gpu_and_a_hung_nvidia_smi() {
    use tunnelbook_testbed::{
        CONTAINER_BUSY_GPU, IDLE_GPU, OTHER_USER, THEIR_GPU, USER, lost_and_container_busy_scenario,
    };
    if !Path::new("/usr/sbin/sshd").exists() {
        eprintln!("skipping: /usr/sbin/sshd not installed");
        return;
    }
    let bed = HostBed::start("gpu-box", None);
    let theirs = tunnelbook_testbed::sleeper(OTHER_USER);
    let scenario = lost_and_container_busy_scenario(theirs.pid());
    let _shim = tunnelbook_testbed::NvidiaSmiShim::install(USER, scenario.path());
    let main = main_window(&bed.app);
    let rx = bed.session_events();
    let id = invoke(
        &main,
        APP_ORIGIN,
        "start_session",
        json!({ "hostId": "gpu-box" }),
    )
    .unwrap();
    let read = session_until(&rx, Duration::from_secs(30), |e| {
        e["sessionId"] == id && e["step"] == "readGpus" && e["state"] == "done"
    });
    assert_eq!(
        read["message"], "3 GPUs, 1 free (best: GPU 2), 1 unreadable",
        "{read}"
    );

    let report = invoke(
        &main,
        APP_ORIGIN,
        "gpu_snapshot",
        json!({ "sessionId": id }),
    )
    .unwrap();
    let snapshot = &report["snapshot"];
    let indexes: Vec<u64> = snapshot["gpus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, [0, 2, 3], "{report:#}");
    assert_eq!(snapshot["unreadable"][0]["pciBusId"], "0000:0B:00.0");
    assert_eq!(
        snapshot["unreadable"][0]["message"],
        "Unable to determine the device handle for GPU 0000:0B:00.0: Unknown Error"
    );
    assert_eq!(report["recommended"], IDLE_GPU, "{report:#}");
    let choice = |uuid: &str| {
        report["choices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["cudaVisibleDevices"] == uuid)
            .cloned()
            .unwrap()
    };
    let ctr = choice(CONTAINER_BUSY_GPU);
    assert_eq!(ctr["free"], false);
    assert!(
        ctr["why"]
            .as_str()
            .unwrap()
            .starts_with("in use (processes not visible: another container or namespace)"),
        "{ctr}"
    );
    let their = choice(THEIR_GPU);
    assert_eq!(their["free"], false);
    assert!(
        their["why"]
            .as_str()
            .unwrap()
            .starts_with(&format!("in use by {OTHER_USER}"))
    );
    // The hostile process name arrives display-safe and changes nothing else.
    let procs = snapshot["processes"].as_array().unwrap();
    assert_eq!(procs.len(), 1);
    assert_eq!(
        procs[0]["command"],
        "/tmp/NVIDIA-SMI has failed/@@tunnelbook-gpu end@@"
    );

    // Live refresh, then nvidia-smi hangs: the refresh ends with a timeout error, then heals.
    let (tx, events) = mpsc::channel::<String>();
    bed.app.listen("gpus", move |e| {
        let _ = tx.send(e.payload().to_string());
    });
    invoke(&main, APP_ORIGIN, "watch_gpus", json!({ "sessionId": id })).unwrap();
    let first: Value =
        serde_json::from_str(&events.recv_timeout(Duration::from_secs(10)).unwrap()).unwrap();
    assert_eq!(first["report"]["recommended"], IDLE_GPU, "{first}");
    std::fs::write(scenario.path().join("hang"), "600").unwrap();
    let started = std::time::Instant::now();
    let failed = loop {
        let event: Value =
            serde_json::from_str(&events.recv_timeout(Duration::from_secs(30)).unwrap()).unwrap();
        if event["error"] != Value::Null {
            break event;
        }
    };
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(failed["error"]["code"], "timeout", "{failed}");
    assert_eq!(failed["report"], Value::Null);
    std::fs::remove_file(scenario.path().join("hang")).unwrap();
    let healed = loop {
        let event: Value =
            serde_json::from_str(&events.recv_timeout(Duration::from_secs(30)).unwrap()).unwrap();
        if event["report"] != Value::Null {
            break event;
        }
    };
    assert_eq!(healed["report"]["recommended"], IDLE_GPU);
    invoke(
        &main,
        APP_ORIGIN,
        "close_session",
        json!({ "sessionId": id }),
    )
    .unwrap();
    drop(theirs);
}

/// Answers every secret question (the passphrase, not remembered) on a thread of its own,
/// counting them; stops when the app is dropped.
fn answer_secrets(
    app: &tauri::App<MockRuntime>,
    passphrase: &'static str,
) -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };
    let asked = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel::<String>();
    app.listen(PROMPT_EVENT, move |e| {
        let _ = tx.send(e.payload().to_string());
    });
    let main = main_window(app);
    let count = asked.clone();
    std::thread::spawn(move || {
        while let Ok(payload) = rx.recv() {
            let event: Value = serde_json::from_str(&payload).unwrap();
            assert_eq!(
                event["question"]["kind"], "secret",
                "unexpected prompt {event}"
            );
            count.fetch_add(1, Ordering::SeqCst);
            let answer = json!({ "kind": "secret", "value": passphrase, "remember": false });
            let answer = json!({ "id": event["id"], "answer": answer });
            let _ = invoke(&main, APP_ORIGIN, "answer_prompt", answer);
        }
    });
    asked
}

#[test]
fn notebook_launches_through_core_session_on_the_chosen_gpu_and_stops() {
    use tunnelbook_testbed::{OTHER_USER, USER, jupyter_venv};
    if !Path::new("/usr/sbin/sshd").exists() {
        eprintln!("skipping: /usr/sbin/sshd not installed");
        return;
    }
    let venv = jupyter_venv();
    // With a passphrase that is not remembered: the launch must not ask it a second time.
    let mut bed = HostBed::start("nb-box", Some("open sesame"));
    let theirs = tunnelbook_testbed::sleeper(OTHER_USER);
    let scenario = two_gpu_scenario(theirs.pid());
    let _shim = tunnelbook_testbed::NvidiaSmiShim::install(USER, scenario.path());
    let app = &bed.app;
    let main = main_window(app);
    let rx = bed.session_events();
    let asked = answer_secrets(app, "open sesame");
    let id = bed.connect("nb-box", &rx);

    // The environment screen's list: the test bed's venv, with JupyterLab.
    let venv_path = venv.display().to_string();
    let envs = invoke(
        &main,
        APP_ORIGIN,
        "list_environments",
        json!({ "sessionId": id }),
    )
    .unwrap();
    let _ = envs
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == "/usr/bin/python3" || e["kind"] == "system")
        .expect("the PATH's python3 is listed");

    let args = json!({ "sessionId": id, "gpu": FREE_GPU, "env": venv_path });
    invoke(&main, APP_ORIGIN, "launch_notebook", args).unwrap();
    let again = invoke(
        &main,
        APP_ORIGIN,
        "launch_notebook",
        json!({ "sessionId": id, "gpu": "cpu", "env": null }),
    )
    .unwrap_err();
    assert_eq!(again["code"], "validation");
    let ready = session_until(&rx, Duration::from_secs(90), |e| {
        e["step"] == "ready" && e["state"] == "done"
    });
    assert_eq!(
        asked.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the passphrase is asked when connecting, and not again for the notebook"
    );
    assert!(
        !ready["message"].as_str().unwrap().contains("token"),
        "{ready}"
    );
    let sessions = invoke(&main, APP_ORIGIN, "list_sessions", json!({})).unwrap();
    let s = &sessions[0];
    assert_eq!(s["status"], "ready", "{s}");
    assert_eq!(s["gpu"], "GPU 1");
    assert_eq!(s["env"], venv_path);
    assert_eq!(s["window"], "jupyter-1");
    assert!(app.get_webview_window("jupyter-1").is_some());
    let url = s["url"].as_str().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    // The main window refers to the notebook without its token (issue 18).
    assert!(!url.contains("token"), "{url}");
    let server_id = s["serverId"].as_str().unwrap().to_string();

    // The server answers through the tunnel, pinned to the chosen GPU.
    let port: u16 = url["http://127.0.0.1:".len()..]
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    use std::io::{Read, Write};
    write!(stream, "GET /api HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.contains("\"version\""), "{answer}");

    let servers = invoke(
        &main,
        APP_ORIGIN,
        "list_servers",
        json!({ "sessionId": id }),
    )
    .unwrap();
    let ours = servers
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == server_id.as_str())
        .unwrap_or_else(|| panic!("{servers:#}"));
    assert_eq!(ours["gpu"], FREE_GPU);
    assert_eq!(ours["url"], url.as_str());
    assert_eq!(ours["managed"], true);

    // The server dies: the app says so, and "Restart server" brings it back behind the same
    // port, in the same window.
    let pid = ours["pid"].as_u64().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    let gone = loop {
        let left = deadline
            .checked_duration_since(std::time::Instant::now())
            .expect("no serverGone after the server was killed");
        let (_, payload) = rx.recv_timeout(left).unwrap();
        let event: Value = serde_json::from_str(&payload).unwrap();
        if event["state"] == "failed" {
            break event;
        }
    };
    assert_eq!(gone["error"]["code"], "serverGone", "{gone}");
    invoke(
        &main,
        APP_ORIGIN,
        "restart_notebook",
        json!({ "sessionId": id }),
    )
    .unwrap();
    session_until(&rx, Duration::from_secs(90), |e| {
        e["step"] == "ready" && e["state"] == "done"
    });
    let sessions = invoke(&main, APP_ORIGIN, "list_sessions", json!({})).unwrap();
    let s = &sessions[0];
    assert_eq!(s["status"], "ready", "{s}");
    assert_eq!(
        s["window"], "jupyter-1",
        "the same window follows the new server"
    );
    assert!(app.get_webview_window("jupyter-2").is_none());
    let new_url = s["url"].as_str().unwrap();
    assert!(
        new_url.starts_with(&format!("http://127.0.0.1:{port}/")),
        "{new_url}"
    );
    let server_id = s["serverId"].as_str().unwrap().to_string();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(stream, "GET /api HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.contains("\"version\""), "{answer}");

    // The server restarts, dropping every connection: the notebook reconnects, and the host's
    // commands (here the server list) work again over the notebook's new connection.
    bed.sshd.restart(Duration::from_millis(300));
    session_until(&rx, Duration::from_secs(30), |e| {
        e["step"] == "openTunnel"
            && e["state"] == "done"
            && e["message"]
                .as_str()
                .unwrap_or("")
                .starts_with("reconnected")
    });
    let servers = invoke(
        &main,
        APP_ORIGIN,
        "list_servers",
        json!({ "sessionId": id }),
    )
    .unwrap_or_else(|e| panic!("the host's commands after the reconnect: {e}"));
    assert!(
        servers
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["id"] == server_id.as_str()),
        "{servers:#}"
    );

    // "Open notebook" again (Sessions' Open, the host card, the tray) brings back the server's
    // window instead of a second one (trial of #14, finding 5); Stop closes it, found by the
    // server's address, never leaving it on JupyterLab's "Server Connection Error".
    let again = invoke(
        &main,
        APP_ORIGIN,
        "open_notebook",
        json!({ "url": new_url, "title": "JupyterLab — nb-box" }),
    )
    .unwrap();
    assert_eq!(again, "jupyter-1", "a second window on the same server");
    let on: Vec<String> = tunnelbook_app::commands::notebook::windows_on(app.handle(), new_url)
        .iter()
        .map(|w| w.label().to_string())
        .collect();
    assert_eq!(on, ["jupyter-1".to_string()]);
    let (stopped_tx, stopped_rx) = mpsc::channel();
    app.listen("notebook-stopped", move |event| {
        let _ = stopped_tx.send(event.payload().to_string());
    });

    // Stop: the server goes, its windows close, the connection stays for another launch.
    invoke(
        &main,
        APP_ORIGIN,
        "stop_server",
        json!({ "sessionId": id, "serverId": server_id }),
    )
    .unwrap();
    let stopped: Value = serde_json::from_str(
        &stopped_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("a notebook-stopped event, for the views showing the server"),
    )
    .unwrap();
    assert_eq!(stopped, json!({ "sessionId": id, "serverId": server_id }));
    let servers = invoke(
        &main,
        APP_ORIGIN,
        "list_servers",
        json!({ "sessionId": id }),
    )
    .unwrap();
    assert!(
        servers
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["id"] != server_id.as_str()),
        "{servers:#}"
    );
    let sessions = invoke(&main, APP_ORIGIN, "list_sessions", json!({})).unwrap();
    assert_eq!(sessions[0]["status"], "connected");
    assert_eq!(sessions[0]["url"], Value::Null);
    invoke(
        &main,
        APP_ORIGIN,
        "close_session",
        json!({ "sessionId": id }),
    )
    .unwrap();
    drop(theirs);
}

#[test]
fn cancelling_a_launch_stops_the_server_it_started() {
    use tunnelbook_testbed::jupyter_venv;
    if !Path::new("/usr/sbin/sshd").exists() {
        eprintln!("skipping: /usr/sbin/sshd not installed");
        return;
    }
    let venv = jupyter_venv().display().to_string();
    // No GPU here, but the connect step still runs `nvidia-smi` from ~tbtest/bin: hold that
    // folder so another test's hung or endless stand-in is not there meanwhile.
    let _bin = tunnelbook_testbed::user_bin_lock(tunnelbook_testbed::USER);
    let bed = HostBed::start("cancel-box", None);
    let app = &bed.app;
    let main = main_window(app);
    let rx = bed.session_events();
    let start = |rx: &mpsc::Receiver<(&'static str, String)>| bed.connect("cancel-box", rx);
    let id = start(&rx);
    let servers = |id: &Value| -> Vec<String> {
        invoke(
            &main,
            APP_ORIGIN,
            "list_servers",
            json!({ "sessionId": id }),
        )
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["managed"] == true)
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
    };
    let args = json!({ "sessionId": id, "gpu": "cpu", "env": venv });
    invoke(&main, APP_ORIGIN, "launch_notebook", args).unwrap();
    // Cancel once the server has started but before it is ready.
    let started = session_until(&rx, Duration::from_secs(60), |e| {
        e["step"] == "startJupyter" && e["state"] == "done"
    });
    // "server tb-… started (pid N)"
    let server = started["message"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    assert!(server.starts_with("tb-"), "{started}");
    assert!(servers(&id).contains(&server));
    invoke(
        &main,
        APP_ORIGIN,
        "cancel_session",
        json!({ "sessionId": id }),
    )
    .unwrap();
    let sessions = invoke(&main, APP_ORIGIN, "list_sessions", json!({})).unwrap();
    assert_eq!(sessions[0]["status"], "closed");
    // A fresh session to the same host sees no server left behind.
    let id2 = start(&rx);
    assert!(!servers(&id2).contains(&server), "{server} still runs");
    invoke(
        &main,
        APP_ORIGIN,
        "close_session",
        json!({ "sessionId": id2 }),
    )
    .unwrap();
}

/// "Remember in the keychain" in the passphrase dialog keeps the passphrase in the OS keychain
/// (the real Secret Service), so the next connection asks nothing.
#[test]
fn a_remembered_passphrase_is_not_asked_again() {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
        eprintln!("SKIPPED: no session bus; run under dbus-run-session with gnome-keyring");
        return;
    }
    let Some(sshd) = sshd() else { return };
    // A key of its own, with a passphrase, that the server accepts.
    let key = sshd.dir.path().join("id_pp");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "open sesame", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(status.success());
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let keys = sshd.dir.path().join("authorized_keys");
    let mut authorized = std::fs::read_to_string(&keys).unwrap();
    authorized.push_str(&public);
    std::fs::write(&keys, authorized).unwrap();

    let home = tempfile::tempdir().unwrap();
    let app = app(home.path());
    let main = main_window(&app);
    let name = format!("pp-{}", std::process::id());
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let profile = json!({
        "name": name, "host": "127.0.0.1", "port": sshd.port, "user": user,
        "auth": ["key-file"], "identityFiles": [key],
    });
    invoke(
        &main,
        APP_ORIGIN,
        "save_host",
        json!({ "profile": profile }),
    )
    .unwrap();
    let (tx, rx) = mpsc::channel::<(&'static str, String)>();
    let prompts = tx.clone();
    app.listen(PROMPT_EVENT, move |e| {
        let _ = prompts.send(("prompt", e.payload().to_string()));
    });
    app.listen("session", move |e| {
        let _ = tx.send(("session", e.payload().to_string()));
    });
    let mut secrets_asked = 0;
    for _ in 0..2 {
        let id = invoke(
            &main,
            APP_ORIGIN,
            "start_session",
            json!({ "hostId": name }),
        )
        .unwrap();
        loop {
            let (kind, payload) = rx.recv_timeout(Duration::from_secs(20)).unwrap();
            let event: Value = serde_json::from_str(&payload).unwrap();
            if kind == "prompt" {
                let answer = match event["question"]["kind"].as_str() {
                    Some("hostKey") => json!({ "kind": "hostKey", "trust": true }),
                    Some("secret") => {
                        secrets_asked += 1;
                        json!({ "kind": "secret", "value": "open sesame", "remember": true })
                    }
                    _ => panic!("unexpected prompt {event}"),
                };
                let answer = json!({ "id": event["id"], "answer": answer });
                invoke(&main, APP_ORIGIN, "answer_prompt", answer).unwrap();
                continue;
            }
            assert_ne!(event["state"], "failed", "session failed: {event}");
            if event["step"] == "readGpus" && event["state"] != "running" {
                break;
            }
        }
        invoke(
            &main,
            APP_ORIGIN,
            "close_session",
            json!({ "sessionId": id }),
        )
        .unwrap();
    }
    let state = app.state::<AppState>();
    let keychain = state.secrets().expect("the keychain is there");
    let remembered = keychain.list(&name).unwrap();
    // Forget before asserting, so a failure leaves nothing behind in the keychain.
    keychain.forget_profile(&name, &[]).unwrap();
    assert_eq!(
        secrets_asked, 1,
        "the passphrase was asked once, then taken from the keychain"
    );
    assert_eq!(remembered.len(), 1, "{remembered:?}");
}

#[test]
fn installing_jupyterlab_streams_its_output_and_lists_the_new_environment() {
    use tunnelbook_testbed::USER;
    if !Path::new("/usr/sbin/sshd").exists() {
        eprintln!("skipping: /usr/sbin/sshd not installed");
        return;
    }
    /// The venv on the host (this machine, as the test user), removed at the end.
    struct Venv(std::path::PathBuf);
    impl Drop for Venv {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let venv = Venv(format!("/home/{USER}/tb-app-install-{}", std::process::id()).into());
    // The connect step runs `nvidia-smi` from ~tbtest/bin: hold that folder so another test's
    // hung stand-in is not there meanwhile (it failed this test twice in a full run).
    let _bin = tunnelbook_testbed::user_bin_lock(USER);
    let bed = HostBed::start("install-box", None);
    let main = main_window(&bed.app);
    let rx = bed.session_events();
    let id = bed.connect("install-box", &rx);
    let (tx, lines) = mpsc::channel::<String>();
    bed.app.listen("install", move |e| {
        let _ = tx.send(e.payload().to_string());
    });

    let path = venv.0.display().to_string();
    let installed = invoke(
        &main,
        APP_ORIGIN,
        "install_jupyter",
        json!({ "sessionId": id, "path": path }),
    )
    .unwrap();
    assert_eq!(installed["path"], path.as_str(), "{installed}");
    assert_eq!(installed["jupyterLab"], true, "{installed}");
    let streamed: Vec<String> = lines
        .try_iter()
        .map(|payload| {
            let event: Value = serde_json::from_str(&payload).unwrap();
            assert_eq!(event["sessionId"], id);
            event["line"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(
        streamed.iter().any(|l| l.contains("installing jupyterlab")),
        "{streamed:#?}"
    );
    assert!(
        streamed
            .iter()
            .any(|l| l.contains("Successfully installed") || l.contains("already satisfied")),
        "{streamed:#?}"
    );
    let envs = invoke(
        &main,
        APP_ORIGIN,
        "list_environments",
        json!({ "sessionId": id }),
    )
    .unwrap();
    assert!(
        envs.as_array()
            .unwrap()
            .iter()
            .any(|e| e["path"] == path.as_str() && e["jupyterLab"] == true),
        "{envs:#}"
    );
    invoke(
        &main,
        APP_ORIGIN,
        "close_session",
        json!({ "sessionId": id }),
    )
    .unwrap();
}

/// Issue 18: a launch on "best free GPU" when every GPU is busy fails at the GPU step with
/// `noFreeGpu` — the UI says to pick one anyway or run on the CPU — not as a broken driver.
#[test]
fn a_launch_when_every_gpu_is_busy_fails_with_no_free_gpu() {
    use tunnelbook_testbed::{OTHER_USER, USER};
    if !Path::new("/usr/sbin/sshd").exists() {
        eprintln!("skipping: /usr/sbin/sshd not installed");
        return;
    }
    let bed = HostBed::start("busy-box", None);
    let theirs = tunnelbook_testbed::sleeper(OTHER_USER);
    let scenario = two_gpu_scenario(theirs.pid());
    std::fs::write(
        scenario.path().join("apps.csv"),
        format!(
            "{BUSY_GPU}, {pid}, python3, 8192\n{FREE_GPU}, {pid}, python3, 8192\n",
            pid = theirs.pid()
        ),
    )
    .unwrap();
    let _shim = tunnelbook_testbed::NvidiaSmiShim::install(USER, scenario.path());
    let rx = bed.session_events();
    let id = bed.connect("busy-box", &rx);
    let main = main_window(&bed.app);
    invoke(
        &main,
        APP_ORIGIN,
        "launch_notebook",
        json!({ "sessionId": id, "gpu": null, "env": null }),
    )
    .unwrap();
    let failed = common::session_failure(&rx, Duration::from_secs(60), &id);
    assert_eq!(failed["step"], "readGpus", "{failed}");
    assert_eq!(failed["error"]["code"], "noFreeGpu", "{failed}");
    invoke(
        &main,
        APP_ORIGIN,
        "close_session",
        json!({ "sessionId": id }),
    )
    .unwrap();
    drop(theirs);
}

/// Issue 16, Lmod in the app: on a site where JupyterLab comes only from a module (the zoo's
/// `tblmod`: `module load python-jlab/1.0`), the Environment step lists the module; choosing it
/// for every launch keeps the module in the host's profile, and a later launch with no choice
/// (the tray's, "Start JupyterLab" with the saved choices) loads it and starts from it.
#[test]
fn an_lmod_module_chosen_in_the_app_is_kept_and_loaded_by_a_later_launch() {
    use tunnelbook_testbed::zoo;
    if !Path::new("/usr/sbin/sshd").exists() {
        eprintln!("skipping: /usr/sbin/sshd not installed");
        return;
    }
    zoo::ensure_zoo();
    // The module tree is the test's own input: written here, not left over from tests/tests/lmod.rs.
    zoo::ensure_modules();
    let bed = HostBed::start_as("lmod-box", None, zoo::LMOD.name);
    let main = main_window(&bed.app);
    let rx = bed.session_events();
    let id = bed.connect("lmod-box", &rx);
    let envs = invoke(
        &main,
        APP_ORIGIN,
        "list_environments",
        json!({ "sessionId": id }),
    )
    .unwrap();
    let module = envs
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "module" && e["name"] == zoo::PYTHON_MODULE)
        .unwrap_or_else(|| panic!("{} is not listed: {envs}", zoo::PYTHON_MODULE))
        .clone();
    assert_eq!(module["jupyterLab"], true, "{module}");
    let path = module["path"].as_str().unwrap().to_string();
    // What the app does on "Start JupyterLab" with "Use this environment for every launch".
    let hosts = invoke(
        &main,
        APP_ORIGIN,
        "remember_environment",
        json!({ "hostId": "lmod-box", "environment": path, "modules": [zoo::PYTHON_MODULE] }),
    )
    .unwrap();
    let profile = &hosts
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["id"] == "lmod-box")
        .unwrap()["profile"];
    assert_eq!(profile["modules"], json!([zoo::PYTHON_MODULE]), "{profile}");
    assert_eq!(profile["environment"], json!(path), "{profile}");
    invoke(
        &main,
        APP_ORIGIN,
        "close_session",
        json!({ "sessionId": id }),
    )
    .unwrap();

    // A later day: connect, launch with the saved choices only.
    let id = bed.connect("lmod-box", &rx);
    let envs = invoke(
        &main,
        APP_ORIGIN,
        "list_environments",
        json!({ "sessionId": id }),
    )
    .unwrap();
    assert_eq!(
        envs[0]["path"],
        json!(path),
        "the saved module's python first: {envs}"
    );
    assert_eq!(envs[0]["configured"], true, "{envs}");
    invoke(
        &main,
        APP_ORIGIN,
        "launch_notebook",
        json!({ "sessionId": id, "gpu": "cpu", "env": null }),
    )
    .unwrap();
    session_until(&rx, Duration::from_secs(120), |e| {
        (e["step"] == "ready" && e["state"] == "done") || e["state"] == "failed"
    });
    let sessions = invoke(&main, APP_ORIGIN, "list_sessions", json!({})).unwrap();
    let s = sessions
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap()
        .clone();
    assert_eq!(s["status"], "ready", "{s}");
    assert_eq!(s["env"], json!(path), "{s}");
    let server = s["serverId"].as_str().unwrap().to_string();
    invoke(
        &main,
        APP_ORIGIN,
        "stop_server",
        json!({ "sessionId": id, "serverId": server }),
    )
    .unwrap();
    invoke(
        &main,
        APP_ORIGIN,
        "close_session",
        json!({ "sessionId": id }),
    )
    .unwrap();
}

/// One connection per host: starting a session on a host whose session is live gives that
/// session back (nothing dialed, no second entry in the list); once it is closed a new one
/// starts. `live_session` names it for the UI's Connect.
#[test]
fn a_host_with_a_live_session_is_not_connected_twice() {
    let home = tempfile::tempdir().unwrap();
    let app = app(home.path());
    let main = main_window(&app);
    let (tx, rx) = mpsc::channel();
    app.listen("session", move |event| {
        let _ = tx.send(event.payload().to_string());
    });
    let none = invoke(
        &main,
        APP_ORIGIN,
        "live_session",
        json!({ "hostId": "local" }),
    )
    .unwrap();
    assert_eq!(none, Value::Null);
    let id = invoke(
        &main,
        APP_ORIGIN,
        "start_session",
        json!({ "hostId": "local" }),
    )
    .unwrap();
    // Live while it connects already, and once connected.
    let live = invoke(
        &main,
        APP_ORIGIN,
        "live_session",
        json!({ "hostId": "local" }),
    )
    .unwrap();
    assert_eq!(live, id);
    while let Ok(payload) = rx.recv_timeout(Duration::from_secs(5)) {
        let event: Value = serde_json::from_str(&payload).unwrap();
        if event["step"] == "readGpus" && event["state"] != "running" {
            break;
        }
    }
    let again = invoke(
        &main,
        APP_ORIGIN,
        "start_session",
        json!({ "hostId": "local" }),
    )
    .unwrap();
    assert_eq!(
        again, id,
        "a second session was started beside the live one"
    );
    let sessions = invoke(&main, APP_ORIGIN, "list_sessions", json!({})).unwrap();
    assert_eq!(sessions.as_array().unwrap().len(), 1, "{sessions:#}");
    // Another host is another connection.
    let other = invoke(
        &main,
        APP_ORIGIN,
        "live_session",
        json!({ "hostId": "gpu-box" }),
    )
    .unwrap();
    assert_eq!(other, Value::Null);

    invoke(
        &main,
        APP_ORIGIN,
        "close_session",
        json!({ "sessionId": id }),
    )
    .unwrap();
    let gone = invoke(
        &main,
        APP_ORIGIN,
        "live_session",
        json!({ "hostId": "local" }),
    )
    .unwrap();
    assert_eq!(gone, Value::Null);
    let fresh = invoke(
        &main,
        APP_ORIGIN,
        "start_session",
        json!({ "hostId": "local" }),
    )
    .unwrap();
    assert_ne!(fresh, id);
    invoke(
        &main,
        APP_ORIGIN,
        "close_session",
        json!({ "sessionId": fresh }),
    )
    .unwrap();
}

/// Every command registered in `with_commands` (lib.rs) is declared to tauri's ACL (build.rs
/// `COMMANDS`) and allowed for the main window (capabilities/main.json): with an app manifest a
/// command missing from either is refused at run time ("not allowed"), which the mock-backend UI
/// tests cannot see (issue 20's Sessions commands were refused in the real app).
#[test]
fn every_registered_command_is_allowed_for_the_main_window() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |p: &str| std::fs::read_to_string(dir.join(p)).unwrap();
    let lib = read("src/lib.rs");
    let start = lib.find("generate_handler![").unwrap() + "generate_handler![".len();
    let end = start + lib[start..].find(']').unwrap();
    let registered: std::collections::BTreeSet<String> = lib[start..end]
        .lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .flat_map(|l| l.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| p.rsplit("::").next().unwrap().to_string())
        .collect();
    let build = read("build.rs");
    let capabilities: Value = serde_json::from_str(&read("capabilities/main.json")).unwrap();
    let allowed: Vec<String> = capabilities["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str().map(str::to_string))
        .collect();
    let mut missing = Vec::new();
    for name in &registered {
        if !build.contains(&format!("\"{name}\"")) {
            missing.push(format!("{name}: not in build.rs COMMANDS"));
        }
        let permission = format!("allow-{}", name.replace('_', "-"));
        if !allowed.contains(&permission) {
            missing.push(format!(
                "{name}: {permission} not in capabilities/main.json"
            ));
        }
    }
    assert!(registered.len() > 50, "{registered:?}");
    assert!(missing.is_empty(), "{missing:#?}");
}

/// GET `/api` through local port `port`: JupyterLab's answer (its version), or why not.
fn jupyter_api(port: u16) -> Result<String, String> {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(stream, "GET /api HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| e.to_string())?;
    if answer.contains("\"version\"") {
        Ok(answer)
    } else {
        Err(format!("no JupyterLab answer: {answer:?}"))
    }
}

/// Trial of #14 (s28), finding 1: a server reopened after the app restarted (Reopen on the host
/// card, Sessions' Open: `attach_server`) is forwarded over the host session, so its local port
/// keeps working after an sshd outage, as a fresh launch's does — it used to be bound to the
/// connection of the moment, and connections to it were reset after the reconnect.
#[test]
fn a_reopened_notebook_survives_a_reconnect_and_is_dropped_when_its_server_is_gone() {
    use tunnelbook_testbed::{OTHER_USER, USER, jupyter_venv};
    if !Path::new("/usr/sbin/sshd").exists() {
        eprintln!("skipping: /usr/sbin/sshd not installed");
        return;
    }
    let venv = jupyter_venv();
    let mut bed = HostBed::start("reopen-box", None);
    let theirs = tunnelbook_testbed::sleeper(OTHER_USER);
    let scenario = two_gpu_scenario(theirs.pid());
    let _shim = tunnelbook_testbed::NvidiaSmiShim::install(USER, scenario.path());
    let app = &bed.app;
    let main = main_window(app);
    let rx = bed.session_events();
    let first = bed.connect("reopen-box", &rx);
    let args = json!({ "sessionId": first, "gpu": FREE_GPU, "env": venv.display().to_string() });
    invoke(&main, APP_ORIGIN, "launch_notebook", args).unwrap();
    session_until(&rx, Duration::from_secs(90), |e| {
        e["sessionId"] == first && e["step"] == "ready" && e["state"] == "done"
    });
    let sessions = invoke(&main, APP_ORIGIN, "list_sessions", json!({})).unwrap();
    let server_id = sessions[0]["serverId"].as_str().unwrap().to_string();

    // The app quits with the notebook left running: its session ends, the server stays.
    let handle = {
        let state = app.state::<tunnelbook_app::state::AppState>();
        let mut sessions = state.sessions();
        let entry = sessions.get_mut(first.as_str().unwrap()).unwrap();
        entry.summary.server_id = None;
        entry.summary.url = None;
        entry.notebook.take().unwrap()
    };
    tauri::async_runtime::block_on(tunnelbook_app::commands::jupyter::end_notebook(
        handle, false,
    ));
    invoke(
        &main,
        APP_ORIGIN,
        "close_session",
        json!({ "sessionId": first }),
    )
    .unwrap();

    // Connect again and Reopen it, in its window.
    let id = bed.connect("reopen-box", &rx);
    let url = invoke(
        &main,
        APP_ORIGIN,
        "attach_server",
        json!({ "sessionId": id, "serverId": server_id }),
    )
    .unwrap();
    let url = url.as_str().unwrap().to_string();
    let port: u16 = url["http://127.0.0.1:".len()..]
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    jupyter_api(port).expect("the reopened notebook answers");
    let label = invoke(
        &main,
        APP_ORIGIN,
        "open_notebook",
        json!({ "url": url, "title": "JupyterLab — reopen-box" }),
    )
    .unwrap();
    assert!(app.get_webview_window(label.as_str().unwrap()).is_some());

    // sshd restarts, dropping every connection: once the host session says it reconnected,
    // the same local port reaches the server again.
    bed.sshd.restart(Duration::from_millis(300));
    session_until(&rx, Duration::from_secs(60), |e| {
        e["sessionId"] == id
            && e["step"] == "connect"
            && e["state"] == "done"
            && e["message"]
                .as_str()
                .unwrap_or("")
                .starts_with("reconnected")
    });
    let after = jupyter_api(port);
    assert!(
        after.is_ok(),
        "the reopened notebook's port after the reconnect: {after:?}"
    );

    // Sessions' Close (its windows close too: firstrun.mjs, as tauri's mock runtime keeps closed
    // windows listed): the server keeps running, and is reopened from a new connection.
    invoke(
        &main,
        APP_ORIGIN,
        "close_session",
        json!({ "sessionId": id }),
    )
    .unwrap();
    let id = bed.connect("reopen-box", &rx);
    invoke(
        &main,
        APP_ORIGIN,
        "attach_server",
        json!({ "sessionId": id, "serverId": server_id }),
    )
    .unwrap();

    // Finding 2: the reopened server is killed on the host: the app says it is gone (every
    // view showing it drops it, on `notebook-stopped`), as it does for a fresh launch.
    let (stopped_tx, stopped_rx) = mpsc::channel();
    app.listen("notebook-stopped", move |event| {
        let _ = stopped_tx.send(event.payload().to_string());
    });
    let servers = invoke(
        &main,
        APP_ORIGIN,
        "list_servers",
        json!({ "sessionId": id }),
    )
    .unwrap();
    let pid = servers
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == server_id.as_str())
        .unwrap_or_else(|| panic!("{servers:#}"))["pid"]
        .as_u64()
        .unwrap()
        .to_string();
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let gone: Value = serde_json::from_str(
        &stopped_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("a notebook-stopped event once the reopened server is gone"),
    )
    .unwrap();
    assert_eq!(gone, json!({ "sessionId": id, "serverId": server_id }));
    let sessions = invoke(&main, APP_ORIGIN, "list_sessions", json!({})).unwrap();
    let row = sessions
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("{sessions:#}"));
    assert_eq!(row["gpu"], Value::Null, "{sessions:#}");
    invoke(
        &main,
        APP_ORIGIN,
        "close_session",
        json!({ "sessionId": id }),
    )
    .unwrap();
    drop(theirs);
}

/// Issue 21, trial finding 5: a project followed when the app last ran (closed, never "Stop
/// syncing") resumes on the next connection to its host: the save made on the host while the
/// app was closed comes back over the unchanged local notebook, and the project panel is told
/// (`resumed`), without "Open notebook…" again.
#[test]
fn a_project_followed_before_a_restart_resumes_on_connect_and_brings_back_saves() {
    use tunnelbook_core::sync::{Project, SyncSettings};
    // The connect step runs `nvidia-smi` from ~tbtest/bin: hold that folder so another test's
    // hung stand-in is not there meanwhile.
    let _bin = tunnelbook_testbed::user_bin_lock(tunnelbook_testbed::USER);
    let bed = HostBed::start("gpu-box", None);
    let local = tempfile::tempdir().unwrap();
    let remote = std::path::PathBuf::from(format!(
        "/home/{}/tb-resume-{}",
        tunnelbook_testbed::USER,
        std::process::id()
    ));
    struct Gone(std::path::PathBuf);
    impl Drop for Gone {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _gone = Gone(remote.clone());
    std::fs::create_dir_all(&remote).unwrap();
    let set_mtime = |p: &Path, secs: u64| {
        std::fs::OpenOptions::new()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(std::time::UNIX_EPOCH + Duration::from_secs(secs))
            .unwrap();
    };
    // The last run: analysis.ipynb went up (same bytes and time on both sides) and was followed.
    let (here, there) = (
        local.path().join("analysis.ipynb"),
        remote.join("analysis.ipynb"),
    );
    std::fs::write(&here, b"v1").unwrap();
    std::fs::write(&there, b"v1").unwrap();
    set_mtime(&here, 1_700_000_000);
    set_mtime(&there, 1_700_000_000);
    let remote_root = remote.display().to_string();
    let mut project = Project::open(
        bed.home.path(),
        "gpu-box",
        local.path(),
        &remote_root,
        SyncSettings::default(),
    )
    .unwrap();
    project.set_followed(Some("analysis.ipynb")).unwrap();
    // What that run saw of the file, in its state file.
    let state_file = std::fs::read_dir(bed.home.path().join("sync"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .unwrap();
    let mut state: Value = serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    let stamp = json!({ "size": 2, "mtime": 1_700_000_000u32 });
    state["files"] = json!({ "analysis.ipynb": { "local": stamp, "remote": stamp } });
    std::fs::write(&state_file, serde_json::to_vec(&state).unwrap()).unwrap();
    drop(project);
    // While the app was closed, the notebook was saved on the host.
    std::fs::write(&there, b"v2 saved while the app was closed").unwrap();
    set_mtime(&there, 1_700_000_100);

    let (tx, projects) = mpsc::channel::<Value>();
    bed.app.listen("project", move |e| {
        let _ = tx.send(serde_json::from_str(e.payload()).unwrap());
    });
    let rx = bed.session_events();
    let id = bed.connect("gpu-box", &rx);
    // The next event that is not a "syncing" status (those may come at any point between).
    let next = || loop {
        let event = projects.recv_timeout(Duration::from_secs(20)).unwrap();
        if event["type"] != "syncing" {
            break event;
        }
    };
    let resumed = next();
    assert_eq!(resumed["type"], "resumed", "{resumed}");
    assert_eq!(resumed["remoteDir"], remote_root.as_str());
    assert_eq!(
        resumed["notebook"],
        std::fs::canonicalize(&here).unwrap().display().to_string()
    );
    let back = next();
    assert_eq!(back["type"], "broughtBack", "{back}");
    assert_eq!(back["files"][0]["rel"], "analysis.ipynb");
    assert_eq!(back["files"][0]["beside"], false);
    assert_eq!(
        std::fs::read(&here).unwrap(),
        b"v2 saved while the app was closed"
    );
    assert!(!local.path().join("analysis (gpu-box).ipynb").exists());
    // The main window's list has it, syncing; "Stop syncing" forgets it for the next start.
    let main = main_window(&bed.app);
    let list = invoke(&main, APP_ORIGIN, "projects", json!({})).unwrap();
    let project_id = resumed["projectId"].as_str().unwrap();
    let listed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == project_id)
        .unwrap();
    assert_eq!(listed["phase"], "syncing");
    assert_eq!(listed["sessionId"], id);
    invoke(
        &main,
        APP_ORIGIN,
        "stop_syncing",
        json!({ "projectId": project_id }),
    )
    .unwrap();
    let stopped = next();
    assert_eq!(stopped["type"], "stopped", "{stopped}");
    assert!(tunnelbook_core::sync::followed(bed.home.path(), "gpu-box").is_empty());
    invoke(
        &main,
        APP_ORIGIN,
        "close_session",
        json!({ "sessionId": id }),
    )
    .unwrap();
}

/// A host on a real sshd for "Open notebook…" as the second bed user (whose Jupyter servers no
/// other test starts, so none is reused from elsewhere), with its projects folder and
/// JupyterLab's folder `~/<dir>` (created, removed again on drop), and a local project folder
/// holding `analysis.ipynb`.
struct ProjectBed {
    bed: HostBed,
    /// `~/<dir>` on the host.
    remote: std::path::PathBuf,
    /// The local project folder.
    local: tempfile::TempDir,
    /// The local notebook.
    notebook: std::path::PathBuf,
}

impl ProjectBed {
    fn start(name: &str, dir: &str) -> ProjectBed {
        use tunnelbook_testbed::OTHER_USER;
        let bed = HostBed::start_as(name, None, OTHER_USER);
        let remote =
            std::path::PathBuf::from(format!("/home/{OTHER_USER}/{dir}-{}", std::process::id()));
        std::fs::create_dir_all(&remote).unwrap();
        let owned = std::process::Command::new("chown")
            .args([OTHER_USER, &remote.display().to_string()])
            .status()
            .unwrap();
        assert!(owned.success());
        let remote_home = format!("~/{}", remote.file_name().unwrap().to_string_lossy());
        std::fs::write(
            bed.home.path().join("sync.toml"),
            format!("[hosts.{name}]\nprojects_dir = \"{remote_home}\"\n"),
        )
        .unwrap();
        // JupyterLab's folder for the host's own launches too.
        let state = bed.app.state::<AppState>();
        let mut profile = state
            .profiles
            .load()
            .unwrap()
            .into_iter()
            .find(|p| p.name == name)
            .unwrap();
        profile.notebook_dir = Some(remote.display().to_string());
        state.profiles.save_host(Some(name), profile, None).unwrap();
        let local = tempfile::Builder::new()
            .prefix("tb-proj-")
            .tempdir()
            .unwrap();
        let notebook = local.path().join("analysis.ipynb");
        std::fs::write(
            &notebook,
            r#"{"cells":[],"metadata":{},"nbformat":4,"nbformat_minor":5}"#,
        )
        .unwrap();
        ProjectBed {
            bed,
            remote,
            local,
            notebook,
        }
    }

    /// The project's folder on the host.
    fn remote_project(&self) -> std::path::PathBuf {
        self.remote.join(self.local.path().file_name().unwrap())
    }

    /// "Open notebook…" of the notebook on session `id` (no GPU, the bed's JupyterLab), until
    /// it shows in a window: that `syncing` event.
    fn open(&self, id: &Value, projects: &mpsc::Receiver<Value>) -> Value {
        let args = json!({
            "sessionId": id,
            "path": self.notebook.display().to_string(),
            "gpu": "cpu",
            "env": tunnelbook_testbed::jupyter_venv().display().to_string(),
        });
        invoke(
            &main_window(&self.bed.app),
            APP_ORIGIN,
            "open_local_notebook",
            args,
        )
        .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            let left = deadline
                .checked_duration_since(std::time::Instant::now())
                .expect("the notebook did not open");
            let event = projects.recv_timeout(left).unwrap();
            assert_ne!(event["type"], "failed", "{event}");
            if event["type"] == "syncing" {
                return event;
            }
        }
    }

    /// The app's `project` events, from now on.
    fn project_events(&self) -> mpsc::Receiver<Value> {
        let (tx, rx) = mpsc::channel();
        self.bed.app.listen("project", move |e| {
            let _ = tx.send(serde_json::from_str(e.payload()).unwrap());
        });
        rx
    }

    /// The pids of the Jupyter servers serving `~/<dir>` (their working folder) on the host.
    fn servers(&self) -> Vec<u32> {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                String::from_utf8_lossy(&cmdline).contains("jupyter")
                    && std::fs::read_link(format!("/proc/{pid}/cwd"))
                        .ok()
                        .as_deref()
                        == Some(self.remote.as_path())
            })
            .collect()
    }
}

impl Drop for ProjectBed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.remote);
    }
}

/// The port of a notebook window's address.
fn window_port(app: &tauri::App<MockRuntime>, label: &str) -> u16 {
    app.get_webview_window(label)
        .unwrap_or_else(|| panic!("no window {label}"))
        .url()
        .unwrap()
        .port()
        .unwrap()
}

/// The path of a notebook window's address.
fn window_url_path(app: &tauri::App<MockRuntime>, label: &str) -> String {
    app.get_webview_window(label)
        .unwrap_or_else(|| panic!("no window {label}"))
        .url()
        .unwrap()
        .path()
        .to_string()
}

/// Waits until `check` holds, at most `secs` seconds.
fn eventually(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A new user's finding 1: "Stop notebooks and quit" left the JupyterLab that "Open notebook…"
/// started running on the host (projects are not the sessions' notebooks). Quitting that way
/// brings back the host's last save first, then stops that server.
#[test]
fn stop_notebooks_and_quit_stops_the_server_open_notebook_started_after_its_last_save() {
    let p = ProjectBed::start("quit-box", "tb-quit");
    let projects = p.project_events();
    let rx = p.bed.session_events();
    let id = p.bed.connect("quit-box", &rx);
    p.open(&id, &projects);
    let servers = p.servers();
    assert_eq!(servers.len(), 1, "the project's server: {servers:?}");
    // A save on the host just before quitting (JupyterLab writes it there).
    let late = p.remote_project().join("late.txt");
    std::fs::write(&late, "saved just before quitting\n").unwrap();

    tauri::async_runtime::block_on(tunnelbook_app::commands::settings::end_all(
        p.bed.app.handle(),
        true,
    ));
    assert_eq!(
        std::fs::read_to_string(p.local.path().join("late.txt"))
            .ok()
            .as_deref(),
        Some("saved just before quitting\n"),
        "the last save came back before quitting"
    );
    eventually(20, "the project's JupyterLab to stop", || {
        !Path::new(&format!("/proc/{}", servers[0])).exists()
    });
}

/// A new user's finding 2: "Open notebook…" while the host's notebook window was open reused
/// that JupyterLab but opened a second window on a new local port. It opens the notebook in the
/// window already on that server, over the same tunnel.
#[test]
fn open_notebook_on_the_server_a_window_shows_opens_it_in_that_window() {
    let p = ProjectBed::start("reuse-box", "tb-reuse");
    let projects = p.project_events();
    let rx = p.bed.session_events();
    let app = &p.bed.app;
    let main = main_window(app);
    let id = p.bed.connect("reuse-box", &rx);
    let venv = tunnelbook_testbed::jupyter_venv().display().to_string();
    let args = json!({ "sessionId": id, "gpu": "cpu", "env": venv });
    invoke(&main, APP_ORIGIN, "launch_notebook", args).unwrap();
    session_until(&rx, Duration::from_secs(90), |e| {
        e["sessionId"] == id && e["step"] == "ready" && e["state"] == "done"
    });
    let sessions = invoke(&main, APP_ORIGIN, "list_sessions", json!({})).unwrap();
    let session = sessions
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap()
        .clone();
    let window = session["window"].as_str().unwrap().to_string();
    let port = window_port(app, &window);
    let servers = p.servers();
    assert_eq!(servers.len(), 1, "the session's server: {servers:?}");

    let syncing = p.open(&id, &projects);
    assert_eq!(syncing["window"], window.as_str(), "{syncing}");
    assert_eq!(window_port(app, &window), port);
    assert!(
        window_url_path(app, &window).ends_with("/analysis.ipynb"),
        "the window shows the notebook: {}",
        window_url_path(app, &window)
    );
    assert_eq!(p.servers(), servers, "the same JupyterLab");
    invoke(
        &main,
        APP_ORIGIN,
        "close_session",
        json!({ "sessionId": id }),
    )
    .unwrap();
    eventually(20, "the session's JupyterLab to stop", || {
        !Path::new(&format!("/proc/{}", servers[0])).exists()
    });
}

/// A new user's finding 3: Sessions ▸ Close left the notebook "Open notebook…" had opened over
/// the session on JupyterLab's "Server Connection Error" (its tunnel went with the connection)
/// and its server running on the host. Close ends it as it ends the session's own notebook:
/// the host's last save comes back, then that server stops (its window closes with the others).
#[test]
fn closing_a_session_ends_the_notebook_open_notebook_opened_on_it() {
    let p = ProjectBed::start("close-box", "tb-close");
    let projects = p.project_events();
    let rx = p.bed.session_events();
    let id = p.bed.connect("close-box", &rx);
    p.open(&id, &projects);
    let servers = p.servers();
    assert_eq!(servers.len(), 1, "the project's server: {servers:?}");
    let late = p.remote_project().join("late.txt");
    std::fs::write(&late, "saved just before closing\n").unwrap();

    let main = main_window(&p.bed.app);
    invoke(
        &main,
        APP_ORIGIN,
        "close_session",
        json!({ "sessionId": id }),
    )
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(p.local.path().join("late.txt"))
            .ok()
            .as_deref(),
        Some("saved just before closing\n"),
        "the last save came back before the session closed"
    );
    eventually(20, "the project's JupyterLab to stop", || {
        !Path::new(&format!("/proc/{}", servers[0])).exists()
    });
    let list = invoke(&main, APP_ORIGIN, "projects", json!({})).unwrap();
    assert_eq!(list[0]["phase"], "stopped", "{list:#}");
}
