//! Tunnels: local listeners whose connections are forwarded over one SSH connection, remote
//! forwards and SOCKS, and the user's saved forwarding rules.
//!
//! Owns the listening, the per-connection copying and the counters. Leaves out how the SSH
//! connection is made ([`crate::ssh`]) and what runs behind the tunnel ([`crate::jupyter`]).

mod copy;
mod link;
mod socks;
mod spec;

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use russh::{Channel, client::Msg};
use serde::{Deserialize, Serialize};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::mpsc,
};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

pub use self::link::Link;
pub use crate::profile::{ForwardRule, ForwardSpec};
use crate::ssh::{Connection, SshError};

/// Errors of a tunnel.
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    /// The requested local port is taken.
    #[error(
        "local port {port} on {bind} is already in use. Stop what uses it, or choose another port \
         (0 picks a free one)."
    )]
    PortInUse {
        /// Bind address.
        bind: IpAddr,
        /// The port.
        port: u16,
    },
    /// The local listener could not be opened.
    #[error("cannot listen on {bind}:{port}: {source}")]
    Listen {
        /// Bind address.
        bind: IpAddr,
        /// The port.
        port: u16,
        /// The OS error.
        source: std::io::Error,
    },
    /// A forward spec that cannot be parsed.
    #[error("invalid forward \"{spec}\": {message}")]
    Spec {
        /// What was given.
        spec: String,
        /// What is wrong, with the expected shape.
        message: String,
    },
    /// The server refused a remote forward.
    #[error("the server refused to listen on {bind}:{port} for a remote forward: {message}")]
    RemoteRefused {
        /// Address on the server.
        bind: String,
        /// Port on the server.
        port: u16,
        /// The server's reason.
        message: String,
    },
    /// The connection failed.
    #[error(transparent)]
    Ssh(#[from] SshError),
}

/// Where forwarded connections go on the server's side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Target {
    /// A TCP `host:port` as seen from the server (direct-tcpip).
    Tcp {
        /// Host name or address, resolved by the server.
        host: String,
        /// Port.
        port: u16,
    },
    /// A Unix socket path on the server (direct-streamlocal).
    UnixSocket {
        /// Absolute path on the server.
        path: String,
    },
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Tcp { host, port } => write!(f, "{host}:{port}"),
            Target::UnixSocket { path } => write!(f, "unix:{path}"),
        }
    }
}

/// Where a local forward listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen {
    /// Address to bind; loopback unless the user explicitly asks otherwise.
    pub bind: IpAddr,
    /// Port; 0 picks a free one.
    pub port: u16,
    /// When true, a taken `port` silently falls back to a free one instead of failing.
    pub port_is_preference: bool,
}

impl Listen {
    /// 127.0.0.1 on a free port.
    pub fn loopback_any() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            port_is_preference: false,
        }
    }

    /// 127.0.0.1 on exactly `port`.
    pub fn loopback(port: u16) -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port,
            port_is_preference: false,
        }
    }
}

/// Live counters of a tunnel.
#[derive(Debug, Default)]
pub struct Counters {
    open: AtomicU64,
    total: AtomicU64,
    up: AtomicU64,
    down: AtomicU64,
}

/// A snapshot of a tunnel's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TunnelStats {
    /// Connections being forwarded now.
    pub open_connections: u64,
    /// Connections forwarded since the tunnel opened.
    pub total_connections: u64,
    /// Bytes sent towards the server's side.
    pub bytes_up: u64,
    /// Bytes received from the server's side.
    pub bytes_down: u64,
}

impl Counters {
    fn snapshot(&self) -> TunnelStats {
        TunnelStats {
            open_connections: self.open.load(Ordering::Relaxed),
            total_connections: self.total.load(Ordering::Relaxed),
            bytes_up: self.up.load(Ordering::Relaxed),
            bytes_down: self.down.load(Ordering::Relaxed),
        }
    }
}

/// Decrements the open-connection count when a forwarded connection ends, however it ends.
struct OpenGuard(Arc<Counters>);

impl OpenGuard {
    fn new(counters: &Arc<Counters>) -> Self {
        counters.open.fetch_add(1, Ordering::Relaxed);
        counters.total.fetch_add(1, Ordering::Relaxed);
        Self(counters.clone())
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A running forward. Dropping it (or [`Tunnel::close`]) stops the listener and closes every
/// forwarded connection.
pub struct Tunnel {
    local_addr: Option<SocketAddr>,
    remote_port: Option<u16>,
    description: String,
    counters: Arc<Counters>,
    stop: CancellationToken,
    cleanup: Option<RemoteCleanup>,
    /// Where a local forward's new connections go (swappable: see [`Tunnel::retarget`]).
    target: Option<Arc<RwLock<Target>>>,
}

struct RemoteCleanup {
    conn: Connection,
    bind: String,
    port: u32,
}

impl fmt::Debug for Tunnel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.description)
    }
}

impl Tunnel {
    /// Listens on `listen` and forwards each accepted connection as its own channel to `target`.
    pub async fn local(
        conn: &Connection,
        listen: Listen,
        target: Target,
    ) -> Result<Tunnel, TunnelError> {
        Tunnel::local_over(&Link::fixed(conn), listen, target).await
    }

    /// Like [`Tunnel::local`], over whatever connection `link` holds when a local connection
    /// arrives: the listener outlives the connection, so the local port survives a reconnect.
    pub async fn local_over(
        link: &Link,
        listen: Listen,
        target: Target,
    ) -> Result<Tunnel, TunnelError> {
        let (listener, local_addr) = bind(listen).await?;
        let description = format!("{local_addr} -> {target}");
        let mut tunnel = Tunnel::new(Some(local_addr), description, None);
        let target = Arc::new(RwLock::new(target));
        tunnel.target = Some(target.clone());
        let (link, counters, stop) = (link.clone(), tunnel.counters.clone(), tunnel.stop.clone());
        tokio::spawn(accept_loop(listener, stop, move |tcp, peer| {
            let (link, target, counters) = (link.clone(), target.clone(), counters.clone());
            async move {
                // Dropping `tcp` closes the local connection: the client sees it refused.
                let Some(conn) = link.get().await else {
                    debug!(%peer, "no connection to forward over; local connection closed");
                    return;
                };
                let Some(target) = target.read().ok().map(|t| t.clone()) else {
                    return;
                };
                forward_local(conn, tcp, peer, &target, counters).await
            }
        }));
        Ok(tunnel)
    }

    /// A SOCKS5 proxy on `listen` whose connections leave from the server (`ssh -D`).
    pub async fn dynamic(conn: &Connection, listen: Listen) -> Result<Tunnel, TunnelError> {
        Tunnel::dynamic_over(&Link::fixed(conn), listen).await
    }

    /// Like [`Tunnel::dynamic`], over whatever connection `link` holds (see
    /// [`Tunnel::local_over`]).
    pub async fn dynamic_over(link: &Link, listen: Listen) -> Result<Tunnel, TunnelError> {
        let (listener, local_addr) = bind(listen).await?;
        let tunnel = Tunnel::new(Some(local_addr), format!("{local_addr} -> SOCKS5"), None);
        let (link, counters, stop) = (link.clone(), tunnel.counters.clone(), tunnel.stop.clone());
        tokio::spawn(accept_loop(listener, stop, move |tcp, _peer| {
            let (link, counters) = (link.clone(), counters.clone());
            async move {
                if let Some(conn) = link.get().await {
                    socks::serve(conn, tcp, counters).await;
                }
            }
        }));
        Ok(tunnel)
    }

    /// Sends a local forward's new connections to `target` from now on (connections already
    /// forwarded keep theirs). Used when the server behind the tunnel was started again and
    /// listens somewhere else, so the local port stays the same. No effect on other kinds.
    pub fn retarget(&self, target: Target) {
        if let Some(slot) = &self.target
            && let Ok(mut t) = slot.write()
        {
            *t = target;
        }
    }

    /// Asks the server to listen on `bind:port` (`ssh -R`); its connections come back over the
    /// connection and go to `host:host_port` from this computer. Port 0 lets the server choose.
    pub async fn remote(
        conn: &Connection,
        bind: &str,
        port: u16,
        host: &str,
        host_port: u16,
    ) -> Result<Tunnel, TunnelError> {
        let (tx, mut rx) = mpsc::channel::<Channel<Msg>>(64);
        let allocated = conn
            .handle()
            .tcpip_forward(bind, u32::from(port))
            .await
            .map_err(|e| TunnelError::RemoteRefused {
                bind: bind.into(),
                port,
                message: e.to_string(),
            })?;
        // Port 0 asks the server to choose; it reports the one it took.
        let remote_port = if port == 0 {
            allocated
        } else {
            u32::from(port)
        };
        conn.remote_forwards().insert(bind, remote_port, tx);
        let description = format!("server {bind}:{remote_port} -> {host}:{host_port}");
        let mut tunnel = Tunnel::new(
            None,
            description,
            Some(RemoteCleanup {
                conn: conn.clone(),
                bind: bind.to_string(),
                port: remote_port,
            }),
        );
        tunnel.remote_port = u16::try_from(remote_port).ok();
        let (counters, stop) = (tunnel.counters.clone(), tunnel.stop.clone());
        let (host, host_port) = (host.to_string(), host_port);
        tokio::spawn(async move {
            loop {
                let channel = tokio::select! {
                    () = stop.cancelled() => break,
                    c = rx.recv() => match c { Some(c) => c, None => break },
                };
                let (counters, stop, host) = (counters.clone(), stop.clone(), host.clone());
                tokio::spawn(async move {
                    let _open = OpenGuard::new(&counters);
                    match TcpStream::connect((host.as_str(), host_port)).await {
                        Ok(tcp) => {
                            let _ = tcp.set_nodelay(true);
                            tokio::select! {
                                () = stop.cancelled() => {}
                                _ = copy::bidirectional(tcp, channel, &counters) => {}
                            }
                        }
                        Err(e) => {
                            debug!(%host, host_port, error = %e, "remote forward target refused")
                        }
                    }
                });
            }
        });
        Ok(tunnel)
    }

    fn new(
        local_addr: Option<SocketAddr>,
        description: String,
        cleanup: Option<RemoteCleanup>,
    ) -> Tunnel {
        Tunnel {
            local_addr,
            remote_port: None,
            description,
            counters: Arc::new(Counters::default()),
            stop: CancellationToken::new(),
            cleanup,
            target: None,
        }
    }

    /// The local address being listened on (`None` for a remote forward).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// The port the server listens on, for a remote forward.
    pub fn remote_port(&self) -> Option<u16> {
        self.remote_port
    }

    /// What this tunnel forwards, for display.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Live counters.
    pub fn stats(&self) -> TunnelStats {
        self.counters.snapshot()
    }

    /// Stops listening and closes every forwarded connection (and, for a remote forward, asks
    /// the server to stop listening).
    pub async fn close(mut self) {
        self.stop.cancel();
        if let Some(c) = self.cleanup.take() {
            c.conn.remote_forwards().remove(&c.bind, c.port);
            let _ = c
                .conn
                .handle()
                .cancel_tcpip_forward(c.bind.as_str(), c.port)
                .await;
        }
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(c) = &self.cleanup {
            c.conn.remote_forwards().remove(&c.bind, c.port);
        }
    }
}

/// Binds the local listener (falling back to a free port when the port was only preferred) and
/// reports the address actually bound.
async fn bind(listen: Listen) -> Result<(TcpListener, SocketAddr), TunnelError> {
    let listener = bind_listener(listen).await?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| TunnelError::Listen {
            bind: listen.bind,
            port: listen.port,
            source,
        })?;
    Ok((listener, local_addr))
}

async fn bind_listener(listen: Listen) -> Result<TcpListener, TunnelError> {
    match TcpListener::bind((listen.bind, listen.port)).await {
        Ok(l) => Ok(l),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && listen.port_is_preference => {
            debug!(port = listen.port, "preferred port taken, using a free one");
            TcpListener::bind((listen.bind, 0))
                .await
                .map_err(|source| TunnelError::Listen {
                    bind: listen.bind,
                    port: 0,
                    source,
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(TunnelError::PortInUse {
            bind: listen.bind,
            port: listen.port,
        }),
        Err(source) => Err(TunnelError::Listen {
            bind: listen.bind,
            port: listen.port,
            source,
        }),
    }
}

async fn accept_loop<F, Fut>(listener: TcpListener, stop: CancellationToken, serve: F)
where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let _ = tcp.set_nodelay(true);
                let work = serve(tcp, peer);
                let stop = stop.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        () = stop.cancelled() => {}
                        () = work => {}
                    }
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn forward_local(
    conn: Connection,
    tcp: TcpStream,
    peer: SocketAddr,
    target: &Target,
    counters: Arc<Counters>,
) {
    let _open = OpenGuard::new(&counters);
    let channel = match target {
        Target::Tcp { host, port } => {
            conn.handle()
                .channel_open_direct_tcpip(
                    host.as_str(),
                    u32::from(*port),
                    peer.ip().to_string(),
                    u32::from(peer.port()),
                )
                .await
        }
        // Relayed over an exec channel where the server forbids forwarding to sockets.
        Target::UnixSocket { path } => conn
            .open_unix_socket(path)
            .await
            .map_err(|e| russh::Error::IO(std::io::Error::other(e.to_string()))),
    };
    match channel {
        // Dropping `tcp` on failure closes the local connection: the client sees it refused.
        // A refusal by the server's policy is said the way OpenSSH says it.
        Err(russh::Error::ChannelOpenFailure(
            russh::ChannelOpenFailure::AdministrativelyProhibited,
        )) => {
            tracing::warn!(
                "channel open failed: administratively prohibited: open failed (forwarding to {target}; the server's AllowTcpForwarding / PermitOpen forbids it)"
            );
        }
        Err(e) => debug!(%target, error = %e, "the server could not reach the target"),
        Ok(channel) => {
            if let Err(e) = copy::bidirectional(tcp, channel, &counters).await {
                debug!(%target, error = %e, "forwarded connection ended with an error");
            }
        }
    }
}
