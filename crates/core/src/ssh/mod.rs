//! One SSH connection to a host: connect (through jump hosts), verify the host key,
//! authenticate, keep alive, run commands, open channels.
//!
//! A [`Connection`] is a cheap-to-clone handle; russh's session task owns the socket and every
//! channel runs concurrently over it, so a password or OTP is asked once per connection, not per
//! action. What this module leaves out: forwarding listeners ([`crate::tunnel`]), reconnect
//! policy ([`crate::session`]), and where profiles come from ([`crate::profile`]).

mod auth;
mod forwarding;
mod handler;
mod known_hosts;
pub mod login;
mod prompt;
mod proxy;
pub mod putty_host_keys;
pub mod shell;
mod socket;
// Subsystem channels (sftp) over a connection.
mod subsystem;

use std::{fmt, path::PathBuf, sync::Arc, time::Duration};

use russh::{ChannelMsg, client};
use serde::Serialize;
use tokio::{io::AsyncWriteExt, net::TcpStream, sync::broadcast};

use self::handler::ClientHandler;
pub use self::subsystem::SubsystemStream;
pub use self::{
    forwarding::Forwarding,
    handler::RemoteForwards,
    known_hosts::{HostKeyStatus, KnownHosts, fingerprint, lookup_name},
    prompt::{
        HostKeyPolicy, HostKeyQuestion, KbdPrompt, KbdRound, NoPrompter, Prompter, SecretAnswer,
        SecretQuestion,
    },
    shell::{PtySpec, Shell, ShellEvent, ShellExit, ShellInput, ShellOutput, ShellSpec},
};
pub use crate::profile::{host_key_algorithms, login_user};
use crate::{profile::Profile, secret::SecretStore};

/// Errors of a connection. Messages say what is wrong and what to do; they never contain secrets.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// TCP connect failed.
    #[error(
        "cannot reach {host}:{port}: {source}. Check the host name and port, and that sshd runs there."
    )]
    Unreachable {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// The OS error.
        source: std::io::Error,
    },
    /// The `ProxyCommand` that should carry the connection failed.
    #[error("the proxy command `{command}` failed: {message}. What it wrote to stderr: {stderr}")]
    ProxyCommand {
        /// The command, tokens expanded.
        command: String,
        /// What went wrong (could not start, ended, handshake failed).
        message: String,
        /// The end of its stderr (the last 8 KiB), or `(nothing)`.
        stderr: String,
    },
    /// The port took the TCP connection but no SSH session came of it: the other side closed
    /// it during the handshake, or answered with something that is not SSH.
    #[error("{host}:{port} {problem}. {remedy}")]
    HandshakeFailed {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// What happened, in words (e.g. `accepted the connection, then closed it ...`).
        problem: String,
        /// What to check or do.
        remedy: String,
    },
    /// Connect or handshake took too long.
    #[error("{host}:{port} did not answer within {secs} s. Check the address, VPN and firewall.")]
    Timeout {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// The limit.
        secs: u64,
    },
    /// The host key differs from the one remembered: refused, nothing was sent.
    #[error(
        "HOST KEY CHANGED for {host}:{port}: expected {expected} ({}), the server presented {presented}. \
         Someone may be intercepting the connection, or the host was reinstalled. Nothing was sent. \
         If the change is expected, {} and connect again.",
        known_hosts::describe(.file, *.line),
        known_hosts::remedy(.file, *.line)
    )]
    HostKeyChanged {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// Fingerprint of the remembered key.
        expected: String,
        /// Fingerprint of the key presented now.
        presented: String,
        /// File with the remembered key (on Windows possibly PuTTY's registry value).
        file: String,
        /// Its line (0 for PuTTY's registry value).
        line: usize,
    },
    /// The host key, or the CA that signed the host certificate, is marked `@revoked`: refused,
    /// nothing was sent.
    #[error(
        "the host key of {host}:{port} ({fingerprint}) is REVOKED in {file}:{line}: refused, nothing \
         was sent. Ask the host's administrators for its current key."
    )]
    HostKeyRevoked {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// Fingerprint of the presented key (or of the CA that signed its certificate).
        fingerprint: String,
        /// File with the `@revoked` line.
        file: String,
        /// Its line.
        line: usize,
    },
    /// A host certificate from a listed `@cert-authority` that is not valid here and now.
    #[error(
        "the host certificate of {host}:{port} was signed by a trusted CA but is refused: {reason}. \
         Nothing was sent. Ask the host's administrators to renew it."
    )]
    HostCertificateInvalid {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// Why it is refused.
        reason: String,
    },
    /// The server offers no host key type that Tunnelbook asks for (the host's
    /// `HostKeyAlgorithms`).
    #[error(
        "{host}:{port} offers no host key type that this host's HostKeyAlgorithms allows \
         (asked for: {ours}; the server offers: {theirs}). Nothing was sent. Add one of the \
         server's types to HostKeyAlgorithms (e.g. +{first_theirs}) or remove the setting.",
        first_theirs = theirs.split(',').next().unwrap_or_default()
    )]
    NoCommonHostKeyAlgorithm {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// The host key algorithms asked for, comma-separated.
        ours: String,
        /// The host key algorithms the server offers, comma-separated.
        theirs: String,
    },
    /// An unknown host key was not trusted (strict policy, no terminal, or the human said no).
    #[error(
        "the host key of {host}:{port} is not known ({fingerprint}) and was not accepted. \
         Verify the fingerprint with the server's administrator, then connect again and accept it \
         (or use --host-key-policy accept-new)."
    )]
    HostKeyNotTrusted {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// Fingerprint of the presented key.
        fingerprint: String,
    },
    /// Every authentication method failed.
    #[error(
        "authentication as {user}@{host} failed (tried: {tried}; the server accepts: {accepted}). \
         Check the user name and credentials."
    )]
    AuthFailed {
        /// User.
        user: String,
        /// Host.
        host: String,
        /// The methods tried, comma separated.
        tried: String,
        /// The methods the server offered last, comma separated.
        accepted: String,
    },
    /// A key file could not be used.
    #[error("cannot use key file {path}: {message}")]
    KeyFile {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// A known_hosts file could not be read or written.
    #[error("cannot use known_hosts file {path}: {message}", path = path.display())]
    KnownHosts {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The connection is closed.
    #[error("the connection to {0} is closed")]
    Closed(String),
    /// The server refused to open a channel.
    #[error("the server refused {what}: {message}")]
    ChannelRefused {
        /// What was asked, e.g. `a forward to 127.0.0.1:8888`.
        what: String,
        /// The server's reason.
        message: String,
    },
    /// Any other SSH protocol error.
    #[error("SSH error: {0}")]
    Protocol(String),
    /// The login shell did not run the command (a startup file exited, or started something
    /// that did not read the command); its exit status would have been a lie.
    #[error(
        "the login shell on {destination} did not run the command (exit status {status:?}); it printed: {output}. \
         Check the startup files of the login shell there (~/.profile, ~/.bash_profile, ~/.cshrc, \
         ~/.config/fish/config.fish): one of them exits or replaces the shell with a program that reads no commands."
    )]
    NotRun {
        /// `user@host`.
        destination: String,
        /// The exit status the login shell reported.
        status: Option<u32>,
        /// The end of what it printed (stdout then stderr), or `nothing`.
        output: String,
    },
    /// A remote command ran past its time limit and was stopped.
    #[error(
        "`{command}` on {destination} did not finish within {secs} s and was stopped. \
         The host may be overloaded or the program hung (e.g. a GPU driver in a bad state); try again, \
         or run it in a terminal there to see where it waits."
    )]
    CommandTimedOut {
        /// The command (its first line, shortened).
        command: String,
        /// `user@host`.
        destination: String,
        /// The limit in seconds.
        secs: u64,
    },
    /// A remote command printed more than its output cap and was stopped.
    #[error(
        "`{command}` on {destination} printed more than {limit_kib} KiB and was stopped. \
         Something on the host answers with far more output than expected (a startup file or a wrapper in a loop?)."
    )]
    OutputTooLarge {
        /// The command (its first line, shortened).
        command: String,
        /// `user@host`.
        destination: String,
        /// The cap in KiB (stdout and stderr together).
        limit_kib: usize,
    },
}

impl SshError {
    /// Whether trying again later may succeed (the network, the server restarting), as opposed
    /// to errors that need the human: a changed or untrusted host key, refused credentials, an
    /// unusable key or known_hosts file. Reconnect loops stop on the latter.
    pub fn is_transient(&self) -> bool {
        !matches!(
            self,
            SshError::HostKeyChanged { .. }
                | SshError::HostKeyRevoked { .. }
                | SshError::HostCertificateInvalid { .. }
                | SshError::HostKeyNotTrusted { .. }
                | SshError::NoCommonHostKeyAlgorithm { .. }
                | SshError::AuthFailed { .. }
                | SshError::KeyFile { .. }
                | SshError::KnownHosts { .. }
                | SshError::NotRun { .. }
                | SshError::OutputTooLarge { .. }
        )
    }
}

impl From<russh::Error> for SshError {
    fn from(e: russh::Error) -> Self {
        match e {
            russh::Error::NoCommonAlgo {
                kind: russh::AlgorithmKind::Key,
                ours,
                theirs,
            } => SshError::NoCommonHostKeyAlgorithm {
                host: String::new(),
                port: 0,
                ours: ours.join(","),
                theirs: theirs.join(","),
            },
            e => SshError::Protocol(e.to_string()),
        }
    }
}

impl SshError {
    /// Names the hop in an error raised by the SSH library, which does not know it.
    fn at_hop(self, hop: &Profile) -> SshError {
        match self {
            SshError::NoCommonHostKeyAlgorithm { ours, theirs, .. } => {
                SshError::NoCommonHostKeyAlgorithm {
                    host: hop.host.clone(),
                    port: hop.port,
                    ours,
                    theirs,
                }
            }
            SshError::Protocol(message) => handshake_failed(hop, &message),
            e => e,
        }
    }
}

/// What a failed handshake means, from the SSH library's message (it has no finer type for a
/// peer that hangs up: `Disconnected`, `Connection closed by the remote side`, an I/O error).
fn handshake_failed(hop: &Profile, message: &str) -> SshError {
    let lower = message.to_ascii_lowercase();
    let hung_up = [
        "disconnected",
        "closed",
        "eof",
        "reset",
        "broken pipe",
        "aborted",
    ]
    .iter()
    .any(|word| lower.contains(word));
    let (problem, remedy) = if hung_up {
        (
            "accepted the connection, then closed it before the SSH handshake finished".to_string(),
            format!(
                "Check that an SSH server listens on port {} there (the host's Port), and whether                  the server turns this client away: sshd's MaxStartups or ListenAddress,                  tcpwrappers, fail2ban or a firewall that cuts connections. `ssh -v` to the                  same host shows how far it gets.",
                hop.port
            ),
        )
    } else if lower.contains("version") {
        (
            "answered with something that is not SSH".to_string(),
            format!(
                "Check the port: another service listens on {} there, not an SSH server.",
                hop.port
            ),
        )
    } else {
        (
            format!("took the connection, but the SSH handshake failed ({message})"),
            "Try again; if it keeps failing, `ssh -v` to the same host shows where.".to_string(),
        )
    };
    SshError::HandshakeFailed {
        host: hop.host.clone(),
        port: hop.port,
        problem,
        remedy,
    }
}

/// Where a connection is in its life, for progress displays and reconnect logic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum ConnectionState {
    /// Opening TCP and the SSH handshake with one hop.
    Connecting {
        /// `host:port` of the hop.
        hop: String,
    },
    /// Trying an authentication method.
    Authenticating {
        /// `user@host`.
        destination: String,
        /// The method, as SSH names it (`publickey`, `password`, …).
        method: String,
    },
    /// Ready for commands and channels.
    Authenticated {
        /// `user@host`.
        destination: String,
    },
    /// The connection ended.
    Disconnected {
        /// Why, in words.
        reason: String,
    },
}

/// Tuning of a connection.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Limit for TCP connect plus handshake, per hop.
    pub connect_timeout: Duration,
    /// What to do with unknown host keys of a hop whose profile sets no
    /// `strict_host_key_checking` (OpenSSH's `StrictHostKeyChecking`).
    pub host_key_policy: HostKeyPolicy,
    /// Whether `host_key_policy` applies to every hop, whatever its profile says (the CLI's
    /// `--host-key-policy`).
    pub host_key_policy_forced: bool,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(15),
            host_key_policy: HostKeyPolicy::Ask,
            host_key_policy_forced: false,
        }
    }
}

/// The collaborators a connection needs.
#[derive(Clone)]
pub struct ConnectContext {
    /// Asks the human.
    pub prompter: Arc<dyn Prompter>,
    /// Remembered host keys.
    pub known_hosts: KnownHosts,
    /// Remembered secrets, if a keychain is available.
    pub secrets: Option<Arc<dyn SecretStore>>,
    /// Timeouts and policies.
    pub options: ConnectOptions,
}

/// The output of a finished remote command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// Everything written to stdout.
    pub stdout: Vec<u8>,
    /// Everything written to stderr.
    pub stderr: Vec<u8>,
    /// Exit status; `None` when the command was killed by a signal or the server sent none.
    pub status: Option<u32>,
    /// The signal that killed the command, if any (e.g. `KILL`).
    pub signal: Option<String>,
}

impl Output {
    /// stdout as text (invalid UTF-8 replaced).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stderr as text (invalid UTF-8 replaced).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Whether the command exited with status 0.
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }
}

/// How long a remote command may run and how much it may print before it is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecLimits {
    /// Wall-clock limit from opening the channel to the end of output; `None`: none.
    pub timeout: Option<Duration>,
    /// Most bytes of stdout and stderr together.
    pub max_output: usize,
}

impl ExecLimits {
    /// Tunnelbook's own short commands (GPU query, environment discovery, launch, stop): 60 s
    /// and 16 MiB, so a hung `nvidia-smi` or an endless stream cannot hold up a refresh loop.
    pub const DEFAULT: ExecLimits = ExecLimits {
        timeout: Some(Duration::from_secs(60)),
        max_output: 16 << 20,
    };
    /// Long jobs with progress (installing JupyterLab): 30 min and 64 MiB.
    pub const LONG: ExecLimits = ExecLimits {
        timeout: Some(Duration::from_secs(30 * 60)),
        max_output: 64 << 20,
    };
    /// A command the user typed (`tunnelbook exec`): no time limit, 256 MiB.
    pub const USER: ExecLimits = ExecLimits {
        timeout: None,
        max_output: 256 << 20,
    };

    /// [`ExecLimits::DEFAULT`], with the time limit from `TUNNELBOOK_COMMAND_TIMEOUT` (seconds)
    /// when that is set to a positive number (for hosts that are slow to answer, and tests).
    pub fn standard() -> ExecLimits {
        static FROM_ENV: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
        let secs = *FROM_ENV.get_or_init(|| {
            std::env::var("TUNNELBOOK_COMMAND_TIMEOUT")
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|s| *s > 0)
        });
        ExecLimits {
            timeout: secs.map(Duration::from_secs).or(Self::DEFAULT.timeout),
            ..Self::DEFAULT
        }
    }
}

/// A command's name for messages: its first non-blank line, at most 60 characters.
fn short_name(command: &str) -> String {
    let line = command
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let mut name: String = line.chars().take(60).collect();
    if line.chars().count() > 60 {
        name.push('…');
    }
    name
}

/// An authenticated SSH connection. Clones share the same session.
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

struct Inner {
    handle: client::Handle<ClientHandler>,
    /// Sessions of the jump hosts, kept alive as long as the target session lives.
    _jumps: Vec<client::Handle<ClientHandler>>,
    destination: String,
    events: broadcast::Sender<ConnectionState>,
    remote_forwards: RemoteForwards,
    /// The server's forwarding policy, probed on first use ([`Connection::forwarding`]).
    forwarding: tokio::sync::OnceCell<Forwarding>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("destination", &self.inner.destination)
            .finish()
    }
}

/// The russh settings every connection uses. The window is large because russh ignores
/// `Handler::adjust_window` on the client (russh#770): one channel moves at most
/// `window_size / RTT`.
/// Ciphers in order of preference: AES-GCM first because it runs on AES-NI / ARMv8 crypto
/// instructions (the bulk of tunnel CPU time), then ChaCha20 for hosts without them.
const CIPHERS: &[russh::cipher::Name] = &[
    russh::cipher::AES_256_GCM,
    russh::cipher::CHACHA20_POLY1305,
    russh::cipher::AES_256_CTR,
    russh::cipher::AES_128_CTR,
];

fn russh_config(profile: &Profile, known_hosts: &KnownHosts) -> client::Config {
    // Ask for the key types known_hosts already lists for this host first (OpenSSH's
    // HostKeyAlgorithms ordering), and for host certificates only where a CA is listed.
    // The host's HostKeyAlgorithms choose and order the types (validated when saved; an
    // unusable list falls back to the default).
    let (configured, certificate_types) = profile
        .host_key_algorithms
        .as_deref()
        .and_then(|spec| host_key_algorithms(spec).ok())
        .unwrap_or_else(|| {
            let key = russh::Preferred::default().key.to_vec();
            (key.clone(), key)
        });
    let (key, certificates) = known_hosts.preferred_algorithms(
        &known_hosts::lookup_name(
            &profile.host,
            profile.port,
            profile.host_key_alias.as_deref(),
        ),
        &configured,
    );
    let (certificate_key, _) = known_hosts.preferred_algorithms(
        &known_hosts::lookup_name(
            &profile.host,
            profile.port,
            profile.host_key_alias.as_deref(),
        ),
        &certificate_types,
    );
    let keepalive = (profile.keepalive_interval > 0)
        .then(|| Duration::from_secs(u64::from(profile.keepalive_interval)));
    client::Config {
        window_size: 16 * 1024 * 1024,
        maximum_packet_size: 65535,
        channel_buffer_size: 128,
        nodelay: true,
        keepalive_interval: keepalive,
        keepalive_max: profile.keepalive_max.max(1) as usize,
        inactivity_timeout: None,
        preferred: russh::Preferred {
            cipher: std::borrow::Cow::Borrowed(CIPHERS),
            host_key_certificates: if certificates {
                certificate_key.into()
            } else {
                std::borrow::Cow::Borrowed(&[])
            },
            key: key.into(),
            ..russh::Preferred::default()
        },
        ..client::Config::default()
    }
}

/// `user@host[:port]` for messages.
fn destination(profile: &Profile) -> String {
    let user = login_user(profile);
    if profile.port == 22 {
        format!("{user}@{}", profile.host)
    } else {
        format!("{user}@{}:{}", profile.host, profile.port)
    }
}

impl Connection {
    /// Connects through `chain` (jump hosts first, the target last), checking each hop's host key
    /// on its own and authenticating on each.
    pub async fn open(chain: &[Profile], ctx: &ConnectContext) -> Result<Connection, SshError> {
        let (events, _) = broadcast::channel(64);
        Self::open_with_events(chain, ctx, events).await
    }

    /// Like [`Connection::open`], reporting progress on `events` (subscribe before calling).
    pub async fn open_with_events(
        chain: &[Profile],
        ctx: &ConnectContext,
        events: broadcast::Sender<ConnectionState>,
    ) -> Result<Connection, SshError> {
        let Some(target) = chain.last() else {
            return Err(SshError::Protocol("no host to connect to".into()));
        };
        let remote_forwards = RemoteForwards::default();
        let mut jumps: Vec<client::Handle<ClientHandler>> = Vec::new();
        for (i, hop) in chain.iter().enumerate() {
            let is_target = i + 1 == chain.len();
            let hop_name = format!("{}:{}", hop.host, hop.port);
            let _ = events.send(ConnectionState::Connecting { hop: hop_name });
            let handler = ClientHandler::new(hop, ctx, events.clone(), remote_forwards.clone());
            let config = Arc::new(russh_config(hop, &handler.known_hosts));
            let timeout = hop
                .connect_timeout
                .map(|secs| Duration::from_secs(u64::from(secs)))
                .unwrap_or(ctx.options.connect_timeout);
            let timed_out = || SshError::Timeout {
                host: hop.host.clone(),
                port: hop.port,
                secs: timeout.as_secs(),
            };
            let proxy = match (i, hop.expanded_proxy_command()) {
                (0, Some(Ok(command))) => Some(command),
                (0, Some(Err(message))) => {
                    return Err(SshError::ProxyCommand {
                        command: hop.proxy_command.clone().unwrap_or_default(),
                        message: format!("it cannot be expanded: {message}"),
                        stderr: "(not started)".into(),
                    });
                }
                _ => None,
            };
            let handle = match (jumps.last(), proxy) {
                (None, Some(command)) => {
                    let (stream, witness) = proxy::spawn(&command)?;
                    match tokio::time::timeout(
                        timeout,
                        client::connect_stream(config, stream, handler),
                    )
                    .await
                    {
                        Ok(Ok(handle)) => handle,
                        Ok(Err(e)) => {
                            return Err(witness
                                .error(&format!("the SSH handshake over it failed ({e})"))
                                .await);
                        }
                        Err(_) => {
                            return Err(witness
                                .error(&format!(
                                    "no SSH handshake over it within {} s",
                                    timeout.as_secs()
                                ))
                                .await);
                        }
                    }
                }
                (None, None) => {
                    let tcp = tokio::time::timeout(
                        timeout,
                        TcpStream::connect((hop.host.as_str(), hop.port)),
                    )
                    .await
                    .map_err(|_| timed_out())?
                    .map_err(|source| SshError::Unreachable {
                        host: hop.host.clone(),
                        port: hop.port,
                        source,
                    })?;
                    tcp.set_nodelay(true)
                        .map_err(|e| SshError::Protocol(e.to_string()))?;
                    let tcp = socket::wrap(tcp);
                    tokio::time::timeout(timeout, client::connect_stream(config, tcp, handler))
                        .await
                        .map_err(|_| timed_out())?
                        .map_err(|e| e.at_hop(hop))?
                }
                (Some(jump), _) => {
                    // The jump host may hang on the way to the next hop (a firewall that drops
                    // packets): opening the channel shares the connect time limit.
                    let channel = tokio::time::timeout(
                        timeout,
                        jump.channel_open_direct_tcpip(
                            hop.host.clone(),
                            u32::from(hop.port),
                            "127.0.0.1",
                            0,
                        ),
                    )
                    .await
                    .map_err(|_| timed_out())?
                    .map_err(|e| SshError::ChannelRefused {
                        what: format!("a jump to {}:{}", hop.host, hop.port),
                        message: e.to_string(),
                    })?;
                    tokio::time::timeout(
                        timeout,
                        client::connect_stream(config, channel.into_stream(), handler),
                    )
                    .await
                    .map_err(|_| timed_out())?
                    .map_err(|e| e.at_hop(hop))?
                }
            };
            let mut handle = handle;
            auth::authenticate(&mut handle, hop, ctx, &events).await?;
            let _ = events.send(ConnectionState::Authenticated {
                destination: destination(hop),
            });
            if is_target {
                return Ok(Connection {
                    inner: Arc::new(Inner {
                        handle,
                        _jumps: jumps,
                        destination: destination(target),
                        events,
                        remote_forwards,
                        forwarding: tokio::sync::OnceCell::new(),
                    }),
                });
            }
            jumps.push(handle);
        }
        Err(SshError::Protocol("no host to connect to".into()))
    }

    /// `user@host[:port]` of the target.
    pub fn destination(&self) -> &str {
        &self.inner.destination
    }

    /// State changes from now on (including `Disconnected`).
    pub fn events(&self) -> broadcast::Receiver<ConnectionState> {
        self.inner.events.subscribe()
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.inner.handle.is_closed()
    }

    /// Whether `other` is a handle to this very connection.
    pub fn is_same(&self, other: &Connection) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Closes the session (and with it every channel and forward). Gives up after 2 s: a
    /// connection whose network is gone may never take the goodbye.
    pub async fn close(&self) {
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            self.inner
                .handle
                .disconnect(russh::Disconnect::ByApplication, "bye", "en"),
        )
        .await;
    }

    /// Resolves when the session has ended, with why. Besides the handler's `Disconnected`
    /// event this polls [`Connection::is_closed`], because russh does not call the handler on
    /// every way a session ends (e.g. when shutting down an already reset socket fails).
    pub async fn closed(&self) -> String {
        let mut events = self.events();
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Ok(ConnectionState::Disconnected { reason }) => return reason,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    // The sender lives in `Inner`, which `self` holds: this cannot happen, but
                    // if it does, the poll below still notices the end.
                    Err(broadcast::error::RecvError::Closed) => {
                        events = self.events();
                    }
                },
                _ = tick.tick() => {
                    if self.is_closed() {
                        return "the connection closed".to_string();
                    }
                }
            }
        }
    }

    /// Whether the server answers a keepalive within `timeout` (for "is this connection still
    /// good?" after the computer woke up or the network changed).
    pub async fn ping(&self, timeout: Duration) -> bool {
        // `send_ping` also returns when the session ends without a reply: look again after.
        !self.is_closed()
            && matches!(
                tokio::time::timeout(timeout, self.inner.handle.send_ping()).await,
                Ok(Ok(()))
            )
            && !self.is_closed()
    }

    /// The remote-forward routing table shared with the session's handler.
    pub fn remote_forwards(&self) -> &RemoteForwards {
        &self.inner.remote_forwards
    }

    /// The russh handle, for channel-level work in sibling modules.
    #[allow(dead_code)] // for `tunnel`, which is being written on its own branch
    pub(crate) fn handle(&self) -> &client::Handle<ClientHandler> {
        &self.inner.handle
    }

    /// Runs the POSIX `command` in the user's login environment, whatever their login shell
    /// (so PATH from `.profile`/`.cshrc`/`config.fish`, venvs and modules apply; see
    /// [`login`]), and collects its output, within [`ExecLimits::standard`].
    ///
    /// # Errors
    /// [`SshError::NotRun`] when the login shell did not run it, [`SshError::CommandTimedOut`] /
    /// [`SshError::OutputTooLarge`] past the limits, channel and connection errors.
    pub async fn exec(&self, command: &str) -> Result<Output, SshError> {
        self.exec_with_stdin(command, &[]).await
    }

    /// Like [`Connection::exec`], writing `stdin` to the command first (then EOF). This is how
    /// secrets reach remote programs without appearing on a command line.
    pub async fn exec_with_stdin(&self, command: &str, stdin: &[u8]) -> Result<Output, SshError> {
        self.exec_limited(command, stdin, ExecLimits::standard())
            .await
    }

    /// Like [`Connection::exec`], calling the command `name` in messages (e.g. `nvidia-smi`)
    /// instead of its first line.
    pub async fn exec_named(&self, name: &str, command: &str) -> Result<Output, SshError> {
        let out = self
            .run(
                &login::login_shell(command),
                name,
                &[],
                None,
                ExecLimits::standard(),
            )
            .await?;
        login::finish(out, &self.inner.destination)
    }

    /// Like [`Connection::exec_with_stdin`] with other limits (e.g. a user's own command).
    pub async fn exec_limited(
        &self,
        command: &str,
        stdin: &[u8],
        limits: ExecLimits,
    ) -> Result<Output, SshError> {
        let out = self
            .run(&login::login_shell(command), command, stdin, None, limits)
            .await?;
        login::finish(out, &self.inner.destination)
    }

    /// Runs `command` exactly as given (parsed by the server's `$SHELL -c`, so it must suit the
    /// user's shell), without a login shell, within [`ExecLimits::standard`].
    pub async fn exec_raw(&self, command: &str, stdin: &[u8]) -> Result<Output, SshError> {
        self.run(command, command, stdin, None, ExecLimits::standard())
            .await
    }

    /// Like [`Connection::exec`], sending every line of stdout and stderr to `lines` as it
    /// arrives (for progress displays, e.g. `pip install`), and returning the whole output at the
    /// end, within [`ExecLimits::LONG`]. A closed `lines` receiver does not stop the command.
    pub async fn exec_lines(
        &self,
        command: &str,
        lines: tokio::sync::mpsc::UnboundedSender<String>,
    ) -> Result<Output, SshError> {
        let out = self
            .run(
                &login::login_shell(command),
                command,
                &[],
                Some(&lines),
                ExecLimits::LONG,
            )
            .await?;
        login::finish(out, &self.inner.destination)
    }

    /// Runs `command` on a new session channel: writes `stdin` then EOF, collects the output,
    /// and, when `lines` is given, also sends each complete stdout/stderr line after the login
    /// preamble as it arrives. Past `limits` the command is signalled and its channel closed;
    /// `name` is what the error calls it.
    async fn run(
        &self,
        command: &str,
        name: &str,
        stdin: &[u8],
        lines: Option<&tokio::sync::mpsc::UnboundedSender<String>>,
        limits: ExecLimits,
    ) -> Result<Output, SshError> {
        let deadline = limits.timeout.map(|t| tokio::time::Instant::now() + t);
        let open = async {
            let channel = self
                .inner
                .handle
                .channel_open_session()
                .await
                .map_err(|e| self.channel_error("a command channel", e))?;
            channel.exec(true, command.as_bytes()).await?;
            Ok::<_, SshError>(channel)
        };
        let mut channel = match deadline {
            Some(at) => tokio::time::timeout_at(at, open)
                .await
                .map_err(|_| self.timed_out(name, limits))??,
            None => open.await?,
        };
        let mut out = Output::default();
        let body = async {
            if !stdin.is_empty() {
                let mut writer = channel.make_writer();
                writer
                    .write_all(stdin)
                    .await
                    .map_err(|e| SshError::Protocol(e.to_string()))?;
                writer
                    .flush()
                    .await
                    .map_err(|e| SshError::Protocol(e.to_string()))?;
            }
            channel.eof().await?;
            // Partial lines of stdout (0) and stderr (1) until their newline arrives.
            let mut pending: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
            let mut preamble = login::Preamble::default();
            let mut feed = |which: usize, data: &[u8]| {
                let Some(lines) = lines else { return };
                pending[which].extend_from_slice(data);
                while let Some(nl) = pending[which].iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = pending[which].drain(..=nl).collect();
                    let text = String::from_utf8_lossy(&line[..nl]);
                    let text = text.trim_end_matches('\r');
                    if preamble.keep(which, text) {
                        let _ = lines.send(text.to_string());
                    }
                }
            };
            while let Some(msg) = channel.wait().await {
                match msg {
                    ChannelMsg::Data { data } => {
                        out.stdout.extend_from_slice(&data);
                        feed(0, &data);
                    }
                    ChannelMsg::ExtendedData { data, ext: 1 } => {
                        out.stderr.extend_from_slice(&data);
                        feed(1, &data);
                    }
                    ChannelMsg::ExitStatus { exit_status } => out.status = Some(exit_status),
                    ChannelMsg::ExitSignal { signal_name, .. } => {
                        out.signal = Some(format!("{signal_name:?}"));
                    }
                    _ => {}
                }
                if out.stdout.len() + out.stderr.len() > limits.max_output {
                    return Err(SshError::OutputTooLarge {
                        command: short_name(name),
                        destination: self.inner.destination.clone(),
                        limit_kib: limits.max_output / 1024,
                    });
                }
            }
            if let Some(lines) = lines {
                for (which, rest) in pending.iter().enumerate() {
                    if rest.is_empty() {
                        continue;
                    }
                    let text = String::from_utf8_lossy(rest).trim_end().to_string();
                    if preamble.keep(which, &text) {
                        let _ = lines.send(text);
                    }
                }
            }
            Ok(())
        };
        let result = match deadline {
            Some(at) => tokio::time::timeout_at(at, body)
                .await
                .unwrap_or_else(|_| Err(self.timed_out(name, limits))),
            None => body.await,
        };
        if let Err(e) = result {
            // Stop the command where sshd lets us (the login wrapper ends its whole process
            // group on TERM), and free the channel either way.
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                let _ = channel.signal(russh::Sig::TERM).await;
                let _ = channel.close().await;
            })
            .await;
            return Err(e);
        }
        Ok(out)
    }

    fn timed_out(&self, name: &str, limits: ExecLimits) -> SshError {
        SshError::CommandTimedOut {
            command: short_name(name),
            destination: self.inner.destination.clone(),
            secs: limits.timeout.map_or(0, |t| t.as_secs()),
        }
    }

    /// Whether the server allows `direct-streamlocal` channels (forwards to Unix sockets), as
    /// [`Connection::forwarding`] found out; `true` when it could not be told.
    pub async fn streamlocal_allowed(&self) -> bool {
        self.forwarding().await.streamlocal != Some(false)
    }

    fn channel_error(&self, what: &str, e: russh::Error) -> SshError {
        if self.is_closed() {
            SshError::Closed(self.inner.destination.clone())
        } else {
            SshError::ChannelRefused {
                what: what.to_string(),
                message: e.to_string(),
            }
        }
    }
}

pub use self::login::login_shell;

/// Quotes `s` as one POSIX shell word.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::Algorithm;

    /// OpenSSH's `+`, `-` and `^` forms choose and order the host key types asked for;
    /// certificate names allow certificates of their base type; a list of types Tunnelbook
    /// does not implement is refused with the value in the message.
    #[test]
    fn host_key_algorithms_follow_openssh_forms() {
        let names = |spec: &str| -> Vec<String> {
            host_key_algorithms(spec)
                .unwrap()
                .0
                .iter()
                .map(|a| a.to_string())
                .collect()
        };
        assert!(names("+ssh-rsa").contains(&"ssh-rsa".to_string()));
        assert!(!names("-ssh-ed25519*").contains(&"ssh-ed25519".to_string()));
        assert_eq!(names("^ssh-rsa")[0], "ssh-rsa");
        assert_eq!(
            names("rsa-sha2-512,ssh-ed25519"),
            ["rsa-sha2-512", "ssh-ed25519"]
        );
        let (plain, certs) = host_key_algorithms("ssh-ed25519-cert-v01@openssh.com").unwrap();
        assert!(plain.is_empty());
        assert_eq!(certs, [Algorithm::Ed25519]);
        let err = host_key_algorithms("ssh-dss").unwrap_err();
        assert!(
            err.contains("\"ssh-dss\"") && err.contains("ssh-ed25519"),
            "{err}"
        );
    }

    /// A configured HostKeyAlgorithms is what the connection asks for, with the types
    /// known_hosts lists for the host moved first; unset, the default list is used.
    #[test]
    fn russh_config_asks_for_the_configured_host_key_types_known_first() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kh");
        std::fs::write(
            &file,
            "[box]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n",
        )
        .unwrap();
        let kh = KnownHosts::with_files(dir.path().join("own"), vec![file]);
        let mut profile = Profile {
            host: "box".into(),
            port: 2222,
            host_key_algorithms: Some("rsa-sha2-512,ecdsa-sha2-nistp256,ssh-ed25519".into()),
            ..Profile::default()
        };
        let config = russh_config(&profile, &kh);
        let asked: Vec<String> = config.preferred.key.iter().map(|a| a.to_string()).collect();
        assert_eq!(
            asked,
            ["ssh-ed25519", "rsa-sha2-512", "ecdsa-sha2-nistp256"]
        );
        profile.host_key_algorithms = None;
        let config = russh_config(&profile, &kh);
        assert_eq!(
            config.preferred.key.len(),
            russh::Preferred::default().key.len()
        );
    }

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
