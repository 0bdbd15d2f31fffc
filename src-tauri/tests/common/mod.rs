//! What the app's test binaries share: the app on tauri's mock runtime, calling its commands,
//! and a host on a real sshd. Each binary uses part of it.
#![allow(dead_code)]

use std::{path::Path, sync::mpsc, time::Duration};

use serde_json::{Value, json};
use tauri::{
    Listener, Manager, WebviewUrl, WebviewWindow, WebviewWindowBuilder,
    ipc::{CallbackFn, InvokeBody},
    test::{INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder},
    webview::InvokeRequest,
};
use tunnelbook_app::{AppState, MAIN_WINDOW, with_commands};

/// The origin the bundled UI is served from on Linux/macOS.
pub const APP_ORIGIN: &str = "tauri://localhost";

pub fn app(home: &Path) -> tauri::App<MockRuntime> {
    with_commands(mock_builder())
        .manage(AppState::new(home))
        .build(tauri::generate_context!())
        .unwrap()
}

pub fn main_window(app: &tauri::App<MockRuntime>) -> WebviewWindow<MockRuntime> {
    match app.get_webview_window(MAIN_WINDOW) {
        Some(w) => w,
        None => WebviewWindowBuilder::new(app, MAIN_WINDOW, WebviewUrl::default())
            .build()
            .unwrap(),
    }
}

pub fn invoke(
    window: &WebviewWindow<MockRuntime>,
    origin: &str,
    cmd: &str,
    args: Value,
) -> Result<Value, Value> {
    let request = InvokeRequest {
        cmd: cmd.into(),
        callback: CallbackFn(0),
        error: CallbackFn(1),
        url: origin.parse().unwrap(),
        body: InvokeBody::Json(args),
        headers: Default::default(),
        invoke_key: INVOKE_KEY.into(),
    };
    get_ipc_response(window, request).map(|body| body.deserialize::<Value>().unwrap())
}

/// `invoke` from the app's own pages.
pub fn call(window: &WebviewWindow<MockRuntime>, cmd: &str, args: Value) -> Result<Value, Value> {
    invoke(window, APP_ORIGIN, cmd, args)
}

/// Waits for the next `session` event matching `until`, failing on any failed step.
pub fn session_until(
    rx: &mpsc::Receiver<(&'static str, String)>,
    timeout: Duration,
    until: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline
            .checked_duration_since(std::time::Instant::now())
            .expect("timed out waiting for a session event");
        let (kind, payload) = rx.recv_timeout(left).unwrap();
        if kind != "session" {
            continue;
        }
        let event: Value = serde_json::from_str(&payload).unwrap();
        assert_ne!(event["state"], "failed", "session failed: {event}");
        if until(&event) {
            return event;
        }
    }
}

/// A real sshd trusting a fresh ed25519 key (with `passphrase`), and an app whose home knows the
/// server's host key and holds host `name` logging in as the test user with that key.
pub struct HostBed {
    pub app: tauri::App<MockRuntime>,
    pub sshd: tunnelbook_testbed::Sshd,
    pub home: tempfile::TempDir,
    _keys: tempfile::TempDir,
}

impl HostBed {
    pub fn start(name: &str, passphrase: Option<&str>) -> HostBed {
        Self::start_as(name, passphrase, tunnelbook_testbed::USER)
    }

    /// [`HostBed::start`] logging in as `user` (a bed user: `tbtest`, or one of the zoo's).
    pub fn start_as(name: &str, passphrase: Option<&str>, user: &str) -> HostBed {
        Self::start_with(name, passphrase, user, &[])
    }

    /// [`HostBed::start_as`] with extra `sshd_config` lines (e.g. `AllowTcpForwarding no`).
    pub fn start_with(
        name: &str,
        passphrase: Option<&str>,
        user: &str,
        sshd_config: &[&str],
    ) -> HostBed {
        use tunnelbook_testbed::{Sshd, SshdOptions, make_key};
        let keys = tempfile::tempdir().unwrap();
        let key = make_key(keys.path(), "id", "ed25519", passphrase);
        let sshd = Sshd::start(
            &[&key],
            SshdOptions {
                extra: sshd_config.iter().map(|s| (*s).to_string()).collect(),
                ..SshdOptions::default()
            },
        );
        let home = tempfile::tempdir().unwrap();
        std::fs::write(
            home.path().join("known_hosts"),
            sshd.known_hosts_line() + "\n",
        )
        .unwrap();
        let app = app(home.path());
        let profile = json!({
            "name": name, "host": "127.0.0.1", "port": sshd.port, "user": user,
            "auth": ["key-file"], "identityFiles": [key.path],
        });
        invoke(
            &main_window(&app),
            APP_ORIGIN,
            "save_host",
            json!({ "profile": profile }),
        )
        .unwrap();
        HostBed {
            app,
            sshd,
            home,
            _keys: keys,
        }
    }

    /// The app's `session` events, from now on.
    pub fn session_events(&self) -> mpsc::Receiver<(&'static str, String)> {
        let (tx, rx) = mpsc::channel();
        self.app.listen("session", move |e| {
            let _ = tx.send(("session", e.payload().to_string()));
        });
        rx
    }

    /// Starts a session on host `name` and waits until its GPUs are read; returns its id. The
    /// GPU query runs `nvidia-smi` from the user's `~/bin`, where GPU tests put stand-ins (some
    /// hung on purpose): a test that installs none holds `tunnelbook_testbed::user_bin_lock`.
    pub fn connect(&self, name: &str, rx: &mpsc::Receiver<(&'static str, String)>) -> Value {
        let id = invoke(
            &main_window(&self.app),
            APP_ORIGIN,
            "start_session",
            json!({ "hostId": name }),
        )
        .unwrap();
        session_until(rx, Duration::from_secs(30), |e| {
            e["sessionId"] == id && e["step"] == "readGpus" && e["state"] != "running"
        });
        id
    }
}

/// Waits for the first failed step of session `id` and returns its event.
pub fn session_failure(
    rx: &mpsc::Receiver<(&'static str, String)>,
    timeout: Duration,
    id: &Value,
) -> Value {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline
            .checked_duration_since(std::time::Instant::now())
            .expect("timed out waiting for a failed step");
        let (kind, payload) = rx.recv_timeout(left).unwrap();
        if kind != "session" {
            continue;
        }
        let event: Value = serde_json::from_str(&payload).unwrap();
        if &event["sessionId"] == id && event["state"] == "failed" {
            return event;
        }
    }
}
