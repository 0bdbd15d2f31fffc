//! The tray's menu model, actions and notices, as the app's tray shows them.

use std::collections::HashMap;

use super::*;
use crate::{
    gpu::{FreeRule, GpuSnapshot},
    host::SessionStatus,
    jupyter::ServerView,
    settings::Settings,
};

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
    let gpu = |i: u32| crate::gpu::Gpu {
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
            .map(|i| crate::gpu::GpuProcess {
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

/// The tray's tick: GPU counts show in the menu, a freed GPU is told only on a watched host,
/// counts of a closed session go, and the menu is rebuilt only when it changed.
#[test]
fn the_tray_memory_counts_gpus_tells_freed_ones_and_forgets_closed_sessions() {
    let mut memory = TrayMemory::default();
    let s1 = session("s1", "gpu-box", SessionStatus::Ready, Some("http://x/"));
    let mut settings = Settings::default();
    assert!(
        memory
            .gpus_read(&s1, &snapshot(&[0, 1]), &settings)
            .is_empty()
    );
    // Not watched: a freed GPU is not told.
    assert!(memory.gpus_read(&s1, &snapshot(&[0]), &settings).is_empty());
    settings.notify_gpu_free = vec!["gpu-box".into()];
    assert!(
        memory
            .gpus_read(&s1, &snapshot(&[0, 2]), &settings)
            .is_empty()
    );
    let freed = memory.gpus_read(&s1, &snapshot(&[2]), &settings);
    assert_eq!(titles(freed), ["GPU free"]);

    let menu = memory.model(Vec::new(), vec![s1.clone()]);
    assert!(labels(&menu.items).contains(&"gpu-box: 3 of 4 GPUs free".to_string()));
    assert!(memory.shows(&menu));
    assert!(!memory.shows(&menu), "the same menu is not rebuilt");

    let mut closed = s1.clone();
    closed.status = SessionStatus::Closed;
    memory.look(&[SessionLook {
        summary: closed.clone(),
        link: LinkState::Ended,
    }]);
    let menu = memory.model(Vec::new(), vec![closed]);
    assert!(
        !labels(&menu.items).iter().any(|l| l.contains("GPUs free")),
        "{menu:?}"
    );
    assert!(memory.shows(&menu));
}

/// A SLURM notebook's warnings and its end reach the desktop (people walk away while queued);
/// steps and plain time-left polls do not.
#[test]
fn a_slurm_job_notifies_its_warnings_and_its_end() {
    use crate::slurm::notebook::NotebookNews;
    let warning = NotebookNews::TimeLeft {
        secs: 600,
        warning: Some("Job 7 reaches its time limit in 0:10:00".into()),
    };
    let n = job_notice(&warning).unwrap();
    assert_eq!(n.title, "Notebook time limit soon");
    assert!(n.body.starts_with("Job 7 reaches"), "{n:?}");
    let quiet = NotebookNews::TimeLeft {
        secs: 600,
        warning: None,
    };
    assert_eq!(job_notice(&quiet), None);
    let end = |timed_out| NotebookNews::Ended {
        message: "Job 7 ended".into(),
        timed_out,
    };
    assert_eq!(job_notice(&end(true)).unwrap().title, "Time limit reached");
    assert_eq!(job_notice(&end(false)).unwrap().title, "Notebook job ended");
}

/// After quitting with SLURM jobs left running, one notice says until when each runs and how to
/// get back to them; none when no job was left.
#[test]
fn jobs_left_running_are_said_once_after_quitting() {
    use crate::slurm::JobLeftRunning;
    assert_eq!(left_running_notice(&[]), None);
    let job = |id: &str| JobLeftRunning {
        host: "login".into(),
        job_id: id.into(),
        end_time: None,
    };
    let n = left_running_notice(&[job("7"), job("8")]).unwrap();
    assert_eq!(n.title, "Notebooks left running");
    assert_eq!(
        n.body,
        "SLURM job 7 on login keeps running until its time limit; SLURM job 8 on login keeps \
         running until its time limit. Reopen from Sessions, or `tunnelbook attach` on any \
         computer."
    );
}

/// Closing the main window into the tray says so the first time only, kept across app runs.
#[test]
fn hidden_to_the_tray_is_said_once() {
    let home = tempfile::tempdir().unwrap();
    let store = crate::settings::SettingsStore::in_home(home.path());
    assert_eq!(hidden_to_tray_once(&store), Some(hidden_to_tray_notice()));
    assert_eq!(hidden_to_tray_once(&store), None);
    let again = crate::settings::SettingsStore::in_home(home.path());
    assert_eq!(hidden_to_tray_once(&again), None);
    assert!(again.load().unwrap().tray_notice_shown);
}
