//! Tunnelbook's desktop app: windows, events and thin command adapters over `tunnelbook-core`.
//!
//! Nothing here parses, loops or decides; that is core's job. What is here: the [`AppState`]
//! tauri manages, the dialog-backed [`prompt::AppPrompter`], one command module per area, and
//! the forwarding of core's events to the windows.

pub mod commands;
pub mod download;
pub mod drag_out;
pub mod error;
pub mod launch;
pub mod prompt;
pub mod startup;
pub mod state;
pub mod tray;
pub mod wire;

use std::path::PathBuf;

use tauri::{Manager, Runtime};

pub use crate::state::AppState;

/// Label of the app's own window, the only one a capability grants IPC to.
pub const MAIN_WINDOW: &str = "main";

/// Run before any of the main window's own scripts: its page cannot be prototype-polluted.
///
/// Only the main window gets it. Tauri's `freezePrototype` setting would inject it into every
/// webview, and JupyterLab does not work with a frozen `Object.prototype` (its launcher shows no
/// kernels and notebooks open as JSON), so the notebook windows run without it: they have no IPC
/// to protect (see [`commands::notebook`]).
pub const FREEZE_PROTOTYPE: &str = "Object.freeze(Object.prototype);";

/// Creates the main window from its `tauri.conf.json` entry (which has `"create": false` so that
/// this is the only place it is built), hardened with [`FREEZE_PROTOTYPE`].
///
/// Errors: no `main` window in the configuration, or the window cannot be created.
pub fn create_main_window<R: Runtime, M: Manager<R>>(
    manager: &M,
) -> tauri::Result<tauri::WebviewWindow<R>> {
    let config = manager
        .config()
        .app
        .windows
        .iter()
        .find(|w| w.label == MAIN_WINDOW)
        .cloned()
        .ok_or_else(|| tauri::Error::WindowNotFound)?;
    tauri::WebviewWindowBuilder::from_config(manager, &config)?
        .initialization_script(FREEZE_PROTOTYPE)
        .build()
}

/// Registers every command. Shared by [`run`] and the tests on tauri's mock runtime.
pub fn with_commands<R: Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    builder
        .manage(tray::TrayState::default())
        .manage(commands::tunnels::Forwards::default())
        .manage(drag_out::Prepared::default())
        .invoke_handler(tauri::generate_handler![
            commands::hosts::list_hosts,
            commands::hosts::save_host,
            commands::hosts::delete_host,
            commands::hosts::remember_environment,
            commands::hosts::preview_import,
            commands::hosts::import_hosts,
            commands::hosts::pick_key_file,
            commands::hosts::check_key_file,
            commands::hosts::check_port,
            commands::jupyter::check_environment,
            commands::settings::tray_action,
            commands::connect::start_session,
            commands::connect::live_session,
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
            commands::notebook::browser_link,
            commands::jupyter::list_environments,
            commands::jupyter::install_jupyter,
            commands::jupyter::launch_notebook,
            commands::jupyter::restart_notebook,
            commands::jupyter::reconnect_notebook,
            commands::jupyter::list_servers,
            commands::jupyter::attach_server,
            commands::jupyter::stop_server,
            commands::tunnels::list_forwards,
            commands::tunnels::save_forward,
            commands::tunnels::delete_forward,
            commands::tunnels::set_forward_enabled,
            commands::tunnels::start_forwards,
            commands::tunnels::start_one_off,
            commands::tunnels::stop_forward,
            commands::settings::get_settings,
            commands::settings::save_settings,
            commands::settings::tray_menu,
            commands::settings::app_paths,
            commands::settings::open_logs_folder,
            commands::settings::forget_all_secrets,
            commands::settings::quit_app,
            // Terminal tabs (issue 23).
            commands::terminal::open_terminal,
            commands::terminal::terminal_input,
            commands::terminal::resize_terminal,
            commands::terminal::close_terminal,
            commands::terminal::check_my_terminal,
            // The Files view (SFTP over the host's connection).
            commands::files::list_files,
            commands::files::make_folder,
            commands::files::rename_file,
            commands::files::delete_file,
            commands::files::upload_files,
            commands::files::upload_paths,
            commands::files::download_file,
            commands::files::drag_out,
            commands::projects::pick_notebook,
            commands::projects::open_local_notebook,
            commands::projects::bring_back_now,
            commands::projects::stop_syncing,
            commands::projects::projects,
            commands::projects::take_requested_notebook,
            // SLURM hosts (issue 20).
            commands::slurm::slurm_cluster,
            commands::slurm::check_slurm_request,
            commands::slurm::launch_slurm_notebook,
            commands::slurm::stop_slurm_notebook,
            commands::slurm::list_slurm_jobs,
            commands::slurm::open_slurm_job,
            commands::slurm::stop_slurm_job,
        ])
}

/// Where Tunnelbook keeps its files: the same place as the CLI (`$TUNNELBOOK_HOME`, else the OS
/// config directory), so hosts and known host keys are shared.
pub fn home_dir() -> Option<PathBuf> {
    tunnelbook_core::profile::home_dir().ok()
}

/// Logs go to stderr and to `logs/tunnelbook.log` in Tunnelbook's home (shown in Settings).
fn init_logging(home: &std::path::Path) {
    use tracing_subscriber::fmt::writer::MakeWriterExt;
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,russh=warn"))
    };
    let dir = tunnelbook_core::settings::logs_dir(home);
    let file = std::fs::create_dir_all(&dir).and_then(|()| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("tunnelbook.log"))
    });
    match file {
        Ok(file) => tracing_subscriber::fmt()
            .with_env_filter(filter())
            .with_ansi(false)
            .with_writer(std::io::stderr.and(std::sync::Mutex::new(file)))
            .init(),
        Err(e) => {
            tracing_subscriber::fmt().with_env_filter(filter()).init();
            tracing::warn!(error = %e, dir = %dir.display(), "cannot write a log file");
        }
    }
}

/// Starts the app; returns when "Quit" is chosen (closing the window keeps it in the tray).
pub fn run() {
    let Some(home) = home_dir() else {
        eprintln!("no home directory: set TUNNELBOOK_HOME");
        std::process::exit(2);
    };
    init_logging(&home);
    startup::report_panics(tunnelbook_core::settings::logs_dir(&home).join("tunnelbook.log"));
    tracing::info!(version = env!("CARGO_PKG_VERSION"), home = %home.display(), "Tunnelbook starting");
    let instance_home = home.clone();
    // single-instance first: a second launch must exit before anything else starts.
    let builder = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, argv, cwd| {
            // "Open with Tunnelbook" on a notebook while the app runs.
            commands::projects::requested(app, &argv, std::path::Path::new(&cwd));
            tray::show_main(app);
        }))
        .plugin(
            tauri_plugin_window_state::Builder::default()
                .with_filter(|label| label == MAIN_WINDOW)
                .build(),
        )
        .plugin(tauri_plugin_opener::init())
        // "Open in my terminal" (issue 23): only the programs capabilities/main.json scopes.
        .plugin(tauri_plugin_shell::init())
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            None,
        ))
        .manage(AppState::new(&home))
        .setup(move |app| {
            // Past the single-instance plugin with another app on this home: the plugin could
            // not reach it (no D-Bus). Say so and go, rather than run a second app beside it.
            match startup::claim_instance(&instance_home) {
                Ok(startup::Instance::First(lock)) => {
                    app.manage(startup::InstanceLock(lock));
                }
                Ok(startup::Instance::Second) => {
                    tracing::warn!("{}", startup::ALREADY_RUNNING);
                    eprintln!("{}", startup::ALREADY_RUNNING);
                    use tauri_plugin_dialog::DialogExt;
                    app.dialog()
                        .message(startup::ALREADY_RUNNING)
                        .title("Tunnelbook")
                        .show(|_| std::process::exit(0));
                    return Ok(());
                }
                Err(e) => tracing::warn!(error = %e, "cannot check for another running app"),
            }
            // A notebook on the command line (the desktop's "Open with Tunnelbook").
            let args: Vec<String> = std::env::args().collect();
            let cwd = std::env::current_dir().unwrap_or_default();
            commands::projects::requested(app.handle(), &args, &cwd);
            // Drag-out copies of a run that did not quit cleanly.
            drag_out::clean(app.handle());
            create_main_window(app.handle())?;
            Ok(tray::setup(app.handle())?)
        })
        // Closing the main window keeps the app (sessions, tunnels) running in the tray, or quits
        // (asking about running notebooks) where no tray is shown (tray::on_main_close).
        .on_window_event(|window, event| {
            if let tauri::WindowEvent::CloseRequested { api, .. } = event
                && window.label() == MAIN_WINDOW
            {
                api.prevent_close();
                tray::on_main_close(window.app_handle());
            }
        });
    if let Err(e) = with_commands(builder).run(tauri::generate_context!()) {
        tracing::error!(error = %e, "the app stopped with an error");
        let log = tunnelbook_core::settings::logs_dir(&home).join("tunnelbook.log");
        if let Some(text) = startup::explain(&e.to_string(), &log) {
            startup::cannot_start(&text);
        }
        std::process::exit(1);
    }
}
