//! The local terminal's modes for the remote pty, encoded as `ssh -t` sends them (OpenSSH's
//! `ttymodes.c` / `ttymodes.h`; RFC 4254 section 8): the special characters (a disabled one as
//! 255), the input, local, output and control flags as 0 or 1, and the speeds. The remote line
//! discipline then erases, interrupts and handles UTF-8 as the local terminal does — for
//! programs that read lines without an editor of their own (`cat`, `read`, a Python `input()`).
//!
//! Flags outside POSIX are sent only on Linux, where this was compared with OpenSSH
//! (tests/tests/cli_shell.rs); elsewhere on Unix the POSIX set. Off Unix nothing is sent and the
//! server's defaults apply.

/// The modes of the terminal on `fd` as (RFC 4254 opcode, value); empty when it is not a
/// terminal.
#[cfg(unix)]
pub fn of(fd: std::os::fd::BorrowedFd<'_>) -> Vec<(u8, u32)> {
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
        (1, special(V::VINTR)),
        (2, special(V::VQUIT)),
        (3, special(V::VERASE)),
        (4, special(V::VKILL)),
        (5, special(V::VEOF)),
        (6, special(V::VEOL)),
        (7, special(V::VEOL2)),
        (8, special(V::VSTART)),
        (9, special(V::VSTOP)),
        (10, special(V::VSUSP)),
        (12, special(V::VREPRINT)),
        (13, special(V::VWERASE)),
        (14, special(V::VLNEXT)),
        (18, special(V::VDISCARD)),
    ];
    let flag = |on: bool| u32::from(on);
    let i = tio.input_modes;
    let l = tio.local_modes;
    let o = tio.output_modes;
    let c = tio.control_modes;
    modes.extend([
        (30, flag(i.contains(I::IGNPAR))),
        (31, flag(i.contains(I::PARMRK))),
        (32, flag(i.contains(I::INPCK))),
        (33, flag(i.contains(I::ISTRIP))),
        (34, flag(i.contains(I::INLCR))),
        (35, flag(i.contains(I::IGNCR))),
        (36, flag(i.contains(I::ICRNL))),
        (38, flag(i.contains(I::IXON))),
        (39, flag(i.contains(I::IXANY))),
        (40, flag(i.contains(I::IXOFF))),
        (50, flag(l.contains(L::ISIG))),
        (51, flag(l.contains(L::ICANON))),
        (53, flag(l.contains(L::ECHO))),
        (54, flag(l.contains(L::ECHOE))),
        (55, flag(l.contains(L::ECHOK))),
        (56, flag(l.contains(L::ECHONL))),
        (57, flag(l.contains(L::NOFLSH))),
        (58, flag(l.contains(L::TOSTOP))),
        (59, flag(l.contains(L::IEXTEN))),
        (70, flag(o.contains(O::OPOST))),
        (72, flag(o.contains(O::ONLCR))),
        (73, flag(o.contains(O::OCRNL))),
        (74, flag(o.contains(O::ONOCR))),
        (75, flag(o.contains(O::ONLRET))),
        // As ssh tests them (`c_cflag & CS7`, `c_cflag & CS8`): the character size's bits overlap.
        (90, flag(c.intersects(C::CS7))),
        (91, flag(c.intersects(C::CS8))),
        (92, flag(c.contains(C::PARENB))),
        (93, flag(c.contains(C::PARODD))),
    ]);
    #[cfg(any(target_os = "linux", target_os = "android"))]
    modes.extend([
        (37, flag(i.contains(I::IUCLC))),
        (41, flag(i.contains(I::IMAXBEL))),
        (42, flag(i.contains(I::IUTF8))),
        (52, flag(l.contains(L::XCASE))),
        (60, flag(l.contains(L::ECHOCTL))),
        (61, flag(l.contains(L::ECHOKE))),
        (62, flag(l.contains(L::PENDIN))),
        (71, flag(o.contains(O::OLCUC))),
    ]);
    modes.extend([(128, tio.input_speed()), (129, tio.output_speed())]);
    modes
}

/// The modes of the terminal on stdin (none off Unix: the server's defaults apply).
pub fn of_stdin() -> Vec<(u8, u32)> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        of(std::io::stdin().as_fd())
    }
    #[cfg(not(unix))]
    Vec::new()
}
