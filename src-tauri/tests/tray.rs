//! Tray model, settings and forwarding rules through the app's real commands on tauri's mock
//! runtime; the forwarding test carries traffic through a real OpenSSH sshd from the test bed.

// Test helpers outside #[test] fns unwrap too; a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::Path,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use tauri::{WebviewWindow, test::MockRuntime};

mod common;
use common::{HostBed, app, call, main_window};

fn wait_for_status(main: &WebviewWindow<MockRuntime>, id: &Value, status: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sessions = call(main, "list_sessions", json!({})).unwrap();
        let s = sessions
            .as_array()
            .unwrap()
            .iter()
            .find(|s| &s["id"] == id)
            .unwrap()
            .clone();
        if s["status"] == status {
            return;
        }
        assert_ne!(s["status"], "failed", "session failed: {s}");
        assert!(Instant::now() < deadline, "session never {status}: {s}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Labels of a menu level, with submenus as `label ▸`.
fn labels(items: &Value) -> Vec<String> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|e| match e["kind"].as_str().unwrap() {
            "separator" => "---".to_string(),
            "submenu" => format!("{} ▸", e["label"].as_str().unwrap()),
            _ => e["label"].as_str().unwrap().to_string(),
        })
        .collect()
}

fn submenu<'a>(items: &'a Value, label: &str) -> &'a Value {
    &items
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "submenu" && e["label"] == label)
        .unwrap_or_else(|| panic!("no submenu {label}: {items:#}"))["items"]
}

#[test]
fn settings_persist_across_app_instances_and_are_validated() {
    let home = tempfile::tempdir().unwrap();
    {
        let app = app(home.path());
        let main = main_window(&app);
        let defaults = call(&main, "get_settings", json!({})).unwrap();
        assert_eq!(defaults["refreshIntervalSecs"], 5);
        assert_eq!(defaults["theme"], "system");
        assert_eq!(defaults["hostKeyPolicy"], "ask");

        let mut bad = defaults.clone();
        bad["refreshIntervalSecs"] = json!(0);
        let err = call(&main, "save_settings", json!({ "settings": bad })).unwrap_err();
        assert_eq!(err["code"], "validation");
        assert_eq!(err["fields"][0]["field"], "refreshIntervalSecs");

        let mut changed = defaults;
        changed["theme"] = json!("dark");
        changed["refreshIntervalSecs"] = json!(9);
        changed["hostKeyPolicy"] = json!("accept-new");
        changed["notifyGpuFree"] = json!(["gpu-box"]);
        call(&main, "save_settings", json!({ "settings": changed })).unwrap();
        let paths = call(&main, "app_paths", json!({})).unwrap();
        assert_eq!(
            paths["logs"],
            home.path().join("logs").display().to_string()
        );
    }
    // A new app on the same home reads them back.
    let app = app(home.path());
    let main = main_window(&app);
    let again = call(&main, "get_settings", json!({})).unwrap();
    assert_eq!(again["theme"], "dark");
    assert_eq!(again["refreshIntervalSecs"], 9);
    assert_eq!(again["hostKeyPolicy"], "accept-new");
    assert_eq!(again["notifyGpuFree"], json!(["gpu-box"]));
    let text = std::fs::read_to_string(home.path().join("settings.toml")).unwrap();
    assert!(text.contains("theme = \"dark\""), "{text}");
}

#[test]
fn tray_menu_follows_a_local_session() {
    let home = tempfile::tempdir().unwrap();
    let app = app(home.path());
    let main = main_window(&app);
    let before = call(&main, "tray_menu", json!({})).unwrap();
    assert_eq!(
        labels(&before["items"]),
        ["This computer ▸", "---", "Show Tunnelbook", "Quit"]
    );
    assert_eq!(
        labels(submenu(&before["items"], "This computer")),
        ["Connect and open notebook"]
    );

    let id = call(&main, "start_session", json!({ "hostId": "local" })).unwrap();
    wait_for_status(&main, &id, "connected");
    // The refresh tick reads the GPUs of live sessions (none on a CI box: "no GPU").
    tauri::async_runtime::block_on(tunnelbook_app::tray::tick(
        app.handle(),
        &tunnelbook_core::settings::Settings::default(),
    ));
    let after = call(&main, "tray_menu", json!({})).unwrap();
    let local = submenu(&after["items"], "This computer");
    // One connection per host: a notebook is started on this one, no second session.
    assert_eq!(labels(local), ["Connected ▸", "---", "Start a notebook"]);
    assert_eq!(labels(submenu(local, "Connected")), ["Stop"]);
    let top = labels(&after["items"]);
    assert!(
        top.iter().any(|l| l.starts_with("This computer: ")
            && (l.ends_with("no GPU") || l.contains("GPUs free"))),
        "{top:?}"
    );

    call(&main, "close_session", json!({ "sessionId": id })).unwrap();
    let closed = call(&main, "tray_menu", json!({})).unwrap();
    assert_eq!(
        labels(submenu(&closed["items"], "This computer")),
        ["Connect and open notebook"]
    );
}

/// Echoes every byte back, for as many connections as come.
fn echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || stream.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

fn echo_through(addr: &str, payload: &[u8]) -> Vec<u8> {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(payload).unwrap();
    let mut got = vec![0u8; payload.len()];
    tcp.read_exact(&mut got).unwrap();
    got
}

#[test]
fn forwarding_rules_carry_traffic_over_real_sshd_and_toggle() {
    if !Path::new("/usr/sbin/sshd").exists() {
        eprintln!("skipping: /usr/sbin/sshd not installed");
        return;
    }
    let bed = HostBed::start("gpu-box", None);
    let app = &bed.app;
    let main = main_window(app);

    // Not connected: the rule is saved, nothing runs.
    let echo = echo_server();
    let rule = json!({ "enabled": true, "kind": "local", "bind": "127.0.0.1", "port": 0,
                       "host": "127.0.0.1", "host_port": echo });
    let view = call(
        &main,
        "save_forward",
        json!({ "hostId": "gpu-box", "index": null, "rule": rule }),
    )
    .unwrap();
    assert_eq!(view["sessionId"], Value::Null);
    assert_eq!(view["rules"][0]["runningId"], Value::Null);
    let hosts = std::fs::read_to_string(bed.home.path().join("hosts.toml")).unwrap();
    assert!(hosts.contains(&format!("host_port = {echo}")), "{hosts}");

    // Connected: the enabled rule starts by itself (trial of s29: it stayed stopped until
    // "Start enabled rules" was pressed, though the view says rules start on connect).
    let id = call(&main, "start_session", json!({ "hostId": "gpu-box" })).unwrap();
    wait_for_status(&main, &id, "connected");
    let deadline = Instant::now() + Duration::from_secs(10);
    let view = loop {
        let view = call(&main, "list_forwards", json!({ "hostId": "gpu-box" })).unwrap();
        if view["rules"][0]["runningId"] != Value::Null || Instant::now() > deadline {
            break view;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_ne!(view["rules"][0]["runningId"], Value::Null, "{view:#}");
    assert_eq!(view["sessionId"], id);
    // "Start enabled rules" now starts nothing twice.
    let again = call(&main, "start_forwards", json!({ "hostId": "gpu-box" })).unwrap();
    assert_eq!(
        again["rules"][0]["runningId"],
        view["rules"][0]["runningId"]
    );
    let local = view["rules"][0]["localAddr"].as_str().unwrap().to_string();
    assert!(local.starts_with("127.0.0.1:"), "{view:#}");
    assert_eq!(view["rules"][0]["url"], format!("http://{local}/"));

    // Traffic through sshd (direct-tcpip) to the echo server, counted.
    assert_eq!(echo_through(&local, b"hello tunnel"), b"hello tunnel");
    assert_eq!(echo_through(&local, &[7u8; 100_000]), vec![7u8; 100_000]);
    let deadline = Instant::now() + Duration::from_secs(5);
    let counters = loop {
        let view = call(&main, "list_forwards", json!({ "hostId": "gpu-box" })).unwrap();
        let c = view["rules"][0]["counters"].clone();
        if c["bytesDown"].as_u64().unwrap() >= 100_012 || Instant::now() > deadline {
            break c;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(counters["totalConnections"], 2, "{counters}");
    assert_eq!(counters["bytesUp"], 100_012, "{counters}");
    assert_eq!(counters["bytesDown"], 100_012, "{counters}");

    // Off: saved in the profile, the listener is gone.
    let view = call(
        &main,
        "set_forward_enabled",
        json!({ "hostId": "gpu-box", "index": 0, "enabled": false }),
    )
    .unwrap();
    assert_eq!(view["rules"][0]["rule"]["enabled"], false);
    assert_eq!(view["rules"][0]["runningId"], Value::Null);
    let hosts = std::fs::read_to_string(bed.home.path().join("hosts.toml")).unwrap();
    assert!(hosts.contains("enabled = false"), "{hosts}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(&local).is_ok() {
        assert!(Instant::now() < deadline, "{local} still listens");
        std::thread::sleep(Duration::from_millis(50));
    }
    // On again: starts at once because the host is connected.
    let view = call(
        &main,
        "set_forward_enabled",
        json!({ "hostId": "gpu-box", "index": 0, "enabled": true }),
    )
    .unwrap();
    let local = view["rules"][0]["localAddr"].as_str().unwrap().to_string();
    assert_eq!(echo_through(&local, b"again"), b"again");

    // A one-off forward is not saved and stops on request.
    let spec = json!({ "kind": "local", "bind": "127.0.0.1", "port": 0, "host": "127.0.0.1",
                       "host_port": echo });
    let view = call(
        &main,
        "start_one_off",
        json!({ "hostId": "gpu-box", "spec": spec }),
    )
    .unwrap();
    let one = &view["oneOff"][0];
    let one_addr = one["localAddr"].as_str().unwrap().to_string();
    assert_eq!(echo_through(&one_addr, b"one-off"), b"one-off");
    let hosts = std::fs::read_to_string(bed.home.path().join("hosts.toml")).unwrap();
    assert_eq!(hosts.matches("host_port").count(), 1, "{hosts}");
    let view = call(&main, "stop_forward", json!({ "id": one["runningId"] })).unwrap();
    assert_eq!(view["oneOff"], json!([]));

    // The tray lists the connected host's session.
    let tray = call(&main, "tray_menu", json!({})).unwrap();
    assert_eq!(labels(submenu(&tray["items"], "gpu-box"))[0], "Connected ▸");

    // Closing the session stops its forwards; deleting the rule empties the list.
    call(&main, "close_session", json!({ "sessionId": id })).unwrap();
    let view = call(&main, "list_forwards", json!({ "hostId": "gpu-box" })).unwrap();
    assert_eq!(view["sessionId"], Value::Null);
    assert_eq!(view["rules"][0]["runningId"], Value::Null);
    let view = call(
        &main,
        "delete_forward",
        json!({ "hostId": "gpu-box", "index": 0 }),
    )
    .unwrap();
    assert_eq!(view["rules"], json!([]));
}

#[test]
fn tunnels_need_a_connection() {
    let home = tempfile::tempdir().unwrap();
    let app = app(home.path());
    let main = main_window(&app);
    let profile = json!({ "name": "far", "host": "127.0.0.1", "port": 1 });
    call(&main, "save_host", json!({ "profile": profile })).unwrap();
    let spec =
        json!({ "kind": "local", "bind": "127.0.0.1", "port": 0, "host": "h", "host_port": 1 });
    let err = call(
        &main,
        "start_one_off",
        json!({ "hostId": "far", "spec": spec }),
    )
    .unwrap_err();
    assert_eq!(err["code"], "unsupported");
    assert!(err["message"].as_str().unwrap().contains("not connected"));
    let err = call(&main, "list_forwards", json!({ "hostId": "nope" })).unwrap_err();
    assert_eq!(err["code"], "notFound");
}

/// Issue 18: Tunnels-view rules run on the host session, so a local (`-L`) and a remote (`-R`)
/// rule carry traffic before and after sshd is restarted (every SSH connection cut, as a crash or
/// reboot would): the host session dials again by itself, the local rule keeps its port, the
/// remote one is asked for again — and the view shows them running because they are.
#[test]
fn tunnels_view_rules_carry_traffic_before_and_after_sshd_restarts() {
    if !Path::new("/usr/sbin/sshd").exists() {
        eprintln!("skipping: /usr/sbin/sshd not installed");
        return;
    }
    let mut bed = HostBed::start("gpu-box", None);
    let rx = bed.session_events();
    let main = main_window(&bed.app);
    let echo = echo_server();
    let remote_port = tunnelbook_testbed::free_port();
    for rule in [
        json!({ "enabled": true, "kind": "local", "bind": "127.0.0.1", "port": 0,
                "host": "127.0.0.1", "host_port": echo }),
        json!({ "enabled": true, "kind": "remote", "bind": "127.0.0.1", "port": remote_port,
                "host": "127.0.0.1", "host_port": echo }),
    ] {
        call(
            &main,
            "save_forward",
            json!({ "hostId": "gpu-box", "index": null, "rule": rule }),
        )
        .unwrap();
    }
    let id = bed.connect("gpu-box", &rx);
    let view = call(&main, "start_forwards", json!({ "hostId": "gpu-box" })).unwrap();
    assert_eq!(view["rules"][1]["error"], Value::Null, "{view:#}");
    let local = view["rules"][0]["localAddr"].as_str().unwrap().to_string();
    let remote = format!("127.0.0.1:{remote_port}");
    assert_eq!(echo_through(&local, b"before -L"), b"before -L");
    assert_eq!(echo_through(&remote, b"before -R"), b"before -R");

    bed.sshd.restart(Duration::from_millis(500));
    let lost = common::session_until(&rx, Duration::from_secs(60), |e| {
        e["sessionId"] == id && e["step"] == "connect" && e["state"] == "running"
    });
    assert_eq!(lost["error"]["code"], "unreachable", "{lost}");
    let back = common::session_until(&rx, Duration::from_secs(60), |e| {
        e["sessionId"] == id && e["step"] == "connect" && e["state"] == "done"
    });
    assert!(
        back["message"].as_str().unwrap().starts_with("reconnected"),
        "{back}"
    );

    let view = call(&main, "list_forwards", json!({ "hostId": "gpu-box" })).unwrap();
    assert_eq!(view["sessionId"], id, "{view:#}");
    assert_eq!(view["rules"][0]["localAddr"], local.as_str(), "{view:#}");
    assert_ne!(view["rules"][0]["runningId"], Value::Null, "{view:#}");
    assert_ne!(view["rules"][1]["runningId"], Value::Null, "{view:#}");
    assert_eq!(echo_through(&local, b"after -L"), b"after -L");
    assert_eq!(echo_through(&remote, b"after -R"), b"after -R");
    // The session's other services follow the new connection too.
    let out = call(
        &main,
        "run_command",
        json!({ "sessionId": id, "command": "echo still-$((40+2))" }),
    )
    .unwrap();
    assert_eq!(out["stdout"].as_str().unwrap().trim(), "still-42");

    // Closing the session closes its forwards at once: neither end listens any more.
    call(&main, "close_session", json!({ "sessionId": id })).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(&remote).is_ok() || TcpStream::connect(&local).is_ok() {
        assert!(
            Instant::now() < deadline,
            "{remote} or {local} still listens after close"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Issue 16: the server's forwarding policy is probed as the host connects, so the Tunnels view
/// names a forbidding `sshd_config` setting within 2 s of connecting, before any rule is tried;
/// on a server that allows forwarding it says nothing.
#[test]
fn tunnels_view_names_a_server_that_forbids_forwarding_right_after_connecting() {
    for (extra, forbids) in [(&["AllowTcpForwarding no"][..], true), (&[][..], false)] {
        let bed = HostBed::start_with("fwd-box", None, tunnelbook_testbed::USER, extra);
        let main = main_window(&bed.app);
        let rx = bed.session_events();
        bed.connect("fwd-box", &rx);
        let connected = Instant::now();
        let view = loop {
            let view = call(&main, "list_forwards", json!({ "hostId": "fwd-box" })).unwrap();
            if !view["forwarding"].is_null() || connected.elapsed() > Duration::from_secs(2) {
                break view;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(!view["sessionId"].is_null(), "{view}");
        if forbids {
            let said = view["forwarding"].as_str().unwrap_or_default();
            assert!(said.contains("AllowTcpForwarding no"), "{view}");
        } else {
            assert!(view["forwarding"].is_null(), "{view}");
        }
    }
}

/// The local port saved rule 0 of `host` listens on, once it runs (waits up to 10 s).
fn rule_port(main: &WebviewWindow<MockRuntime>, host: &str) -> (u16, Value) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let view = call(main, "list_forwards", json!({ "hostId": host })).unwrap();
        if let Some(addr) = view["rules"][0]["localAddr"].as_str() {
            let port = addr.rsplit(':').next().unwrap().parse().unwrap();
            return (port, view);
        }
        assert!(Instant::now() < deadline, "rule 0 never ran: {view:#}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Turns saved rule 0 of `host` off, waits until `port` no longer listens, and on again.
fn restart_rule(main: &WebviewWindow<MockRuntime>, host: &str, port: u16) {
    let toggle = |enabled: bool| {
        call(
            main,
            "set_forward_enabled",
            json!({ "hostId": host, "index": 0, "enabled": enabled }),
        )
        .unwrap()
    };
    toggle(false);
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(Instant::now() < deadline, "port {port} still listens");
        std::thread::sleep(Duration::from_millis(50));
    }
    toggle(true);
}

/// A new user's finding 5: a rule saved with the default local port 0 got a new local port at
/// every start, so its address changed each time. The port it first got is saved with the rule
/// and asked for again at the next start — after a stop, and in a new app on the same home;
/// when something else holds it then, the rule takes a free port and the view says so.
#[test]
fn a_rule_with_port_0_keeps_the_port_it_got_from_one_start_to_the_next() {
    if !Path::new("/usr/sbin/sshd").exists() {
        eprintln!("skipping: /usr/sbin/sshd not installed");
        return;
    }
    let bed = HostBed::start("port-box", None);
    let main = main_window(&bed.app);
    let echo = echo_server();
    let id = call(&main, "start_session", json!({ "hostId": "port-box" })).unwrap();
    wait_for_status(&main, &id, "connected");
    let rule = json!({ "enabled": true, "kind": "local", "bind": "127.0.0.1", "port": 0,
                       "host": "127.0.0.1", "host_port": echo });
    call(
        &main,
        "save_forward",
        json!({ "hostId": "port-box", "index": null, "rule": rule }),
    )
    .unwrap();
    let (first, _) = rule_port(&main, "port-box");
    let hosts = std::fs::read_to_string(bed.home.path().join("hosts.toml")).unwrap();
    assert!(hosts.contains(&format!("lastPort = {first}")), "{hosts}");
    assert!(
        hosts.contains("port = 0"),
        "the rule still asks for any port: {hosts}"
    );

    // Stopped and started again: the same port.
    restart_rule(&main, "port-box", first);
    let (again, view) = rule_port(&main, "port-box");
    assert_eq!(again, first, "{view:#}");
    assert_eq!(view["rules"][0]["notice"], Value::Null, "{view:#}");
    assert_eq!(
        echo_through(&format!("127.0.0.1:{again}"), b"same port"),
        b"same port"
    );
    // Edited in the form (which does not carry the port): an unchanged rule keeps it.
    call(
        &main,
        "save_forward",
        json!({ "hostId": "port-box", "index": 0, "rule": rule }),
    )
    .unwrap();
    assert_eq!(rule_port(&main, "port-box").0, first);

    // A new app on the same home (the app restarted): the same port.
    call(&main, "close_session", json!({ "sessionId": id })).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(("127.0.0.1", first)).is_ok() {
        assert!(Instant::now() < deadline, "port {first} still listens");
        std::thread::sleep(Duration::from_millis(50));
    }
    let restarted = app(bed.home.path());
    let main2 = main_window(&restarted);
    let id2 = call(&main2, "start_session", json!({ "hostId": "port-box" })).unwrap();
    wait_for_status(&main2, &id2, "connected");
    assert_eq!(rule_port(&main2, "port-box").0, first);

    // Taken by something else meanwhile: a free port, and the view says why.
    call(
        &main2,
        "set_forward_enabled",
        json!({ "hostId": "port-box", "index": 0, "enabled": false }),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let squatter = loop {
        match TcpListener::bind(("127.0.0.1", first)) {
            Ok(l) => break l,
            Err(e) => assert!(Instant::now() < deadline, "port {first}: {e}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    call(
        &main2,
        "set_forward_enabled",
        json!({ "hostId": "port-box", "index": 0, "enabled": true }),
    )
    .unwrap();
    let (other, view) = rule_port(&main2, "port-box");
    assert_ne!(other, first);
    let notice = view["rules"][0]["notice"].as_str().unwrap_or_default();
    assert!(
        notice.contains(&format!("port {first}")) && notice.contains("taken"),
        "{view:#}"
    );
    assert_eq!(view["rules"][0]["error"], Value::Null, "{view:#}");
    drop(squatter);
    call(&main2, "close_session", json!({ "sessionId": id2 })).unwrap();
}
