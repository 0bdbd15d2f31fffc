//! `tunnelbook`: the command line over tunnelbook-core. Every verb parses its arguments, calls
//! core and prints; nothing here decides or loops on its own.

mod connect;
mod envs;
mod exec;
mod files;
mod forward;
mod gpus;
mod hosts;
mod open;
mod prompt;
mod servers;
mod shell;
mod slurm;
mod ttymodes;
mod up;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use tunnelbook_core::ssh::HostKeyPolicy;

/// Remote JupyterLab on a free GPU, one command away.
#[derive(Debug, Parser)]
#[command(name = "tunnelbook", version, about)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options that apply to every verb.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// What to do with a host key no known_hosts file lists (like OpenSSH's
    /// StrictHostKeyChecking). Without a terminal, `ask` behaves as `strict`. A changed key is
    /// refused under every policy. Default: the app's setting (settings.toml), else `ask`.
    #[arg(long, value_enum, global = true)]
    host_key_policy: Option<PolicyArg>,
    /// Where Tunnelbook keeps its state (default: the platform's config dir).
    #[arg(long, env = "TUNNELBOOK_HOME", global = true, hide_env_values = true)]
    home: Option<PathBuf>,
    /// Keep the passwords and passphrases entered now in the OS keychain, so later connections
    /// need none (remove them with `tunnelbook hosts forget-secret`).
    #[arg(long, global = true)]
    remember: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum PolicyArg {
    Ask,
    AcceptNew,
    Strict,
}

impl From<PolicyArg> for HostKeyPolicy {
    fn from(p: PolicyArg) -> Self {
        match p {
            PolicyArg::Ask => HostKeyPolicy::Ask,
            PolicyArg::AcceptNew => HostKeyPolicy::AcceptNew,
            PolicyArg::Strict => HostKeyPolicy::Strict,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a command on a saved host through its login shell; exits with the command's status.
    Exec(exec::ExecArgs),
    /// Forward ports over one connection until interrupted (like `ssh -N -L/-R/-D`).
    Forward(forward::ForwardArgs),
    /// Show a host's GPUs and who is using them (`local`: this computer), free ones marked.
    Gpus(gpus::GpusArgs),
    /// Saved hosts: add, list, show, edit, remove, forget secrets, import ~/.ssh/config.
    #[command(subcommand)]
    Hosts(Box<hosts::HostsCommand>),
    /// Start JupyterLab on a free GPU and forward it here; prints the URL, keeps the tunnel
    /// open until interrupted (`local`: this computer).
    Up(up::UpArgs),
    /// List the Jupyter servers running on a host.
    Ls(servers::LsArgs),
    /// Reattach a tunnel to a running Jupyter server; prints the URL.
    Attach(servers::AttachArgs),
    /// Stop a Jupyter server (or all Tunnelbook started).
    Down(servers::DownArgs),
    /// List the Python environments of a host and whether they have JupyterLab.
    Envs(envs::EnvsArgs),
    /// Create a venv with JupyterLab and ipykernel on a host.
    InstallJupyter(envs::InstallArgs),
    /// An interactive login shell on a saved host, like `ssh NAME`; exits with its status.
    Shell(shell::ShellArgs),
    /// Open a local notebook on a host's GPU: its folder goes up over SFTP, JupyterLab starts
    /// there, and each save on the host comes back here until interrupted.
    Open(open::OpenArgs),
    /// A host's files over SFTP: ls, put, get, mv, rm, mkdir (folders whole, pipelined).
    Files(files::FilesArgs),
}

fn main() -> ExitCode {
    tunnelbook_core::memory::tune_allocator();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    // `shell` and `forward` run on one thread, like ssh's poll loop: a keystroke and its echo
    // cross no thread, and forwarded bytes pass from the SSH session task to the socket without
    // a wake-up of another worker (docs/PERFORMANCE.md, issues 19 and 23).
    let runtime = match &cli.command {
        Command::Shell(_) | Command::Forward(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        _ => tokio::runtime::Runtime::new(),
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Exec(args) => exec::run(&cli.global, args).await,
            Command::Forward(args) => forward::run(&cli.global, args).await,
            Command::Gpus(args) => gpus::run(&cli.global, args).await,
            Command::Hosts(cmd) => hosts::main(&connect::home(&cli.global), *cmd),
            Command::Up(args) => up::run(&cli.global, args).await,
            Command::Ls(args) => servers::ls(&cli.global, args).await,
            Command::Attach(args) => servers::attach(&cli.global, args).await,
            Command::Down(args) => servers::down(&cli.global, args).await,
            Command::Envs(args) => envs::envs(&cli.global, args).await,
            Command::InstallJupyter(args) => envs::install(&cli.global, args).await,
            Command::Shell(args) => shell::run(&cli.global, args).await,
            Command::Open(args) => open::run(&cli.global, args).await,
            Command::Files(args) => files::run(&cli.global, args).await,
        }
    })
}
