//! How a POSIX script runs in the user's login environment whatever their login shell is, and
//! how its output is told apart from what the startup files print.
//!
//! sshd hands every command to the user's login shell as `$SHELL -c COMMAND`, so the command is
//! first parsed by bash, dash, zsh, ksh, tcsh/csh or fish. [`login_shell`] sends a command that
//! all of them parse the same way (`exec /bin/sh -c '…'` around one base64 word); `/bin/sh` then
//! starts the login shell (`$SHELL -l`) and feeds it, on its standard input, one line that again
//! every shell reads the same way: `exec /bin/sh -c 'eval "$TB_RUN"'`. The login shell has read
//! its startup files by then (PATH from `.profile`/`.bash_profile`/`.cshrc`/`config.fish`,
//! `module load`, conda init), and a `.bash_profile` that does `exec zsh -l` hands the same
//! standard input to zsh, which runs the line instead of silently running nothing.
//!
//! The script's first act is to print [`BEGIN`] on stdout and stderr; whatever comes before it
//! (banners, escape codes, `stty` complaints) is dropped by [`Preamble`], and a command whose
//! stdout lacks the mark did not run: [`finish`] turns that into an error instead of a success.
//!
//! The caller's stdin (a token, a record) is read by the outer `/bin/sh` before the login shell
//! starts (so startup files cannot eat it), passed down in the environment (readable only by the
//! user and root, never argv) and handed to the script on a pipe. What this module leaves out:
//! channels and time limits ([`super::Connection`]).

use base64::Engine;

use super::{Output, SshError};

/// The line a wrapped script prints first on stdout and stderr; everything before it came from
/// the login shell's startup files.
pub const BEGIN: &str = "tunnelbook:begin:5d0c7e1a";

/// Wraps the POSIX `script` so the user's login shell, whichever it is, sets up the environment
/// and `/bin/sh` runs the script; the result is one line safe to send as an SSH `exec` request
/// (or to run with `/bin/sh -c` on this computer). The script's standard input is what the
/// caller writes to the channel (up to EOF); its stdout and stderr begin with [`BEGIN`].
pub fn login_shell(script: &str) -> String {
    // The script proper, run by /bin/sh inside the login environment. With no stdin it runs at
    // the top level (so `$$`, `exec` and `exit` mean what they say); with stdin it reads a pipe.
    // `module` (Lmod, Environment Modules) is a function of the login shell, which /bin/sh does
    // not inherit: define it again from $MODULESHOME, as `module load` in a script expects.
    let run = format!(
        "unset TB_RUN\n\
         tb_in=$TB_STDIN; unset TB_STDIN\n\
         if ! command -v module >/dev/null 2>&1 && [ -n \"${{MODULESHOME:-}}\" ] && [ -r \"$MODULESHOME/init/sh\" ]; then . \"$MODULESHOME/init/sh\" >/dev/null 2>&1; fi\n\
         printf '%s\\n' {BEGIN}; printf '%s\\n' {BEGIN} >&2\n\
         if [ -z \"$tb_in\" ]; then\n\
         unset tb_in; exec </dev/null\n\
         {script}\n\
         else\n\
         printf '%s' \"$tb_in\" | {{ unset tb_in\n\
         {script}\n\
         }}\n\
         fi\n"
    );
    // The outer /bin/sh: keeps stdin away from the startup files, then starts the login shell.
    // `-l` alone is the one login flag every shell takes (csh and tcsh accept it only alone).
    // It waits in `wait` (which a signal interrupts) so that a TERM or HUP sent when the command
    // runs past its time limit ends the whole process group (sshd made it a session leader),
    // not only this shell; detached servers (`setsid`) are in groups of their own. A script
    // killed by a signal ends this shell with the same signal, so the caller sees the signal.
    let outer = format!(
        "tb_in=$(cat; printf x); TB_STDIN=${{tb_in%x}}; unset tb_in\n\
         TB_RUN={}\n\
         export TB_STDIN TB_RUN\n\
         printf '%s\\n' \"exec /bin/sh -c 'eval \\\"\\$TB_RUN\\\"'\" | \"${{SHELL:-/bin/sh}}\" -l &\n\
         tb_job=$!\n\
         trap 'trap - TERM HUP; kill -KILL 0' TERM HUP\n\
         wait \"$tb_job\"; tb_st=$?\n\
         if [ \"$tb_st\" -gt 128 ] && [ \"$tb_st\" -lt 160 ]; then trap - TERM HUP; kill -s \"$(kill -l \"$tb_st\")\" $$; fi\n\
         exit \"$tb_st\"\n",
        super::shell_quote(&run)
    );
    posix_command(&outer)
}

/// The POSIX `script` as one line every login shell passes to `/bin/sh` unchanged, without the
/// login environment and with the channel's stdin left alone (for long-lived relays).
pub fn posix_command(script: &str) -> String {
    let word = base64::engine::general_purpose::STANDARD.encode(script);
    format!("exec /bin/sh -c 'eval \"$(echo {word} | base64 -d)\"'")
}

/// Where the script's own output starts in `buf`: just after the first [`BEGIN`] line, or
/// `None` when the mark is not there (the script never started).
pub fn begin_at(buf: &[u8]) -> Option<usize> {
    let mark = BEGIN.as_bytes();
    buf.windows(mark.len() + 1)
        .position(|w| w.starts_with(mark) && w[mark.len()] == b'\n')
        .map(|at| at + mark.len() + 1)
}

/// Checks that the wrapped script ran and drops the startup files' output before [`BEGIN`].
///
/// # Errors
/// [`SshError::NotRun`] when stdout lacks the mark: the login shell (or a shell its startup files
/// started) exited or ran something else, so the command's exit status would be a lie.
pub fn finish(mut out: Output, destination: &str) -> Result<Output, SshError> {
    let Some(at) = begin_at(&out.stdout) else {
        let said = format!("{}{}", out.stdout_text(), out.stderr_text());
        let said = said.trim();
        let tail: String = said
            .chars()
            .rev()
            .take(400)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        return Err(SshError::NotRun {
            destination: destination.to_string(),
            status: out.status,
            output: if tail.is_empty() {
                "nothing".to_string()
            } else {
                tail
            },
        });
    };
    out.stdout.drain(..at);
    if let Some(at) = begin_at(&out.stderr) {
        out.stderr.drain(..at);
    }
    Ok(out)
}

/// Drops streamed lines until the script's [`BEGIN`] line, per stream (0 stdout, 1 stderr).
#[derive(Debug, Default)]
pub struct Preamble {
    started: [bool; 2],
}

impl Preamble {
    /// Whether the complete `line` (without its newline) of stream `which` is the script's own
    /// output; the [`BEGIN`] line itself and everything before it are not.
    pub fn keep(&mut self, which: usize, line: &str) -> bool {
        let Some(started) = self.started.get_mut(which) else {
            return true;
        };
        if *started {
            return true;
        }
        if line.trim_end_matches('\r').ends_with(BEGIN) {
            *started = true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    #[cfg(unix)]
    use std::process::{Command, Stdio};

    use super::*;

    #[test]
    fn the_command_is_one_word_inside_single_quotes() {
        let cmd = login_shell("echo 'it''s' \"$HOME\" ${X:-y} $(true)\nexit 3");
        let inner = cmd
            .strip_prefix("exec /bin/sh -c 'eval \"$(echo ")
            .and_then(|rest| rest.strip_suffix(" | base64 -d)\"'"))
            .unwrap();
        assert!(
            inner
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)),
            "{inner}"
        );
    }

    #[test]
    fn begin_is_found_after_a_banner_without_newline() {
        let out = Output {
            stdout: format!("banner\x1b[0m{BEGIN}\nhello\n").into_bytes(),
            stderr: format!("stty: not a tty\n{BEGIN}\nwarn\n").into_bytes(),
            status: Some(0),
            signal: None,
        };
        let out = finish(out, "u@h").unwrap();
        assert_eq!(out.stdout_text(), "hello\n");
        assert_eq!(out.stderr_text(), "warn\n");
    }

    #[test]
    fn a_script_that_never_started_is_an_error_even_with_status_0() {
        let out = Output {
            stdout: b"Welcome\n".to_vec(),
            stderr: Vec::new(),
            status: Some(0),
            signal: None,
        };
        let err = finish(out, "u@h").unwrap_err().to_string();
        assert!(err.contains("u@h") && err.contains("Welcome"), "{err}");
    }

    #[test]
    fn preamble_drops_lines_until_begin() {
        let mut p = Preamble::default();
        assert!(!p.keep(0, "banner"));
        assert!(!p.keep(0, BEGIN));
        assert!(p.keep(0, "out"));
        assert!(!p.keep(1, "stty: x"));
        assert!(!p.keep(1, BEGIN));
        assert!(p.keep(1, "err"));
    }

    #[cfg(unix)] // runs this computer's sh, bash, dash… (not under Wine)
    /// Runs the wrapped script with this computer's `shell` as the login shell (as sshd would:
    /// `$SHELL -c COMMAND`) in a throwaway home prepared by `setup`.
    fn run_as(shell: &str, setup: &[(&str, &str)], script: &str, stdin: &str) -> Option<Output> {
        let path = ["/usr/bin", "/bin"]
            .iter()
            .map(|d| format!("{d}/{shell}"))
            .find(|p| std::path::Path::new(p).exists())?;
        let home = tempfile::tempdir().unwrap();
        for (file, text) in setup {
            let f = home.path().join(file);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, text).unwrap();
        }
        let mut child = Command::new(&path)
            .arg("-c")
            .arg(login_shell(script))
            .env_clear()
            .env("HOME", home.path())
            .env("PATH", "/usr/bin:/bin")
            .env("SHELL", &path)
            .current_dir(home.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        Some(Output {
            stdout: out.stdout,
            stderr: out.stderr,
            status: out.status.code().and_then(|c| u32::try_from(c).ok()),
            signal: None,
        })
    }

    #[cfg(unix)]
    const SCRIPT: &str = "read -r line; echo \"got:$line\" \"${TB_PROBE:-unset}\"; \
                          case :$PATH: in *:$HOME/bin:*) echo bin-on-path;; esac; exit 3";

    #[cfg(unix)] // runs this computer's sh, bash, dash… (not under Wine)
    /// Every shell Debian ships that is installed here: the startup file that sets PATH and a
    /// variable in that shell's own syntax is read, the script's stdin arrives, and the exit
    /// status is the script's.
    #[test]
    fn every_login_shell_runs_the_script_with_its_login_environment() {
        let posix = "PATH=$HOME/bin:$PATH; TB_PROBE=profile; export PATH TB_PROBE\n";
        let cases: [(&str, Vec<(&str, &str)>); 7] = [
            ("bash", vec![(".bash_profile", posix)]),
            ("sh", vec![(".profile", posix)]),
            ("dash", vec![(".profile", posix)]),
            ("ksh", vec![(".profile", posix)]),
            ("zsh", vec![(".zprofile", posix)]),
            (
                "tcsh",
                vec![(
                    ".cshrc",
                    "set path = ( $HOME/bin $path )\nsetenv TB_PROBE profile\n",
                )],
            ),
            (
                "fish",
                vec![(
                    ".config/fish/config.fish",
                    "set -gx PATH $HOME/bin $PATH\nset -gx TB_PROBE profile\n",
                )],
            ),
        ];
        let mut ran = Vec::new();
        for (shell, setup) in cases {
            let Some(out) = run_as(shell, &setup, SCRIPT, "secret-line\n") else {
                continue;
            };
            let out = finish(out, shell).unwrap_or_else(|e| panic!("{shell}: {e}"));
            assert_eq!(
                out.stdout_text(),
                "got:secret-line profile\nbin-on-path\n",
                "{shell}: {out:?}"
            );
            assert_eq!(out.status, Some(3), "{shell}");
            ran.push(shell);
        }
        assert!(ran.contains(&"bash") && ran.contains(&"dash"), "{ran:?}");
    }

    #[cfg(unix)] // runs this computer's sh, bash, dash… (not under Wine)
    /// `exec zsh -l` in `.bash_profile` (an HPC habit), a banner with escape codes, `stty`
    /// without a terminal: the script still runs, in zsh's login environment, with clean output.
    #[test]
    fn startup_files_that_print_or_exec_another_shell_do_not_skip_the_script() {
        if !std::path::Path::new("/usr/bin/zsh").exists() {
            return;
        }
        let setup = [
            (
                ".bash_profile",
                "echo \"\x1b[1mWelcome\x1b[0m\"; printf 'no newline'; stty -echo; exec zsh -l\n",
            ),
            (".zprofile", "echo zsh-banner; export TB_PROBE=zprofile\n"),
        ];
        let out = run_as("bash", &setup, "read -r l; echo \"$l $TB_PROBE\"", "x\n").unwrap();
        let out = finish(out, "bash").unwrap();
        assert_eq!(out.stdout_text(), "x zprofile\n");
        assert_eq!(out.status, Some(0));
    }

    #[cfg(unix)] // runs this computer's sh, bash, dash… (not under Wine)
    /// `module load` works in the script when the login environment has Lmod / Environment
    /// Modules (`$MODULESHOME/init/sh`), although `module` is a login-shell function.
    #[test]
    fn module_is_defined_again_for_the_script() {
        let home = tempfile::tempdir().unwrap();
        let init = home.path().join("modules/init");
        std::fs::create_dir_all(&init).unwrap();
        std::fs::write(init.join("sh"), "module() { echo \"loaded $*\"; }\n").unwrap();
        // Debian's lmod (installed for the Lmod zoo user) defines the real `module` and sets
        // BASH_ENV in /etc/profile.d: this user replaces it with the fake one.
        let profile = format!(
            "unset BASH_ENV; unset -f module ml 2>/dev/null\nMODULESHOME={}; export MODULESHOME\n",
            home.path().join("modules").display()
        );
        let out = run_as(
            "bash",
            &[(".bash_profile", &profile)],
            "module load cuda",
            "",
        )
        .unwrap();
        let out = finish(out, "bash").unwrap();
        assert_eq!(out.stdout_text(), "loaded load cuda\n");
    }

    #[cfg(unix)] // runs this computer's sh, bash, dash… (not under Wine)
    /// A script killed by a signal is reported killed, not as exit status 128 + n.
    #[test]
    fn a_signal_that_killed_the_script_is_passed_on() {
        let out = run_as("dash", &[], "kill -KILL $$", "").unwrap();
        let out = finish(out, "dash").unwrap();
        assert_eq!(out.status, None, "{out:?}");
    }

    #[cfg(unix)] // runs this computer's sh, bash, dash… (not under Wine)
    /// A login shell that runs nothing (a startup file that exits) is an error, not status 0.
    #[test]
    fn a_startup_file_that_exits_is_reported() {
        let out = run_as(
            "bash",
            &[(".bash_profile", "echo bye; exit 0\n")],
            "true",
            "",
        )
        .unwrap();
        let err = finish(out, "me@box").unwrap_err().to_string();
        assert!(err.contains("did not run") && err.contains("bye"), "{err}");
    }
}
