//! The SSH connection's TCP socket: acknowledgements sent at once, and bulk reads in batches.
//!
//! OpenSSH's sshd leaves Nagle's algorithm on for non-interactive sessions, so a small packet it
//! sends (a channel's CLOSE, an open confirmation, EOF) waits until its previous one is
//! acknowledged. A client that delays its ACKs (Linux and Windows do, by 40–200 ms) then makes
//! every short forwarded connection wait a delayed-ACK round. Acknowledging each read at once
//! removes that wait (docs/PERFORMANCE.md: p50 of a small request 44 ms → about 1 ms). macOS
//! has no per-socket switch for it.
//!
//! While data streams in faster than one packet at a time (a read found [`BATCH`] bytes or more
//! waiting), the socket wakes the reader only once [`BATCH`] bytes are there (`SO_RCVLOWAT`,
//! Linux), or [`BATCH_WAIT`] after it last read: half the wake-ups and reads of a bulk transfer,
//! at the price of up to [`BATCH_WAIT`] (plus the runtime's 1 ms timer tick) on the last part of
//! a burst. A wait that runs out ends the batching until the next read finds [`BATCH`] again, so
//! traffic that never has that much in flight (keystrokes, small requests, a shallow pipeline)
//! reads as before.

use std::{
    future::Future,
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

/// Bytes waiting on the socket from which a read counts as bulk, and the least a batched read
/// is woken for: two of OpenSSH's 32 KiB channel packets.
const BATCH: usize = 64 * 1024;

/// How long a batched read waits for [`BATCH`] bytes before it takes what there is.
const BATCH_WAIT: std::time::Duration = std::time::Duration::from_millis(1);

/// The socket russh runs a connection over; `prompt` turns the ACK after each read on (the
/// default) and off ([`super::Connection`] keeps it). No read buffer in front: russh reads into
/// its own, many packets at a time, and decrypts them where they were read (russh patch 0003).
pub(super) fn wrap(tcp: TcpStream, prompt: Arc<AtomicBool>) -> SshSocket {
    ack_every_segment(&tcp);
    SshSocket {
        tcp,
        prompt,
        batch: Batch::new(),
    }
}

/// A switch for [`wrap`]'s ACK after each read, on at first.
pub(super) fn prompt_ack_switch() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(true))
}

/// A TCP stream that acknowledges received data as soon as it is read, while its switch is on,
/// and reads bulk data in batches (see the module's documentation).
pub(super) struct SshSocket {
    tcp: TcpStream,
    prompt: Arc<AtomicBool>,
    batch: Batch,
}

impl AsyncRead for SshSocket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            let before = buf.filled().len();
            let polled = Pin::new(&mut this.tcp).poll_read(cx, buf);
            match polled {
                Poll::Ready(Ok(())) => {
                    let read = buf.filled().len() - before;
                    if read > 0 && this.prompt.load(Ordering::Relaxed) {
                        ack_now(&this.tcp);
                    }
                    this.batch.after_read(&this.tcp, read);
                }
                // The batch did not fill in time: the socket now wakes for any byte, and one
                // more poll registers for that (or reads what is there).
                Poll::Pending if this.batch.ran_out(&this.tcp, cx) => continue,
                _ => {}
            }
            return polled;
        }
    }
}

/// The batching of bulk reads: whether the socket's receive low-water mark is at [`BATCH`], and
/// the deadline of the current wait for it.
struct Batch {
    on: bool,
    /// Set when a wait starts (the first `Pending` after a read).
    deadline: Pin<Box<tokio::time::Sleep>>,
    armed: bool,
}

impl Batch {
    /// Off; needs the runtime's timer (as every connection does).
    fn new() -> Batch {
        Batch {
            on: false,
            deadline: Box::pin(tokio::time::sleep(BATCH_WAIT)),
            armed: false,
        }
    }

    /// After a read of `read` bytes: one that found a batch's worth waiting starts batching.
    fn after_read(&mut self, tcp: &TcpStream, read: usize) {
        self.armed = false;
        if !self.on && read >= BATCH && set_low_water_mark(tcp, BATCH) {
            self.on = true;
        }
    }

    /// While batching, on a read that would wait: whether the wait has run out, in which case
    /// batching stops (the low-water mark goes back to one byte). Otherwise the deadline is armed
    /// and will wake `cx`.
    fn ran_out(&mut self, tcp: &TcpStream, cx: &mut Context<'_>) -> bool {
        if !self.on {
            return false;
        }
        if !self.armed {
            self.deadline
                .as_mut()
                .reset(tokio::time::Instant::now() + BATCH_WAIT);
            self.armed = true;
        }
        if self.deadline.as_mut().poll(cx).is_pending() {
            return false;
        }
        self.armed = false;
        // Back to waking for any byte (should that fail, the next wait tries again).
        self.on = !set_low_water_mark(tcp, 1);
        true
    }
}

/// Sets `SO_RCVLOWAT`: epoll reports the socket readable (and Linux wakes the reader) only once
/// `bytes` are waiting. Linux and Android only, where setting it also checks the bytes already
/// there; elsewhere nothing is set and batching stays off (`false`).
#[cfg(any(target_os = "linux", target_os = "android"))]
#[allow(unsafe_code)] // One socket option that socket2, rustix and nix do not wrap.
fn set_low_water_mark(tcp: &TcpStream, bytes: usize) -> bool {
    use std::os::fd::AsRawFd;

    let Ok(value) = libc::c_int::try_from(bytes) else {
        return false;
    };
    // SAFETY: the descriptor is open for the duration of the call (`tcp` is borrowed), and the
    // option value is a live `c_int` of the given length.
    let set = unsafe {
        libc::setsockopt(
            tcp.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVLOWAT,
            std::ptr::from_ref(&value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    set == 0
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn set_low_water_mark(_: &TcpStream, _: usize) -> bool {
    false
}

impl AsyncWrite for SshSocket {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
    };

    use super::*;

    /// A bulk burst turns batching on (where the platform has the low-water mark); the short
    /// tail that follows, with nothing after it, still arrives (the wait runs out and batching
    /// stops) instead of waiting for bytes that never come.
    #[tokio::test]
    async fn a_burst_is_read_in_batches_and_its_tail_still_arrives() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let ((mut server, _), client) =
            tokio::join!(async { listener.accept().await.unwrap() }, async {
                client.await.unwrap()
            });
        let mut socket = wrap(client, prompt_ack_switch());
        let burst: Vec<u8> = (0..4 * BATCH).map(|i| (i % 251) as u8).collect();
        server.write_all(&burst).await.unwrap();
        // Let the whole burst arrive, so that the first read finds a batch's worth waiting.
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Read like russh: into a buffer with more room than there is data, so each read takes
        // all that is waiting.
        let mut got = Vec::with_capacity(burst.len() + 4 * BATCH);
        while got.len() < burst.len() {
            assert!(socket.read_buf(&mut got).await.unwrap() > 0);
        }
        assert_eq!(got, burst);
        let batching = cfg!(any(target_os = "linux", target_os = "android"));
        assert_eq!(socket.batch.on, batching, "batching after a bulk read");

        let tail = b"the last few bytes of the burst";
        server.write_all(tail).await.unwrap();
        let mut got = Vec::with_capacity(4 * BATCH);
        tokio::time::timeout(Duration::from_secs(5), socket.read_buf(&mut got))
            .await
            .expect("the tail of a burst must not wait for a batch that never fills")
            .unwrap();
        assert_eq!(got, tail);
        assert!(!socket.batch.on, "batching stops when a wait runs out");

        // Small traffic after it reads as before, one message at a time.
        server.write_all(b"ping").await.unwrap();
        let mut got = [0; 4];
        socket.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
        assert!(!socket.batch.on);
    }
}
