//! `tunnelbook`: the command line, a thin front over tunnelbook-core.
//!
//! Placeholder skeleton carrying only `hosts`; the lead's clap skeleton replaces it.

mod hosts;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

/// Tunnelbook: JupyterLab on a free remote GPU, in one command.
#[derive(Debug, Parser)]
#[command(name = "tunnelbook", version)]
struct Cli {
    /// Tunnelbook's home (saved hosts); default the platform configuration directory.
    #[arg(long, env = "TUNNELBOOK_HOME", global = true, value_name = "DIR")]
    home: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Saved hosts.
    #[command(subcommand)]
    Hosts(hosts::HostsCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let home = match cli.home.map_or_else(tunnelbook_core::profile::home_dir, Ok) {
        Ok(home) => home,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Hosts(cmd) => hosts::run(cmd, &home, &mut std::io::stdout()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
