//! The SSH connection's TCP socket: acknowledgements sent at once.
//!
//! OpenSSH's sshd leaves Nagle's algorithm on for non-interactive sessions, so a small packet it
//! sends (a channel's CLOSE, an open confirmation, EOF) waits until its previous one is
//! acknowledged. A client that delays its ACKs (Linux and Windows do, by 40–200 ms) then makes
//! every short forwarded connection wait a delayed-ACK round. Acknowledging each read at once
//! removes that wait (docs/PERFORMANCE.md: p50 of a small request 44 ms → about 1 ms). macOS
//! has no per-socket switch for it.

use std::{
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};

/// The socket russh runs a connection over; `prompt` turns the ACK after each read on (the
/// default) and off ([`super::Connection`] keeps it). No read buffer in front: russh reads into
/// its own, many packets at a time, and decrypts them where they were read (russh patch 0003).
pub(super) fn wrap(tcp: TcpStream, prompt: Arc<AtomicBool>) -> PromptAck {
    ack_every_segment(&tcp);
    PromptAck(tcp, prompt)
}

/// A switch for [`wrap`]'s ACK after each read, on at first.
pub(super) fn prompt_ack_switch() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(true))
}

/// A TCP stream that acknowledges received data as soon as it is read, while its switch is on.
pub(super) struct PromptAck(TcpStream, Arc<AtomicBool>);

impl AsyncRead for PromptAck {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.0).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(())))
            && buf.filled().len() > before
            && self.1.load(Ordering::Relaxed)
        {
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

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn ack_now(_: &TcpStream) {}

/// Windows delays ACKs by up to 200 ms and has no per-read switch, but a socket can be told to
/// acknowledge every segment (`SIO_TCP_SET_ACK_FREQUENCY` = 1), which lasts for its lifetime.
/// Best effort: older systems refuse it and keep delaying.
#[cfg(windows)]
#[allow(unsafe_code)] // One Winsock ioctl that socket2 does not wrap (rust-lang/socket2#637).
fn ack_every_segment(tcp: &TcpStream) {
    use std::os::windows::io::AsRawSocket;

    use windows_sys::Win32::Networking::WinSock::{SIO_TCP_SET_ACK_FREQUENCY, SOCKET, WSAIoctl};

    let frequency: u32 = 1;
    let mut returned: u32 = 0;
    // SAFETY: the socket is open for the duration of the call; the input buffer is a live u32
    // of the given size, there is no output buffer, and the call is synchronous (no overlapped).
    unsafe {
        WSAIoctl(
            tcp.as_raw_socket() as SOCKET,
            SIO_TCP_SET_ACK_FREQUENCY,
            std::ptr::from_ref(&frequency).cast(),
            std::mem::size_of::<u32>() as u32,
            std::ptr::null_mut(),
            0,
            &mut returned,
            std::ptr::null_mut(),
            None,
        );
    }
}

#[cfg(not(windows))]
fn ack_every_segment(_: &TcpStream) {}
