//! A TCP proxy (in-process, tokio) between a client and a server that a test can break and mend:
//! cut every connection and refuse new ones, or silently stop forwarding (a black hole: nothing
//! is closed, nothing arrives), then restore — or abandon the connections open now for good (as
//! when a laptop wakes on another network) while new ones pass.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        TcpListener, TcpStream,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
    sync::watch,
    task::JoinHandle,
};

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forwards both ways.
    Pass,
    /// Closes every connection; new ones are closed as soon as they are accepted.
    Cut,
    /// Keeps every connection open but moves no byte (new ones are accepted and kept too).
    Blackhole,
}

/// A proxy on 127.0.0.1 forwarding to `127.0.0.1:target`. Stopped on drop.
pub struct Proxy {
    /// The port clients connect to.
    pub port: u16,
    mode: Arc<watch::Sender<Mode>>,
    /// The number the next accepted connection gets.
    next_id: Arc<AtomicU64>,
    /// Connections numbered below this are black-holed for good
    /// ([`Proxy::abandon_and_restore`]).
    abandoned_below: Arc<AtomicU64>,
    accept: JoinHandle<()>,
}

/// One proxied connection: its number and what it obeys.
#[derive(Clone)]
struct Rules {
    id: u64,
    mode: watch::Receiver<Mode>,
    abandoned_below: Arc<AtomicU64>,
}

impl Proxy {
    /// Starts forwarding to `127.0.0.1:target`.
    pub async fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(watch::Sender::new(Mode::Pass));
        let modes = mode.clone();
        let abandoned_below = Arc::new(AtomicU64::new(0));
        let abandoned = abandoned_below.clone();
        let next_id = Arc::new(AtomicU64::new(0));
        let ids = next_id.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                if *modes.borrow() == Mode::Cut {
                    drop(client);
                    continue;
                }
                let rules = Rules {
                    id: ids.fetch_add(1, Ordering::SeqCst),
                    mode: modes.subscribe(),
                    abandoned_below: abandoned.clone(),
                };
                tokio::spawn(serve(
                    client,
                    SocketAddr::from(([127, 0, 0, 1], target)),
                    rules,
                ));
            }
        });
        Proxy {
            port,
            mode,
            next_id,
            abandoned_below,
            accept,
        }
    }

    /// Closes every connection and refuses new ones until [`Proxy::restore`].
    pub fn cut(&self) {
        self.mode.send_replace(Mode::Cut);
    }

    /// Stops moving bytes without closing anything until [`Proxy::restore`].
    pub fn blackhole(&self) {
        self.mode.send_replace(Mode::Blackhole);
    }

    /// Forwards again (connections held in a black hole resume).
    pub fn restore(&self) {
        self.mode.send_replace(Mode::Pass);
    }

    /// Forwards new connections again while every connection accepted so far stays silent for
    /// good (never closed, nothing moves): a network that came back with none of the old
    /// connections' state.
    pub fn abandon_and_restore(&self) {
        self.abandoned_below
            .store(self.next_id.load(Ordering::SeqCst), Ordering::SeqCst);
        self.mode.send_replace(Mode::Pass);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.mode.send_replace(Mode::Cut);
    }
}

async fn serve(client: TcpStream, target: SocketAddr, rules: Rules) {
    let Ok(server) = TcpStream::connect(target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    // Either direction ending (or a cut) drops all four halves: both sockets close.
    tokio::select! {
        () = pump(cr, sw, rules.clone()) => {}
        () = pump(sr, cw, rules) => {}
    }
}

/// Waits while the mode is `Blackhole` (or the connection is abandoned); false once it is `Cut`
/// (or the proxy is gone).
async fn passing(rules: &mut Rules) -> bool {
    let mode = &mut rules.mode;
    loop {
        let now = *mode.borrow_and_update();
        let abandoned = rules.id < rules.abandoned_below.load(Ordering::SeqCst);
        match now {
            Mode::Pass if !abandoned => return true,
            Mode::Cut => return false,
            Mode::Pass | Mode::Blackhole => {
                if mode.changed().await.is_err() {
                    return false;
                }
            }
        }
    }
}

async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut rules: Rules) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if !passing(&mut rules).await {
            return;
        }
        tokio::select! {
            r = from.read(&mut buf) => {
                let n = match r {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                // Read just as the black hole opened: keep it until then (dropping bytes would
                // corrupt the stream rather than delay it).
                if !passing(&mut rules).await || to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
            changed = rules.mode.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}
