//! The tray: the tauri menu made from core's model ([`tunnelbook_core::tray`]), the handling of
//! its actions, and the background tick that keeps it current (GPU summaries, notifications).
//!
//! On Linux the tray delivers only menu events (no clicks on the icon), so every action is a menu
//! item.

use std::sync::{Mutex, MutexGuard};

use serde::Serialize;

use tauri::{
    AppHandle, Emitter, Listener, Manager, Runtime,
    menu::{IsMenuItem, Menu, MenuItem, PredefinedMenuItem, Submenu},
    tray::TrayIconBuilder,
};
pub use tunnelbook_core::tray::{Notice, TrayAction, TrayEntry, TrayMenu};
use tunnelbook_core::{
    settings::{Settings, SettingsStore},
    tray::{
        LinkState, SessionLook, TrayMemory, already_running_notice, hidden_to_tray_once,
        not_started_notice, reads_gpus, shown,
    },
};

use crate::{AppState, MAIN_WINDOW, commands, error::AppError, wire::SessionStatus};

/// Id of the one tray icon.
pub const TRAY_ID: &str = "main";
/// Event asking the UI whether to stop the remote notebooks before quitting.
pub const QUIT_EVENT: &str = "quit-requested";
/// Event telling the UI that the tray started a session (so it follows it).
pub const TRAY_SESSION_EVENT: &str = "tray-session";
/// Event telling the UI that the tray's "Connect and open notebook" found a Tunnelbook server
/// already running on the host and started none: the UI shows the host's Connect view with its
/// Reopen offer (same local port). Payload: `{ sessionId, hostId }`.
pub const TRAY_RUNNING_EVENT: &str = "tray-running";
/// Event telling the UI that the tray's "Open notebook on GPU…" opened a local notebook on a
/// host (so the Files view follows that project). Payload: `{ projectId, sessionId }`.
pub const TRAY_PROJECT_EVENT: &str = "tray-project";

/// What the tray remembers between ticks (core's [`TrayMemory`]).
#[derive(Default)]
pub struct TrayState(Mutex<TrayMemory>);

impl TrayState {
    fn memory(&self) -> MutexGuard<'_, TrayMemory> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The tray model for the app's state now (what `tray_menu` returns).
pub fn current_model<R: Runtime>(app: &AppHandle<R>) -> TrayMenu {
    let state = app.state::<AppState>();
    let hosts = state.profiles.load().unwrap_or_default();
    let sessions = state.summaries();
    app.state::<TrayState>().memory().model(hosts, sessions)
}

fn settings_store<R: Runtime>(app: &AppHandle<R>) -> SettingsStore {
    SettingsStore::in_home(app.state::<AppState>().home())
}

/// Shows a desktop notification (best effort: no notification daemon is not an error).
pub fn notify<R: Runtime>(app: &AppHandle<R>, notice: &Notice) {
    tracing::info!(title = %notice.title, body = %notice.body, "notification");
    // Absent on tauri's mock runtime in tests.
    let Some(notification) = app.try_state::<tauri_plugin_notification::Notification<R>>() else {
        return;
    };
    if let Err(e) = notification
        .builder()
        .title(&notice.title)
        .body(&notice.body)
        .show()
    {
        tracing::debug!(error = %e, "cannot show a notification");
    }
}

/// Rebuilds the tray menu when its model changed; notifies about session changes.
pub fn refresh<R: Runtime>(app: &AppHandle<R>) {
    let state = app.state::<AppState>();
    let sessions = state.summaries();
    // Each session with how its connection stands (core's host session says; the status alone
    // cannot tell "just connected" from "dropped").
    let looks: Vec<SessionLook> = {
        let entries = state.sessions();
        sessions
            .iter()
            .map(|s| SessionLook {
                summary: s.clone(),
                link: entries
                    .get(&s.id)
                    .map(|e| LinkState::of(&e.host))
                    .unwrap_or(LinkState::Ended),
            })
            .collect()
    };
    let notices = app.state::<TrayState>().memory().look(&looks);
    for n in &notices {
        notify(app, n);
    }
    let model = current_model(app);
    let changed = app.state::<TrayState>().memory().shows(&model);
    if changed && let Some(icon) = app.tray_by_id(TRAY_ID) {
        match build_menu(app, &model) {
            Ok(menu) => {
                if let Err(e) = icon.set_menu(Some(menu)) {
                    tracing::warn!(error = %e, "cannot update the tray menu");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot build the tray menu"),
        }
    }
}

/// Reads the GPUs of every live session (for the tray summary and free-GPU notifications), then
/// refreshes the menu.
pub async fn tick<R: Runtime>(app: &AppHandle<R>, settings: &Settings) {
    let state = app.state::<AppState>();
    let live = state.summaries().into_iter().filter(reads_gpus);
    for s in live {
        let Ok(host) = state.host(&s.id) else {
            continue;
        };
        let Ok(snapshot) = host.gpus().await else {
            continue;
        };
        let notices = app
            .state::<TrayState>()
            .memory()
            .gpus_read(&s, &snapshot, settings);
        for n in &notices {
            notify(app, n);
        }
    }
    refresh(app);
}

fn build_entries<R: Runtime>(
    app: &AppHandle<R>,
    entries: &[TrayEntry],
) -> tauri::Result<Vec<Box<dyn IsMenuItem<R>>>> {
    let mut out: Vec<Box<dyn IsMenuItem<R>>> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        match entry {
            TrayEntry::Action { id, label } => {
                out.push(Box::new(MenuItem::with_id(
                    app,
                    id.as_str(),
                    label,
                    true,
                    None::<&str>,
                )?));
            }
            TrayEntry::Info { label } => out.push(Box::new(MenuItem::with_id(
                app,
                format!("info:{i}:{label}"),
                label,
                false,
                None::<&str>,
            )?)),
            TrayEntry::Separator => out.push(Box::new(PredefinedMenuItem::separator(app)?)),
            TrayEntry::Submenu { label, items } => {
                let children = build_entries(app, items)?;
                let refs: Vec<&dyn IsMenuItem<R>> = children.iter().map(|c| c.as_ref()).collect();
                out.push(Box::new(Submenu::with_items(app, label, true, &refs)?));
            }
        }
    }
    Ok(out)
}

/// The tauri menu for `model`.
pub fn build_menu<R: Runtime>(app: &AppHandle<R>, model: &TrayMenu) -> tauri::Result<Menu<R>> {
    let items = build_entries(app, &model.items)?;
    let refs: Vec<&dyn IsMenuItem<R>> = items.iter().map(|c| c.as_ref()).collect();
    Menu::with_items(app, &refs)
}

/// Shows, unminimizes and focuses the main window.
pub fn show_main<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window(MAIN_WINDOW) {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
}

/// Shows the main window and tells the UI `event` (what the tray did, for the UI to follow).
fn show_and_emit<R: Runtime>(app: &AppHandle<R>, event: &str, payload: impl Serialize + Clone) {
    show_main(app);
    if let Err(e) = app.emit(event, payload) {
        tracing::warn!(error = %e, event, "cannot tell the main window");
    }
}

/// Carries out a tray action.
pub async fn perform<R: Runtime>(app: AppHandle<R>, action: TrayAction) -> Result<(), AppError> {
    let state = app.state::<AppState>();
    let url_of = |id: &str| state.sessions().get(id).and_then(|e| e.summary.url.clone());
    match action {
        TrayAction::Connect(host) => {
            let id =
                commands::connect::start_session(app.clone(), state.clone(), host.clone()).await?;
            show_and_emit(
                &app,
                TRAY_SESSION_EVENT,
                serde_json::json!({ "sessionId": id, "hostId": host }),
            );
            // "Connect and open notebook": once connected (the human may have answered host-key
            // or password dialogs meanwhile), launch with the host's saved defaults; the notebook
            // window opens when it is ready.
            tauri::async_runtime::spawn(launch_when_connected(app.clone(), id, host));
        }
        TrayAction::Open(id) => {
            if let Some(url) = url_of(&id) {
                commands::notebook::open_notebook(
                    app.clone(),
                    state.clone(),
                    url,
                    crate::launch::notebook_title(&state, &id),
                )
                .await?;
            }
        }
        TrayAction::Browser(id) => {
            if let Some(url) = url_of(&id) {
                commands::notebook::open_in_browser(app.clone(), url).await?;
            }
        }
        TrayAction::Stop(id) => commands::sessions::close(&app, &state, &id).await?,
        TrayAction::OpenLocalNotebook(id) => {
            if let Some(path) = commands::projects::pick_notebook(app.clone()).await? {
                let project = commands::projects::open_local_notebook(
                    app.clone(),
                    state.clone(),
                    id.clone(),
                    path,
                    None,
                    None,
                )
                .await?;
                show_and_emit(
                    &app,
                    TRAY_PROJECT_EVENT,
                    serde_json::json!({ "projectId": project, "sessionId": id }),
                );
            }
        }
        TrayAction::Show => show_main(&app),
        TrayAction::Quit => {
            // Its own notebooks, and Tunnelbook's servers it reopened (from an earlier run).
            // SLURM jobs it launched or opened (issue 20) too.
            let notebooks = state.sessions().values().any(|e| {
                e.summary.status == SessionStatus::Ready
                    || e.reopened_notebooks().next().is_some()
                    || commands::slurm::holds_jobs(e)
            });
            if notebooks {
                // The UI asks whether to stop the remote notebooks, then calls `quit_app`; it
                // says until when each SLURM job runs on if left (its end time from SLURM).
                let question = commands::slurm::QuitQuestion {
                    slurm_jobs: commands::slurm::jobs_left_running(&state).await,
                };
                show_and_emit(&app, QUIT_EVENT, question);
            } else {
                commands::settings::quit(&app, false).await;
            }
        }
    }
    refresh(&app);
    Ok(())
}

/// Waits (up to 5 minutes) for session `id` to connect, then launches its notebook on host
/// `host`'s saved GPU (none saved: the best free one) from the host's environment.
async fn launch_when_connected<R: Runtime>(app: AppHandle<R>, id: String, host: String) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(300);
    let status = || (app.state::<AppState>().sessions().get(&id)).map(|e| e.summary.status);
    while status() == Some(SessionStatus::Starting) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    if status() != Some(SessionStatus::Connected) {
        return;
    }
    let state = app.state::<AppState>();
    // The host's saved defaults as they are now (the human may have edited them meanwhile).
    let gpu = state.profiles.get(&host).ok().and_then(|p| p.gpu);
    // Never a second server without saying one is running: a Tunnelbook server already on the
    // host (an earlier run's, the CLI's) is offered for Reopen on its earlier local port instead.
    match commands::jupyter::list_servers(state.clone(), id.clone()).await {
        Ok(servers) => {
            if let Some(notice) = already_running_notice(&host, &servers) {
                tracing::info!(session = %id, "the tray found a notebook running: offering Reopen");
                show_and_emit(
                    &app,
                    TRAY_RUNNING_EVENT,
                    serde_json::json!({ "sessionId": id, "hostId": host }),
                );
                notify(&app, &notice);
                return;
            }
        }
        Err(e) => tracing::warn!(session = %id, error = %e, "cannot list the host's servers"),
    }
    if let Err(e) =
        commands::jupyter::launch_notebook(app.clone(), state, id.clone(), gpu, None).await
    {
        tracing::warn!(session = %id, error = %e, "the tray could not launch the notebook");
        notify(&app, &not_started_notice(&e.message));
    }
}

/// Creates the tray icon, follows session events and starts the refresh tick.
pub fn setup<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<()> {
    let model = current_model(app);
    let menu = build_menu(app, &model)?;
    let mut builder = TrayIconBuilder::with_id(TRAY_ID)
        .tooltip("Tunnelbook")
        .menu(&menu)
        .show_menu_on_left_click(true)
        .on_menu_event(|app, event| {
            let Some(action) = TrayAction::parse(event.id.as_ref()) else {
                return;
            };
            let app = app.clone();
            tauri::async_runtime::spawn(async move {
                if let Err(e) = perform(app.clone(), action).await {
                    tracing::warn!(error = %e, "tray action failed");
                    notify(
                        &app,
                        &Notice {
                            title: "Tunnelbook".into(),
                            body: e.message,
                        },
                    );
                }
            });
        });
    if let Some(icon) = app.default_window_icon() {
        builder = builder.icon(icon.clone());
    }
    builder.build(app)?;
    app.state::<TrayState>().memory().shows(&model);

    // Session progress changes the menu right away. On a task of its own: a listener runs on the
    // emitting thread, which may hold the sessions lock.
    let handle = app.clone();
    app.listen_any(crate::wire::SESSION_EVENT, move |_| {
        let handle = handle.clone();
        tauri::async_runtime::spawn(async move { refresh(&handle) });
    });
    let handle = app.clone();
    tauri::async_runtime::spawn(async move {
        loop {
            let settings = settings_store(&handle).load_or_default();
            tick(&handle, &settings).await;
            tokio::time::sleep(settings.refresh_interval()).await;
        }
    });
    Ok(())
}

/// Closing the main window: where the desktop shows the tray icon ([`shown::tray_shown`]) the
/// window hides and the app keeps running in the tray (said once); where it does not (plain
/// GNOME, no D-Bus) the app quits as the tray's Quit does — asking first when notebooks run —
/// since a hidden window could not be brought back there.
pub fn on_main_close<R: Runtime>(app: &AppHandle<R>) {
    let app = app.clone();
    // Asking the session bus blocks: off the UI thread.
    tauri::async_runtime::spawn_blocking(move || match shown::on_main_close(shown::tray_shown()) {
        shown::MainClose::HideToTray => hide_to_tray(&app),
        shown::MainClose::Quit => {
            tracing::info!("no tray shown: closing the main window quits");
            tauri::async_runtime::spawn(async move {
                if let Err(e) = perform(app.clone(), TrayAction::Quit).await {
                    tracing::warn!(error = %e, "cannot quit");
                }
            });
        }
    });
}

/// Hides the main window (the tray brings it back); says so once (core's
/// [`hidden_to_tray_once`]).
fn hide_to_tray<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window(MAIN_WINDOW) {
        let _ = window.hide();
    }
    if let Some(notice) = hidden_to_tray_once(&settings_store(app)) {
        notify(app, &notice);
    }
}
