//! The test bed: real OpenSSH `sshd` instances on 127.0.0.1, an `ssh-agent`, throwaway keys, a
//! password user, and helpers to run the `tunnelbook` binary against them.
//!
//! Everything started here is a child of the test process, killed on drop and, should the test
//! process die without unwinding, by the kernel (`PR_SET_PDEATHSIG`). Tests run as root (CI does):
//! sshd needs it to log other users in.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod jupyter_box;
pub mod kernel;
pub mod prompter;
pub mod proxy;
// `tunnelbook shell` and the terminal (issue 23).
pub mod pty;
pub mod slurm;
pub mod zoo;

use std::{
    net::{SocketAddr, TcpListener, TcpStream},
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::{Arc, Once},
    time::{Duration, Instant},
};

use tempfile::TempDir;
use tunnelbook_core::{
    profile::{AuthMethod, Profile},
    secret::SecretStore,
    ssh::{ConnectContext, ConnectOptions, HostKeyPolicy, KnownHosts, Prompter},
};

/// The unprivileged login user the test bed uses (created on first use if missing).
pub const USER: &str = "tbtest";
/// Its password.
pub const PASSWORD: &str = "tb-Test-pw-1";
/// A second user, for "processes of two different users" tests.
pub const OTHER_USER: &str = "tbother";

/// Kills the child when the test process dies, even on abort.
fn die_with_parent(cmd: &mut Command) -> &mut Command {
    // SAFETY: prctl is async-signal-safe and only changes this (forked) process.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        })
    }
}

/// A child process killed on drop.
pub struct Guard(Child);

impl Guard {
    /// Spawns `cmd` as a guarded child.
    pub fn spawn(cmd: &mut Command) -> Guard {
        Guard(
            die_with_parent(cmd)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}")),
        )
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Reads one line of the child's piped stdout (waits up to 30 s).
    pub fn read_line(&mut self) -> String {
        use std::io::BufRead;
        let stdout = self.0.stdout.take().expect("stdout must be piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = std::io::BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send((line, reader));
        });
        let (line, reader) = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("no output line within 30 s");
        // Keep draining so the child never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut { reader }, &mut std::io::sink()));
        line.trim_end().to_string()
    }

    /// Kills and reaps the child now.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs a command to completion, panicking with its output if it fails.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts connections on `port`.
pub fn wait_for_port(port: u16, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing listens on 127.0.0.1:{port} after {timeout:?}");
}

/// Creates the test users with their passwords, once per process (idempotent across runs).
pub fn ensure_users() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        assert!(
            is_root(),
            "the test bed needs root (sshd logs other users in)"
        );
        // Test processes run in parallel: one creates the users, the others wait.
        let lock = std::fs::File::create("/tmp/tunnelbook-testbed-users.lock").unwrap();
        lock.lock().unwrap();
        for user in [USER, OTHER_USER] {
            let exists = Command::new("id")
                .arg(user)
                .output()
                .is_ok_and(|o| o.status.success());
            if !exists {
                run(Command::new("useradd").args(["--create-home", "--shell", "/bin/bash", user]));
            }
            run(Command::new("mkdir").args(["-p", &format!("/home/{user}")]));
            run(Command::new("chown").args([&format!("{user}:"), &format!("/home/{user}")]));
            // Debian's skeleton ~/.profile puts ~/bin on PATH in login shells.
            let profile = format!("/home/{user}/.profile");
            if !Path::new(&profile).exists() {
                run(Command::new("install").args([
                    "-o",
                    user,
                    "-m",
                    "0644",
                    "/etc/skel/.profile",
                    &profile,
                ]));
            }
        }
        let mut chpasswd = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        chpasswd
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{USER}:{PASSWORD}\n{OTHER_USER}:{PASSWORD}\n").as_bytes())
            .unwrap();
        assert!(chpasswd.wait().unwrap().success());
    });
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// A private key file made with ssh-keygen (or puttygen).
#[derive(Debug, Clone)]
pub struct KeyFile {
    /// The private key.
    pub path: PathBuf,
    /// The `.pub` line.
    pub public: String,
}

/// Makes a key of `kind` (`ed25519`, `ecdsa`, `rsa`) in `dir`, encrypted when `passphrase` is set.
pub fn make_key(dir: &Path, name: &str, kind: &str, passphrase: Option<&str>) -> KeyFile {
    let path = dir.join(name);
    let mut cmd = Command::new("ssh-keygen");
    cmd.args([
        "-q",
        "-t",
        kind,
        "-N",
        passphrase.unwrap_or(""),
        "-C",
        name,
        "-f",
    ])
    .arg(&path);
    if kind == "rsa" {
        cmd.args(["-b", "3072"]);
    }
    run(&mut cmd);
    let public = std::fs::read_to_string(path.with_extension("pub"))
        .or_else(|_| std::fs::read_to_string(format!("{}.pub", path.display())))
        .unwrap();
    KeyFile {
        path,
        public: public.trim().to_string(),
    }
}

/// Converts an OpenSSH key to PuTTY's `.ppk` format (needs `puttygen`, Debian `putty-tools`).
pub fn to_ppk(key: &KeyFile, passphrase: Option<&str>) -> KeyFile {
    let ppk = key.path.with_extension("ppk");
    let mut cmd = Command::new("puttygen");
    cmd.arg(&key.path).args(["-O", "private", "-o"]).arg(&ppk);
    let pass_file = key.path.with_extension("pass");
    if let Some(p) = passphrase {
        std::fs::write(&pass_file, p).unwrap();
        cmd.arg("--new-passphrase").arg(&pass_file);
        cmd.arg("--old-passphrase").arg(&pass_file);
    }
    run(&mut cmd);
    KeyFile {
        path: ppk,
        public: key.public.clone(),
    }
}

/// How an sshd instance should behave.
#[derive(Debug, Clone)]
pub struct SshdOptions {
    /// Password logins.
    pub password: bool,
    /// Keyboard-interactive through PAM asking the password then a TOTP code.
    pub otp: bool,
    /// Extra `sshd_config` lines; one naming a keyword the bed sets (before any `Match`)
    /// replaces the bed's line.
    pub extra: Vec<String>,
}

impl SshdOptions {
    /// The common PAM server of case 15 (FreeBSD's default, many HPC sites): the password only
    /// through keyboard-interactive with the system's `/etc/pam.d/sshd` (Debian's stock stack
    /// prompts `Password: `), no `password` method, no public keys.
    pub fn pam_password() -> SshdOptions {
        SshdOptions {
            password: false,
            otp: false,
            extra: vec![
                "UsePAM yes".into(),
                "KbdInteractiveAuthentication yes".into(),
                "PubkeyAuthentication no".into(),
            ],
        }
    }
}

impl Default for SshdOptions {
    fn default() -> Self {
        Self {
            password: true,
            otp: false,
            extra: Vec::new(),
        }
    }
}

/// A running OpenSSH sshd on 127.0.0.1 with throwaway host keys.
pub struct Sshd {
    /// Its port.
    pub port: u16,
    dir: TempDir,
    process: Guard,
    binary: PathBuf,
    /// Host key public lines (ed25519, rsa).
    pub host_keys: Vec<String>,
}

/// The OATH secret (hex) for the OTP sshd; `oathtool --totp OTP_SECRET` gives the code.
pub const OTP_SECRET: &str = "3132333435363738393031323334353637383930";

impl Sshd {
    /// Starts sshd accepting `authorized` keys for both test users (and root).
    pub fn start(authorized: &[&KeyFile], options: SshdOptions) -> Sshd {
        ensure_users();
        let dir = tempfile::Builder::new()
            .prefix("tb-sshd-")
            .tempdir()
            .unwrap();
        // sshd reads authorized_keys as the target user.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut host_keys = Vec::new();
        for kind in ["ed25519", "rsa"] {
            let key = make_key(dir.path(), &format!("host_{kind}"), kind, None);
            host_keys.push(key.public);
        }
        let auth_keys = dir.path().join("authorized_keys");
        let lines: Vec<&str> = authorized.iter().map(|k| k.public.as_str()).collect();
        std::fs::write(&auth_keys, lines.join("\n") + "\n").unwrap();
        std::fs::set_permissions(&auth_keys, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();

        let mut binary = PathBuf::from("/usr/sbin/sshd");
        let mut config = vec![
            "ListenAddress 127.0.0.1".to_string(),
            format!("HostKey {}/host_ed25519", dir.path().display()),
            format!("HostKey {}/host_rsa", dir.path().display()),
            format!("AuthorizedKeysFile {}", auth_keys.display()),
            format!("PidFile {}/sshd.pid", dir.path().display()),
            "StrictModes no".into(),
            "PermitRootLogin yes".into(),
            "AllowTcpForwarding yes".into(),
            "AllowStreamLocalForwarding yes".into(),
            "GatewayPorts no".into(),
            "LogLevel VERBOSE".into(),
            "MaxStartups 500".into(),
            "MaxSessions 500".into(),
            // SFTP for the file transfers (sftp::, sync::, `tunnelbook open`, the Files view).
            "Subsystem sftp internal-sftp".into(),
            // Every process started through this sshd (and what it starts: detached Jupyter
            // servers, their kernels) carries the tag, so dropping the server ends them all.
            format!("SetEnv {}", sshd_tag(dir.path())),
            format!(
                "PasswordAuthentication {}",
                if options.password { "yes" } else { "no" }
            ),
        ];
        if options.otp {
            // PAM's service name is sshd's program name: run it through a link named after our
            // service so /etc/pam.d/tunnelbook-otp applies instead of the system's sshd stack.
            install_otp_pam();
            binary = dir.path().join("tunnelbook-otp");
            std::os::unix::fs::symlink("/usr/sbin/sshd", &binary).unwrap();
            config.extend([
                "UsePAM yes".into(),
                "KbdInteractiveAuthentication yes".into(),
                "AuthenticationMethods keyboard-interactive".into(),
            ]);
        } else {
            config.extend(["UsePAM no".into(), "KbdInteractiveAuthentication no".into()]);
        }
        // sshd takes the first value of a keyword: an extra line (before any `Match`) replaces the
        // bed's line with the same keyword (e.g. `AllowTcpForwarding no`) instead of being ignored.
        let keyword = |line: &str| {
            line.split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_lowercase()
        };
        let overridden: Vec<String> = options
            .extra
            .iter()
            .map(|l| keyword(l))
            .take_while(|k| k != "match")
            .collect();
        config.retain(|line| !overridden.contains(&keyword(line)));
        // Only the first SetEnv line counts: the tag joins the test's own.
        config.extend(options.extra.iter().map(|line| {
            if keyword(line) == "setenv" {
                format!("{line} {}", sshd_tag(dir.path()))
            } else {
                line.clone()
            }
        }));

        for _attempt in 0..5 {
            let port = free_port();
            let cfg_path = dir.path().join("sshd_config");
            std::fs::write(&cfg_path, format!("Port {port}\n{}\n", config.join("\n"))).unwrap();
            let log = std::fs::File::create(dir.path().join("sshd.log")).unwrap();
            let process = Guard::spawn(
                Command::new(&binary)
                    .args(["-D", "-e", "-f"])
                    .arg(&cfg_path)
                    .stdout(Stdio::null())
                    .stderr(log),
            );
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Sshd {
                        port,
                        dir,
                        process,
                        binary,
                        host_keys,
                    };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            eprintln!("sshd did not start on {port}:\n{}", read_log(dir.path()));
        }
        panic!("sshd would not start:\n{}", read_log(dir.path()));
    }

    /// sshd's log so far (for assertions and failure messages).
    pub fn log(&self) -> String {
        read_log(self.dir.path())
    }

    /// A known_hosts line for this server's ed25519 key.
    pub fn known_hosts_line(&self) -> String {
        format!("[127.0.0.1]:{} {}", self.port, self.host_keys[0])
    }

    /// A profile for `user` on this server.
    pub fn profile(&self, name: &str, user: &str) -> Profile {
        Profile {
            name: name.to_string(),
            host: "127.0.0.1".into(),
            port: self.port,
            user: Some(user.to_string()),
            ..Profile::default()
        }
    }

    /// Stops the server (established connections keep their own sshd children).
    pub fn stop(&mut self) {
        self.process.kill();
    }

    /// The pid of the listening sshd.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Gives the server new host keys, as a reinstalled or replaced server would have; they take
    /// effect at the next [`Sshd::restart`].
    pub fn new_host_keys(&mut self) {
        self.host_keys.clear();
        for kind in ["ed25519", "rsa"] {
            let name = format!("host_{kind}");
            let _ = std::fs::remove_file(self.dir.path().join(&name));
            let _ = std::fs::remove_file(self.dir.path().join(format!("{name}.pub")));
            let key = make_key(self.dir.path(), &name, kind, None);
            self.host_keys.push(key.public);
        }
    }

    /// A server restart that ends established connections too, as a crash or reboot would:
    /// kills sshd and every process under it (the SSH sessions; programs that detached with
    /// `setsid`, like Jupyter, live on), waits `down`, then starts sshd again on the same port
    /// with the same host keys and configuration.
    pub fn restart(&mut self, down: Duration) {
        let under = descendants(self.process.pid());
        self.process.kill();
        if !under.is_empty() {
            let _ = Command::new("kill")
                .arg("-KILL")
                .args(under.iter().map(u32::to_string))
                .status();
        }
        std::thread::sleep(down);
        let log = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.dir.path().join("sshd.log"))
            .unwrap();
        self.process = Guard::spawn(
            Command::new(&self.binary)
                .args(["-D", "-e", "-f"])
                .arg(self.dir.path().join("sshd_config"))
                .stdout(Stdio::null())
                .stderr(log),
        );
        wait_for_port(self.port, Duration::from_secs(10));
    }
}

/// `TB_TESTBED_SSHD=<the server's directory name>`: the environment entry that marks processes
/// started through one test sshd.
fn sshd_tag(dir: &Path) -> String {
    format!(
        "TB_TESTBED_SSHD={}",
        dir.file_name().unwrap_or_default().to_string_lossy()
    )
}

/// Every live process whose environment holds exactly `entry` (`NAME=VALUE`).
pub fn processes_with_env(entry: &str) -> Vec<u32> {
    processes()
        .into_iter()
        .filter(|(pid, f)| {
            f.first().is_some_and(|s| s != "Z")
                && std::fs::read(format!("/proc/{pid}/environ"))
                    .is_ok_and(|env| env.split(|b| *b == 0).any(|e| e == entry.as_bytes()))
        })
        .map(|(pid, _)| pid)
        .collect()
}

impl Drop for Sshd {
    /// Nothing started through this server outlives it: Jupyter servers a test left running
    /// (detached with `setsid`, so not below sshd) and their kernels are killed too.
    fn drop(&mut self) {
        self.process.kill();
        let tag = sshd_tag(self.dir.path());
        for _round in 0..3 {
            let left = processes_with_env(&tag);
            if left.is_empty() {
                break;
            }
            let _ = Command::new("kill")
                .arg("-KILL")
                .args(left.iter().map(u32::to_string))
                .status();
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The fields of `/proc/PID/stat` after the command name (state, ppid, pgrp, …); `None` when
/// the process is gone. The name may hold spaces and parentheses, so it is cut at the last `)`.
pub fn proc_stat(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit(')').next().unwrap_or("");
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// Every process now, with its [`proc_stat`] fields.
pub fn processes() -> Vec<(u32, Vec<String>)> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter_map(|pid| proc_stat(pid).map(|fields| (pid, fields)))
        .collect()
}

/// Whether `pid` runs (exists and is not a zombie).
pub fn alive(pid: u32) -> bool {
    proc_stat(pid).is_some_and(|f| f.first().is_some_and(|state| state != "Z"))
}

/// Every live process below `pid` (children, their children, …).
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid …": comm may hold spaces and parentheses.
        let rest: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        if let Some(ppid) = rest.get(1).and_then(|s| s.parse::<u32>().ok()) {
            parent_of.push((p, ppid));
        }
    }
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parent_of
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    found.remove(0);
    found
}

fn read_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
}

fn install_otp_pam() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::fs::create_dir_all("/etc/tunnelbook-test").unwrap();
        let users = "/etc/tunnelbook-test/users.oath";
        std::fs::write(users, format!("HOTP/T30/6 {USER} - {OTP_SECRET}\n")).unwrap();
        std::fs::set_permissions(users, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(
            "/etc/pam.d/tunnelbook-otp",
            format!(
                "auth required pam_unix.so\n\
                 auth required pam_oath.so usersfile={users} window=4 digits=6\n\
                 account required pam_unix.so\n\
                 session required pam_permit.so\n"
            ),
        )
        .unwrap();
    });
}

/// The current TOTP code for [`OTP_SECRET`].
pub fn otp_code() -> String {
    let out = run(Command::new("oathtool").args(["--totp", OTP_SECRET]));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A running ssh-agent holding some keys.
pub struct Agent {
    /// `SSH_AUTH_SOCK` value.
    pub socket: PathBuf,
    _dir: TempDir,
    _process: Guard,
}

impl Agent {
    /// Starts an agent and adds `keys` to it.
    pub fn start(keys: &[&KeyFile]) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("agent.sock");
        let process = Guard::spawn(
            Command::new("ssh-agent")
                .arg("-D")
                .arg("-a")
                .arg(&socket)
                .stdout(Stdio::null()),
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while !socket.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        for key in keys {
            run(Command::new("ssh-add")
                .arg("-q")
                .arg(&key.path)
                .env("SSH_AUTH_SOCK", &socket));
        }
        Agent {
            socket,
            _dir: dir,
            _process: process,
        }
    }
}

/// A throwaway client side: a home with keys, Tunnelbook's own known_hosts, and a way to run the
/// `tunnelbook` binary in it.
pub struct Client {
    /// `$HOME` and `$TUNNELBOOK_HOME` parent.
    pub dir: TempDir,
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

impl Client {
    /// A fresh client directory.
    pub fn new() -> Client {
        Client {
            dir: tempfile::Builder::new()
                .prefix("tb-client-")
                .tempdir()
                .unwrap(),
        }
    }

    /// `$TUNNELBOOK_HOME`.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("tunnelbook")
    }

    /// Tunnelbook's own known_hosts.
    pub fn known_hosts(&self) -> KnownHosts {
        KnownHosts::with_files(self.home().join("known_hosts"), vec![])
    }

    /// Trusts `sshd`'s host key up front.
    pub fn trust(&self, sshd: &Sshd) {
        self.add_known_host(&sshd.known_hosts_line());
    }

    /// Trusts `sshd`'s host key as the key of `127.0.0.1:port` too (a proxy in front of it).
    pub fn trust_port(&self, sshd: &Sshd, port: u16) {
        self.add_known_host(&format!("[127.0.0.1]:{port} {}", sshd.host_keys[0]));
    }

    fn add_known_host(&self, line: &str) {
        use std::io::Write;
        std::fs::create_dir_all(self.home()).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.home().join("known_hosts"))
            .unwrap();
        writeln!(f, "{line}").unwrap();
    }

    /// A connect context using this client's known_hosts.
    pub fn context(
        &self,
        prompter: Arc<dyn Prompter>,
        policy: HostKeyPolicy,
        secrets: Option<Arc<dyn SecretStore>>,
    ) -> ConnectContext {
        ConnectContext {
            prompter,
            known_hosts: self.known_hosts(),
            secrets,
            options: ConnectOptions {
                host_key_policy: policy,
                ..ConnectOptions::default()
            },
        }
    }

    /// `tunnelbook ARGS` with `$HOME`/`$TUNNELBOOK_HOME` pointing here and no agent.
    pub fn cli(&self) -> Command {
        let mut cmd = Command::new(cli_binary());
        cmd.env("HOME", self.dir.path())
            .env("TUNNELBOOK_HOME", self.home())
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("TUNNELBOOK_PASSWORD")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `tunnelbook ARGS` to its end: (exit status, stdout, stderr).
    pub fn run_cli(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.cli().args(args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Starts `tunnelbook ARGS --json`, a verb that keeps running (`up`, `attach`, `open`), and
    /// reads the JSON object it prints first. Returns the process (killed on drop), that object
    /// and the file its stderr goes to; panics showing that stderr when the line is not JSON.
    pub fn spawn_json(&self, args: &[&str]) -> (Guard, serde_json::Value, PathBuf) {
        static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let err_path = self
            .dir
            .path()
            .join(format!("stderr-{}-{n}", args.first().unwrap_or(&"cli")));
        let mut child = Guard::spawn(
            self.cli()
                .args(args)
                .arg("--json")
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(&err_path).unwrap()),
        );
        let line = child.read_line();
        let value = serde_json::from_str(&line).unwrap_or_else(|_| {
            panic!(
                "{args:?} printed {line:?}; stderr:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            )
        });
        (child, value, err_path)
    }
}

/// The `tunnelbook` binary built alongside the tests (`target/<profile>/tunnelbook`).
pub fn cli_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let bin = profile_dir.join("tunnelbook");
    assert!(
        bin.exists(),
        "{} missing: build it with `cargo build -p tunnelbook-cli`",
        bin.display()
    );
    bin
}

/// Key-file-only auth (no agent, no password prompts).
pub fn key_only(mut profile: Profile, key: &KeyFile) -> Profile {
    profile.auth = vec![AuthMethod::KeyFile];
    profile.identity_files = vec![key.path.clone()];
    profile
}

/// Where the test bed keeps its JupyterLab venv: built once with `/usr/bin/python3` (other users
/// run it; the PATH's python3 may live under root's home) and reused by every later run.
pub const JUPYTER_VENV: &str = "/opt/tunnelbook-test/jlab-venv";

/// The cached JupyterLab venv, built on first use (`python3 -m venv` + `pip install jupyterlab
/// ipykernel`, ~35 s, needs PyPI). A file lock keeps parallel test processes from racing; a
/// `.complete` marker tells a finished venv from one interrupted half-way.
pub fn jupyter_venv() -> PathBuf {
    cached_venv(Path::new(JUPYTER_VENV), &["jupyterlab", "ipykernel"])
}

/// A venv at `venv` with `packages`, built once with `/usr/bin/python3` (other users must run it)
/// and reused: a file lock beside it keeps parallel test processes from racing, a `.complete`
/// marker tells a finished venv from one interrupted half-way.
pub fn cached_venv(venv: &Path, packages: &[&str]) -> PathBuf {
    let marker = venv.join(".complete");
    if marker.exists() {
        return venv.to_path_buf();
    }
    let parent = venv.parent().unwrap();
    std::fs::create_dir_all(parent).unwrap();
    std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755)).unwrap();
    let name = venv.file_name().unwrap().to_string_lossy();
    let lock = std::fs::File::create(parent.join(format!("{name}.lock"))).unwrap();
    lock.lock().unwrap();
    if !marker.exists() {
        let _ = std::fs::remove_dir_all(venv);
        run(Command::new("/usr/bin/python3")
            .args(["-m", "venv"])
            .arg(venv));
        run(Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "--disable-pip-version-check"])
            .args(packages));
        std::fs::write(&marker, "").unwrap();
    }
    venv.to_path_buf()
}

/// Holds an exclusive lock on `~user/bin` (where GPU tests put the `nvidia-smi` shim) across test
/// processes; released on drop.
pub fn user_bin_lock(user: &str) -> std::fs::File {
    let lock = std::fs::File::create(format!("/tmp/tunnelbook-testbed-bin-{user}.lock")).unwrap();
    lock.lock().unwrap();
    lock
}

/// The cipher both sides use in benchmarks.
pub const BENCH_CIPHER: &str = "aes256-gcm@openssh.com";

/// A benchmark bed: one sshd, a client home trusting it, a key, and ready-made commands for
/// OpenSSH's `ssh` and the release `tunnelbook` against the same server.
pub struct BenchBed {
    /// The server.
    pub sshd: Sshd,
    /// The client side (`$HOME`, `$TUNNELBOOK_HOME`).
    pub client: Client,
    /// The login key.
    pub key: KeyFile,
    _keys: TempDir,
    cli: PathBuf,
}

impl BenchBed {
    /// Starts sshd and saves the host `box` (tbtest, key only), adjusted by `edit`.
    pub fn start(edit: impl FnOnce(&mut Profile)) -> BenchBed {
        let exe = std::env::current_exe().unwrap();
        let cli = exe
            .parent()
            .and_then(Path::parent)
            .unwrap()
            .join("tunnelbook");
        assert!(
            cli.exists(),
            "build the release CLI first: cargo build --release -p tunnelbook-cli"
        );
        let keys = tempfile::tempdir().unwrap();
        let key = make_key(keys.path(), "id", "ed25519", None);
        let sshd = Sshd::start(&[&key], SshdOptions::default());
        let client = Client::new();
        client.trust(&sshd);
        let mut profile = key_only(sshd.profile("box", USER), &key);
        edit(&mut profile);
        tunnelbook_core::profile::ProfileStore::in_home(&client.home())
            .save(&[profile])
            .unwrap();
        BenchBed {
            sshd,
            client,
            key,
            _keys: keys,
            cli,
        }
    }

    /// `ssh` to the same server with the same key, cipher and known_hosts, plus `extra` options.
    pub fn ssh(&self, extra: &[&str]) -> Command {
        let mut c = Command::new("ssh");
        c.env("HOME", self.client.dir.path())
            .env_remove("SSH_AUTH_SOCK")
            .args(["-F", "/dev/null", "-i"])
            .arg(&self.key.path)
            .args(["-p", &self.sshd.port.to_string(), "-c", BENCH_CIPHER])
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                self.client.home().join("known_hosts").display()
            ))
            .args([
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
            ])
            .args(extra)
            .arg(format!("{USER}@127.0.0.1"));
        c
    }

    /// The release `tunnelbook` in this client's home.
    pub fn tunnelbook(&self) -> Command {
        self.tunnelbook_at(&self.cli)
    }

    /// Another build of the CLI (`program`), in this client's home like [`Self::tunnelbook`].
    pub fn tunnelbook_at(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.env("HOME", self.client.dir.path())
            .env("TUNNELBOOK_HOME", self.client.home())
            .env_remove("SSH_AUTH_SOCK");
        c
    }
}

/// The median of some measurements.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// GPU 0 of the `h100-two-users` capture, busy in [`two_gpu_scenario`].
pub const BUSY_GPU: &str = "GPU-75cbcb3f-3580-af7a-4e6d-03d5aa80af6b";
/// An idle twin of it, GPU 1 in [`two_gpu_scenario`].
pub const FREE_GPU: &str = "GPU-0f0e0d0c-0b0a-0908-0706-050403020100";

/// A scenario for [`NvidiaSmiShim`] that every user can read: two H100s, GPU 0
/// ([`BUSY_GPU`]) busy with process `pid`, GPU 1 ([`FREE_GPU`]) free.
pub fn two_gpu_scenario(pid: u32) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/core/tests/fixtures/nvidia-smi/h100-two-users");
    let busy = std::fs::read_to_string(fixture.join("query-gpu.csv")).unwrap();
    let free = format!(
        "1, {FREE_GPU}, NVIDIA H100 80GB HBM3, 81559, 0, 81559, 0, 0, 31, 70.10, 700.00, Disabled, 00000000:00:07.0, Default"
    );
    std::fs::write(
        dir.path().join("query-gpu.csv"),
        format!("{}\n{free}\n", busy.trim_end()),
    )
    .unwrap();
    let list = std::fs::read_to_string(fixture.join("list.txt")).unwrap();
    std::fs::write(
        dir.path().join("list.txt"),
        format!(
            "{}\nGPU 1: NVIDIA H100 80GB HBM3 (UUID: {FREE_GPU})\n",
            list.trim_end()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("apps.csv"),
        format!("{BUSY_GPU}, {pid}, python3, 8192\n"),
    )
    .unwrap();
    dir
}

/// GPU 0 of [`lost_and_container_busy_scenario`]: busy in another container, no process listed.
pub const CONTAINER_BUSY_GPU: &str = "GPU-aa11bb22-cc33-4d44-8e55-66ff77aa8801";
/// GPU 2 of [`lost_and_container_busy_scenario`]: the truly idle one.
pub const IDLE_GPU: &str = "GPU-aa11bb22-cc33-4d44-8e55-66ff77aa8803";
/// GPU 3 of [`lost_and_container_busy_scenario`]: runs the given process.
pub const THEIR_GPU: &str = "GPU-aa11bb22-cc33-4d44-8e55-66ff77aa8804";

/// The box of issue 17 for [`NvidiaSmiShim`] (every user can read it): 4 x A100 80GB where GPU 0
/// ([`CONTAINER_BUSY_GPU`]) runs at 99 % with 5 GiB in use and no process listed (case 10: the
/// job is in another container), GPU 1 fell off the bus (case 08: nvidia-smi prints its error
/// line instead of its row and exits 15), GPU 2 ([`IDLE_GPU`]) is idle, and GPU 3
/// ([`THEIR_GPU`]) runs `their_pid`, whose name carries a section marker, a failure line and a
/// terminal escape, followed by a forged row.
pub fn lost_and_container_busy_scenario(their_pid: u32) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let lost = "Unable to determine the device handle for GPU 0000:0B:00.0: Unknown Error";
    let w = |name: &str, text: String| std::fs::write(dir.path().join(name), text).unwrap();
    w(
        "query-gpu.csv",
        format!(
            "{lost}\n\
             0, {CONTAINER_BUSY_GPU}, NVIDIA A100-SXM4-80GB, 81920, 5210, 76710, 99, 71, 67, 351.20, 400.00, Disabled, 00000000:07:00.0, Default\n\
             2, {IDLE_GPU}, NVIDIA A100-SXM4-80GB, 81920, 4, 81916, 0, 0, 30, 58.40, 400.00, Disabled, 00000000:4E:00.0, Default\n\
             3, {THEIR_GPU}, NVIDIA A100-SXM4-80GB, 81920, 30000, 51920, 80, 40, 60, 300.00, 400.00, Disabled, 00000000:4F:00.0, Default\n"
        ),
    );
    w(
        "apps.csv",
        format!("{lost}\n{THEIR_GPU}, {their_pid}, python3, 29990\n"),
    );
    w(
        "names.csv",
        format!(
            "{their_pid}, /tmp/NVIDIA-SMI has failed/@@tunnelbook-gpu end@@\u{1b}[2J\n\
             1, GPU-eeeeeeee-0000-0000-0000-000000000000, Evil\n"
        ),
    );
    w(
        "list.txt",
        format!(
            "GPU 0: NVIDIA A100-SXM4-80GB (UUID: {CONTAINER_BUSY_GPU})\n{lost}\n\
             GPU 2: NVIDIA A100-SXM4-80GB (UUID: {IDLE_GPU})\n\
             GPU 3: NVIDIA A100-SXM4-80GB (UUID: {THEIR_GPU})\n"
        ),
    );
    for answer in ["query-gpu", "apps", "list"] {
        w(&format!("{answer}.rc"), "15\n".to_string());
    }
    dir
}

/// `tests/shims/nvidia-smi` installed as `~user/bin/nvidia-smi` (on PATH in the user's login
/// shell) reading the fixture files in `scenario`. Holds the user's `~/bin` lock, so test
/// processes take turns; removed on drop.
pub struct NvidiaSmiShim {
    bin: PathBuf,
    _lock: std::fs::File,
}

impl NvidiaSmiShim {
    /// Installs the shim for `user`; `scenario` must be readable by that user.
    pub fn install(user: &str, scenario: &Path) -> NvidiaSmiShim {
        let lock = user_bin_lock(user);
        let bin = PathBuf::from(format!("/home/{user}/bin"));
        std::fs::create_dir_all(&bin).unwrap();
        let shim = bin.join("nvidia-smi");
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("shims/nvidia-smi"),
            &shim,
        )
        .unwrap();
        std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(bin.join("nvidia-smi.dir"), scenario.display().to_string()).unwrap();
        run(Command::new("chown")
            .arg("-R")
            .arg(format!("{user}:"))
            .arg(&bin));
        NvidiaSmiShim { bin, _lock: lock }
    }
}

impl Drop for NvidiaSmiShim {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.bin.join("nvidia-smi"));
        let _ = std::fs::remove_file(self.bin.join("nvidia-smi.dir"));
    }
}

/// `sleep 600` running as `user` (setpriv execs, so the guard's pid is the process's).
pub fn sleeper(user: &str) -> Guard {
    Guard::spawn(
        Command::new("setpriv")
            .args([
                "--reuid",
                user,
                "--regid",
                user,
                "--init-groups",
                "sleep",
                "600",
            ])
            .stdout(Stdio::null()),
    )
}

/// Runs test `test` of the current test binary again in a private D-Bus session with a fresh,
/// unlocked gnome-keyring (its own HOME and XDG_RUNTIME_DIR, so it cannot reach the suite's
/// keyring), with `child_env` set so the rerun knows it is the child. Panics when the child
/// fails or dbus-run-session / gnome-keyring-daemon (scripts/setup.sh) are missing.
pub fn rerun_in_private_keychain(test: &str, child_env: &str) {
    let home = tempfile::tempdir().unwrap();
    // Its own runtime directory too: gnome-keyring finds a running daemon through its control
    // socket there, and must start a fresh one rather than unlock the suite's.
    let runtime = home.path().join("run");
    std::fs::create_dir(&runtime).unwrap();
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    let exe = std::env::current_exe().unwrap();
    let status = Command::new("dbus-run-session")
        .args([
            "--",
            "sh",
            "-c",
            "printf '\\n' | gnome-keyring-daemon --unlock --components=secrets >/dev/null \
             && exec \"$0\" --exact \"$1\" --nocapture",
        ])
        .arg(&exe)
        .arg(test)
        .env(child_env, "1")
        .env("HOME", home.path())
        .env("XDG_RUNTIME_DIR", &runtime)
        .env_remove("XDG_DATA_HOME")
        .status()
        .expect("dbus-run-session and gnome-keyring-daemon (scripts/setup.sh) run");
    assert!(
        status.success(),
        "the private-keychain run failed: {status}"
    );
}
