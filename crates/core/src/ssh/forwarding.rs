//! What the server lets a connection forward, and a way around a server that forbids it.
//!
//! OpenSSH answers a forbidden `direct-tcpip` with "administratively prohibited" but a forbidden
//! `direct-streamlocal` (`AllowStreamLocalForwarding no`, or `AllowTcpForwarding no`, which
//! covers Unix sockets too) with "connect failed" — the same answer as for a socket that does not
//! exist. So the Unix-socket probe asks for a socket that certainly exists: one a short Python
//! program on the host has just bound (and removes again). Where neither kind of forwarding is
//! allowed, a connection to a Unix socket is relayed over an exec channel instead: the same
//! Python copies between the channel's stdin/stdout and the socket (nothing is installed).

use std::time::Duration;

use russh::{ChannelMsg, client::Msg};
use serde::Serialize;

use super::{Connection, SshError, login, shell_quote};

/// The server's forwarding policy for this connection, as probed (see [`Connection::forwarding`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Forwarding {
    /// Whether `direct-tcpip` (`ssh -L port:host:port`) is allowed (`AllowTcpForwarding`,
    /// `PermitOpen`).
    pub tcp: bool,
    /// Whether `direct-streamlocal` (`ssh -L port:/path.sock`) is allowed
    /// (`AllowStreamLocalForwarding`, `AllowTcpForwarding`); `None` when it could not be told
    /// (no Python on the host to make a probe socket with).
    pub streamlocal: Option<bool>,
    /// An absolute Python interpreter on the host that can relay connections over an exec
    /// channel; `None` when there is none.
    pub relay_python: Option<String>,
}

impl Forwarding {
    /// A sentence for messages: what is forbidden and which `sshd_config` setting does it.
    pub fn describe(&self) -> String {
        match (self.tcp, self.streamlocal) {
            (true, Some(false)) => "the server forbids forwarding to Unix sockets \
                 (sshd_config: AllowStreamLocalForwarding no, or AllowTcpForwarding no)"
                .into(),
            (false, Some(false)) => "the server forbids port forwarding \
                 (sshd_config: AllowTcpForwarding no / AllowStreamLocalForwarding no / PermitOpen none / DisableForwarding yes)"
                .into(),
            (false, _) => "the server forbids TCP port forwarding \
                 (sshd_config: AllowTcpForwarding no or PermitOpen none)"
                .into(),
            (true, _) => "the server allows port forwarding".into(),
        }
    }
}

/// Listens on a fresh Unix socket in the runtime directory, prints `tb_probe PYTHON PATH`, waits
/// up to 5 s for one connection, then removes the socket (also when ended by TERM or HUP; the
/// next probe removes sockets older than a minute that a KILL left behind).
const PROBE_PY: &str = r#"import os, socket, sys
p = sys.argv[1]
try:
    os.unlink(p)
except OSError:
    pass
s = socket.socket(socket.AF_UNIX)
s.bind(p)
s.listen(1)
s.settimeout(5)
import signal
def gone(*_):
    try:
        os.unlink(p)
    finally:
        os._exit(0)
signal.signal(signal.SIGTERM, gone)
signal.signal(signal.SIGHUP, gone)
print("tb_probe", sys.executable, p, sep="\t", flush=True)
try:
    s.accept()
except OSError:
    pass
os.unlink(p)
"#;

/// Connects to `sys.argv[1]` (a Unix socket path) and copies stdin to it and it to stdout,
/// printing [`login::BEGIN`] first so whatever the user's shell printed before can be skipped.
const RELAY_PY: &str = r#"import os, socket, sys, threading
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
out = sys.stdout.buffer
out.write(sys.argv[2].encode() + b"\n")
out.flush()
def up():
    try:
        while True:
            b = os.read(0, 65536)
            if not b:
                break
            s.sendall(b)
    finally:
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
threading.Thread(target=up, daemon=True).start()
while True:
    b = s.recv(65536)
    if not b:
        break
    out.write(b)
    out.flush()
"#;

fn probe_script() -> String {
    format!(
        "umask 077\n\
         tb_d=$HOME/.tunnelbook/run\n\
         mkdir -p \"$tb_d\" 2>/dev/null && chmod 700 \"$HOME/.tunnelbook\" \"$tb_d\" 2>/dev/null\n\
         find \"$tb_d\" -maxdepth 1 -name 'probe-*.sock' -mmin +1 -exec rm -f {{}} + 2>/dev/null\n\
         tb_p=$tb_d/probe-$$.sock\n\
         if [ ${{#tb_p}} -gt 100 ]; then tb_p=${{TMPDIR:-/tmp}}/tb-probe-$(id -u)-$$.sock; fi\n\
         for tb_py in python3 /usr/bin/python3 python; do\n\
         if command -v \"$tb_py\" >/dev/null 2>&1; then exec \"$tb_py\" -c {} \"$tb_p\"; fi\n\
         done\n\
         echo tb_probe_none\n",
        shell_quote(PROBE_PY)
    )
}

impl Connection {
    /// The server's forwarding policy, probed once per connection (within about 2 s; later
    /// calls return the same answer at once).
    pub async fn forwarding(&self) -> Forwarding {
        self.inner
            .forwarding
            .get_or_init(|| async {
                let (tcp, (streamlocal, relay_python)) =
                    tokio::join!(self.probe_tcp(), self.probe_streamlocal());
                let found = Forwarding {
                    tcp,
                    streamlocal,
                    relay_python,
                };
                tracing::debug!(destination = %self.inner.destination, ?found, "forwarding policy");
                found
            })
            .await
            .clone()
    }

    /// The policy when it is known already (probed by [`Connection::forwarding`], which a
    /// [`crate::host::HostSession`] starts as soon as it connects); `None` while the probe runs.
    pub fn forwarding_known(&self) -> Option<Forwarding> {
        self.inner.forwarding.get().cloned()
    }

    /// `direct-tcpip` to a port nothing should listen on: "administratively prohibited" means
    /// forbidden, "connect failed" (or a connection) means allowed.
    async fn probe_tcp(&self) -> bool {
        let open = self
            .inner
            .handle
            .channel_open_direct_tcpip("127.0.0.1", 9, "127.0.0.1", 0);
        match tokio::time::timeout(Duration::from_secs(3), open).await {
            Ok(Ok(channel)) => {
                let _ = channel.close().await;
                true
            }
            Ok(Err(russh::Error::ChannelOpenFailure(reason))) => !matches!(
                reason,
                russh::ChannelOpenFailure::AdministrativelyProhibited
                    | russh::ChannelOpenFailure::UnknownChannelType
            ),
            Ok(Err(_)) | Err(_) => true,
        }
    }

    /// Binds a socket on the host with its Python and asks to forward to it.
    async fn probe_streamlocal(&self) -> (Option<bool>, Option<String>) {
        let work = async {
            let mut channel = self.inner.handle.channel_open_session().await.ok()?;
            channel
                .exec(true, login::login_shell(&probe_script()).as_bytes())
                .await
                .ok()?;
            channel.eof().await.ok()?;
            let mut stdout = Vec::new();
            let (python, path) = loop {
                match channel.wait().await? {
                    ChannelMsg::Data { data } => stdout.extend_from_slice(&data),
                    _ => continue,
                }
                let Some(start) = login::begin_at(&stdout) else {
                    continue;
                };
                let text = String::from_utf8_lossy(&stdout[start..]).into_owned();
                let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
                if complete.lines().any(|l| l == "tb_probe_none") {
                    return Some((None, None));
                }
                if let Some(line) = complete.lines().find(|l| l.starts_with("tb_probe\t")) {
                    let f: Vec<&str> = line.split('\t').collect();
                    if let (Some(py), Some(p)) = (f.get(1), f.get(2)) {
                        break (py.to_string(), p.to_string());
                    }
                }
            };
            let allowed = match self
                .inner
                .handle
                .channel_open_direct_streamlocal(path.as_str())
                .await
            {
                Ok(probe) => {
                    let _ = probe.close().await;
                    true
                }
                Err(_) => false,
            };
            // Let the probe end by itself (at once when it was reached, else after its 5 s),
            // so it removes its socket; closing the channel now would kill it first.
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(8), async {
                    while channel.wait().await.is_some() {}
                })
                .await;
                let _ = channel.close().await;
            });
            Some((Some(allowed), Some(python)))
        };
        tokio::time::timeout(Duration::from_secs(5), work)
            .await
            .ok()
            .flatten()
            .unwrap_or((None, None))
    }

    /// A channel to the Unix socket `path` on the host: `direct-streamlocal` where the server
    /// allows it, else a relay over an exec channel (see the module header).
    ///
    /// While the policy is not known yet the forward is simply tried first: most servers allow
    /// it, and probing starts Python on the host (a reattach would pay for it). Only a refusal
    /// — a forbidden forward or a missing socket, which OpenSSH answers alike — runs the probe.
    ///
    /// # Errors
    /// The server's refusal, or [`SshError::ChannelRefused`] naming the setting when forwarding
    /// is forbidden and the host has no Python to relay with.
    pub async fn open_unix_socket(&self, path: &str) -> Result<russh::Channel<Msg>, SshError> {
        if self.inner.forwarding.get().is_none() {
            match self
                .inner
                .handle
                .channel_open_direct_streamlocal(path)
                .await
            {
                Ok(channel) => return Ok(channel),
                Err(e) if self.forwarding().await.streamlocal != Some(false) => {
                    return Err(self.channel_error(&format!("a forward to {path}"), e));
                }
                Err(_) => {}
            }
        }
        let policy = self.forwarding().await;
        if policy.streamlocal != Some(false) {
            return self
                .inner
                .handle
                .channel_open_direct_streamlocal(path)
                .await
                .map_err(|e| self.channel_error(&format!("a forward to {path}"), e));
        }
        let Some(python) = policy.relay_python else {
            return Err(SshError::ChannelRefused {
                what: format!("a forward to {path}"),
                message: format!(
                    "{}, and there is no python3 on the host to relay through",
                    policy.describe()
                ),
            });
        };
        self.open_relay(&python, path).await
    }

    /// Starts [`RELAY_PY`] with `python` on an exec channel and returns the channel once the
    /// relay is connected (its [`login::BEGIN`] line read; nothing else is passed on before).
    async fn open_relay(&self, python: &str, path: &str) -> Result<russh::Channel<Msg>, SshError> {
        let refused = |message: String| SshError::ChannelRefused {
            what: format!("a relay to {path}"),
            message,
        };
        let mut channel = self
            .inner
            .handle
            .channel_open_session()
            .await
            .map_err(|e| self.channel_error("a relay channel", e))?;
        let script = format!(
            "exec {} -c {} {} {}",
            shell_quote(python),
            shell_quote(RELAY_PY),
            shell_quote(path),
            login::BEGIN
        );
        channel
            .exec(true, login::posix_command(&script).as_bytes())
            .await?;
        let mut seen = Vec::new();
        let mut stderr = Vec::new();
        let wait = async {
            loop {
                match channel.wait().await {
                    Some(ChannelMsg::Data { data }) => {
                        seen.extend_from_slice(&data);
                        if let Some(at) = login::begin_at(&seen) {
                            return if at == seen.len() {
                                Ok(())
                            } else {
                                Err("the relay sent data before the client spoke".to_string())
                            };
                        }
                    }
                    Some(ChannelMsg::ExtendedData { data, .. }) => stderr.extend_from_slice(&data),
                    Some(_) => {}
                    None => {
                        return Err(format!(
                            "the relay ended: {}",
                            String::from_utf8_lossy(&stderr).trim()
                        ));
                    }
                }
            }
        };
        match tokio::time::timeout(Duration::from_secs(10), wait).await {
            Ok(Ok(())) => Ok(channel),
            Ok(Err(message)) => Err(refused(message)),
            Err(_) => Err(refused("the relay did not start within 10 s".into())),
        }
    }
}
