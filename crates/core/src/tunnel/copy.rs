//! Copying between a local socket and a channel, both ways, with half-close and counters.
//!
//! The channel is driven through its messages rather than russh's `ChannelStream`: data from
//! the host arrives as owned `Bytes` and is written to the socket as is, and data for the host
//! is read into a `BytesMut` whose filled part is handed to russh without another copy. At
//! hundreds of MiB/s the saved copies are measurable (docs/PERFORMANCE.md).

use std::{
    collections::VecDeque,
    io::{self, IoSlice},
    sync::atomic::{AtomicU64, Ordering},
};

use bytes::{Buf, Bytes, BytesMut};
use futures::FutureExt;
use russh::{
    ChannelMsg, ChannelWriteHalf,
    client::{self, Msg},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpStream, tcp::OwnedWriteHalf},
};

use super::Counters;

/// Bytes read from the socket per channel message batch.
const BUFFER: usize = 256 * 1024;

/// Messages from the host written to the socket with one `writev` at most.
const MAX_BATCH: usize = 64;

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
        let mut batch = VecDeque::new();
        'messages: while let Some(msg) = from_host.wait().await {
            // What the host has already sent goes out in one vectored write.
            let mut msg = Some(msg);
            while let Some(m) = msg.take() {
                match m {
                    ChannelMsg::Data { data } => {
                        add(&counters.down, data.len());
                        batch.push_back(data);
                    }
                    ChannelMsg::Eof | ChannelMsg::Close => {
                        write_batch(&mut tcp_write, &mut batch).await?;
                        break 'messages;
                    }
                    _ => {}
                }
                if batch.len() < MAX_BATCH {
                    msg = from_host.wait().now_or_never().flatten();
                }
            }
            write_batch(&mut tcp_write, &mut batch).await?;
        }
        // The peer may already be gone; its half-close is then moot.
        let _ = tcp_write.shutdown().await;
        Ok(())
    };
    tokio::try_join!(up, down).map(|_| ())
}

/// Writes every buffer in `batch`, with as few `writev` calls as the socket allows.
async fn write_batch(tcp: &mut OwnedWriteHalf, batch: &mut VecDeque<Bytes>) -> io::Result<()> {
    while !batch.is_empty() {
        let slices: Vec<IoSlice<'_>> = batch.iter().map(|b| IoSlice::new(b)).collect();
        let mut written = tcp.write_vectored(&slices).await?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        while written > 0 {
            let Some(front) = batch.front_mut() else {
                break;
            };
            if written < front.len() {
                front.advance(written);
                break;
            }
            written -= front.len();
            batch.pop_front();
        }
    }
    Ok(())
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
