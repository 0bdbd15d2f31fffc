//! The local terminal's modes for the remote pty, encoded as `ssh -t` sends them (OpenSSH's
//! `ttymodes.c` / `ttymodes.h`; RFC 4254 section 8): the special characters (a disabled one as
//! 255), the input, local, output and control flags as 0 or 1, and the speeds. The remote line
//! discipline then erases, interrupts and handles UTF-8 as the local terminal does — for
//! programs that read lines without an editor of their own (`cat`, `read`, a Python `input()`).
//!
//! Flags outside POSIX are sent only on Linux, where this was compared with OpenSSH
//! (tests/tests/cli_shell.rs); elsewhere on Unix the POSIX set. Off Unix nothing is sent and the
//! server's defaults apply.

use tunnelbook_core::ssh::Pty;

/// The modes of the terminal on `fd` as (opcode, value); empty when it is not a
/// terminal.
#[cfg(unix)]
pub fn of(fd: std::os::fd::BorrowedFd<'_>) -> Vec<(Pty, u32)> {
    use rustix::termios::{
        ControlModes as C, InputModes as I, LocalModes as L, OutputModes as O,
        SpecialCodeIndex as V, tcgetattr,
    };
    let Ok(tio) = tcgetattr(fd) else {
        return Vec::new();
    };
    // `_POSIX_VDISABLE` (0 on Linux, 0xff on the BSDs) goes out as 255, as ssh sends it.
    let special = |index: V| {
        let c = tio.special_codes[index];
        if c == 0 { 255 } else { u32::from(c) }
    };
    let mut modes = vec![
        (Pty::VINTR, special(V::VINTR)),
        (Pty::VQUIT, special(V::VQUIT)),
        (Pty::VERASE, special(V::VERASE)),
        (Pty::VKILL, special(V::VKILL)),
        (Pty::VEOF, special(V::VEOF)),
        (Pty::VEOL, special(V::VEOL)),
        (Pty::VEOL2, special(V::VEOL2)),
        (Pty::VSTART, special(V::VSTART)),
        (Pty::VSTOP, special(V::VSTOP)),
        (Pty::VSUSP, special(V::VSUSP)),
        (Pty::VREPRINT, special(V::VREPRINT)),
        (Pty::VWERASE, special(V::VWERASE)),
        (Pty::VLNEXT, special(V::VLNEXT)),
        (Pty::VDISCARD, special(V::VDISCARD)),
    ];
    let flag = |on: bool| u32::from(on);
    let i = tio.input_modes;
    let l = tio.local_modes;
    let o = tio.output_modes;
    let c = tio.control_modes;
    modes.extend([
        (Pty::IGNPAR, flag(i.contains(I::IGNPAR))),
        (Pty::PARMRK, flag(i.contains(I::PARMRK))),
        (Pty::INPCK, flag(i.contains(I::INPCK))),
        (Pty::ISTRIP, flag(i.contains(I::ISTRIP))),
        (Pty::INLCR, flag(i.contains(I::INLCR))),
        (Pty::IGNCR, flag(i.contains(I::IGNCR))),
        (Pty::ICRNL, flag(i.contains(I::ICRNL))),
        (Pty::IXON, flag(i.contains(I::IXON))),
        (Pty::IXANY, flag(i.contains(I::IXANY))),
        (Pty::IXOFF, flag(i.contains(I::IXOFF))),
        (Pty::ISIG, flag(l.contains(L::ISIG))),
        (Pty::ICANON, flag(l.contains(L::ICANON))),
        (Pty::ECHO, flag(l.contains(L::ECHO))),
        (Pty::ECHOE, flag(l.contains(L::ECHOE))),
        (Pty::ECHOK, flag(l.contains(L::ECHOK))),
        (Pty::ECHONL, flag(l.contains(L::ECHONL))),
        (Pty::NOFLSH, flag(l.contains(L::NOFLSH))),
        (Pty::TOSTOP, flag(l.contains(L::TOSTOP))),
        (Pty::IEXTEN, flag(l.contains(L::IEXTEN))),
        (Pty::OPOST, flag(o.contains(O::OPOST))),
        (Pty::ONLCR, flag(o.contains(O::ONLCR))),
        (Pty::OCRNL, flag(o.contains(O::OCRNL))),
        (Pty::ONOCR, flag(o.contains(O::ONOCR))),
        (Pty::ONLRET, flag(o.contains(O::ONLRET))),
        // As ssh tests them (`c_cflag & CS7`, `c_cflag & CS8`): the character size's bits overlap.
        (Pty::CS7, flag(c.intersects(C::CS7))),
        (Pty::CS8, flag(c.intersects(C::CS8))),
        (Pty::PARENB, flag(c.contains(C::PARENB))),
        (Pty::PARODD, flag(c.contains(C::PARODD))),
    ]);
    #[cfg(any(target_os = "linux", target_os = "android"))]
    modes.extend([
        (Pty::IUCLC, flag(i.contains(I::IUCLC))),
        (Pty::IMAXBEL, flag(i.contains(I::IMAXBEL))),
        (Pty::IUTF8, flag(i.contains(I::IUTF8))),
        (Pty::XCASE, flag(l.contains(L::XCASE))),
        (Pty::ECHOCTL, flag(l.contains(L::ECHOCTL))),
        (Pty::ECHOKE, flag(l.contains(L::ECHOKE))),
        (Pty::PENDIN, flag(l.contains(L::PENDIN))),
        (Pty::OLCUC, flag(o.contains(O::OLCUC))),
    ]);
    modes.extend([
        (Pty::TTY_OP_ISPEED, tio.input_speed()),
        (Pty::TTY_OP_OSPEED, tio.output_speed()),
    ]);
    modes
}

/// The modes of the terminal on stdin (none off Unix: the server's defaults apply).
pub fn of_stdin() -> Vec<(Pty, u32)> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        of(std::io::stdin().as_fd())
    }
    #[cfg(not(unix))]
    Vec::new()
}
