//! `tunnelbook forward NAME -L … -R … -D …`: runs forwards until interrupted, like `ssh -N`.

use std::process::ExitCode;

use tunnelbook_core::{profile::ProfileStore, tunnel::ForwardSpec};

use crate::{Global, connect};

/// Arguments of `forward`.
#[derive(Debug, clap::Args)]
pub struct ForwardArgs {
    /// Saved host name. Its enabled saved forwarding rules start too.
    name: String,
    /// Local forward `[BIND:]PORT:HOST:HOSTPORT` (HOST may be a remote Unix socket path, with
    /// HOSTPORT 0). PORT 0 picks a free port.
    #[arg(short = 'L', value_name = "[BIND:]PORT:HOST:HOSTPORT")]
    local: Vec<String>,
    /// Remote forward `[BIND:]PORT:HOST:HOSTPORT`: the server listens on BIND:PORT.
    #[arg(short = 'R', value_name = "[BIND:]PORT:HOST:HOSTPORT")]
    remote: Vec<String>,
    /// SOCKS5 proxy `[BIND:]PORT` whose connections leave from the server.
    #[arg(short = 'D', value_name = "[BIND:]PORT")]
    dynamic: Vec<String>,
}

fn specs(args: &ForwardArgs) -> Result<Vec<ForwardSpec>, String> {
    let parsed = args
        .local
        .iter()
        .map(|s| ForwardSpec::parse_local(s))
        .chain(args.remote.iter().map(|s| ForwardSpec::parse_remote(s)))
        .chain(args.dynamic.iter().map(|s| ForwardSpec::parse_dynamic(s)));
    parsed
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

/// Starts every forward, prints where each listens, and waits for Ctrl-C or the connection to end.
pub async fn run(global: &Global, args: ForwardArgs) -> ExitCode {
    let mut wanted = match specs(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tunnelbook: {e}");
            return ExitCode::from(2);
        }
    };
    let saved = ProfileStore::in_home(&connect::home(global)).get(&args.name);
    if let Ok(profile) = &saved {
        wanted.extend(
            profile
                .forwards
                .iter()
                .filter(|r| r.enabled)
                .map(|r| r.spec.clone()),
        );
    }
    if wanted.is_empty() {
        eprintln!(
            "tunnelbook: nothing to forward: give -L, -R or -D, or save forwarding rules for {}",
            args.name
        );
        return ExitCode::from(2);
    }
    let conn = match connect::open(global, &args.name).await {
        Ok(c) => c,
        Err(e) => return connect::unreachable(e),
    };
    // The server's forwarding policy, probed now (about 2 s): a server that forbids forwarding
    // is named with its setting before anyone connects through the listeners.
    if let Ok(policy) =
        tokio::time::timeout(std::time::Duration::from_secs(3), conn.forwarding()).await
        && !policy.tcp
    {
        eprintln!(
            "tunnelbook: {}: {}; connections through these forwards will be refused",
            args.name,
            policy.describe()
        );
    }
    let mut tunnels = Vec::new();
    for spec in &wanted {
        match spec.start(&conn).await {
            Ok(t) => {
                println!("forwarding {}", t.description());
                tunnels.push(t);
            }
            Err(e) => {
                eprintln!("tunnelbook: {e}");
                return ExitCode::from(1);
            }
        }
    }
    let mut events = conn.events();
    let code = tokio::select! {
        _ = tokio::signal::ctrl_c() => ExitCode::SUCCESS,
        ev = async { loop {
            match events.recv().await {
                Ok(tunnelbook_core::ssh::ConnectionState::Disconnected { reason }) => break reason,
                Ok(_) => continue,
                Err(_) => break "connection closed".to_string(),
            }
        } } => {
            eprintln!("tunnelbook: connection lost: {ev}");
            ExitCode::from(255)
        }
    };
    for t in tunnels {
        t.close().await;
    }
    conn.close().await;
    code
}
