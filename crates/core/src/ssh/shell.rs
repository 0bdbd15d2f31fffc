//! An interactive shell on an open [`Connection`]: a session channel running the user's login
//! shell (what sshd starts for a `shell` request, as `ssh HOST` does), with or without a
//! pseudo-terminal.
//!
//! A [`Shell`] splits into a [`ShellInput`] (keystrokes, `window-change`, EOF; cheap to clone)
//! and a [`ShellOutput`] (what the shell prints, then how it ended). The output is read off the
//! channel by a task of its own into a queue bounded in bytes: russh hands every channel's data
//! over one session task, so a reader that stopped reading would stall every tunnel and command
//! on the connection. When a consumer falls more than [`OUTPUT_QUEUE_BYTES`] behind, the oldest
//! output is dropped and reported as [`ShellEvent::Dropped`] instead.
//!
//! [`Connection::open_shell_direct`] leaves out that task and queue: the consumer reads the
//! channel itself, one task and one thread wake fewer per echoed keystroke (the CLI, whose
//! connection carries nothing but the shell; see docs/PERFORMANCE.md, issue 23).
//!
//! What this module leaves out: the local terminal (raw mode, resize signals: the CLI) and
//! rendering (the app's terminal component). A shell cannot outlive its connection; keeping
//! work alive across a drop is tmux's or screen's job on the host.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
/// RFC 4254 section 8's terminal mode opcodes, for [`PtySpec::modes`].
pub use russh::Pty;
use russh::{ChannelMsg, ChannelWriteHalf, client};
use tokio::sync::Notify;

use super::{Connection, SshError};

/// At most this many bytes of output wait for a slow consumer (8 MiB, a few screens of a
/// runaway `cat` and far more than any terminal's scrollback); older output is dropped.
pub const OUTPUT_QUEUE_BYTES: usize = 8 << 20;

/// The terminal to ask the server for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PtySpec {
    /// `TERM` for the remote side, e.g. `xterm-256color`.
    pub term: String,
    /// Width in character cells.
    pub cols: u32,
    /// Height in character cells.
    pub rows: u32,
    /// Terminal modes (RFC 4254 section 8: opcode, value): what OpenSSH's `ssh -t` sends from
    /// the local terminal (its `ttymodes.h`), so the remote pty erases, interrupts and handles
    /// UTF-8 as the local one does. Empty: the server's defaults.
    pub modes: Vec<(Pty, u32)>,
}

impl PtySpec {
    /// The modes of a terminal that sends UTF-8 and DEL for backspace, as xterm.js and most
    /// terminal emulators do: `IUTF8` on (the line editor of `cat` or `read` then erases a whole
    /// character), `VERASE` = DEL; everything else stays as the server sets it.
    pub fn utf8_modes() -> Vec<(Pty, u32)> {
        vec![(Pty::IUTF8, 1), (Pty::VERASE, 0x7f)]
    }
}

/// What shell to open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShellSpec {
    /// A pseudo-terminal (`pty-req`) of this kind; `None` runs the shell on plain pipes, like
    /// `ssh -T` (no prompt, no line editing, stdout and stderr apart).
    pub pty: Option<PtySpec>,
    /// Environment variables to offer (`env` requests, e.g. `LANG`); sshd accepts only those
    /// its `AcceptEnv` lists and ignores the rest silently.
    pub env: Vec<(String, String)>,
}

/// How a shell ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShellExit {
    /// The exit status the server reported, if any.
    pub status: Option<u32>,
    /// The signal that ended the shell (SSH name without `SIG`, e.g. `KILL`), if any.
    pub signal: Option<String>,
    /// The connection ended under the shell (network drop, server gone); status and signal are
    /// then unknown.
    pub connection_lost: bool,
}

impl ShellExit {
    /// The status to exit with locally, as `ssh` does: the remote status, else 255.
    pub fn code(&self) -> u8 {
        self.status
            .and_then(|s| u8::try_from(s).ok())
            .unwrap_or(255)
    }
}

/// Something the shell did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShellEvent {
    /// Bytes written to the terminal (with a pty: stdout and stderr together).
    Stdout(Bytes),
    /// Bytes written to stderr (only without a pty).
    Stderr(Bytes),
    /// This many bytes of older output were dropped because the consumer fell behind.
    Dropped(usize),
    /// The shell ended; the last event.
    Exited(ShellExit),
}

/// The byte-bounded queue between the channel reader task and the consumer.
#[derive(Default)]
struct Queue {
    state: Mutex<QueueState>,
    ready: Notify,
}

#[derive(Default)]
struct QueueState {
    events: VecDeque<ShellEvent>,
    bytes: usize,
    dropped: usize,
    ended: bool,
}

fn event_len(ev: &ShellEvent) -> usize {
    match ev {
        ShellEvent::Stdout(b) | ShellEvent::Stderr(b) => b.len(),
        _ => 0,
    }
}

impl Queue {
    fn push(&self, ev: ShellEvent, limit: usize) {
        {
            let Ok(mut st) = self.state.lock() else {
                return;
            };
            if matches!(ev, ShellEvent::Exited(_)) {
                st.ended = true;
            }
            st.bytes += event_len(&ev);
            st.events.push_back(ev);
            while st.bytes > limit {
                let Some(old) = st.events.pop_front() else {
                    break;
                };
                let n = event_len(&old);
                st.bytes -= n;
                st.dropped += n;
                if n == 0 {
                    // Never drop the end: put it back and stop.
                    st.events.push_front(old);
                    break;
                }
            }
        }
        self.ready.notify_one();
    }

    fn pop(&self) -> Option<ShellEvent> {
        let mut st = self.state.lock().ok()?;
        if st.dropped > 0 {
            let n = std::mem::take(&mut st.dropped);
            return Some(ShellEvent::Dropped(n));
        }
        let ev = st.events.pop_front()?;
        st.bytes -= event_len(&ev);
        Some(ev)
    }

    fn finished(&self) -> bool {
        self.state
            .lock()
            .map(|st| st.ended && st.events.is_empty() && st.dropped == 0)
            .unwrap_or(true)
    }
}

/// What the shell prints, in order, ending with [`ShellEvent::Exited`].
pub struct ShellOutput {
    source: Source,
    done: bool,
}

/// Where a [`ShellOutput`] takes its events from.
enum Source {
    /// The bounded queue a reader task fills ([`Connection::open_shell`]).
    Queued(Arc<Queue>),
    /// The channel itself, read when asked ([`Connection::open_shell_direct`]).
    Direct(Box<Direct>),
}

/// A channel read by its consumer.
struct Direct {
    read: russh::ChannelReadHalf,
    exit: ShellExit,
    conn: Connection,
    /// The channel has closed; what is left is to say how the shell ended.
    closed: bool,
}

/// One channel message, as the shell's output sees it.
enum Read {
    /// Output to hand on.
    Event(ShellEvent),
    /// Nothing to hand on (exit status noted, window adjustments, ...).
    Nothing,
    /// The channel closed: the shell has ended.
    Closed,
}

/// Sorts one channel message, noting an exit status or signal in `exit`.
fn read_msg(msg: ChannelMsg, exit: &mut ShellExit) -> Read {
    match msg {
        ChannelMsg::Data { data } => Read::Event(ShellEvent::Stdout(Bytes::from(data.to_vec()))),
        ChannelMsg::ExtendedData { data, ext: 1 } => {
            Read::Event(ShellEvent::Stderr(Bytes::from(data.to_vec())))
        }
        ChannelMsg::ExitStatus { exit_status } => {
            exit.status = Some(exit_status);
            Read::Nothing
        }
        ChannelMsg::ExitSignal { signal_name, .. } => {
            exit.signal = Some(signal_label(&signal_name));
            Read::Nothing
        }
        ChannelMsg::Close => Read::Closed,
        _ => Read::Nothing,
    }
}

/// How the shell ended, once its channel is gone: without word from the server, whether the
/// connection went with it.
async fn ended(mut exit: ShellExit, conn: &Connection) -> ShellExit {
    if exit.status.is_none() && exit.signal.is_none() {
        // No word from the server: the channel or the session went away under the shell.
        // Give russh a moment to notice a dead session.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        exit.connection_lost = conn.is_closed();
    }
    exit
}

impl ShellOutput {
    /// The next event; `None` after [`ShellEvent::Exited`] was returned. Cancel-safe (no output
    /// is lost when the future is dropped before it is ready, e.g. in `tokio::select!`).
    pub async fn next(&mut self) -> Option<ShellEvent> {
        if self.done {
            return None;
        }
        let ev = match &mut self.source {
            Source::Queued(queue) => loop {
                let ready = queue.ready.notified();
                if let Some(ev) = queue.pop() {
                    break Some(ev);
                }
                if queue.finished() {
                    break None;
                }
                ready.await;
            },
            Source::Direct(direct) => loop {
                if direct.closed {
                    let exit = ended(direct.exit.clone(), &direct.conn).await;
                    break Some(ShellEvent::Exited(exit));
                }
                match direct.read.wait().await {
                    Some(msg) => match read_msg(msg, &mut direct.exit) {
                        Read::Event(ev) => break Some(ev),
                        Read::Nothing => {}
                        Read::Closed => direct.closed = true,
                    },
                    None => direct.closed = true,
                }
            },
        };
        if matches!(ev, None | Some(ShellEvent::Exited(_))) {
            self.done = true;
        }
        ev
    }
}

/// Keystrokes and terminal changes for the shell. Clones send to the same channel.
#[derive(Clone)]
pub struct ShellInput {
    writer: Arc<ChannelWriteHalf<client::Msg>>,
    destination: String,
}

impl ShellInput {
    fn closed(&self) -> SshError {
        SshError::Closed(self.destination.clone())
    }

    /// Sends `data` as typed (with a pty the remote terminal echoes and edits it).
    ///
    /// # Errors
    /// [`SshError::Closed`] when the shell or its connection has ended.
    pub async fn write(&self, data: &[u8]) -> Result<(), SshError> {
        self.writer
            .data_bytes(Bytes::copy_from_slice(data))
            .await
            .map_err(|_| self.closed())
    }

    /// Tells the server the terminal is now `cols` × `rows` cells (`window-change`; the remote
    /// programs get `SIGWINCH`).
    ///
    /// # Errors
    /// [`SshError::Closed`] when the shell or its connection has ended.
    pub async fn resize(&self, cols: u32, rows: u32) -> Result<(), SshError> {
        self.writer
            .window_change(cols, rows, 0, 0)
            .await
            .map_err(|_| self.closed())
    }

    /// Ends the shell's standard input (what Ctrl-D at an empty prompt does, for a shell without
    /// a pty).
    ///
    /// # Errors
    /// [`SshError::Closed`] when the shell or its connection has ended.
    pub async fn eof(&self) -> Result<(), SshError> {
        self.writer.eof().await.map_err(|_| self.closed())
    }

    /// Closes the channel: sshd hangs up the shell (`SIGHUP`), as closing a terminal window does.
    pub async fn close(&self) {
        let _ = self.writer.close().await;
    }
}

/// An open interactive shell.
pub struct Shell {
    /// Where keystrokes go.
    pub input: ShellInput,
    /// What comes back.
    pub output: ShellOutput,
}

impl Connection {
    /// Opens a session channel with the user's login shell (`shell` request), on a pty when
    /// `spec.pty` is given, and starts reading its output into a bounded queue.
    ///
    /// # Errors
    /// [`SshError::Closed`] when the connection has ended, [`SshError::ChannelRefused`] when the
    /// server refuses the channel, the pty or the shell (e.g. `PermitTTY no`, a forced command
    /// that fails).
    pub async fn open_shell(&self, spec: &ShellSpec) -> Result<Shell, SshError> {
        self.open_shell_limited(spec, OUTPUT_QUEUE_BYTES).await
    }

    /// [`Connection::open_shell`] without the reader task and its queue: the channel is read
    /// only when [`ShellOutput::next`] is called, which saves a task switch (and, on a
    /// multi-threaded runtime, a thread wake) per piece of output: keystroke echo latency.
    ///
    /// The consumer must keep reading: russh hands every channel's data over one session task,
    /// and while this shell's channel is full that task waits, stalling every other channel on
    /// the connection. For a connection that carries only this shell, read by a loop that does
    /// nothing else (the CLI's `tunnelbook shell`), as `ssh` does.
    ///
    /// The connection also stops acknowledging each read at once (see `socket.rs`): that is for
    /// sshd's Nagle-delayed small packets on forwards, and sshd turns Nagle off for a session with
    /// a terminal, so here it would only put an ACK packet between each echo and the screen.
    ///
    /// # Errors
    /// As [`Connection::open_shell`].
    pub async fn open_shell_direct(&self, spec: &ShellSpec) -> Result<Shell, SshError> {
        let (read, input) = self.start_shell(spec).await?;
        if spec.pty.is_some() {
            self.inner
                .prompt_ack
                .store(false, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(Shell {
            input,
            output: ShellOutput {
                source: Source::Direct(Box::new(Direct {
                    read,
                    exit: ShellExit::default(),
                    conn: self.clone(),
                    closed: false,
                })),
                done: false,
            },
        })
    }

    /// [`Connection::open_shell`] with another output queue bound (tests).
    #[doc(hidden)]
    pub async fn open_shell_limited(
        &self,
        spec: &ShellSpec,
        queue_bytes: usize,
    ) -> Result<Shell, SshError> {
        let (mut read, input) = self.start_shell(spec).await?;
        let queue = Arc::new(Queue::default());
        let pump = Arc::clone(&queue);
        let conn = self.clone();
        tokio::spawn(async move {
            let mut exit = ShellExit::default();
            while let Some(msg) = read.wait().await {
                match read_msg(msg, &mut exit) {
                    Read::Event(ev) => pump.push(ev, queue_bytes),
                    Read::Nothing => {}
                    Read::Closed => break,
                }
            }
            pump.push(ShellEvent::Exited(ended(exit, &conn).await), queue_bytes);
        });
        Ok(Shell {
            input,
            output: ShellOutput {
                source: Source::Queued(queue),
                done: false,
            },
        })
    }

    /// Opens the channel and starts the shell in it: the channel's read half and the input.
    async fn start_shell(
        &self,
        spec: &ShellSpec,
    ) -> Result<(russh::ChannelReadHalf, ShellInput), SshError> {
        let channel = self
            .handle()
            .channel_open_session()
            .await
            .map_err(|e| self.channel_error("a shell channel", e))?;
        let (mut read, write) = channel.split();
        for (name, value) in &spec.env {
            write.set_env(false, name.as_str(), value.as_str()).await?;
        }
        if let Some(pty) = &spec.pty {
            write
                .request_pty(true, &pty.term, pty.cols, pty.rows, 0, 0, &pty.modes)
                .await?;
            self.reply(&mut read, "a terminal (pty-req)").await?;
        }
        write.request_shell(true).await?;
        self.reply(&mut read, "a login shell").await?;
        Ok((
            read,
            ShellInput {
                writer: Arc::new(write),
                destination: self.destination().to_string(),
            },
        ))
    }

    /// Waits for the server's answer to a request sent with `want_reply`.
    async fn reply(&self, read: &mut russh::ChannelReadHalf, what: &str) -> Result<(), SshError> {
        loop {
            match read.wait().await {
                Some(ChannelMsg::Success) => return Ok(()),
                Some(ChannelMsg::Failure) => {
                    return Err(SshError::ChannelRefused {
                        what: what.to_string(),
                        message: "the server said no (see its sshd_config: PermitTTY, \
                                  ForceCommand, Match blocks)"
                            .into(),
                    });
                }
                Some(_) => {}
                None => return Err(SshError::Closed(self.destination().to_string())),
            }
        }
    }
}

/// The SSH name of a signal (`KILL`, `HUP`, or the server's own name for others).
fn signal_label(sig: &russh::Sig) -> String {
    match sig {
        russh::Sig::Custom(name) => name.clone(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_slow_consumer_loses_the_oldest_output_not_the_end() {
        let queue = Arc::new(Queue::default());
        for i in 0..10u8 {
            queue.push(ShellEvent::Stdout(Bytes::from(vec![i; 100])), 250);
        }
        queue.push(ShellEvent::Exited(ShellExit::default()), 250);
        let mut out = ShellOutput {
            source: Source::Queued(queue),
            done: false,
        };
        assert_eq!(out.next().await, Some(ShellEvent::Dropped(800)));
        assert_eq!(
            out.next().await,
            Some(ShellEvent::Stdout(Bytes::from(vec![8; 100])))
        );
        assert_eq!(
            out.next().await,
            Some(ShellEvent::Stdout(Bytes::from(vec![9; 100])))
        );
        assert!(matches!(out.next().await, Some(ShellEvent::Exited(_))));
        assert_eq!(out.next().await, None);
    }

    #[test]
    fn exit_code_is_the_remote_status_else_255() {
        let exit = |status| ShellExit {
            status,
            ..ShellExit::default()
        };
        assert_eq!(exit(Some(3)).code(), 3);
        assert_eq!(exit(Some(300)).code(), 255);
        assert_eq!(exit(None).code(), 255);
    }
}
