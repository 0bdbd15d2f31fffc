//! Settings, the tray model, the logs folder, forgetting secrets and quitting.

use tauri::{AppHandle, Manager, Runtime, State};
/// Where the app keeps its files (core's), for the Settings screen.
pub use tunnelbook_core::settings::AppPaths;
use tunnelbook_core::{
    secret::KeychainStore,
    settings::{self, Settings, SettingsStore},
};

use crate::{
    error::{AppError, ErrorCode},
    state::AppState,
    tray::{self, TrayMenu},
    wire::SessionStatus,
};

fn store(state: &AppState) -> SettingsStore {
    SettingsStore::in_home(state.home())
}

/// The saved settings (the defaults when none were saved).
#[tauri::command]
pub async fn get_settings(state: State<'_, AppState>) -> Result<Settings, AppError> {
    Ok(store(&state).load()?)
}

/// Validates and saves `settings`; applies "start at login" when it changed. Returns what was
/// saved.
#[tauri::command]
pub async fn save_settings<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    settings: Settings,
) -> Result<Settings, AppError> {
    let store = store(&state);
    let before = store.load_or_default();
    store.save(&settings)?;
    if before.start_at_login != settings.start_at_login {
        apply_autostart(&app, settings.start_at_login)?;
    }
    tray::refresh(&app);
    Ok(settings)
}

fn apply_autostart<R: Runtime>(app: &AppHandle<R>, on: bool) -> Result<(), AppError> {
    // Absent on tauri's mock runtime in tests: the setting is still saved.
    let Some(manager) = app.try_state::<tauri_plugin_autostart::AutoLaunchManager>() else {
        return Ok(());
    };
    let result = if on {
        manager.enable()
    } else {
        manager.disable()
    };
    result.map_err(|e| {
        AppError::new(
            ErrorCode::Internal,
            format!("the setting was saved, but start at login could not be changed: {e}"),
        )
    })
}

/// The tray menu as a plain model (what the tray shows now).
#[tauri::command]
pub async fn tray_menu<R: Runtime>(app: AppHandle<R>) -> Result<TrayMenu, AppError> {
    Ok(tray::current_model(&app))
}

/// Carries out the tray menu item `id` (an `action` entry's id from `tray_menu`) exactly as a
/// click on it in the OS tray does. The OS tray cannot be clicked by an automated test (Xvfb has
/// no tray host), so the end-to-end tests click through this.
#[tauri::command]
pub async fn tray_action<R: Runtime>(app: AppHandle<R>, id: String) -> Result<(), AppError> {
    let action = tray::TrayAction::parse(&id)
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, format!("no tray menu item {id}")))?;
    tray::perform(app, action).await
}

/// Where the app's files and logs are.
#[tauri::command]
pub async fn app_paths(state: State<'_, AppState>) -> Result<AppPaths, AppError> {
    Ok(AppPaths::of(state.home()))
}

/// Opens the logs folder in the file manager.
#[tauri::command]
pub async fn open_logs_folder<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
) -> Result<(), AppError> {
    use tauri_plugin_opener::OpenerExt;
    let dir = settings::logs_dir(state.home());
    std::fs::create_dir_all(&dir).map_err(|e| {
        AppError::new(
            ErrorCode::Internal,
            format!("cannot create {}: {e}", dir.display()),
        )
    })?;
    app.opener()
        .open_path(dir.display().to_string(), None::<&str>)
        .map_err(|e| AppError::new(ErrorCode::Internal, format!("cannot open the folder: {e}")))
}

/// Removes every secret Tunnelbook remembered in the OS keychain (passwords, key passphrases,
/// Jupyter tokens): of every saved host, of hosts deleted since, and entries of older versions
/// (core's `ProfileStore::forget_all_secrets`). Returns how many entries went.
#[tauri::command]
pub async fn forget_all_secrets(state: State<'_, AppState>) -> Result<u32, AppError> {
    let profiles = state.profiles.clone();
    let removed = tauri::async_runtime::spawn_blocking(move || {
        let keychain = KeychainStore::open()?;
        profiles.forget_all_secrets(&keychain)
    })
    .await
    .map_err(|e| AppError::new(ErrorCode::Internal, e.to_string()))??;
    Ok(u32::try_from(removed).unwrap_or(u32::MAX))
}

/// Quits: stops every tunnel and session; `stop_notebooks` says whether the remote notebooks
/// stop too (otherwise they keep running and can be reattached later).
#[tauri::command]
pub async fn quit_app<R: Runtime>(app: AppHandle<R>, stop_notebooks: bool) -> Result<(), AppError> {
    quit(&app, stop_notebooks).await;
    Ok(())
}

/// Stops tunnels and sessions ([`end_all`]), then exits.
pub async fn quit<R: Runtime>(app: &AppHandle<R>, stop_notebooks: bool) {
    end_all(app, stop_notebooks).await;
    app.exit(0);
}

/// What quitting ends before the app exits: the notebooks' unsaved cells are saved, the
/// forwards stop, the notebooks opened with "Open notebook…" bring back their last saves and
/// close, then every session closes; `stop_notebooks`: the Jupyter servers (the app's, those it
/// reopened, those "Open notebook…" started) and SLURM jobs stop too.
pub async fn end_all<R: Runtime>(app: &AppHandle<R>, stop_notebooks: bool) {
    tracing::info!(stop_notebooks, "quitting");
    // Unsaved cells go to the host first, while the tunnels still carry them.
    super::notebook::save_all_notebooks(app, super::notebook::SAVE_WAIT).await;
    if let Some(forwards) = app.try_state::<super::tunnels::Forwards>() {
        forwards.stop_all().await;
    }
    let state = app.state::<AppState>();
    // Opened notebooks: their saves come back one last time over the sessions' connections,
    // then the servers they started stop (when asked), before those connections close.
    state.projects().close(None, stop_notebooks).await;
    // SLURM jobs left running say until when (issue 20); asked before their forwards close.
    let left = if stop_notebooks {
        Vec::new()
    } else {
        super::slurm::jobs_left_running(&state).await
    };
    let live: Vec<String> = state
        .sessions()
        .values()
        .filter(|e| e.summary.status != SessionStatus::Closed)
        .map(|e| e.summary.id.clone())
        .collect();
    for id in live {
        // Stopping: Tunnelbook's servers reopened from an earlier run and SLURM jobs opened from
        // Sessions are this app's notebooks too. Leaving them running: core's session ends
        // without stopping its server first, so `close` (which stops a notebook it still holds)
        // finds none, and a SLURM job runs on until its time limit (`tunnelbook ls` / `attach`).
        let (servers, jobs, kept): (Vec<String>, Vec<String>, _) =
            match state.sessions().get_mut(&id) {
                Some(e) if stop_notebooks => (
                    e.reopened_notebooks().cloned().collect(),
                    e.slurm_open.keys().cloned().collect(),
                    (None, None),
                ),
                Some(e) => (Vec::new(), Vec::new(), (e.notebook.take(), e.slurm.take())),
                None => Default::default(),
            };
        for server in servers {
            let stopped = super::jupyter::stop_server(app.clone(), app.state(), id.clone(), server);
            if let Err(e) = stopped.await {
                tracing::warn!(error = %e.message, "cannot stop a reopened notebook");
            }
        }
        for job in jobs {
            let stopped = super::slurm::stop_slurm_job(app.clone(), app.state(), id.clone(), job);
            if let Err(e) = stopped.await {
                tracing::warn!(error = %e.message, "cannot stop a SLURM job");
            }
        }
        if let Some(handle) = kept.0 {
            super::jupyter::end_notebook(handle, false).await;
        }
        if let Some(handle) = kept.1
            && let Some(job) = super::slurm::leave(handle).await
        {
            tracing::info!(job, "SLURM job left running until its time limit");
        }
        let _ = super::sessions::close(app, &state, &id).await;
    }
    if let Some(notice) = tunnelbook_core::tray::left_running_notice(&left) {
        tracing::info!(body = %notice.body, "SLURM jobs left running");
        crate::tray::notify(app, &notice);
    }
    crate::drag_out::clean(app);
}
