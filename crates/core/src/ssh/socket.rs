//! The SSH connection's TCP socket: buffered reads, and acknowledgements sent at once.
//!
//! OpenSSH's sshd leaves Nagle's algorithm on for non-interactive sessions, so a small packet it
//! sends (a channel's CLOSE, an open confirmation, EOF) waits until its previous one is
//! acknowledged. A client that delays its ACKs (Linux and Windows do, by 40–200 ms) then makes
//! every short forwarded connection wait a delayed-ACK round. Acknowledging each read at once
//! removes that wait (docs/PERFORMANCE.md: p50 of a small request 44 ms → about 1 ms).

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use tokio::{
    io::{AsyncRead, AsyncWrite, BufReader, ReadBuf},
    net::TcpStream,
};

/// Read buffer in front of the socket: russh reads each packet's length and body with separate
/// reads; the buffer turns those into one read per many packets.
const READ_BUFFER: usize = 256 * 1024;

/// The socket russh runs a connection over.
pub(super) fn wrap(tcp: TcpStream) -> BufReader<PromptAck> {
    BufReader::with_capacity(READ_BUFFER, PromptAck(tcp))
}

/// A TCP stream that acknowledges received data as soon as it is read.
pub(super) struct PromptAck(TcpStream);

impl AsyncRead for PromptAck {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.0).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            ack_now(&self.0);
        }
        polled
    }
}

impl AsyncWrite for PromptAck {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Sends the pending ACK now and leaves delayed-ACK mode. Linux re-enters it by itself after a
/// while, which is why this runs after every read rather than once.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn ack_now(tcp: &TcpStream) {
    let _ = socket2::SockRef::from(tcp).set_tcp_quickack(true);
}

/// Other systems have no per-read switch (macOS has none; Windows' is not wired yet).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn ack_now(_: &TcpStream) {}
