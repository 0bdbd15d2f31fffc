//! The app against a real sshd: the password dialog answering PAM's keyboard-interactive
//! `Password:` prompt (case 15), and Settings' host-key policy applied to connections.

// Test helpers outside #[test] fns unwrap too; a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{path::Path, sync::mpsc, time::Duration};

use serde_json::{Value, json};
use tauri::{Listener, Manager, test::MockRuntime};
use tunnelbook_app::{AppState, prompt::PROMPT_EVENT};
use tunnelbook_testbed::{PASSWORD, Sshd, SshdOptions, USER};

mod common;
use common::{APP_ORIGIN, app, invoke, main_window};

type Events = mpsc::Receiver<(&'static str, String)>;

/// Every `prompt` and `session` event of `app`, from now on.
fn events(app: &tauri::App<MockRuntime>) -> Events {
    let (tx, rx) = mpsc::channel();
    let prompts = tx.clone();
    app.listen(PROMPT_EVENT, move |e| {
        let _ = prompts.send(("prompt", e.payload().to_string()));
    });
    app.listen("session", move |e| {
        let _ = tx.send(("session", e.payload().to_string()));
    });
    rx
}

fn save_host(app: &tauri::App<MockRuntime>, name: &str, port: u16) {
    let profile = json!({ "name": name, "host": "127.0.0.1", "port": port, "user": USER });
    invoke(
        &main_window(app),
        APP_ORIGIN,
        "save_host",
        json!({ "profile": profile }),
    )
    .unwrap();
}

/// Starts a session on `name`, answers each prompt with `answer(question)`, and returns the
/// session id, the prompts' questions, and the final connect-or-GPU step event (ready or failed).
fn connect(
    app: &tauri::App<MockRuntime>,
    rx: &Events,
    name: &str,
    answer: impl Fn(&Value) -> Value,
) -> (Value, Vec<Value>, Value) {
    let main = main_window(app);
    let id = invoke(
        &main,
        APP_ORIGIN,
        "start_session",
        json!({ "hostId": name }),
    )
    .unwrap();
    let mut asked = Vec::new();
    loop {
        let (kind, payload) = rx.recv_timeout(Duration::from_secs(40)).unwrap();
        let event: Value = serde_json::from_str(&payload).unwrap();
        if kind == "prompt" {
            asked.push(event["question"].clone());
            let reply = json!({ "id": event["id"], "answer": answer(&event["question"]) });
            invoke(&main, APP_ORIGIN, "answer_prompt", reply).unwrap();
            continue;
        }
        if event["sessionId"] != id {
            continue;
        }
        if event["state"] == "failed"
            || (event["step"] == "readGpus" && event["state"] != "running")
        {
            return (id, asked, event);
        }
    }
}

fn close(app: &tauri::App<MockRuntime>, id: &Value) {
    let _ = invoke(
        &main_window(app),
        APP_ORIGIN,
        "close_session",
        json!({ "sessionId": id }),
    );
}

/// Case 15 in the app: the server takes the password only through keyboard-interactive (PAM).
/// The password dialog answers it; with "Remember" (and a keychain) the next connection asks
/// nothing.
#[test]
fn pam_keyboard_interactive_password_comes_from_the_password_dialog() {
    if !Path::new("/usr/sbin/sshd").exists() {
        eprintln!("skipping: /usr/sbin/sshd not installed");
        return;
    }
    let sshd = Sshd::start(&[], SshdOptions::pam_password());
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("known_hosts"),
        sshd.known_hosts_line() + "\n",
    )
    .unwrap();
    let app = app(home.path());
    let rx = events(&app);
    let name = format!("pam-{}", std::process::id());
    save_host(&app, &name, sshd.port);
    let keychain = app.state::<AppState>().secrets();

    let (id, asked, last) = connect(&app, &rx, &name, |question| {
        assert_eq!(question["kind"], "secret", "unexpected prompt {question}");
        json!({ "kind": "secret", "value": PASSWORD, "remember": true })
    });
    assert_ne!(last["state"], "failed", "{last}\n{}", sshd.log());
    assert_eq!(asked.len(), 1, "{asked:?}");
    // The dialog is the password dialog for user@host, not a generic keyboard-interactive one.
    assert_eq!(asked[0]["detail"]["kind"], "password", "{asked:?}");
    assert_eq!(asked[0]["detail"]["user"], USER, "{asked:?}");
    let args = json!({ "sessionId": id, "command": "whoami" });
    let output = invoke(&main_window(&app), APP_ORIGIN, "run_command", args).unwrap();
    assert_eq!(output["stdout"].as_str().unwrap().trim(), USER);
    close(&app, &id);
    assert!(
        sshd.log().contains("Accepted keyboard-interactive/pam"),
        "{}",
        sshd.log()
    );

    let Some(keychain) = keychain else {
        eprintln!("SKIPPED the 'Remember' half: no Secret Service (run under dbus-run-session)");
        return;
    };
    let (id, asked, last) = connect(&app, &rx, &name, |question| {
        panic!("asked again although remembered: {question}")
    });
    let remembered = keychain.list(&name).unwrap();
    // Forget before asserting, so a failure leaves nothing behind in the keychain.
    keychain.forget_profile(&name, &[]).unwrap();
    close(&app, &id);
    assert_ne!(last["state"], "failed", "{last}");
    assert!(asked.is_empty());
    assert_eq!(remembered.len(), 1, "{remembered:?}");
}

/// Settings' host-key policy governs the app's connections: "strict" (Refuse unknown keys)
/// refuses an unknown key without a dialog; "accept-new" remembers it without one.
#[test]
fn settings_host_key_policy_is_honoured() {
    if !Path::new("/usr/sbin/sshd").exists() {
        eprintln!("skipping: /usr/sbin/sshd not installed");
        return;
    }
    let sshd = Sshd::start(&[], SshdOptions::default());
    let home = tempfile::tempdir().unwrap();
    let app = app(home.path());
    let main = main_window(&app);
    let rx = events(&app);
    save_host(&app, "box", sshd.port);
    let set_policy = |policy: &str| {
        let mut settings = invoke(&main, APP_ORIGIN, "get_settings", json!({})).unwrap();
        settings["hostKeyPolicy"] = json!(policy);
        invoke(
            &main,
            APP_ORIGIN,
            "save_settings",
            json!({ "settings": settings }),
        )
        .unwrap();
    };
    let password = |question: &Value| {
        assert_eq!(question["kind"], "secret", "unexpected prompt {question}");
        json!({ "kind": "secret", "value": PASSWORD, "remember": false })
    };

    set_policy("strict");
    let (id, asked, last) = connect(&app, &rx, "box", password);
    close(&app, &id);
    assert!(asked.is_empty(), "no dialog under strict: {asked:?}");
    assert_eq!(last["state"], "failed", "{last}");
    assert_eq!(last["error"]["code"], "hostKeyNotTrusted", "{last}");
    assert!(!home.path().join("known_hosts").exists());

    set_policy("accept-new");
    let (id, asked, last) = connect(&app, &rx, "box", password);
    close(&app, &id);
    assert_ne!(last["state"], "failed", "{last}");
    assert!(
        asked.iter().all(|q| q["kind"] == "secret"),
        "no host-key dialog under accept-new: {asked:?}"
    );
    let known = std::fs::read_to_string(home.path().join("known_hosts")).unwrap();
    assert!(
        known.contains(&format!("[127.0.0.1]:{}", sshd.port)),
        "{known}"
    );
}

/// A host's own StrictHostKeyChecking (e.g. imported from ~/.ssh/config) wins over the
/// Settings policy in the app: `yes` refuses a new key while Settings say accept-new, and
/// `accept-new` lets a new host in without a dialog while Settings say strict.
#[test]
fn host_strict_host_key_checking_wins_over_settings() {
    if !Path::new("/usr/sbin/sshd").exists() {
        eprintln!("skipping: /usr/sbin/sshd not installed");
        return;
    }
    let sshd = Sshd::start(&[], SshdOptions::default());
    let home = tempfile::tempdir().unwrap();
    let app = app(home.path());
    let main = main_window(&app);
    let rx = events(&app);
    let save = |name: &str, strict: &str, alias: &str| {
        let profile = json!({
            "name": name, "host": "127.0.0.1", "port": sshd.port, "user": USER,
            "strictHostKeyChecking": strict, "hostKeyAlias": alias,
        });
        invoke(
            &main,
            APP_ORIGIN,
            "save_host",
            json!({ "profile": profile }),
        )
        .unwrap();
    };
    save("refuse", "yes", "refuse-alias");
    save("welcome", "accept-new", "welcome-alias");
    let set_policy = |policy: &str| {
        let mut settings = invoke(&main, APP_ORIGIN, "get_settings", json!({})).unwrap();
        settings["hostKeyPolicy"] = json!(policy);
        invoke(
            &main,
            APP_ORIGIN,
            "save_settings",
            json!({ "settings": settings }),
        )
        .unwrap();
    };
    let password = |question: &Value| {
        assert_eq!(question["kind"], "secret", "unexpected prompt {question}");
        json!({ "kind": "secret", "value": PASSWORD, "remember": false })
    };
    let known = || std::fs::read_to_string(home.path().join("known_hosts")).unwrap_or_default();

    set_policy("accept-new");
    let (id, asked, last) = connect(&app, &rx, "refuse", password);
    close(&app, &id);
    assert!(
        asked.is_empty(),
        "no dialog for StrictHostKeyChecking yes: {asked:?}"
    );
    assert_eq!(last["error"]["code"], "hostKeyNotTrusted", "{last}");
    assert!(!known().contains("refuse-alias"), "{}", known());

    set_policy("strict");
    let (id, asked, last) = connect(&app, &rx, "welcome", password);
    close(&app, &id);
    assert_ne!(last["state"], "failed", "{last}");
    assert!(
        asked.iter().all(|q| q["kind"] == "secret"),
        "no host-key dialog for StrictHostKeyChecking accept-new: {asked:?}"
    );
    assert!(known().contains("welcome-alias "), "{}", known());
}

/// Issue 18: the host comes back after a restart with another host key (reinstalled, or not the
/// same machine). The host session's reconnect is refused with the code the UI shows as a changed
/// key — not as "unreachable" — and commands on the session say the same.
#[test]
fn a_changed_host_key_after_a_reconnect_is_reported_as_host_key_changed() {
    if !Path::new("/usr/sbin/sshd").exists() {
        eprintln!("skipping: /usr/sbin/sshd not installed");
        return;
    }
    let mut bed = common::HostBed::start("box", None);
    let rx = bed.session_events();
    let id = bed.connect("box", &rx);
    let main = main_window(&bed.app);
    bed.sshd.new_host_keys();
    bed.sshd.restart(Duration::from_millis(300));
    let failed = common::session_failure(&rx, Duration::from_secs(60), &id);
    assert_eq!(failed["step"], "hostKey", "{failed}");
    assert_eq!(failed["error"]["code"], "hostKeyChanged", "{failed}");
    let message = failed["error"]["message"].as_str().unwrap();
    assert!(message.contains("SHA256:"), "{message}");
    let err = invoke(
        &main,
        APP_ORIGIN,
        "run_command",
        json!({ "sessionId": id, "command": "true" }),
    )
    .unwrap_err();
    assert_eq!(err["code"], "hostKeyChanged", "{err}");
    invoke(
        &main,
        APP_ORIGIN,
        "close_session",
        json!({ "sessionId": id }),
    )
    .unwrap();
}

/// Issue 18: a key the server does not accept fails the authenticate step with `authFailed`.
#[test]
fn refused_credentials_fail_the_authenticate_step_as_auth_failed() {
    if !Path::new("/usr/sbin/sshd").exists() {
        eprintln!("skipping: /usr/sbin/sshd not installed");
        return;
    }
    let bed = common::HostBed::start("box", None);
    let keys = tempfile::tempdir().unwrap();
    let stranger = tunnelbook_testbed::make_key(keys.path(), "stranger", "ed25519", None);
    let main = main_window(&bed.app);
    let profile = json!({
        "name": "stranger", "host": "127.0.0.1", "port": bed.sshd.port, "user": USER,
        "auth": ["key-file"], "identityFiles": [stranger.path],
    });
    invoke(
        &main,
        APP_ORIGIN,
        "save_host",
        json!({ "profile": profile }),
    )
    .unwrap();
    let rx = bed.session_events();
    let id = invoke(
        &main,
        APP_ORIGIN,
        "start_session",
        json!({ "hostId": "stranger" }),
    )
    .unwrap();
    let failed = common::session_failure(&rx, Duration::from_secs(30), &id);
    assert_eq!(failed["step"], "authenticate", "{failed}");
    assert_eq!(failed["error"]["code"], "authFailed", "{failed}");
    let sessions = invoke(&main, APP_ORIGIN, "list_sessions", json!({})).unwrap();
    assert_eq!(sessions[0]["status"], "failed", "{sessions}");
}
