//! `tunnelbook exec NAME -- CMD...`

use std::{io::Write, process::ExitCode};

use tunnelbook_core::ssh::ExecLimits;

use crate::{Global, connect};

/// Arguments of `exec`.
#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// Saved host name.
    name: String,
    /// The command and its arguments (after `--`): a POSIX shell command line, run in the login
    /// environment whatever the login shell (no time limit).
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

/// Runs the command and mirrors its output and exit status (255 for connection errors, as ssh).
pub async fn run(global: &Global, args: ExecArgs) -> ExitCode {
    let conn = match connect::open(global, &args.name).await {
        Ok(c) => c,
        Err(e) => return connect::unreachable(e),
    };
    let out = match conn
        .exec_limited(&args.command.join(" "), &[], ExecLimits::USER)
        .await
    {
        Ok(out) => out,
        Err(e) => return connect::unreachable(e),
    };
    let _ = std::io::stdout().write_all(&out.stdout);
    let _ = std::io::stderr().write_all(&out.stderr);
    conn.close().await;
    match (out.status, out.signal) {
        (Some(code), _) => ExitCode::from(u8::try_from(code).unwrap_or(255)),
        (None, Some(signal)) => {
            eprintln!("tunnelbook: remote command killed by signal {signal}");
            ExitCode::from(255)
        }
        (None, None) => ExitCode::from(255),
    }
}
