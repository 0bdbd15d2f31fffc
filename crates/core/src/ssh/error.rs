//! [`SshError`]: what can go wrong on a connection, in words a person can act on.

use std::path::PathBuf;

use super::known_hosts;
use crate::profile::Profile;

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
    pub(super) fn at_hop(self, hop: &Profile) -> SshError {
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
