//! Turning a profile name into an open connection with the terminal as the prompter.

use std::{io::IsTerminal, path::PathBuf, sync::Arc};

use tunnelbook_core::{
    jupyter::Host,
    profile::{Profile, ProfileStore},
    ssh::{ConnectContext, ConnectOptions, Connection, HostKeyPolicy, KnownHosts},
};

use crate::{Global, prompt::TerminalPrompter};

/// Tunnelbook's state directory: `--home` / `$TUNNELBOOK_HOME`, else the platform config dir.
pub fn home(global: &Global) -> PathBuf {
    global.home.clone().unwrap_or_else(|| {
        directories::ProjectDirs::from("org", "Tunnelbook", "tunnelbook")
            .map(|d| d.config_dir().to_path_buf())
            .unwrap_or_else(|| PathBuf::from(".tunnelbook"))
    })
}

/// Opens a connection to the saved host `name`, asking on the terminal when needed.
pub async fn open(global: &Global, name: &str) -> Result<Connection, String> {
    let home = home(global);
    let chain = ProfileStore::in_home(&home)
        .chain(name)
        .map_err(|e| e.to_string())?;
    let interactive = std::io::stdin().is_terminal() || std::io::stderr().is_terminal();
    let mut policy = HostKeyPolicy::from(global.host_key_policy);
    if policy == HostKeyPolicy::Ask && !interactive {
        policy = HostKeyPolicy::Strict;
    }
    let ctx = ConnectContext {
        prompter: Arc::new(TerminalPrompter { interactive }),
        known_hosts: KnownHosts::new(home.join("known_hosts")),
        secrets: None,
        options: ConnectOptions {
            host_key_policy: policy,
            ..ConnectOptions::default()
        },
    };
    Connection::open(&chain, &ctx)
        .await
        .map_err(|e| e.to_string())
}

/// The connect collaborators for a profile's hops: the terminal prompter and Tunnelbook's
/// known_hosts, with `ask` turned into `strict` when there is no terminal.
pub fn context(global: &Global) -> ConnectContext {
    let home = home(global);
    let interactive = std::io::stdin().is_terminal() || std::io::stderr().is_terminal();
    let mut policy = HostKeyPolicy::from(global.host_key_policy);
    if policy == HostKeyPolicy::Ask && !interactive {
        policy = HostKeyPolicy::Strict;
    }
    ConnectContext {
        prompter: Arc::new(TerminalPrompter { interactive }),
        known_hosts: KnownHosts::new(home.join("known_hosts")),
        secrets: None,
        options: ConnectOptions {
            host_key_policy: policy,
            ..ConnectOptions::default()
        },
    }
}

/// The name that means this computer instead of a saved host.
pub const LOCAL: &str = "local";

/// The saved profile `name` (or a bare one named `local` for this computer).
pub fn profile(global: &Global, name: &str) -> Result<Profile, String> {
    if name == LOCAL {
        return Ok(Profile {
            name: LOCAL.into(),
            host: "localhost".into(),
            ..Profile::default()
        });
    }
    ProfileStore::in_home(&home(global))
        .get(name)
        .map_err(|e| e.to_string())
}

/// The Jupyter host behind `name` (connecting when it is a saved host) and its profile.
pub async fn jupyter_host(global: &Global, name: &str) -> Result<(Host, Profile), String> {
    let profile = profile(global, name)?;
    if name == LOCAL {
        return Ok((Host::Local, profile));
    }
    Ok((Host::Ssh(open(global, name).await?), profile))
}

/// Waits for Ctrl-C or SIGTERM.
pub async fn interrupted() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
