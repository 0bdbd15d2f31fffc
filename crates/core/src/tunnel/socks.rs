//! A SOCKS5 server (RFC 1928, CONNECT only, no authentication) whose connections leave from the
//! SSH server, like `ssh -D`. The listener is on loopback by default, so no authentication is
//! offered.

use std::{
    net::{Ipv4Addr, Ipv6Addr},
    sync::Arc,
};

use russh::{Channel, client::Msg};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tracing::debug;

use super::{Counters, OpenGuard, copy};
use crate::ssh::Connection;

const VERSION: u8 = 5;
const NO_AUTH: u8 = 0;
const NO_ACCEPTABLE: u8 = 0xff;
const CONNECT: u8 = 1;
const REPLY_OK: u8 = 0;
const REPLY_HOST_UNREACHABLE: u8 = 4;
const REPLY_COMMAND_UNSUPPORTED: u8 = 7;
const REPLY_ADDRESS_UNSUPPORTED: u8 = 8;

/// Serves one SOCKS client.
pub(super) async fn serve(conn: Connection, mut tcp: TcpStream, counters: Arc<Counters>) {
    let _open = OpenGuard::new(&counters);
    let channel = match handshake(&conn, &mut tcp).await {
        Ok(channel) => channel,
        Err(e) => {
            debug!(error = %e, "SOCKS request refused");
            return;
        }
    };
    if let Err(e) = copy::bidirectional(tcp, channel, &counters).await {
        debug!(error = %e, "SOCKS connection ended with an error");
    }
}

async fn reply(tcp: &mut TcpStream, code: u8) -> std::io::Result<()> {
    tcp.write_all(&[VERSION, code, 0, 1, 0, 0, 0, 0, 0, 0])
        .await
}

/// Reads the client's greeting and CONNECT request, opens the channel, and answers.
async fn handshake(conn: &Connection, tcp: &mut TcpStream) -> std::io::Result<Channel<Msg>> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let mut head = [0u8; 2];
    tcp.read_exact(&mut head).await?;
    if head[0] != VERSION {
        return Err(bad("not a SOCKS5 client"));
    }
    let mut methods = vec![0u8; usize::from(head[1])];
    tcp.read_exact(&mut methods).await?;
    if !methods.contains(&NO_AUTH) {
        tcp.write_all(&[VERSION, NO_ACCEPTABLE]).await?;
        return Err(bad("client offers no method without authentication"));
    }
    tcp.write_all(&[VERSION, NO_AUTH]).await?;

    let mut request = [0u8; 4];
    tcp.read_exact(&mut request).await?;
    if request[1] != CONNECT {
        reply(tcp, REPLY_COMMAND_UNSUPPORTED).await?;
        return Err(bad("only CONNECT is supported"));
    }
    let host = match request[3] {
        1 => {
            let mut a = [0u8; 4];
            tcp.read_exact(&mut a).await?;
            Ipv4Addr::from(a).to_string()
        }
        3 => {
            let len = tcp.read_u8().await?;
            let mut name = vec![0u8; usize::from(len)];
            tcp.read_exact(&mut name).await?;
            String::from_utf8(name).map_err(|_| bad("host name is not UTF-8"))?
        }
        4 => {
            let mut a = [0u8; 16];
            tcp.read_exact(&mut a).await?;
            Ipv6Addr::from(a).to_string()
        }
        _ => {
            reply(tcp, REPLY_ADDRESS_UNSUPPORTED).await?;
            return Err(bad("unknown address type"));
        }
    };
    let port = tcp.read_u16().await?;
    let channel = match conn
        .handle()
        .channel_open_direct_tcpip(host.as_str(), u32::from(port), "127.0.0.1", 0)
        .await
    {
        Ok(c) => c,
        Err(e) => {
            reply(tcp, REPLY_HOST_UNREACHABLE).await?;
            return Err(std::io::Error::other(format!("{host}:{port}: {e}")));
        }
    };
    reply(tcp, REPLY_OK).await?;
    Ok(channel)
}
