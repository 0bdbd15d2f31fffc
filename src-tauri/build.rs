//! Declares the app's commands to tauri's ACL: with an app manifest, every app command needs a
//! capability that allows it, so a window no capability names (the `jupyter-*` notebook windows)
//! can call nothing even from a local origin. The list must match `with_commands` in lib.rs.

const COMMANDS: &[&str] = &[
    "list_hosts",
    "save_host",
    "delete_host",
    "start_session",
    "live_session",
    "cancel_session",
    "answer_prompt",
    "run_command",
    "gpu_snapshot",
    "watch_gpus",
    "unwatch_gpus",
    "list_sessions",
    "close_session",
    "open_notebook",
    "open_in_browser",
    "browser_link",
    "list_forwards",
    "save_forward",
    "delete_forward",
    "set_forward_enabled",
    "start_forwards",
    "start_one_off",
    "stop_forward",
    "get_settings",
    "save_settings",
    "tray_menu",
    "app_paths",
    "open_logs_folder",
    "forget_all_secrets",
    "quit_app",
    "list_environments",
    "install_jupyter",
    "launch_notebook",
    "restart_notebook",
    "reconnect_notebook",
    "list_servers",
    "attach_server",
    "stop_server",
    "remember_environment",
    "preview_import",
    "import_hosts",
    "pick_key_file",
    "check_key_file",
    "check_port",
    "check_environment",
    "tray_action",
    // Terminal tabs (issue 23).
    "open_terminal",
    "terminal_input",
    "resize_terminal",
    "close_terminal",
    "check_my_terminal",
    // The Files view.
    "list_files",
    "make_folder",
    "rename_file",
    "delete_file",
    "upload_files",
    "upload_paths",
    "download_file",
    "drag_out",
    // "Open notebook…".
    "pick_notebook",
    "open_local_notebook",
    "bring_back_now",
    "stop_syncing",
    "projects",
    "take_requested_notebook",
    // SLURM hosts (issue 20).
    "slurm_cluster",
    "check_slurm_request",
    "launch_slurm_notebook",
    "stop_slurm_notebook",
    "list_slurm_jobs",
    "open_slurm_job",
    "stop_slurm_job",
];

fn main() {
    let attributes = tauri_build::Attributes::new()
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(e) = tauri_build::try_build(attributes) {
        eprintln!("tauri build script failed: {e:#}");
        std::process::exit(1);
    }
}
