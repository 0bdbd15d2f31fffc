//! One SSH connection to a host: connect (through jump hosts), verify the host key,
//! authenticate, keep alive, run commands, open channels.
//!
//! A [`Connection`] is a cheap-to-clone handle; russh's session task owns the socket and every
//! channel runs concurrently over it, so a password or OTP is asked once per connection, not per
//! action. What this module leaves out: forwarding listeners ([`crate::tunnel`]), reconnect
//! policy ([`crate::host`]), and where profiles come from ([`crate::profile`]).

mod auth;
mod error;
mod exec;
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

use std::{fmt, sync::Arc, time::Duration};

use russh::client;
use serde::Serialize;
use tokio::{net::TcpStream, sync::broadcast};

use self::handler::ClientHandler;
pub use self::subsystem::SubsystemStream;
pub use self::{
    error::SshError,
    exec::{ExecLimits, Output},
};
pub use self::{
    forwarding::Forwarding,
    handler::RemoteForwards,
    known_hosts::{HostKeyStatus, KnownHosts, fingerprint, lookup_name},
    prompt::{
        HostKeyPolicy, HostKeyQuestion, KbdPrompt, KbdRound, NoPrompter, Prompter, SecretAnswer,
        SecretQuestion,
    },
    shell::{Pty, PtySpec, Shell, ShellEvent, ShellExit, ShellInput, ShellOutput, ShellSpec},
};
pub use crate::profile::{host_key_algorithms, login_user};
use crate::{profile::Profile, secret::SecretStore};

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
    /// The target socket's ACK after each read ([`socket::wrap`]); unused over a jump host or a
    /// `ProxyCommand`.
    prompt_ack: Arc<std::sync::atomic::AtomicBool>,
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
            let prompt_ack = socket::prompt_ack_switch();
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
                    let tcp = socket::wrap(tcp, Arc::clone(&prompt_ack));
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
                        prompt_ack,
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
