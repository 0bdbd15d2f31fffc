//! An imported `~/.ssh/config` used for real: `tunnelbook hosts import-ssh-config` then
//! `tunnelbook exec` through real sshd instances — a two-hop `ProxyJump user@alias:port` chain
//! whose aliases resolve through the same config (case 02), and `ProxyCommand ssh -W %h:%p`
//! as the transport, with a failing proxy's stderr in the error.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{path::Path, process::Output, time::Duration};

use tunnelbook_testbed::{Client, KeyFile, Sshd, SshdOptions, USER, make_key, processes};

fn import(client: &Client, config: &Path) -> String {
    let out = client
        .cli()
        .args(["hosts", "import-ssh-config", "--file"])
        .arg(config)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "import failed: {text}");
    text
}

fn exec(client: &Client, host: &str, command: &str) -> Output {
    client
        .cli()
        .args([
            "--host-key-policy",
            "accept-new",
            "exec",
            host,
            "--",
            command,
        ])
        .output()
        .unwrap()
}

fn accepted(sshd: &Sshd) -> usize {
    sshd.log()
        .matches(&format!("Accepted publickey for {USER}"))
        .count()
}

/// A process's argv, empty when it is gone.
fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn key(dir: &Path) -> KeyFile {
    make_key(dir, "id_cfg", "ed25519", None)
}

/// `ProxyJump USER@hop1,USER@hop2:PORT`: hop1's User and hop2's Port in the config are wrong
/// on purpose; the hop's own user and port win, the rest (HostName, IdentityFile) comes from
/// the alias's block, as with OpenSSH.
#[test]
fn two_hop_proxyjump_user_at_alias_port_chain_from_ssh_config() {
    let dir = tempfile::tempdir().unwrap();
    let key = key(dir.path());
    let hop1 = Sshd::start(&[&key], SshdOptions::default());
    let hop2 = Sshd::start(&[&key], SshdOptions::default());
    let target = Sshd::start(&[&key], SshdOptions::default());
    let client = Client::new();
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        format!(
            "Host hop1\n    HostName 127.0.0.1\n    Port {p1}\n    User nobody-here\n    IdentityFile {k}\n\n\
             Host hop2\n    HostName 127.0.0.1\n    Port 1\n    IdentityFile {k}\n\n\
             Host gpu\n    HostName 127.0.0.1\n    Port {pt}\n    User {USER}\n    IdentityFile {k}\n    \
             ProxyJump {USER}@hop1,{USER}@hop2:{p2}\n",
            p1 = hop1.port,
            p2 = hop2.port,
            pt = target.port,
            k = key.path.display()
        ),
    )
    .unwrap();
    let report = import(&client, &config);
    assert!(report.contains("imported 3"), "{report}");

    let out = exec(&client, "gpu", "echo via-jump-ok");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "via-jump-ok\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0));
    // Each hop authenticated as the user the jump list gives (hop1's config says another), over
    // hop2's port from the jump list (its config says port 1); the target saw the login too.
    assert_eq!(accepted(&hop1), 1, "{}", hop1.log());
    assert_eq!(accepted(&hop2), 1, "{}", hop2.log());
    assert_eq!(accepted(&target), 1, "{}", target.log());
}

/// `ProxyCommand ssh -W %h:%p …` carries the connection over OpenSSH's own client; a proxy
/// that fails shows what it wrote to stderr; nothing is left running.
#[test]
fn proxycommand_ssh_w_is_the_transport_and_its_stderr_is_shown_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let key = key(dir.path());
    let jump = Sshd::start(&[&key], SshdOptions::default());
    let target = Sshd::start(&[&key], SshdOptions::default());
    let client = Client::new();
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        format!(
            "Host via-proxy\n    HostName 127.0.0.1\n    Port {pt}\n    User {USER}\n    IdentityFile {k}\n    \
             ProxyCommand ssh -F none -i {k} -p {pj} -o BatchMode=yes -o StrictHostKeyChecking=no \
             -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -W %h:%p %r@127.0.0.1\n\n\
             Host broken-proxy\n    HostName 127.0.0.1\n    Port {pt}\n    \
             ProxyCommand sh -c 'echo tb-proxy-broke-for-%h >&2; exit 3'\n",
            pt = target.port,
            pj = jump.port,
            k = key.path.display()
        ),
    )
    .unwrap();
    import(&client, &config);
    let out = exec(&client, "via-proxy", "echo via-proxy-ok");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "via-proxy-ok\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The proxy (OpenSSH's client) logged in to the jump sshd, and the target accepted us.
    assert_eq!(accepted(&jump), 1, "{}", jump.log());
    assert_eq!(accepted(&target), 1, "{}", target.log());

    let out = exec(&client, "broken-proxy", "true");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{err}");
    assert!(
        err.contains("proxy command") && err.contains("tb-proxy-broke-for-127.0.0.1"),
        "{err}"
    );

    // No proxy process outlives the command.
    std::thread::sleep(Duration::from_millis(500));
    let port = jump.port.to_string();
    let left: Vec<(u32, Vec<String>)> = processes()
        .into_iter()
        .filter(|(pid, stat)| stat.first().is_some_and(|s| s != "Z") && *pid > 0)
        .map(|(pid, _)| (pid, cmdline(pid)))
        .filter(|(_, argv)| argv.first().is_some_and(|a| a == "ssh") && argv.contains(&port))
        .collect();
    assert!(left.is_empty(), "left running: {left:?}");
}

/// `ConnectTimeout 1` from the config bounds the connection to a server that accepts TCP and
/// never speaks SSH (the default would wait 15 s).
#[test]
fn connect_timeout_from_ssh_config_bounds_a_silent_server() {
    let dir = tempfile::tempdir().unwrap();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let client = Client::new();
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        format!("Host silent\n    HostName 127.0.0.1\n    Port {port}\n    ConnectTimeout 1\n"),
    )
    .unwrap();
    import(&client, &config);
    let started = std::time::Instant::now();
    let out = exec(&client, "silent", "true");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{err}");
    assert!(err.contains("within 1 s"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "took {:?}",
        started.elapsed()
    );
    drop(silent);
}

/// `tunnelbook exec` without `--host-key-policy` (no terminal: the Settings default `ask`
/// refuses), with the output and error text.
fn exec_plain(client: &Client, host: &str, command: &str) -> (Output, String) {
    let out = client
        .cli()
        .args(["exec", host, "--", command])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, err)
}

/// `StrictHostKeyChecking` from the config is the host's policy for a key no known_hosts
/// lists: `yes` refuses a new host, `accept-new` lets it in without a prompt and remembers its
/// key; the CLI's `--host-key-policy` wins over both.
#[test]
fn strict_host_key_checking_from_ssh_config_decides_for_a_new_host() {
    let dir = tempfile::tempdir().unwrap();
    let key = key(dir.path());
    let sshd = Sshd::start(&[&key], SshdOptions::default());
    let client = Client::new();
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        format!(
            "Host strict-new\n    StrictHostKeyChecking yes\n\n\
             Host accept-new\n    StrictHostKeyChecking accept-new\n\n\
             Host *\n    HostName 127.0.0.1\n    Port {p}\n    User {USER}\n    IdentityFile {k}\n",
            p = sshd.port,
            k = key.path.display()
        ),
    )
    .unwrap();
    import(&client, &config);
    let known = client.home().join("known_hosts");

    let (out, err) = exec_plain(&client, "strict-new", "echo no");
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("is not known"), "{err}");
    // The flag wins over the profile: accept-new's host refused under --host-key-policy strict.
    let out = client
        .cli()
        .args([
            "--host-key-policy",
            "strict",
            "exec",
            "accept-new",
            "--",
            "echo no",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("is not known"), "{err}");
    assert_eq!(accepted(&sshd), 0, "{}", sshd.log());
    assert!(
        !std::fs::read_to_string(&known)
            .unwrap_or_default()
            .contains(&format!("[127.0.0.1]:{}", sshd.port))
    );

    // accept-new from the config: in without a prompt (stdin is no terminal), key remembered.
    let (out, err) = exec_plain(&client, "accept-new", "echo accept-new-ok");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "accept-new-ok\n",
        "{err}"
    );
    assert!(
        std::fs::read_to_string(&known)
            .unwrap()
            .contains(&format!("[127.0.0.1]:{}", sshd.port)),
        "the accepted key is remembered"
    );
    // Now known, the strict host gets in too.
    let (out, err) = exec_plain(&client, "strict-new", "echo strict-ok");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "strict-ok\n", "{err}");
    assert_eq!(accepted(&sshd), 2, "{}", sshd.log());
}

/// `HostKeyAlgorithms` from the config chooses the host key type asked for: `rsa-sha2-512`
/// gets the server's RSA key (remembered as such), and a list without any of the server's
/// types (it has ed25519 and RSA keys) fails before anything is sent, naming both lists.
#[test]
fn host_key_algorithms_from_ssh_config_choose_the_key_type_or_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let key = key(dir.path());
    let sshd = Sshd::start(&[&key], SshdOptions::default());
    let client = Client::new();
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        format!(
            "Host rsa-only\n    HostKeyAlgorithms rsa-sha2-512\n\n\
             Host ecdsa-only\n    HostKeyAlgorithms ecdsa-sha2-nistp256,ecdsa-sha2-nistp384\n\n\
             Host *\n    HostName 127.0.0.1\n    Port {p}\n    User {USER}\n    IdentityFile {k}\n    \
             StrictHostKeyChecking accept-new\n",
            p = sshd.port,
            k = key.path.display()
        ),
    )
    .unwrap();
    import(&client, &config);

    let (out, err) = exec_plain(&client, "ecdsa-only", "echo no");
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("offers no host key type that this host's HostKeyAlgorithms allows")
            && err.contains("ecdsa-sha2-nistp256")
            && err.contains("ssh-ed25519"),
        "{err}"
    );
    assert_eq!(accepted(&sshd), 0, "{}", sshd.log());

    let (out, err) = exec_plain(&client, "rsa-only", "echo rsa-ok");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "rsa-ok\n", "{err}");
    let known = std::fs::read_to_string(client.home().join("known_hosts")).unwrap();
    let line = known
        .lines()
        .find(|l| l.starts_with(&format!("[127.0.0.1]:{} ", sshd.port)))
        .unwrap_or_else(|| panic!("{known}"));
    assert!(line.contains(" ssh-rsa "), "{line}");
}

/// `PubkeyAcceptedAlgorithms` from the config: a key of a type it leaves out is not offered
/// (the server would have accepted it), and an RSA key is offered with the allowed rsa-sha2
/// signature.
#[test]
fn pubkey_accepted_algorithms_from_ssh_config_choose_the_keys_offered() {
    let dir = tempfile::tempdir().unwrap();
    let ed = key(dir.path());
    let rsa = make_key(dir.path(), "id_cfg_rsa", "rsa", None);
    let sshd = Sshd::start(&[&ed, &rsa], SshdOptions::default());
    let client = Client::new();
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        format!(
            "Host no-ed25519\n    PubkeyAcceptedAlgorithms -ssh-ed25519\n    IdentityFile {e}\n\n\
             Host rsa-256\n    PubkeyAcceptedAlgorithms rsa-sha2-256\n    IdentityFile {e}\n    \
             IdentityFile {r}\n\n\
             Host *\n    HostName 127.0.0.1\n    Port {p}\n    User {USER}\n    IdentitiesOnly yes\n",
            p = sshd.port,
            e = ed.path.display(),
            r = rsa.path.display()
        ),
    )
    .unwrap();
    import(&client, &config);

    let out = exec(&client, "no-ed25519", "echo no");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("authentication as"), "{err}");
    assert_eq!(accepted(&sshd), 0, "{}", sshd.log());

    let out = exec(&client, "rsa-256", "echo rsa-ok");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "rsa-ok\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = sshd.log();
    assert!(
        log.contains(&format!("Accepted publickey for {USER}")) && log.contains(": RSA SHA256:"),
        "{log}"
    );
    assert!(
        !log.contains("ED25519 SHA256:"),
        "ed25519 was not offered: {log}"
    );
}
