//! Turning a profile name into an open connection with the terminal as the prompter.

use std::{io::IsTerminal, path::PathBuf, sync::Arc};

use tunnelbook_core::{
    profile::ProfileStore,
    ssh::{ConnectContext, ConnectOptions, Connection, HostKeyPolicy, KnownHosts},
};

use crate::{Global, prompt::TerminalPrompter};

/// Tunnelbook's state directory: `--home` / `$TUNNELBOOK_HOME`, else the platform config dir.
pub fn home(global: &Global) -> PathBuf {
    global.home.clone().unwrap_or_else(|| {
        tunnelbook_core::profile::home_dir().unwrap_or_else(|_| PathBuf::from(".tunnelbook"))
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
    // No keychain (headless Linux without a Secret Service): say so, and ask each time.
    let secrets = match crate::hosts::system_keychain() {
        Ok(store) => Some(store),
        Err(e) => {
            tracing::info!("{e}; secrets will be asked each time");
            None
        }
    };
    let remember = global.remember && secrets.is_some();
    if global.remember && secrets.is_none() {
        eprintln!("tunnelbook: no OS keychain is available, so --remember cannot keep secrets");
    }
    let ctx = ConnectContext {
        prompter: Arc::new(TerminalPrompter { interactive, remember }),
        known_hosts: KnownHosts::new(home.join("known_hosts")),
        secrets,
        options: ConnectOptions {
            host_key_policy: policy,
            ..ConnectOptions::default()
        },
    };
    Connection::open(&chain, &ctx)
        .await
        .map_err(|e| e.to_string())
}
