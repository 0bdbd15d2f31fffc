//! Tunnelbook's desktop app: windows, events and thin command adapters over `tunnelbook-core`.
//!
//! Nothing here parses, loops or decides; that is core's job. What is here: the [`AppState`]
//! tauri manages, the dialog-backed [`prompt::AppPrompter`], one command module per area, and
//! [`adapter`] for the core modules that have not landed yet.

pub mod adapter;
pub mod commands;
pub mod error;
pub mod launch;
pub mod prompt;
pub mod state;
pub mod wire;

use std::path::PathBuf;

use tauri::{Manager, Runtime};

pub use crate::state::AppState;

/// Label of the app's own window, the only one a capability grants IPC to.
pub const MAIN_WINDOW: &str = "main";

/// Registers every command. Shared by [`run`] and the tests on tauri's mock runtime.
pub fn with_commands<R: Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    builder.invoke_handler(tauri::generate_handler![
        commands::hosts::list_hosts,
        commands::hosts::save_host,
        commands::hosts::delete_host,
        commands::connect::start_session,
        commands::connect::cancel_session,
        commands::connect::answer_prompt,
        commands::connect::run_command,
        commands::gpus::gpu_snapshot,
        commands::gpus::watch_gpus,
        commands::gpus::unwatch_gpus,
        commands::sessions::list_sessions,
        commands::sessions::close_session,
        commands::notebook::open_notebook,
        commands::notebook::open_in_browser,
        commands::jupyter::list_environments,
        commands::jupyter::install_jupyter,
        commands::jupyter::launch_notebook,
        commands::jupyter::list_servers,
        commands::jupyter::attach_server,
        commands::jupyter::stop_server,
    ])
}

/// Where Tunnelbook keeps its files: the same place as the CLI (`$TUNNELBOOK_HOME`, else the OS
/// config directory), so hosts and known host keys are shared.
pub fn home_dir() -> Option<PathBuf> {
    tunnelbook_core::profile::home_dir().ok()
}

/// Starts the app; returns when the last window closes.
pub fn run() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let Some(home) = home_dir() else {
        tracing::error!("no home directory: set TUNNELBOOK_HOME");
        std::process::exit(2);
    };
    // single-instance first: a second launch must exit before anything else starts.
    let builder = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| {
            if let Some(window) = app.get_webview_window(MAIN_WINDOW) {
                let _ = window.unminimize();
                let _ = window.show();
                let _ = window.set_focus();
            }
        }))
        .plugin(
            tauri_plugin_window_state::Builder::default()
                .with_filter(|label| label == MAIN_WINDOW)
                .build(),
        )
        .plugin(tauri_plugin_opener::init())
        .manage(AppState::new(&home));
    if let Err(e) = with_commands(builder).run(tauri::generate_context!()) {
        tracing::error!(error = %e, "the app stopped with an error");
        std::process::exit(1);
    }
}
