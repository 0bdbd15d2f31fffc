//! `tunnelbook shell` (issue 23) in a real pseudo-terminal against a real sshd: the login shell
//! runs on a remote pty, keystrokes reach it, its output comes back, `window-change` follows
//! the local terminal, and the exit status is the shell's; without a terminal it runs like
//! `ssh -T`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{io::Write, process::Command};

use tunnelbook_core::profile::ProfileStore;
use tunnelbook_testbed::{
    Client, Sshd, SshdOptions, USER, key_only, make_key,
    pty::{Step, run_in_pty},
    zoo::{self, ZooUser},
};

struct Bed {
    sshd: Sshd,
    client: Client,
    _keys: tempfile::TempDir,
}

/// sshd, a client trusting it, and the host `box` logging in as `user` with a key.
fn bed(user: &str) -> Bed {
    let keys = tempfile::tempdir().unwrap();
    let key = make_key(keys.path(), "id", "ed25519", None);
    let sshd = Sshd::start(&[&key], SshdOptions::default());
    let client = Client::new();
    client.trust(&sshd);
    ProfileStore::in_home(&client.home())
        .save(&[key_only(sshd.profile("box", user), &key)])
        .unwrap();
    Bed {
        sshd,
        client,
        _keys: keys,
    }
}

/// The steps of the issue's check: type `echo $((6*7)); exit 3`, read 42, and (before) change
/// the terminal size and read it back with `stty size`.
fn session_steps() -> Vec<Step> {
    vec![
        // The login shell is up once it runs what we type: a marker made by the shell itself
        // (the typed text never contains it literally).
        Step::Send("echo rea''dy\r".into()),
        Step::Expect("[\r\n]ready\r\n".into(), 30),
        Step::Send("stty size\r".into()),
        Step::Expect("[\r\n]31 97\r\n".into(), 20),
        Step::Resize(120, 40),
        Step::Sleep(0.5),
        Step::Send("stty size\r".into()),
        Step::Expect("[\r\n]40 120\r\n".into(), 20),
        Step::Send("echo $((6*7)); exit 3\r".into()),
        Step::Expect("[\r\n]42\r\n".into(), 20),
    ]
}

#[test]
fn shell_in_a_terminal_runs_keystrokes_follows_resizes_and_exits_with_the_status() {
    let bed = bed(USER);
    let mut cmd = bed.client.cli();
    cmd.args(["shell", "box"]).env("TERM", "xterm-256color");
    let run = run_in_pty(&cmd, 97, 31, &session_steps());
    assert_eq!(run.failed, None, "{}", run.output);
    assert_eq!(run.status, Some(3), "{}", run.output);
    // A remote pty with the login shell: the prompt's terminal is a tty, TERM came along.
    let mut cmd = bed.client.cli();
    cmd.args(["shell", "box"]).env("TERM", "xterm-256color");
    let run = run_in_pty(
        &cmd,
        80,
        24,
        &[
            Step::Send(
                "tty; echo \"T=$TERM\"; shopt -q login_shell && echo LOG''IN; exit\r".into(),
            ),
            Step::Expect(
                "[\r\n]/dev/pts/[0-9]+\r\nT=xterm-256color\r\nLOGIN\r\n".into(),
                30,
            ),
        ],
    );
    assert_eq!(run.failed, None, "{}", run.output);
    assert_eq!(run.status, Some(0), "{}", run.output);
    // One login per run: no second authentication hidden in the shell's start.
    let accepted = bed.sshd.log().matches("Accepted publickey").count();
    assert_eq!(accepted, 2, "{}", bed.sshd.log());
}

/// Non-ASCII keystrokes (UTF-8: é, 日本) typed into `tunnelbook shell` reach the host as the
/// same bytes, and the host's answer comes back as the same text.
#[test]
fn shell_in_a_terminal_passes_utf8_keystrokes_to_the_host() {
    let bed = bed(USER);
    let mut cmd = bed.client.cli();
    cmd.args(["shell", "box"])
        .env("TERM", "xterm-256color")
        .env("LANG", "C.UTF-8");
    let run = run_in_pty(
        &cmd,
        97,
        31,
        &[
            Step::Send("echo rea''dy\r".into()),
            Step::Expect("[\r\n]ready\r\n".into(), 30),
            // The host prints what it got, as text and as bytes (the typed line never contains
            // the `=` markers, which the shell's own quote removal makes).
            Step::Send("echo =''é日本=; printf %s é日本 | od -An -tx1; exit 4\r".into()),
            Step::Expect("[\r\n]=é日本=\r\n".into(), 20),
            Step::Expect("c3 a9 e6 97 a5 e6 9c ac".into(), 20),
        ],
    );
    assert_eq!(run.failed, None, "{}", run.output);
    assert_eq!(run.status, Some(4), "{}", run.output);
}

/// The connection drops under the shell (its sshd process is killed): `tunnelbook shell` says
/// so, exits 255 as ssh does, and leaves the local terminal in the mode it found it in.
#[test]
fn shell_restores_the_terminal_when_the_connection_drops() {
    let bed = bed(USER);
    let script = format!(
        "stty -g; {} shell box; echo \"st=$?\"; stty -g",
        tunnelbook_testbed::cli_binary().display()
    );
    let mut sh = std::process::Command::new("/bin/sh");
    sh.args(["-c", &script]);
    for (k, v) in bed.client.cli().get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    let run = run_in_pty(
        &sh,
        80,
        24,
        &[
            Step::Send("echo rea''dy\r".into()),
            Step::Expect("[\r\n]ready\r\n".into(), 30),
            Step::Send("kill -9 $PPID\r".into()),
            Step::Expect("st=255\r\n".into(), 30),
        ],
    );
    assert_eq!(run.failed, None, "{}", run.output);
    assert!(run.output.contains("was lost"), "{}", run.output);
    let modes: Vec<&str> = run
        .output
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| l.len() > 20 && l.chars().all(|c| c.is_ascii_hexdigit() || c == ':'))
        .collect();
    assert_eq!(modes.len(), 2, "{}", run.output);
    assert_eq!(modes[0], modes[1], "terminal modes changed: {}", run.output);
}

#[test]
fn shell_without_a_terminal_reads_commands_from_stdin() {
    let bed = bed(USER);
    let mut child = bed
        .client
        .cli()
        .args(["shell", "box"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"echo $((6*7)); tty || true; echo oops >&2; exit 3\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("42\nnot a tty\n"), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("oops"),
        "{out:?}"
    );
    assert_eq!(out.status.code(), Some(3), "{out:?}");
}

/// The remote pty gets the local terminal's modes as `ssh -t` sends them (differential, against
/// OpenSSH on the same sshd): from a local terminal set to unusual modes (erase ^H, interrupt ^K,
/// no flow control, IUTF8), `stty -a` on the host prints the same under both clients.
#[test]
fn shell_gives_the_remote_pty_the_local_terminals_modes_as_ssh_does() {
    let bed = bed(USER);
    let mut ssh = Command::new("ssh");
    ssh.env("HOME", bed.client.dir.path())
        .env_remove("SSH_AUTH_SOCK")
        .args(["-F", "/dev/null", "-i"])
        .arg(bed._keys.path().join("id"))
        .args(["-p", &bed.sshd.port.to_string(), "-o"])
        .arg(format!(
            "UserKnownHostsFile={}",
            bed.client.home().join("known_hosts").display()
        ))
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "LogLevel=ERROR",
        ])
        .args(["-t", &format!("{USER}@127.0.0.1")]);
    let mut tunnelbook = bed.client.cli();
    tunnelbook.args(["shell", "box"]);
    let remote_modes = |client: &Command| {
        // The local terminal's modes are set inside the pty, then the client replaces the shell.
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg("stty erase ^H intr ^K werase ^E -ixon ixany iutf8 -echoctl && exec \"$0\" \"$@\"")
            .arg(client.get_program())
            .args(client.get_args())
            .env("TERM", "xterm-256color");
        for (k, v) in client.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let run = run_in_pty(
            &cmd,
            97,
            31,
            &[
                // One line, marked by text the typed command does not contain literally.
                Step::Send("stty -a | tr '\\n' ' ' | sed 's/^/MO''DES:/'; echo; exit\r".into()),
                Step::Expect("MODES:[^\r\n]*\r\n".into(), 30),
            ],
        );
        assert_eq!(run.failed, None, "{}", run.output);
        run.output
            .split("MODES:")
            .nth(1)
            .and_then(|rest| rest.lines().next())
            .map(str::trim)
            .unwrap_or_default()
            .to_string()
    };
    let openssh = remote_modes(&ssh);
    let ours = remote_modes(&tunnelbook);
    for (what, expected) in [
        ("erase = ^H", true),
        ("intr = ^K", true),
        (" iutf8", true),
        ("-ixon", true),
    ] {
        assert_eq!(
            openssh.contains(what),
            expected,
            "ssh -t: {what}: {openssh}"
        );
    }
    assert_eq!(ours, openssh, "tunnelbook shell vs ssh -t");
}

/// Zoo users whose login shell is not bash (zsh, fish, tcsh): the same keystrokes, their own
/// login shell, the environment their startup files set.
#[test]
fn shell_runs_the_users_own_login_shell() {
    zoo::ensure_zoo();
    for (user, exit) in [
        (zoo::ZSH, "exit 3"),
        (zoo::FISH, "exit 3"),
        (zoo::TCSH, "exit 3"),
    ] {
        check_zoo(user, exit);
    }
}

fn check_zoo(user: ZooUser, exit: &str) {
    let bed = bed(user.name);
    let mut cmd = bed.client.cli();
    cmd.args(["shell", "box"]).env("TERM", "xterm-256color");
    // `echo $((6*7))` is POSIX arithmetic, which fish and tcsh do not have: each shell gets
    // its own spelling of 6*7, and says which shell it is and what its startup files set.
    let (calc, shell_name) = match user.probe {
        "fish" => ("math 6 \\* 7", "echo $TB_LOGIN_PROBE"),
        "tcsh" => ("@ x = 6 * 7; echo $x", "echo $TB_LOGIN_PROBE"),
        _ => ("echo $((6*7))", "echo $TB_LOGIN_PROBE"),
    };
    let run = run_in_pty(
        &cmd,
        80,
        24,
        &[
            Step::Send(format!("{shell_name}\r")),
            Step::Expect(format!("[\r\n]{}\r\n", user.probe), 30),
            Step::Send(format!("{calc}; {exit}\r")),
            Step::Expect("[\r\n]42\r\n".into(), 20),
        ],
    );
    assert_eq!(run.failed, None, "{}: {}", user.name, run.output);
    assert_eq!(run.status, Some(3), "{}: {}", user.name, run.output);
}

/// A port that takes the TCP connection and closes it at once (a service that is not sshd, a
/// server turning the client away): `shell` names the host and port, says what happened and what
/// to check, as `up` does for its connect step, instead of "SSH error: Disconnected".
#[test]
fn shell_to_a_port_that_hangs_up_says_where_what_happened_and_what_to_do() {
    let bed = bed(USER);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Ends with the test process.
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            drop(conn);
        }
    });
    let store = ProfileStore::in_home(&bed.client.home());
    let mut profiles = store.load().unwrap();
    profiles[0].port = port;
    store.save(&profiles).unwrap();
    for args in [&["shell", "box"][..], &["up", "box"][..]] {
        let out = bed
            .client
            .cli()
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{args:?}: {stderr}");
        for words in [
            format!("127.0.0.1:{port} accepted the connection, then closed it"),
            "before the SSH handshake finished".to_string(),
            format!("Check that an SSH server listens on port {port}"),
        ] {
            assert!(
                stderr.contains(&words),
                "{args:?}: {words:?} not in: {stderr}"
            );
        }
        assert!(!stderr.contains("SSH error"), "{args:?}: {stderr}");
        if args[0] == "shell" {
            assert!(stderr.contains("cannot open a shell on box: "), "{stderr}");
            assert_eq!(out.status.code(), Some(255), "{stderr}");
        }
    }
}
