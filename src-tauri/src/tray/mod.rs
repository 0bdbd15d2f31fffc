//! The tray: the tauri menu made from its model ([`model`]), the handling of its actions, and the
//! background tick that keeps it current (GPU summaries, notifications from [`notices`]).
//!
//! On Linux the tray delivers only menu events (no clicks on the icon), so every action is a menu
//! item.

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
};

use serde::Serialize;
use tauri::{
    AppHandle, Emitter, Listener, Manager, Runtime,
    menu::{IsMenuItem, Menu, MenuItem, PredefinedMenuItem, Submenu},
    tray::TrayIconBuilder,
};
use ts_rs::TS;
use tunnelbook_core::{
    gpu::{FreeRule, GpuSnapshot},
    profile::Profile,
    settings::{Settings, SettingsStore},
};

use crate::{
    AppState, MAIN_WINDOW, commands,
    error::AppError,
    wire::{LOCAL_HOST_ID, ServerView, SessionStatus, SessionSummary},
};

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

mod model;
mod notices;
pub mod shown;

pub use self::{model::*, notices::*};

/// What the tray remembers between ticks.
#[derive(Default)]
pub struct TrayState {
    inner: Mutex<TrayMemory>,
}

#[derive(Default)]
struct TrayMemory {
    sessions: Vec<SessionSummary>,
    gpus: HashMap<String, GpuCount>,
    busy: HashMap<String, HashSet<String>>,
    notices: NoticeMemory,
    menu: Option<TrayMenu>,
}

impl TrayState {
    fn memory(&self) -> std::sync::MutexGuard<'_, TrayMemory> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The tray model for the app's state now (what `tray_menu` returns).
pub fn current_model<R: Runtime>(app: &AppHandle<R>) -> TrayMenu {
    let state = app.state::<AppState>();
    let tray = app.state::<TrayState>();
    let hosts = state.profiles.load().unwrap_or_default();
    let sessions = state.summaries();
    let gpus = tray.memory().gpus.clone();
    menu_model(&TrayInput {
        hosts,
        sessions,
        gpus,
    })
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
    let notices = {
        let tray = app.state::<TrayState>();
        let mut memory = tray.memory();
        let notices = session_notices(&looks, &mut memory.notices);
        memory.sessions = sessions;
        let live: HashSet<String> = memory
            .sessions
            .iter()
            .filter(|s| is_live(s.status))
            .map(|s| s.id.clone())
            .collect();
        memory.gpus.retain(|id, _| live.contains(id));
        memory.busy.retain(|id, _| live.contains(id));
        notices
    };
    for n in &notices {
        notify(app, n);
    }
    let model = current_model(app);
    let changed = {
        let tray = app.state::<TrayState>();
        let mut memory = tray.memory();
        let changed = memory.menu.as_ref() != Some(&model);
        memory.menu = Some(model.clone());
        changed
    };
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
    let live: Vec<SessionSummary> = state
        .summaries()
        .into_iter()
        .filter(|s| {
            matches!(
                s.status,
                SessionStatus::Connected | SessionStatus::Launching | SessionStatus::Ready
            )
        })
        .collect();
    for s in live {
        let Ok(host) = state.host(&s.id) else {
            continue;
        };
        let Ok(snapshot) = host.gpus().await else {
            continue;
        };
        let notices = {
            let tray = app.state::<TrayState>();
            let mut memory = tray.memory();
            memory
                .gpus
                .insert(s.id.clone(), gpu_count(&snapshot, &settings.gpu_free));
            let busy = busy_gpus(&snapshot, &settings.gpu_free);
            let before = memory.busy.insert(s.id.clone(), busy);
            match before {
                Some(before) if settings.notify_gpu_free.contains(&s.host_id) => {
                    freed_notices(&s.host_id, &before, &snapshot, &settings.gpu_free)
                }
                _ => Vec::new(),
            }
        };
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

/// Carries out a tray action.
pub async fn perform<R: Runtime>(app: AppHandle<R>, action: TrayAction) -> Result<(), AppError> {
    let state = app.state::<AppState>();
    let url_of = |id: &str| state.sessions().get(id).and_then(|e| e.summary.url.clone());
    match action {
        TrayAction::Connect(host) => {
            let id =
                commands::connect::start_session(app.clone(), state.clone(), host.clone()).await?;
            show_main(&app);
            let _ = app.emit(
                TRAY_SESSION_EVENT,
                serde_json::json!({ "sessionId": id, "hostId": host }),
            );
            // "Connect and open notebook": once connected (the human may have answered host-key
            // or password dialogs meanwhile), launch with the host's saved defaults; the notebook
            // window opens when it is ready.
            let gpu = state.profiles.get(&host).ok().and_then(|p| p.gpu);
            tauri::async_runtime::spawn(launch_when_connected(app.clone(), id, gpu));
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
                show_main(&app);
                let _ = app.emit(
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
                show_main(&app);
                let _ = app.emit(QUIT_EVENT, question);
            } else {
                commands::settings::quit(&app, false).await;
            }
        }
    }
    refresh(&app);
    Ok(())
}

/// Waits (up to 5 minutes) for session `id` to connect, then launches its notebook on `gpu` (the
/// profile's default; `None`: the best free one) from the profile's environment.
async fn launch_when_connected<R: Runtime>(app: AppHandle<R>, id: String, gpu: Option<String>) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        let status = app
            .state::<AppState>()
            .sessions()
            .get(&id)
            .map(|e| e.summary.status);
        match status {
            Some(SessionStatus::Connected) => break,
            Some(SessionStatus::Starting) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            _ => return,
        }
    }
    let state = app.state::<AppState>();
    // Never a second server without saying one is running: a Tunnelbook server already on the
    // host (an earlier run's, the CLI's) is offered for Reopen on its earlier local port instead.
    let host = state
        .sessions()
        .get(&id)
        .map(|e| e.summary.host_id.clone())
        .unwrap_or_default();
    match commands::jupyter::list_servers(state.clone(), id.clone()).await {
        Ok(servers) => {
            if let Some(notice) = already_running_notice(&host, &servers) {
                tracing::info!(session = %id, "the tray found a notebook running: offering Reopen");
                show_main(&app);
                let _ = app.emit(
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
        notify(
            &app,
            &Notice {
                title: "Notebook not started".into(),
                body: e.message,
            },
        );
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
    app.state::<TrayState>().memory().menu = Some(model);

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

/// Hides the main window (the tray brings it back); says so once.
fn hide_to_tray<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window(MAIN_WINDOW) {
        let _ = window.hide();
    }
    let store = settings_store(app);
    let mut settings = store.load_or_default();
    if !settings.tray_notice_shown {
        notify(
            app,
            &Notice {
                title: "Tunnelbook is still running".into(),
                body: "It keeps your sessions and tunnels open in the tray. Choose Quit there to \
                       stop."
                    .into(),
            },
        );
        settings.tray_notice_shown = true;
        if let Err(e) = store.save(&settings) {
            tracing::warn!(error = %e, "cannot remember that the tray notice was shown");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: &str, host: &str, status: SessionStatus, url: Option<&str>) -> SessionSummary {
        SessionSummary {
            id: id.into(),
            host_id: host.into(),
            status,
            url: url.map(Into::into),
            gpu: None,
            env: None,
            server_id: None,
            window: None,
        }
    }

    fn labels(entries: &[TrayEntry]) -> Vec<String> {
        entries
            .iter()
            .map(|e| match e {
                TrayEntry::Action { label, .. }
                | TrayEntry::Info { label }
                | TrayEntry::Submenu { label, .. } => label.clone(),
                TrayEntry::Separator => "---".into(),
            })
            .collect()
    }

    fn submenu<'a>(menu: &'a TrayMenu, label: &str) -> &'a [TrayEntry] {
        menu.items
            .iter()
            .find_map(|e| match e {
                TrayEntry::Submenu { label: l, items } if l == label => Some(items.as_slice()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no submenu {label} in {menu:#?}"))
    }

    fn server(id: &str, gpu: Option<&str>, managed: bool) -> ServerView {
        ServerView {
            session_id: "s1".into(),
            id: id.into(),
            pid: 4242,
            endpoint: "127.0.0.1:8888".into(),
            env: None,
            gpu: gpu.map(Into::into),
            started: None,
            managed,
            url: None,
        }
    }

    #[test]
    fn one_click_launch_says_a_notebook_runs_instead_of_starting_another() {
        // Only servers started by hand: nothing to reopen, the tray launches.
        assert_eq!(
            already_running_notice("gpu-box", &[server("pid-7", None, false)]),
            None
        );
        assert_eq!(already_running_notice("gpu-box", &[]), None);
        let notice = already_running_notice("gpu-box", &[server("tb-1", Some("3"), true)]).unwrap();
        assert_eq!(notice.title, "Notebook already running on gpu-box");
        assert!(notice.body.contains("runs on GPU 3"), "{notice:?}");
        assert!(notice.body.contains("none was started"), "{notice:?}");
        assert!(notice.body.contains("Reopen"), "{notice:?}");
        let two = already_running_notice(
            "local",
            &[
                server("tb-1", Some("GPU-5d0c"), true),
                server("tb-2", None, true),
            ],
        )
        .unwrap();
        assert_eq!(two.title, "Notebook already running on This computer");
        assert!(!two.body.contains("GPU-5d0c"), "a UUID in words: {two:?}");
        assert!(two.body.contains("2 Tunnelbook notebooks"), "{two:?}");
    }

    #[test]
    fn idle_hosts_offer_connect_with_their_defaults() {
        let menu = menu_model(&TrayInput {
            hosts: vec![Profile {
                name: "gpu-box".into(),
                host: "10.0.0.5".into(),
                user: Some("ana".into()),
                gpu: Some("1".into()),
                ..Profile::default()
            }],
            ..TrayInput::default()
        });
        assert_eq!(
            labels(&menu.items),
            ["This computer", "gpu-box", "---", "Show Tunnelbook", "Quit"]
        );
        let host = submenu(&menu, "gpu-box");
        assert_eq!(
            host[0],
            TrayEntry::Action {
                id: "connect:gpu-box".into(),
                label: "Connect and open notebook".into()
            }
        );
        assert_eq!(labels(host)[1], "ana@10.0.0.5:22 · GPU 1");
    }

    #[test]
    fn running_sessions_notebooks_and_free_gpus_are_listed() {
        let gpu_box = Profile {
            name: "gpu-box".into(),
            host: "h".into(),
            ..Profile::default()
        };
        let menu = menu_model(&TrayInput {
            hosts: vec![gpu_box],
            sessions: vec![
                session(
                    "s1",
                    "gpu-box",
                    SessionStatus::Ready,
                    Some("http://127.0.0.1:9/"),
                ),
                session("s2", "local", SessionStatus::Connected, None),
                session("s3", "gpu-box", SessionStatus::Closed, None),
            ],
            gpus: HashMap::from([
                ("s1".to_string(), GpuCount { free: 2, total: 4 }),
                ("s2".to_string(), GpuCount { free: 0, total: 0 }),
            ]),
        });
        assert_eq!(
            labels(&menu.items),
            [
                "This computer",
                "gpu-box",
                "---",
                "gpu-box: 2 of 4 GPUs free",
                "This computer: no GPU",
                "---",
                "Show Tunnelbook",
                "Quit"
            ]
        );
        let host = submenu(&menu, "gpu-box");
        // One connection per host: no "New session" beside it. The running notebook is listed
        // once, here (trial of #14, finding 18: it was repeated under "Running notebooks").
        assert_eq!(labels(host), ["Notebook ready"]);
        fn opens_in(items: &[TrayEntry]) -> usize {
            items
                .iter()
                .map(|e| match e {
                    TrayEntry::Action { id, .. } if id == "open:s1" => 1,
                    TrayEntry::Submenu { items, .. } => opens_in(items),
                    _ => 0,
                })
                .sum()
        }
        assert_eq!(opens_in(&menu.items), 1, "{menu:?}");
        let TrayEntry::Submenu { items, .. } = &host[0] else {
            panic!("{host:?}")
        };
        let ids: Vec<_> = items
            .iter()
            .filter_map(|e| match e {
                TrayEntry::Action { id, .. } => Some(id.as_str()),
                _ => None,
            })
            .collect();
        // A host's session also takes a local notebook ("Open notebook on GPU…").
        assert_eq!(ids, ["open:s1", "browser:s1", "notebook:s1", "stop:s1"]);
        // A session without a notebook can only be stopped.
        let local = submenu(&menu, "This computer");
        assert_eq!(labels(local)[0], "Connected");

        // The GPU is named once: "GPU 3", not "GPU GPU 3".
        let mut on_gpu = session("s4", "gpu-box", SessionStatus::Ready, Some("http://x/"));
        on_gpu.gpu = Some("GPU 3".into());
        assert_eq!(session_label(&on_gpu), "Notebook ready, GPU 3");
        // Labels say what a session is, not its internal id; equal ones are numbered.
        assert_eq!(
            numbered(vec!["Connected".into(), "Connected".into(), "Ready".into()]),
            ["Connected", "Connected (2)", "Ready"]
        );
    }

    #[test]
    fn action_ids_round_trip() {
        for a in [
            TrayAction::Connect("gpu:box".into()),
            TrayAction::Open("s1".into()),
            TrayAction::Browser("s1".into()),
            TrayAction::Stop("s1".into()),
            TrayAction::OpenLocalNotebook("s1".into()),
            TrayAction::Show,
            TrayAction::Quit,
        ] {
            assert_eq!(TrayAction::parse(&a.id()), Some(a));
        }
        assert_eq!(TrayAction::parse("info:1:x"), None);
        assert_eq!(TrayAction::parse("bogus"), None);
    }

    fn snapshot(busy: &[u32]) -> GpuSnapshot {
        let gpu = |i: u32| tunnelbook_core::gpu::Gpu {
            index: i,
            uuid: format!("GPU-{i}"),
            memory_total_mib: Some(80_000),
            memory_used_mib: Some(if busy.contains(&i) { 40_000 } else { 0 }),
            memory_free_mib: Some(if busy.contains(&i) { 40_000 } else { 80_000 }),
            utilization_gpu: Some(if busy.contains(&i) { 99 } else { 0 }),
            ..Default::default()
        };
        GpuSnapshot {
            host: "gpu-box".into(),
            gpus: (0..4).map(gpu).collect(),
            processes: busy
                .iter()
                .map(|i| tunnelbook_core::gpu::GpuProcess {
                    gpu_uuid: format!("GPU-{i}"),
                    pid: 100 + i,
                    user: Some("bob".into()),
                    ..Default::default()
                })
                .collect(),
            no_gpu_reason: None,
            current_user: Some("ana".into()),
            ..Default::default()
        }
    }

    #[test]
    fn counts_and_freed_gpus_from_snapshots() {
        let before = snapshot(&[0, 1]);
        let rule = FreeRule::default();
        assert_eq!(gpu_count(&before, &rule), GpuCount { free: 2, total: 4 });
        let busy = busy_gpus(&before, &rule);
        assert_eq!(busy.len(), 2);
        // GPU 1 finished; GPU 0 still busy.
        let notices = freed_notices("gpu-box", &busy, &snapshot(&[0]), &rule);
        assert_eq!(notices.len(), 1, "{notices:?}");
        assert_eq!(notices[0].title, "GPU free");
        assert!(notices[0].body.contains("GPU 1") && notices[0].body.contains("gpu-box"));
        assert!(freed_notices("gpu-box", &busy, &before, &rule).is_empty());
    }

    /// One look at session `s1` on gpu-box.
    fn look(status: SessionStatus, link: LinkState) -> Vec<SessionLook> {
        vec![SessionLook {
            summary: session("s1", "gpu-box", status, None),
            link,
        }]
    }

    fn titles(n: Vec<Notice>) -> Vec<String> {
        n.into_iter().map(|n| n.title).collect()
    }

    #[test]
    fn notices_for_ready_and_dropped_sessions() {
        use LinkState::*;
        use SessionStatus::*;
        let mut m = NoticeMemory::default();
        // "Trust and connect": the status is connected a moment before core has the
        // connection up (the trial's notice 23 ms after the click). Nothing dropped.
        assert!(session_notices(&look(Starting, Connecting), &mut m).is_empty());
        assert!(session_notices(&look(Connected, Connecting), &mut m).is_empty());
        assert!(session_notices(&look(Connected, Up), &mut m).is_empty());
        assert!(session_notices(&look(Launching, Up), &mut m).is_empty());
        let ready = session_notices(&look(Ready, Up), &mut m);
        assert_eq!(titles(ready.clone()), ["Notebook ready"]);
        assert!(ready[0].body.contains("gpu-box"));

        // A 15 s outage: the host's connection goes down and the notebook's tunnel reconnects,
        // in any order, across several looks: one notice.
        let mut seen = Vec::new();
        seen.extend(session_notices(&look(Ready, Down), &mut m));
        seen.extend(session_notices(&look(Disconnected, Down), &mut m));
        seen.extend(session_notices(&look(Disconnected, Up), &mut m));
        assert_eq!(titles(seen.clone()), ["Connection dropped"]);
        assert!(seen[0].body.contains("gpu-box") && !seen[0].body.contains("s1"));
        // Back: said once, as a reconnect, not as a new notebook.
        assert_eq!(
            titles(session_notices(&look(Ready, Up), &mut m)),
            ["Reconnected"]
        );
        assert!(session_notices(&look(Ready, Up), &mut m).is_empty());
        // A second outage is told again.
        assert_eq!(
            titles(session_notices(&look(Ready, Down), &mut m)),
            ["Connection dropped"]
        );
        assert_eq!(
            titles(session_notices(&look(Ready, Up), &mut m)),
            ["Reconnected"]
        );

        // The Jupyter server killed on a fine connection: "server gone", not a drop.
        let gone = session_notices(&look(Failed, Up), &mut m);
        assert_eq!(
            titles(gone.clone()),
            ["Notebook server stopped"],
            "{gone:?}"
        );
        assert!(gone[0].body.contains("Restart"));
        // Restarted.
        assert!(session_notices(&look(Launching, Up), &mut m).is_empty());
        assert_eq!(
            titles(session_notices(&look(Ready, Up), &mut m)),
            ["Notebook ready"]
        );
        // Closed by the user: nothing.
        assert!(session_notices(&look(Closed, Ended), &mut m).is_empty());
    }

    #[test]
    fn connect_after_a_restart_and_failed_connects_drop_nothing() {
        use LinkState::*;
        use SessionStatus::*;
        // Connect after the app restarted: a fresh session, connected before its link is up.
        let mut m = NoticeMemory::default();
        assert!(session_notices(&look(Connected, Connecting), &mut m).is_empty());
        assert!(session_notices(&look(Connected, Up), &mut m).is_empty());
        // A first connect that fails never had a connection: the Connect screen says it.
        let mut m = NoticeMemory::default();
        assert!(session_notices(&look(Starting, Connecting), &mut m).is_empty());
        assert!(session_notices(&look(Failed, Ended), &mut m).is_empty());
        // A launch failing on a fine connection is the Connect screen's, not a notification.
        let mut m = NoticeMemory::default();
        assert!(session_notices(&look(Connected, Up), &mut m).is_empty());
        assert!(session_notices(&look(Launching, Up), &mut m).is_empty());
        assert!(session_notices(&look(Failed, Up), &mut m).is_empty());
        // A connection that was up and is lost for good (reconnect gave up): told once.
        let mut m = NoticeMemory::default();
        assert!(session_notices(&look(Connected, Up), &mut m).is_empty());
        assert_eq!(
            titles(session_notices(&look(Failed, Ended), &mut m)),
            ["Connection dropped"]
        );
        assert!(session_notices(&look(Failed, Ended), &mut m).is_empty());
        // This computer's sessions have no SSH link to drop.
        let local = [SessionLook {
            summary: session("s2", "local", Ready, None),
            link: Up,
        }];
        let mut m = NoticeMemory::default();
        session_notices(&local, &mut m);
        assert!(session_notices(&local, &mut m).is_empty());
    }
}
