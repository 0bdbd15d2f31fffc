//! Copying between a local socket and a channel, both ways, with half-close and counters.

use std::{
    io,
    sync::atomic::{AtomicU64, Ordering},
};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpStream,
};

use super::Counters;

const BUFFER: usize = 256 * 1024;

/// Copies `tcp` → `channel` and back until both directions have ended. EOF on one side is passed
/// on as EOF (half-close) while the other direction keeps flowing; an error in either direction
/// ends both. Memory stays bounded: each direction holds one buffer, and russh's channel window
/// and queue push back on a fast producer.
pub(super) async fn bidirectional<S>(
    tcp: TcpStream,
    channel: S,
    counters: &Counters,
) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Send + Unpin,
{
    let (mut tcp_read, mut tcp_write) = tcp.into_split();
    let (mut chan_read, mut chan_write) = tokio::io::split(channel);
    let up = async {
        pump(&mut tcp_read, &mut chan_write, &counters.up).await?;
        chan_write.shutdown().await
    };
    let down = async {
        pump(&mut chan_read, &mut tcp_write, &counters.down).await?;
        // The peer may already be gone; its half-close is then moot.
        let _ = tcp_write.shutdown().await;
        Ok(())
    };
    tokio::try_join!(up, down).map(|_| ())
}

async fn pump<R, W>(reader: &mut R, writer: &mut W, counter: &AtomicU64) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BUFFER];
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        writer.write_all(&buf[..n]).await?;
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}
