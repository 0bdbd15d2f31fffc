//! Nothing secret reaches disk, logs or printed output: connect with a password remembered in the
//! real Secret Service, start a notebook whose token goes to the keychain, then search every file
//! under `$HOME`/`$TUNNELBOOK_HOME`, the debug logs and the outputs for the password and the token.
//! Runs inside `dbus-run-session` with an unlocked gnome-keyring (scripts/test-all.sh does that).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use tunnelbook_core::profile::{AuthMethod, ProfileStore};
use tunnelbook_testbed::{Client, Guard, PASSWORD, Sshd, SshdOptions, USER, jupyter_venv};

fn files_containing(dir: &Path, needle: &str, found: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_containing(&path, needle, found);
        } else if std::fs::read(&path)
            .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
        {
            found.push(path.display().to_string());
        }
    }
}

#[test]
fn remembered_password_and_jupyter_token_never_reach_files_logs_or_output() {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
        eprintln!("SKIPPED: needs a D-Bus session with a Secret Service (run scripts/test-all.sh)");
        return;
    }
    let venv = jupyter_venv();
    let sshd = Sshd::start(&[], SshdOptions::default());
    let client = Client::new();
    let name = format!("pw-{}", std::process::id());
    let mut profile = sshd.profile(&name, USER);
    profile.auth = vec![AuthMethod::Password];
    profile.environment = Some(venv.display().to_string());
    ProfileStore::in_home(&client.home())
        .save(&[profile])
        .unwrap();
    let transcript = std::cell::RefCell::new(String::new());
    let run = |args: &[&str], password: Option<&str>| {
        let mut cmd = client.cli();
        cmd.env("RUST_LOG", "debug")
            .env(
                "DBUS_SESSION_BUS_ADDRESS",
                std::env::var_os("DBUS_SESSION_BUS_ADDRESS").unwrap(),
            )
            .args(args);
        if let Some(pw) = password {
            cmd.env("TUNNELBOOK_PASSWORD", pw);
        }
        let out = cmd.output().unwrap();
        let mut t = transcript.borrow_mut();
        t.push_str(&String::from_utf8_lossy(&out.stdout));
        t.push_str(&String::from_utf8_lossy(&out.stderr));
        out
    };

    // Remember the password, then connect again with no password given.
    let out = run(
        &[
            "--host-key-policy",
            "accept-new",
            "--remember",
            "exec",
            &name,
            "--",
            "whoami",
        ],
        Some(PASSWORD),
    );
    assert!(out.status.success(), "{out:?}");
    let out = run(&["exec", &name, "--", "whoami"], None);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{USER}\n"),
        "{out:?}"
    );

    // A notebook: its token is printed once in the URL for the user, and kept in the keychain.
    let mut up = Guard::spawn(
        client
            .cli()
            .env("RUST_LOG", "debug")
            .env(
                "DBUS_SESSION_BUS_ADDRESS",
                std::env::var_os("DBUS_SESSION_BUS_ADDRESS").unwrap(),
            )
            .args(["up", &name, "--gpu", "none", "--json"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null()),
    );
    let ready: serde_json::Value = serde_json::from_str(&up.read_line()).unwrap();
    let url = ready["url"].as_str().unwrap().to_string();
    let token = url.split("token=").nth(1).unwrap().to_string();
    assert!(token.len() >= 32, "{url}");
    up.kill();
    for args in [
        vec!["hosts", "list", "--json"],
        vec!["hosts", "show", &name],
        vec!["ls", &name, "--json"],
    ] {
        let out = run(&args, None);
        assert!(out.status.success(), "{args:?}: {out:?}");
    }
    // `ls` still knows the server: the token came back from the keychain, not a file.
    let out = run(&["down", &name, ready["serverId"].as_str().unwrap()], None);
    assert!(out.status.success(), "{out:?}");

    for secret in [PASSWORD, token.as_str()] {
        assert!(
            !transcript.borrow().contains(secret),
            "a secret was printed or logged"
        );
        let mut found = Vec::new();
        files_containing(client.dir.path(), secret, &mut found);
        assert!(found.is_empty(), "secret found in {found:?}");
    }
    // The remote side: Tunnelbook's record and log hold no token either.
    let mut found = Vec::new();
    files_containing(
        Path::new(&format!("/home/{USER}/.tunnelbook")),
        &token,
        &mut found,
    );
    assert!(found.is_empty(), "token found on the host in {found:?}");

    // Clean up the keychain entries this test made.
    let out = run(&["hosts", "rm", &name], None);
    assert!(out.status.success(), "{out:?}");
}
