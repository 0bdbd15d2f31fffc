//! Turning a profile name into an open connection with the terminal as the prompter.

use std::{io::IsTerminal, path::PathBuf, process::ExitCode, sync::Arc};

use tunnelbook_core::{
    jupyter::Host,
    profile::{Profile, ProfileStore},
    settings::SettingsStore,
    ssh::{ConnectContext, ConnectOptions, Connection, HostKeyPolicy, KnownHosts},
};

use crate::{Global, prompt::TerminalPrompter};

/// Prints why the host could not be reached (or the connection failed) and returns ssh's exit
/// status for that, 255.
pub fn unreachable(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("tunnelbook: {e}");
    ExitCode::from(255)
}

/// When a GPU counts as free: the thresholds saved in the settings (`gpuFree`).
pub fn free_rule(global: &Global) -> tunnelbook_core::gpu::FreeRule {
    SettingsStore::in_home(&home(global))
        .load_or_default()
        .gpu_free
}

/// Tunnelbook's state directory: `--home` / `$TUNNELBOOK_HOME`, else the platform config dir.
pub fn home(global: &Global) -> PathBuf {
    global.home.clone().unwrap_or_else(|| {
        tunnelbook_core::profile::home_dir().unwrap_or_else(|_| PathBuf::from(".tunnelbook"))
    })
}

/// Opens a connection to the saved host `name`, asking on the terminal when needed.
pub async fn open(global: &Global, name: &str) -> Result<Connection, String> {
    let chain = ProfileStore::in_home(&home(global))
        .chain(name)
        .map_err(|e| e.to_string())?;
    Connection::open(&chain, &context(global))
        .await
        .map_err(|e| e.to_string())
}

/// The connect collaborators: the terminal prompter, Tunnelbook's known_hosts (with `ask`
/// turned into `strict` when there is no terminal) and the OS keychain when there is one.
pub fn context(global: &Global) -> ConnectContext {
    let home = home(global);
    let interactive = std::io::stdin().is_terminal() || std::io::stderr().is_terminal();
    // The flag wins; otherwise the default host-key policy chosen in the app's settings.
    let mut policy = global.host_key_policy.map_or_else(
        || {
            SettingsStore::in_home(&home)
                .load_or_default()
                .host_key_policy
        },
        HostKeyPolicy::from,
    );
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
    if global.remember && secrets.is_none() {
        eprintln!("tunnelbook: no OS keychain is available, so --remember cannot keep secrets");
    }
    let remember = global.remember && secrets.is_some();
    ConnectContext {
        prompter: Arc::new(TerminalPrompter {
            interactive,
            remember,
        }),
        known_hosts: KnownHosts::new(home.join("known_hosts")),
        secrets,
        options: ConnectOptions {
            host_key_policy: policy,
            host_key_policy_forced: global.host_key_policy.is_some(),
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
