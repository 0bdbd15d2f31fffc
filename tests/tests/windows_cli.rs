//! The Windows CLI (`tunnelbook.exe`, built for `x86_64-pc-windows-gnu`) run under Wine against
//! the test bed's real sshd: what a Windows user does, end to end. Two `hosts add` in one home
//! (the profile store's atomic write on Windows), `exec` with its exit status and the host-key
//! policies, `gpus --json`, a forward carrying a checksummed download, `up` → code run in a
//! kernel through the tunnel → `down`, `--remember` through Wine's Credential Manager then a
//! run without the password, a login through an agent on the OpenSSH named pipe, and PuTTY's
//! cached host keys in the registry counting as known.
//!
//! Ignored in the Linux run: `scripts/test-windows.sh` builds the Windows CLI, sets
//! `TUNNELBOOK_WINDOWS_CLI` to it (and the Wine prefix from `scripts/wine/env.sh`), and runs
//! these with `--run-ignored only`. Wine cannot stand in for everything Windows does: see the
//! README's "Windows" section.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    io::{Read, Write},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use sha2::{Digest, Sha256};
use tunnelbook_core::{jupyter::http, profile::ProfileStore, secret::Sensitive};
use tunnelbook_testbed::{
    BUSY_GPU, Client, FREE_GPU, KeyFile, NvidiaSmiShim, OTHER_USER, PASSWORD, Sshd, SshdOptions,
    USER, alive, jupyter_venv,
    kernel::{execute, start_kernel},
    key_only, make_key, sleeper, two_gpu_scenario,
};

/// The Windows CLI under Wine, with a fresh Tunnelbook home of its own.
struct WinCli {
    wine: PathBuf,
    exe: PathBuf,
    client: Client,
}

impl WinCli {
    fn new() -> WinCli {
        let exe = std::env::var_os("TUNNELBOOK_WINDOWS_CLI").map(PathBuf::from).unwrap_or_else(|| {
            panic!(
                "TUNNELBOOK_WINDOWS_CLI is not set: run these tests through scripts/test-windows.sh, \
                 which builds tunnelbook.exe for x86_64-pc-windows-gnu and runs it under Wine"
            )
        });
        assert!(exe.exists(), "{} does not exist", exe.display());
        let wine = PathBuf::from(
            std::env::var_os("TB_WINE").unwrap_or_else(|| "/usr/lib/wine/wine64".into()),
        );
        assert!(
            wine.exists(),
            "{} is missing: scripts/setup.sh installs Wine (wine64)",
            wine.display()
        );
        assert!(
            std::env::var_os("WINEPREFIX").is_some(),
            "WINEPREFIX is not set: source scripts/wine/env.sh (scripts/test-windows.sh does)"
        );
        WinCli {
            wine,
            exe,
            client: Client::new(),
        }
    }

    /// `tunnelbook.exe ARGS` under Wine, its home given as a Windows path, no password. (Windows
    /// finds an agent on the OpenSSH named pipe, which exists only while the agent test runs;
    /// its key opens none of the other tests' sshds.)
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.wine);
        cmd.arg(&self.exe)
            .args(args)
            .env("TUNNELBOOK_HOME", windows_path(&self.client.home()))
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("TUNNELBOOK_PASSWORD")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs to completion: (status, stdout, stderr).
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.cmd(args).output().unwrap();
        split(&out)
    }

    /// Runs and expects status 0; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(code, 0, "{args:?}: stdout {out:?}, stderr {err:?}");
        out
    }

    /// Starts a long-running verb (`forward`, `up`) with stdout piped, stderr to `stderr`.
    fn spawn(&self, args: &[&str], stderr: &Path) -> Running {
        let child = self
            .cmd(args)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(stderr).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.wine.display()));
        Running { child }
    }

    /// The files in the Tunnelbook home.
    fn home_files(&self) -> Vec<String> {
        std::fs::read_dir(self.client.home())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }
}

fn split(out: &Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A Unix path as the Windows program sees it: Wine maps `/` to drive `Z:`.
fn windows_path(path: &Path) -> String {
    format!("Z:{}", path.display().to_string().replace('/', "\\"))
}

/// A long-running verb under Wine; killed on drop if it is still running.
struct Running {
    child: std::process::Child,
}

impl Running {
    /// Reads one line of stdout (waits up to 60 s: the first Wine start can be slow).
    fn read_line(&mut self) -> String {
        use std::io::BufRead;
        let stdout = self.child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = std::io::BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            // Keep draining so the program never blocks on a full pipe.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        rx.recv_timeout(Duration::from_secs(60))
            .unwrap_or_default()
            .trim_end()
            .to_string()
    }

    /// Sends Ctrl-C (Wine turns SIGINT into `CTRL_C_EVENT`) and returns the exit status.
    fn interrupt(&mut self, within: Duration) -> i32 {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-INT", &pid]).status().unwrap();
        assert!(sent.success(), "cannot send SIGINT to {pid}");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "still running {within:?} after Ctrl-C"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `hosts add NAME` for `sshd` as [`USER`], with `key` given as a Windows path when there is one.
fn add_host(cli: &WinCli, name: &str, sshd: &Sshd, key: Option<&KeyFile>) {
    let port = sshd.port.to_string();
    let mut args = vec![
        "hosts",
        "add",
        name,
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--user",
        USER,
    ];
    let key_path = key.map(|k| windows_path(&k.path));
    if let Some(k) = &key_path {
        args.extend(["--key", k.as_str()]);
    }
    cli.ok(&args);
}

#[test]
#[ignore = "needs the Windows CLI and Wine: run by scripts/test-windows.sh"]
fn hosts_exec_and_gpus_on_windows() {
    let cli = WinCli::new();
    let keys = tempfile::tempdir().unwrap();
    let key = make_key(keys.path(), "id_ed25519", "ed25519", None);
    let sshd = Sshd::start(&[&key], SshdOptions::default());

    // Two adds into one home: the second rewrites an existing hosts.toml (and backs it up),
    // which failed on Windows with "Access denied" before the store's flush was fixed.
    add_host(&cli, "box", &sshd, Some(&key));
    add_host(&cli, "box2", &sshd, Some(&key));
    cli.ok(&["hosts", "edit", "box2", "--port", "2222"]);
    let listed: serde_json::Value =
        serde_json::from_str(&cli.ok(&["hosts", "list", "--json"])).unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["box", "box2"], "{listed}");
    let files = cli.home_files();
    assert!(files.contains(&"hosts.toml.bak".to_string()), "{files:?}");
    assert!(!files.iter().any(|f| f.contains("tmp")), "{files:?}");

    // Unknown host key, no terminal: refused with the fingerprint and what to do.
    let (code, _, err) = cli.run(&["exec", "box", "--", "true"]);
    assert_eq!(code, 255, "{err}");
    assert!(
        err.contains("SHA256:") && err.contains("accept-new"),
        "{err}"
    );
    // accept-new: output and exit status come back; the key is remembered.
    let (code, out, err) = cli.run(&[
        "--host-key-policy",
        "accept-new",
        "exec",
        "box",
        "--",
        "echo out; echo err >&2; exit 7",
    ]);
    assert_eq!((code, out.as_str(), err.as_str()), (7, "out\n", "err\n"));
    assert_eq!(
        cli.ok(&["exec", "box", "--", "whoami"]),
        format!("{USER}\n")
    );
    let files = cli.home_files();
    assert!(files.contains(&"known_hosts".to_string()), "{files:?}");

    // GPUs as JSON: the busy one held by the other user, the free one free.
    let holder = sleeper(OTHER_USER);
    let scenario = two_gpu_scenario(holder.pid());
    let shim = NvidiaSmiShim::install(USER, scenario.path());
    let out = cli.ok(&["gpus", "box", "--json"]);
    drop(shim);
    let snapshot: serde_json::Value = serde_json::from_str(&out).unwrap();
    let text = snapshot.to_string();
    assert!(text.contains(BUSY_GPU) && text.contains(FREE_GPU), "{text}");
    assert!(text.contains(OTHER_USER), "{text}");
}

#[test]
#[ignore = "needs the Windows CLI and Wine: run by scripts/test-windows.sh"]
fn forward_carries_a_checksummed_download_on_windows() {
    const SIZE: usize = 32 << 20;
    let cli = WinCli::new();
    let keys = tempfile::tempdir().unwrap();
    let key = make_key(keys.path(), "id_ed25519", "ed25519", None);
    let sshd = Sshd::start(&[&key], SshdOptions::default());
    cli.client.trust(&sshd);
    add_host(&cli, "box", &sshd, Some(&key));

    // The "server" behind the tunnel: sends SIZE pseudo-random bytes to each connection.
    let mut payload = vec![0u8; SIZE];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for chunk in payload.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let expected = Sha256::digest(&payload);
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let server_port = server.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in server.incoming() {
            let Ok(mut stream) = stream else { return };
            let _ = stream.write_all(&payload);
        }
    });

    let target = format!("0:127.0.0.1:{server_port}");
    let windows = download(
        cli.spawn(
            &["forward", "box", "-L", &target],
            &cli.client.dir.path().join("forward.stderr"),
        ),
        SIZE,
        &expected,
    );
    // The Linux CLI on the same sshd and payload, for the row beside it in docs/PERFORMANCE.md
    // (a home of its own: the Windows one names the key as `Z:\…`).
    let linux_client = Client::new();
    linux_client.trust(&sshd);
    ProfileStore::in_home(&linux_client.home())
        .save(&[key_only(sshd.profile("box", USER), &key)])
        .unwrap();
    let linux = download(
        Running {
            child: linux_client
                .cli()
                .args(["forward", "box", "-L", &target])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap(),
        },
        SIZE,
        &expected,
    );
    eprintln!(
        "forward download of {} MiB (debug builds): Windows CLI under Wine {windows:.0} MiB/s, \
         Linux CLI {linux:.0} MiB/s",
        SIZE >> 20
    );
}

/// Downloads `size` bytes through the forward `forward` announces, checks their SHA-256, stops
/// it with Ctrl-C (it must exit with 0) and returns the speed in MiB/s.
fn download(mut forward: Running, size: usize, expected: &[u8]) -> f64 {
    let line = forward.read_line();
    let addr = line
        .strip_prefix("forwarding ")
        .and_then(|rest| rest.split(" -> ").next())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    let started = Instant::now();
    let mut got = Vec::with_capacity(size);
    std::net::TcpStream::connect(&addr)
        .unwrap()
        .read_to_end(&mut got)
        .unwrap();
    let took = started.elapsed();
    assert_eq!(got.len(), size);
    assert_eq!(
        Sha256::digest(&got).as_slice(),
        expected,
        "the download changed on the way"
    );
    assert_eq!(forward.interrupt(Duration::from_secs(15)), 0);
    (size >> 20) as f64 / took.as_secs_f64()
}

#[test]
#[ignore = "needs the Windows CLI and Wine: run by scripts/test-windows.sh"]
fn up_runs_kernel_code_through_the_tunnel_then_down_on_windows() {
    let cli = WinCli::new();
    let venv = jupyter_venv();
    let keys = tempfile::tempdir().unwrap();
    let key = make_key(keys.path(), "id_ed25519", "ed25519", None);
    let sshd = Sshd::start(&[&key], SshdOptions::default());
    cli.client.trust(&sshd);
    add_host(&cli, "box", &sshd, Some(&key));
    let holder = sleeper(OTHER_USER);
    let scenario = two_gpu_scenario(holder.pid());
    let shim = NvidiaSmiShim::install(USER, scenario.path());

    let venv_arg = venv.display().to_string();
    let stderr = cli.client.dir.path().join("up.stderr");
    let mut up = cli.spawn(
        &["up", "box", "--gpu", "auto", "--env", &venv_arg, "--json"],
        &stderr,
    );
    let line = up.read_line();
    drop(shim);
    let ready: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|_| {
        panic!(
            "up printed {line:?}; stderr: {}",
            std::fs::read_to_string(&stderr).unwrap_or_default()
        )
    });
    assert_eq!(ready["gpu"], FREE_GPU, "{ready}");
    let port = u16::try_from(ready["localPort"].as_u64().unwrap()).unwrap();
    let remote_pid = u32::try_from(ready["remotePid"].as_u64().unwrap()).unwrap();
    let url = ready["url"].as_str().unwrap();
    let token = Sensitive::new(url.split("token=").nth(1).unwrap().to_string());

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let lab = http::request(
            std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            "GET",
            "/lab",
            Some(&token),
        )
        .await
        .unwrap();
        assert_eq!(lab.status, 200);
        let kernel = start_kernel(port, &token).await;
        let seen = execute(
            port,
            &token,
            &kernel,
            "import os; os.environ.get(\"CUDA_VISIBLE_DEVICES\")",
        )
        .await;
        assert!(seen.contains(FREE_GPU), "the kernel saw {seen:?}");
        assert_eq!(execute(port, &token, &kernel, "6 * 7").await, "42");
    });

    // Ctrl-C ends `up` (the server stays, as on Linux), then `down` stops it.
    assert_eq!(up.interrupt(Duration::from_secs(15)), 0);
    assert!(alive(remote_pid), "the server died with `up`");
    let (code, _, err) = cli.run(&["down", "box", ready["serverId"].as_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(remote_pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!alive(remote_pid), "`down` left the Jupyter server running");
    // Its token leaves the Credential Manager with the host.
    cli.ok(&["hosts", "rm", "box"]);
}

#[test]
#[ignore = "needs the Windows CLI and Wine: run by scripts/test-windows.sh"]
fn remembered_password_comes_from_the_credential_manager() {
    let cli = WinCli::new();
    let sshd = Sshd::start(&[], SshdOptions::default());
    cli.client.trust(&sshd);
    // The Wine prefix's Credential Manager outlives the run: a name of this run's own.
    let name = format!("pw{}", std::process::id());
    add_host(&cli, &name, &sshd, None);

    let (code, _, err) = cli.run(&["exec", &name, "--", "whoami"]);
    assert_eq!(code, 255, "no password and no terminal must fail: {err}");

    let out = cli
        .cmd(&["--remember", "exec", &name, "--", "whoami"])
        .env("TUNNELBOOK_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    let (code, out, err) = split(&out);
    assert_eq!(
        (code, out.as_str()),
        (0, format!("{USER}\n").as_str()),
        "{err}"
    );
    let shown = cli.ok(&["hosts", "show", &name]);
    assert!(shown.contains("remembered: password"), "{shown}");

    // No password given: read back from the Credential Manager.
    assert_eq!(
        cli.ok(&["exec", &name, "--", "whoami"]),
        format!("{USER}\n")
    );
    // The password is in no file of Tunnelbook's home.
    for file in cli.home_files() {
        let path = cli.client.home().join(&file);
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(PASSWORD),
                "{file} holds the password"
            );
        }
    }

    cli.ok(&["hosts", "forget-secret", &name, "--password"]);
    let (code, _, err) = cli.run(&["exec", &name, "--", "whoami"]);
    assert_eq!(code, 255, "a forgotten password must not log in: {err}");
    cli.ok(&["hosts", "rm", &name]);
}

#[test]
#[ignore = "needs the Windows CLI and Wine: run by scripts/test-windows.sh"]
fn login_through_the_openssh_agent_named_pipe_on_windows() {
    let cli = WinCli::new();
    let agent_exe = std::env::var_os("TUNNELBOOK_WINDOWS_PIPE_AGENT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "TUNNELBOOK_WINDOWS_PIPE_AGENT is not set: scripts/test-windows.sh sets it to \
                 crates/core/examples/pipe_agent.rs built for Windows"
            )
        });
    let keys = tempfile::tempdir().unwrap();
    let key = make_key(keys.path(), "id_ed25519", "ed25519", None);
    let sshd = Sshd::start(&[&key], SshdOptions::default());
    cli.client.trust(&sshd);
    // No key file and no password: only an agent can log this host in.
    add_host(&cli, "agent", &sshd, None);
    let (code, _, err) = cli.run(&["exec", "agent", "--", "whoami"]);
    assert_eq!(code, 255, "logged in without the agent: {err}");

    let stderr = cli.client.dir.path().join("agent.stderr");
    let mut agent = Running {
        child: Command::new(&cli.wine)
            .arg(&agent_exe)
            .arg(windows_path(&key.path))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap(),
    };
    let ready = agent.read_line();
    assert_eq!(
        ready,
        "ready",
        "the pipe agent did not start: {}",
        std::fs::read_to_string(&stderr).unwrap_or_default()
    );
    assert_eq!(
        cli.ok(&["exec", "agent", "--", "whoami"]),
        format!("{USER}\n")
    );
    let log = sshd.log();
    assert!(
        log.contains("Accepted publickey") && log.contains("ED25519"),
        "{log}"
    );
    drop(agent);
}

/// The value PuTTY caches for `sshd`'s host key: real PuTTY (`plink`, Debian's `putty-tools`)
/// connects once, is told to store the key, and its cache file (`$PUTTYDIR/sshhostkeys`, the same
/// `NAME DATA` strings Windows PuTTY keeps in the registry) is read back. Returns (name, data).
fn putty_cached_host_key(sshd: &Sshd) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut plink = Command::new("plink")
        .args([
            "-ssh",
            "-P",
            &sshd.port.to_string(),
            "-l",
            "nobody",
            "127.0.0.1",
            "exit",
        ])
        .env("PUTTYDIR", dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run plink (scripts/setup.sh installs putty-tools): {e}")
        });
    // "Store key in cache? (y/n…)"
    plink.stdin.take().unwrap().write_all(b"y\n").unwrap();
    let cache = dir.path().join("sshhostkeys");
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        if let Ok(text) = std::fs::read_to_string(&cache)
            && text.ends_with('\n')
        {
            break text;
        }
        assert!(Instant::now() < deadline, "plink stored no host key");
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = plink.kill();
    let _ = plink.wait();
    let (name, data) = text.lines().next().unwrap().split_once(' ').unwrap();
    (name.to_string(), data.to_string())
}

/// A value under PuTTY's `HKCU\Software\SimonTatham\PuTTY\SshHostKeys` in Wine's registry
/// (written with Wine's `reg.exe`), deleted on drop.
struct PuttyRegistryValue<'a> {
    cli: &'a WinCli,
    name: String,
}

const PUTTY_HOST_KEYS: &str = r"HKCU\Software\SimonTatham\PuTTY\SshHostKeys";

impl<'a> PuttyRegistryValue<'a> {
    fn set(cli: &'a WinCli, name: &str, data: &str) -> PuttyRegistryValue<'a> {
        let status = Command::new(&cli.wine)
            .args([
                "reg",
                "add",
                PUTTY_HOST_KEYS,
                "/v",
                name,
                "/t",
                "REG_SZ",
                "/d",
                data,
                "/f",
            ])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "Wine's reg add {name} failed: {status}");
        PuttyRegistryValue {
            cli,
            name: name.to_string(),
        }
    }
}

impl Drop for PuttyRegistryValue<'_> {
    fn drop(&mut self) {
        let _ = Command::new(&self.cli.wine)
            .args(["reg", "delete", PUTTY_HOST_KEYS, "/v", &self.name, "/f"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
#[ignore = "needs the Windows CLI and Wine: run by scripts/test-windows.sh"]
fn putty_host_keys_in_the_registry_count_as_known_on_windows() {
    let cli = WinCli::new();
    let keys = tempfile::tempdir().unwrap();
    let key = make_key(keys.path(), "id_ed25519", "ed25519", None);
    let sshd = Sshd::start(&[&key], SshdOptions::default());
    let other = Sshd::start(&[&key], SshdOptions::default());
    add_host(&cli, "box", &sshd, Some(&key));
    let (name, data) = putty_cached_host_key(&sshd);
    assert!(
        name.starts_with("ssh-ed25519@") && name.ends_with(&format!("@{}:127.0.0.1", sshd.port)),
        "{name}"
    );

    // Unknown everywhere: strict refuses.
    let (code, _, err) = cli.run(&["--host-key-policy", "strict", "exec", "box", "--", "true"]);
    assert_eq!(code, 255, "{err}");

    // PuTTY trusts it: strict connects, and nothing is written to Tunnelbook's own known_hosts.
    {
        let _value = PuttyRegistryValue::set(&cli, &name, &data);
        let out = cli.ok(&["--host-key-policy", "strict", "exec", "box", "--", "whoami"]);
        assert_eq!(out, format!("{USER}\n"));
        assert!(!cli.home_files().contains(&"known_hosts".to_string()));
    }

    // PuTTY holds another key of that type for this host (here: the other server's): refused as
    // changed, naming the registry value, even with accept-new.
    let (other_name, other_data) = putty_cached_host_key(&other);
    let (other_type, _) = other_name.split_once('@').unwrap();
    assert_eq!(other_type, "ssh-ed25519", "{other_name}");
    let _value = PuttyRegistryValue::set(&cli, &name, &other_data);
    let (code, _, err) = cli.run(&[
        "--host-key-policy",
        "accept-new",
        "exec",
        "box",
        "--",
        "true",
    ]);
    assert_eq!(code, 255, "{err}");
    assert!(
        err.contains("HOST KEY CHANGED")
            && err.contains(r"SimonTatham\PuTTY\SshHostKeys")
            && err.contains(&name),
        "{err}"
    );
}
