//! `tunnelbook exec` against a real sshd: exit codes, stderr, host-key policies, scripted
//! passwords.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tunnelbook_core::profile::{AuthMethod, Profile, ProfileStore};
use tunnelbook_testbed::{Client, PASSWORD, Sshd, SshdOptions, USER, key_only, make_key};

fn save(client: &Client, profiles: &[Profile]) {
    ProfileStore::in_home(&client.home())
        .save(profiles)
        .unwrap();
}

#[test]
fn exec_mirrors_output_and_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    let key = make_key(dir.path(), "id", "ed25519", None);
    let sshd = Sshd::start(&[&key], SshdOptions::default());
    let client = Client::new();
    save(&client, &[key_only(sshd.profile("box", USER), &key)]);

    // Unknown host key, no terminal: `ask` behaves as strict and says what to do.
    let out = client
        .cli()
        .args(["exec", "box", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not known") && err.contains("SHA256:"),
        "{err}"
    );

    // accept-new remembers it; later runs need no policy.
    let out = client
        .cli()
        .args([
            "--host-key-policy",
            "accept-new",
            "exec",
            "box",
            "--",
            "echo out; echo err >&2; exit 7",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    assert_eq!(out.status.code(), Some(7));
    let out = client
        .cli()
        .args(["exec", "box", "--", "uname"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Linux\n", "{out:?}");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn exec_with_password_from_the_environment() {
    let sshd = Sshd::start(&[], SshdOptions::default());
    let client = Client::new();
    client.trust(&sshd);
    let mut profile = sshd.profile("pw", USER);
    profile.auth = vec![AuthMethod::Password];
    save(&client, &[profile]);
    let out = client
        .cli()
        .env("TUNNELBOOK_PASSWORD", PASSWORD)
        .args(["exec", "pw", "--", "whoami"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{USER}\n"),
        "{out:?}"
    );

    let out = client
        .cli()
        .env("TUNNELBOOK_PASSWORD", "wrong")
        .args(["exec", "pw", "--", "whoami"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("authentication as tbtest@127.0.0.1 failed"),
        "{err}"
    );
    assert!(!err.contains("wrong"), "the password never appears: {err}");
}

#[test]
fn unknown_host_name_says_how_to_list_hosts() {
    let client = Client::new();
    let out = client
        .cli()
        .args(["exec", "nope", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tunnelbook hosts list"));
}
