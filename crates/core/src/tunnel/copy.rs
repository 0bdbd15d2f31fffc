//! Copying between a local socket and a channel, both ways, with half-close and counters.
//!
//! The channel is driven through its messages rather than russh's `ChannelStream`: data from
//! the host arrives as owned `Bytes` and is written to the socket as is, and data for the host
//! is read into a `BytesMut` whose filled part is handed to russh without another copy. At
//! hundreds of MiB/s the saved copies are measurable (docs/PERFORMANCE.md).

use std::{
    io,
    sync::atomic::{AtomicU64, Ordering},
};

use bytes::BytesMut;
use russh::{
    ChannelMsg, ChannelWriteHalf,
    client::{self, Msg},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use super::Counters;

/// Bytes read from the socket per channel message batch.
const BUFFER: usize = 256 * 1024;

/// Copies `tcp` → `channel` and back until both directions have ended. EOF on one side is passed
/// on as EOF (half-close) while the other direction keeps flowing; an error in either direction
/// ends both. The channel is closed when this returns or is dropped. Memory stays bounded: the
/// socket side holds one buffer, and russh's channel window and queue push back on a fast
/// producer.
pub(super) async fn bidirectional(
    tcp: TcpStream,
    channel: russh::Channel<Msg>,
    counters: &Counters,
) -> io::Result<()> {
    let (mut tcp_read, mut tcp_write) = tcp.into_split();
    let (mut from_host, to_host) = channel.split();
    let to_host = CloseOnDrop(Some(to_host));
    let up = async {
        let mut buf = BytesMut::with_capacity(BUFFER);
        loop {
            if buf.capacity() < BUFFER / 4 {
                buf.reserve(BUFFER);
            }
            let n = tcp_read.read_buf(&mut buf).await?;
            if n == 0 {
                return to_host.eof().await;
            }
            to_host.data(buf.split().freeze()).await?;
            add(&counters.up, n);
        }
    };
    let down = async {
        while let Some(msg) = from_host.wait().await {
            match msg {
                ChannelMsg::Data { data } => {
                    tcp_write.write_all(&data).await?;
                    add(&counters.down, data.len());
                }
                ChannelMsg::Eof | ChannelMsg::Close => break,
                _ => {}
            }
        }
        // The peer may already be gone; its half-close is then moot.
        let _ = tcp_write.shutdown().await;
        Ok(())
    };
    tokio::try_join!(up, down).map(|_| ())
}

fn add(counter: &AtomicU64, n: usize) {
    counter.fetch_add(n as u64, Ordering::Relaxed);
}

/// The write half of a forwarded channel, closed (best effort) when dropped, like russh's own
/// stream: a cancelled copy must not leave the channel open on the host.
struct CloseOnDrop(Option<ChannelWriteHalf<client::Msg>>);

impl CloseOnDrop {
    fn half(&self) -> io::Result<&ChannelWriteHalf<client::Msg>> {
        self.0
            .as_ref()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }

    async fn data(&self, data: bytes::Bytes) -> io::Result<()> {
        self.half()?
            .data_bytes(data)
            .await
            .map_err(|e| io::Error::new(io::ErrorKind::BrokenPipe, e))
    }

    async fn eof(&self) -> io::Result<()> {
        self.half()?
            .eof()
            .await
            .map_err(|e| io::Error::new(io::ErrorKind::BrokenPipe, e))
    }
}

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        if let Some(half) = self.0.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(async move {
                let _ = half.close().await;
            });
        }
    }
}
