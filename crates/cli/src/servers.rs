//! `tunnelbook ls|attach|down NAME`: the Jupyter servers running on a host.

use std::{io::Write, process::ExitCode};

use tunnelbook_core::{
    jupyter::{self, JupyterServer, TokenStore},
    tunnel::Listen,
};

use crate::{Global, connect};

/// Arguments of `ls`.
#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Saved host name, or `local`.
    name: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Also ask Jupyter itself (`jupyter server list`, about a second more): finds servers
    /// started with a runtime directory of their own.
    #[arg(long)]
    all: bool,
}

/// Arguments of `attach`.
#[derive(Debug, clap::Args)]
pub struct AttachArgs {
    /// Saved host name, or `local`.
    name: String,
    /// Server id (`tb-…`, `pid-N` or a pid); default: the newest Tunnelbook started.
    server: Option<String>,
    /// Local port of the forward (default: a free one).
    #[arg(long)]
    port: Option<u16>,
    /// Print JSON (`url`, `localPort`, `serverId`) instead of the URL.
    #[arg(long)]
    json: bool,
}

/// Arguments of `down`.
#[derive(Debug, clap::Args)]
pub struct DownArgs {
    /// Saved host name, or `local`.
    name: String,
    /// Server id; default: the newest Tunnelbook started.
    #[arg(conflicts_with = "all")]
    server: Option<String>,
    /// Stop every server Tunnelbook started on the host.
    #[arg(long)]
    all: bool,
}

/// Tokens of servers Tunnelbook started are kept in the OS keychain, when there is one.
fn tokens(name: &str) -> TokenStore {
    TokenStore {
        store: crate::hosts::system_keychain().ok(),
        profile: name.to_string(),
    }
}

fn describe(s: &JupyterServer) -> String {
    format!(
        "{:<14} {:>7}  {:<40} {:<42} {}",
        s.id,
        s.pid,
        s.endpoint.to_string(),
        s.gpu.as_deref().unwrap_or("-"),
        s.env.as_deref().or(s.root_dir.as_deref()).unwrap_or("-")
    )
}

/// Lists the running servers.
pub async fn ls(global: &Global, args: LsArgs) -> ExitCode {
    if crate::slurm::is_slurm(global, &args.name) {
        return crate::slurm::ls(global, &args.name, args.json).await;
    }
    let (host, profile) = match connect::jupyter_host(global, &args.name).await {
        Ok(h) => h,
        Err(e) => return connect::unreachable(e),
    };
    let env = profile.environment.as_deref();
    let result = if args.all {
        jupyter::list_all(&host, env).await
    } else {
        jupyter::list(&host, env).await
    };
    if let Some(conn) = host.connection() {
        conn.close().await;
    }
    match result {
        Ok(servers) if args.json => {
            println!("{}", serde_json::to_string(&servers).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Ok(servers) => {
            if servers.is_empty() {
                eprintln!("no Jupyter server runs on {}", host.name());
            } else {
                println!(
                    "{:<14} {:>7}  {:<40} {:<42} ENV",
                    "ID", "PID", "ENDPOINT", "GPU"
                );
                for s in &servers {
                    println!("{}", describe(s));
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tunnelbook: {e}");
            ExitCode::from(1)
        }
    }
}

/// Reattaches a tunnel to a running server and keeps it open until interrupted.
pub async fn attach(global: &Global, args: AttachArgs) -> ExitCode {
    if crate::slurm::is_slurm(global, &args.name) {
        return crate::slurm::attach(
            global,
            &args.name,
            args.server.as_deref(),
            args.port,
            args.json,
        )
        .await;
    }
    let (host, profile) = match connect::jupyter_host(global, &args.name).await {
        Ok(h) => h,
        Err(e) => return connect::unreachable(e),
    };
    let env = profile.environment.as_deref();
    let attached = async {
        // Without --port: the port this server had last time, when it is free.
        let book = jupyter::PortBook::in_home(&connect::home(global));
        let (server, attached) = jupyter::reattach(
            &host,
            args.server.as_deref(),
            &tokens(&profile.name),
            env,
            |server| {
                args.port
                    .map(Listen::loopback)
                    .unwrap_or_else(|| book.listen(&profile.name, &server.id))
            },
        )
        .await?;
        if let Err(e) = book.remember(&profile.name, &server.id, attached.local_addr.port()) {
            tracing::debug!(error = %e, "cannot remember the notebook's local port");
        }
        Ok::<_, jupyter::JupyterError>((server, attached))
    }
    .await;
    let (server, attached) = match attached {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tunnelbook: {e}");
            return ExitCode::from(1);
        }
    };
    let line = if args.json {
        serde_json::json!({
            "url": attached.url,
            "localPort": attached.local_addr.port(),
            "serverId": server.id,
            "remotePid": server.pid,
        })
        .to_string()
    } else {
        attached.url.clone()
    };
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    eprintln!(
        "attached to {} (pid {}); Ctrl-C closes the tunnel",
        server.id, server.pid
    );
    connect::interrupted().await;
    if let Some(t) = attached.tunnel {
        t.close().await;
    }
    if let Some(conn) = host.connection() {
        conn.close().await;
    }
    ExitCode::SUCCESS
}

/// Stops one server (or all Tunnelbook started).
pub async fn down(global: &Global, args: DownArgs) -> ExitCode {
    if crate::slurm::is_slurm(global, &args.name) {
        return crate::slurm::down(global, &args.name, args.server.as_deref()).await;
    }
    let (host, profile) = match connect::jupyter_host(global, &args.name).await {
        Ok(h) => h,
        Err(e) => return connect::unreachable(e),
    };
    let env = profile.environment.as_deref();
    let tokens = tokens(&profile.name);
    let result = async {
        let servers = jupyter::list(&host, env).await?;
        let chosen: Vec<JupyterServer> = if args.all {
            servers.into_iter().filter(|s| s.managed).collect()
        } else {
            vec![jupyter::find(&host.name(), &servers, args.server.as_deref())?.clone()]
        };
        for server in &chosen {
            let token = jupyter::token_for(&host, server, &tokens, env).await.ok();
            jupyter::stop(&host, server, token.as_ref(), &tokens).await?;
            eprintln!("stopped {} (pid {})", server.id, server.pid);
        }
        Ok::<_, jupyter::JupyterError>(chosen.len())
    }
    .await;
    if let Some(conn) = host.connection() {
        conn.close().await;
    }
    match result {
        Ok(0) => {
            eprintln!("no Jupyter server of Tunnelbook runs on {}", host.name());
            ExitCode::SUCCESS
        }
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tunnelbook: {e}");
            ExitCode::from(1)
        }
    }
}
