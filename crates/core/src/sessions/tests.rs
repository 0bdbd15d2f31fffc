use std::sync::Mutex;

use super::{drive::*, *};
use crate::{
    error::ErrorCode,
    gpu::FreeRule,
    host::{HostEvent, HostSpec, ReconnectPolicy, SessionHost, Step, StepState},
    jupyter::{PortBook, window::BannerButton},
    session::{self, Progress, ReadyInfo, SessionEvent},
};

fn local_host() -> HostSession {
    HostSession::start(HostSpec {
        host: SessionHost::Local,
        reconnect: ReconnectPolicy::default(),
        free_rule: FreeRule::default(),
        profiles: None,
        probe: false,
    })
    .0
}

fn summary(id: &str, host_id: &str, status: SessionStatus) -> SessionSummary {
    SessionSummary {
        id: id.into(),
        host_id: host_id.into(),
        status,
        url: None,
        gpu: None,
        env: None,
        server_id: None,
        window: None,
    }
}

fn chain(name: &str) -> Option<Vec<Profile>> {
    Some(vec![Profile {
        name: name.into(),
        ..Profile::default()
    }])
}

/// A registry with session `id` on `host_id` (a saved host unless `local`) in `status`.
fn with_session(sessions: &Sessions, id: &str, host_id: &str, status: SessionStatus) {
    let hops = (host_id != LOCAL_NAME).then(|| chain(host_id)).flatten();
    let entry = SessionEntry::new(summary(id, host_id, status), hops, local_host());
    sessions.sessions().insert(id.into(), entry);
}

#[tokio::test]
async fn ids_count_up_and_summaries_come_oldest_first() {
    let sessions = Sessions::default();
    let ids: Vec<String> = (0..11).map(|_| sessions.new_session_id()).collect();
    assert_eq!((ids[0].as_str(), ids[10].as_str()), ("s1", "s11"));
    assert_eq!(sessions.new_notebook_label(), "jupyter-1");
    for id in ["s10", "s2", "s1"] {
        with_session(&sessions, id, "gpu-box", SessionStatus::Connected);
    }
    let order: Vec<String> = sessions.summaries().into_iter().map(|s| s.id).collect();
    assert_eq!(order, ["s1", "s2", "s10"]);
}

#[tokio::test]
async fn a_started_session_is_registered_before_its_first_event() {
    let sessions = Sessions::default();
    let spec = HostSpec {
        host: SessionHost::of(None, || unreachable!("this computer needs no SSH")),
        reconnect: ReconnectPolicy::default(),
        free_rule: FreeRule::default(),
        profiles: None,
        probe: false,
    };
    let (id, mut events) = sessions.start(LOCAL_NAME.into(), None, spec);
    assert_eq!(id, "s1");
    assert_eq!(
        sessions.summaries(),
        [summary("s1", LOCAL_NAME, SessionStatus::Starting)]
    );
    assert_eq!(sessions.live_session(LOCAL_NAME).as_deref(), Some("s1"));
    let first = events.recv().await.unwrap();
    assert_eq!(
        (first.step, first.state),
        (Step::Connect, StepState::Skipped)
    );
    assert_eq!(
        sessions.with("s1", |e| e.profile().name).ok().as_deref(),
        Some(LOCAL_NAME)
    );
    sessions.host("s1").ok().unwrap().close().await;
}

#[tokio::test]
async fn the_live_session_of_a_host_is_the_newest_not_closed_one() {
    let sessions = Sessions::default();
    assert_eq!(sessions.live_session("gpu-box"), None);
    with_session(&sessions, "s1", "gpu-box", SessionStatus::Ready);
    with_session(&sessions, "s2", "gpu-box", SessionStatus::Failed);
    with_session(&sessions, "s3", "other", SessionStatus::Connected);
    // A failed notebook launch leaves the connection up: that session is still the host's.
    assert_eq!(sessions.live_session("gpu-box").as_deref(), Some("s2"));
    sessions.set_status("s2", SessionStatus::Closed);
    assert_eq!(sessions.live_session("gpu-box").as_deref(), Some("s1"));
    // A host session that ended (closed, given up) is not live whatever the row says.
    sessions.host("s1").ok().unwrap().close().await;
    assert_eq!(sessions.live_session("gpu-box"), None);
}

#[tokio::test]
async fn unknown_sessions_and_missing_notebooks_say_what_is_wrong() {
    let sessions = Sessions::default();
    let Err(e) = sessions.host("s9") else {
        panic!("s9 exists")
    };
    assert!(matches!(e, SessionsError::NoSession(ref id) if id == "s9"));
    assert_eq!(Problem::from(e).code, ErrorCode::NotFound);
    with_session(&sessions, "s1", LOCAL_NAME, SessionStatus::Connected);
    let Err(e) = sessions.notebook_control("s1") else {
        panic!("a notebook runs")
    };
    assert!(matches!(e, SessionsError::NoNotebook));
    let p = Problem::from(e);
    assert_eq!(p.code, ErrorCode::Validation);
    assert!(p.message.contains("launch one first"), "{}", p.message);
    // This computer has no SSH connection: the host session's own problem comes through.
    let Err(e) = sessions.connection("s1") else {
        panic!("a connection")
    };
    assert_eq!(Problem::from(e).code, ErrorCode::Unsupported);
    assert!(matches!(sessions.jupyter_host("s1"), Ok(Host::Local)));
}

#[tokio::test]
async fn a_launch_needs_a_connected_session_without_a_notebook() {
    let sessions = Sessions::default();
    for (id, status) in [
        ("s1", SessionStatus::Starting),
        ("s2", SessionStatus::Ready),
        ("s3", SessionStatus::Launching),
        ("s4", SessionStatus::Failed),
        ("s5", SessionStatus::Closed),
    ] {
        with_session(&sessions, id, "gpu-box", status);
    }
    let saved = [Profile {
        name: "gpu-box".into(),
        environment: Some("/opt/jlab".into()),
        ..Profile::default()
    }];
    let refused = |id: &str| sessions.launch_parts(id, &saved).err();
    assert!(matches!(refused("s1"), Some(SessionsError::NotConnected)));
    assert!(matches!(refused("s2"), Some(SessionsError::NotebookRuns)));
    assert!(matches!(refused("s3"), Some(SessionsError::NotebookRuns)));
    assert!(matches!(refused("s5"), Some(SessionsError::NotConnected)));
    // After a failed launch the connection is up: a new launch takes the saved defaults now.
    let Ok((hops, profile, _)) = sessions.launch_parts("s4", &saved) else {
        panic!("refused")
    };
    assert_eq!(hops.unwrap()[0].name, "gpu-box");
    assert_eq!(profile.environment.as_deref(), Some("/opt/jlab"));
}

#[tokio::test]
async fn host_events_move_the_status_and_say_when_to_resume() {
    let sessions = Sessions::default();
    with_session(&sessions, "s1", "gpu-box", SessionStatus::Starting);
    with_session(&sessions, "s2", LOCAL_NAME, SessionStatus::Starting);
    let status = |id: &str| sessions.sessions()[id].summary.status;
    let running = HostEvent::new(Step::Connect, StepState::Running, "dialing");
    assert_eq!(sessions.follow_host_event("s1", &running), None);
    assert_eq!(status("s1"), SessionStatus::Starting);
    let auth = HostEvent::new(Step::Authenticate, StepState::Done, "authenticated");
    assert_eq!(
        sessions.follow_host_event("s1", &auth).as_deref(),
        Some("gpu-box")
    );
    assert_eq!(status("s1"), SessionStatus::Connected);
    // Only the first connect resumes; this computer has no saved host to resume on.
    assert_eq!(sessions.follow_host_event("s1", &auth), None);
    let skipped = HostEvent::new(Step::Authenticate, StepState::Skipped, "");
    assert_eq!(sessions.follow_host_event("s2", &skipped), None);
    assert_eq!(status("s2"), SessionStatus::Connected);
    let gpus = HostEvent::failed(Step::ReadGpus, Problem::new(ErrorCode::Internal, "no"));
    sessions.follow_host_event("s1", &gpus);
    assert_eq!(status("s1"), SessionStatus::Failed);
    // A notebook's own state is not the host events' to change.
    sessions.set_status("s2", SessionStatus::Ready);
    sessions.follow_host_event("s2", &gpus);
    assert_eq!(status("s2"), SessionStatus::Ready);
    assert_eq!(sessions.follow_host_event("s9", &auth), None);
}

#[test]
fn a_lost_connection_is_followed_until_it_is_back() {
    let mut down = false;
    let lost = HostEvent {
        error: Some(Problem::new(ErrorCode::Unreachable, "lost")),
        ..HostEvent::new(Step::Connect, StepState::Running, "reconnecting")
    };
    let first = HostEvent::new(Step::Connect, StepState::Done, "connected");
    assert_eq!(reconnect_change(&first, &mut down), None);
    assert_eq!(reconnect_change(&lost, &mut down), Some(true));
    assert!(down);
    assert_eq!(reconnect_change(&first, &mut down), Some(false));
    assert_eq!(reconnect_change(&first, &mut down), None);
}

#[tokio::test]
async fn a_gpu_watch_replaces_the_one_before_and_stops_with_a_closed_session() {
    let sessions = Sessions::default();
    with_session(&sessions, "s1", LOCAL_NAME, SessionStatus::Connected);
    let forever = || tokio::spawn(std::future::pending::<()>());
    let (a, b) = (forever(), forever());
    sessions.set_gpu_watch("s1", a.abort_handle()).unwrap();
    sessions.set_gpu_watch("s1", b.abort_handle()).unwrap();
    assert!(a.await.unwrap_err().is_cancelled());
    sessions.stop_gpu_watch("s1");
    assert!(b.await.unwrap_err().is_cancelled());
    sessions.set_status("s1", SessionStatus::Closed);
    let c = forever();
    let e = sessions.set_gpu_watch("s1", c.abort_handle()).unwrap_err();
    assert!(matches!(e, SessionsError::NoSession(_)));
    assert!(c.await.unwrap_err().is_cancelled());
}

#[tokio::test]
async fn stopping_a_reopened_server_forgets_what_the_row_showed_of_it() {
    let sessions = Sessions::default();
    with_session(&sessions, "s1", "gpu-box", SessionStatus::Connected);
    sessions
        .with("s1", |e| {
            e.attached
                .insert("tb-1".into(), (None, "http://127.0.0.1:9001/lab".into()));
            e.attached
                .insert("pid-7".into(), (None, "http://127.0.0.1:9002/lab".into()));
            e.summary.gpu = Some("GPU 1".into());
            e.summary.env = Some("/opt/jlab".into());
        })
        .unwrap();
    let url = sessions.with("s1", |e| e.server_url("pid-7")).unwrap();
    assert_eq!(url.as_deref(), Some("http://127.0.0.1:9002/lab"));
    // Shown already: reopening it again opens nothing.
    let book = PortBook::in_home(std::path::Path::new("/nonexistent"));
    let again = sessions
        .reopen("s1", "tb-1", None, &book, str::to_string)
        .await;
    assert_eq!(
        again.unwrap(),
        Reopen::Shown("http://127.0.0.1:9001/lab".into())
    );
    let Ok(taken) = sessions.take_server("s1", "tb-1") else {
        panic!()
    };
    assert!(taken.own.is_none());
    assert_eq!(taken.url.as_deref(), Some("http://127.0.0.1:9001/lab"));
    sessions.with("s1", |e| e.forget_reopened_look()).unwrap();
    let s = &sessions.sessions()["s1"].summary;
    assert_eq!((s.gpu.as_deref(), s.env.as_deref()), (None, None));
}

#[tokio::test]
async fn stopping_the_own_notebook_leaves_the_session_connected() {
    let sessions = Sessions::default();
    with_session(&sessions, "s1", "gpu-box", SessionStatus::Ready);
    sessions
        .with("s1", |e| {
            e.summary.server_id = Some("tb-9".into());
            e.summary.url = Some("http://127.0.0.1:9003/lab".into());
            e.summary.window = Some("jupyter-2".into());
            e.summary.gpu = Some("GPU 0".into());
        })
        .unwrap();
    let Ok(taken) = sessions.take_server("s1", "tb-9") else {
        panic!()
    };
    assert_eq!(
        taken.own.as_ref().map(|o| o.1.as_deref()),
        Some(Some("jupyter-2"))
    );
    assert_eq!(taken.url.as_deref(), Some("http://127.0.0.1:9003/lab"));
    let s = sessions.sessions()["s1"].summary.clone();
    assert_eq!(s, summary("s1", "gpu-box", SessionStatus::Connected));
}

#[tokio::test]
async fn closing_a_session_marks_it_closed_and_ends_its_host_session() {
    let sessions = Sessions::default();
    with_session(&sessions, "s1", LOCAL_NAME, SessionStatus::Connected);
    let task = tokio::spawn(std::future::pending::<()>());
    sessions
        .with("s1", |e| e.task = Some(task.abort_handle()))
        .unwrap();
    let Ok(closing) = sessions.begin_close("s1") else {
        panic!()
    };
    assert_eq!(closing.urls().count(), 0);
    sessions.finish_close("s1", closing).await.unwrap();
    assert!(task.await.unwrap_err().is_cancelled());
    assert_eq!(
        sessions.sessions()["s1"].summary.status,
        SessionStatus::Closed
    );
    assert!(sessions.host("s1").ok().unwrap().is_ended());
    assert_eq!(sessions.live_session(LOCAL_NAME), None);
}

/// What a front end was asked to do.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl Recorder {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

impl NotebookUi for Recorder {
    fn step(&self, step: Step, state: StepState, message: String, error: Option<Problem>) {
        let code = error.map(|e| format!(" {:?}", e.code)).unwrap_or_default();
        let line = format!("step {step:?} {state:?} {message}{code}");
        self.0.lock().unwrap().push(line);
    }
    fn banner(&self, window: &str, text: Option<&str>, button: Option<BannerButton<'_>>) {
        let button = button
            .map(|b| format!(" [{}]", b.label))
            .unwrap_or_default();
        let line = format!("banner {window} {}{button}", text.unwrap_or("-"));
        self.0.lock().unwrap().push(line);
    }
    fn dismiss_connection_errors(&self, window: Option<&str>, url: Option<&str>) {
        let line = format!("dismiss {window:?} {url:?}");
        self.0.lock().unwrap().push(line);
    }
    fn show(&self, open: Option<&str>, url: &str, title: &str) -> (String, Option<String>) {
        self.0
            .lock()
            .unwrap()
            .push(format!("show {open:?} {title}"));
        let public = url.split('?').next().unwrap_or(url).to_string();
        (public, Some(open.unwrap_or("jupyter-1").to_string()))
    }
}

fn progress(step: session::Step, state: session::StepState, message: &str) -> SessionEvent {
    SessionEvent::Progress(Progress {
        step,
        state,
        message: message.into(),
        percent: None,
    })
}

#[tokio::test]
async fn a_notebook_s_events_become_steps_windows_and_banners() {
    let home = tempfile::tempdir().unwrap();
    let book = PortBook::in_home(home.path());
    let sessions = Sessions::default();
    with_session(&sessions, "s1", "gpu-box", SessionStatus::Launching);
    let ui = Recorder::default();
    let mut at = Driving::default();
    let mut on = |event| on_event(&sessions, "s1", event, &mut at, &book, &ui);

    on(progress(
        session::Step::Connect,
        session::StepState::Done,
        "connected",
    ));
    assert_eq!(
        ui.take(),
        [
            "step Connect Done connected",
            "step HostKey Done host key verified",
            "step Authenticate Done authenticated",
        ]
    );
    // The ready step is said once the window shows the notebook, with the URL in place.
    on(progress(
        session::Step::Ready,
        session::StepState::Done,
        "up",
    ));
    assert!(ui.take().is_empty());
    on(SessionEvent::Ready(ReadyInfo {
        url: "http://127.0.0.1:9005/lab?token=secret".into(),
        local_port: 9005,
        gpu: Some("1".into()),
        gpu_label: Some("GPU 1".into()),
        remote_pid: 42,
        env: "/opt/jlab".into(),
        server_id: "tb-5".into(),
        root_dir: None,
        reused: false,
    }));
    let said = ui.take();
    assert_eq!(said[0], "show None JupyterLab — gpu-box — GPU 1");
    assert!(
        said[1].starts_with("step Ready Done up — JupyterLab on 127.0.0.1:9005"),
        "{said:?}"
    );
    let row = sessions.sessions()["s1"].summary.clone();
    assert_eq!(row.status, SessionStatus::Ready);
    assert_eq!(row.url.as_deref(), Some("http://127.0.0.1:9005/lab"));
    assert_eq!(
        (
            row.gpu.as_deref(),
            row.server_id.as_deref(),
            row.window.as_deref()
        ),
        (Some("GPU 1"), Some("tb-5"), Some("jupyter-1"))
    );
    assert_eq!(book.listen("gpu-box", "tb-5").port, 9005);

    on(SessionEvent::Reconnecting {
        attempt: 2,
        next_try_in_secs: 4,
        reason: Problem::new(ErrorCode::Unreachable, "timed out"),
    });
    let said = ui.take();
    assert!(
        said[0].starts_with("banner jupyter-1 ") && said[0].contains("attempt 2"),
        "{said:?}"
    );
    assert!(said[1].starts_with("step OpenTunnel Running connection lost (timed out)"));
    assert_eq!(
        sessions.sessions()["s1"].summary.status,
        SessionStatus::Disconnected
    );

    on(SessionEvent::Reconnected {
        attempts: 2,
        outage_secs: 9,
    });
    let said = ui.take();
    assert_eq!(said[0], "banner jupyter-1 -");
    assert!(said[1].starts_with("dismiss Some(\"jupyter-1\")"));
    assert_eq!(
        sessions.sessions()["s1"].summary.status,
        SessionStatus::Ready
    );

    let gone = Problem::new(ErrorCode::ServerGone, "process 42 ended");
    on(SessionEvent::ServerGone { reason: gone });
    let said = ui.take();
    assert!(said[1].ends_with("[Restart server]"), "{said:?}");
    assert_eq!(said[2], "step Ready Failed process 42 ended ServerGone");
    assert_eq!(
        sessions.sessions()["s1"].summary.status,
        SessionStatus::Failed
    );

    let key = Problem::new(ErrorCode::HostKeyChanged, "the host key changed");
    on(SessionEvent::Disconnected { reason: key });
    let said = ui.take();
    assert!(said[1].starts_with("step OpenTunnel Failed the notebook's connection is lost"));
    assert!(said[1].ends_with("HostKeyChanged"), "{said:?}");

    on(SessionEvent::Failed {
        step: session::Step::Gpus,
        error: Problem::new(ErrorCode::NoFreeGpu, "every GPU is busy"),
    });
    assert_eq!(
        ui.take(),
        ["step ReadGpus Failed every GPU is busy NoFreeGpu"]
    );
    assert_eq!(
        sessions.sessions()["s1"].summary.status,
        SessionStatus::Failed
    );
    // After the reconnect the stale errors are dismissed once more a moment later.
    assert!(at.dismiss_at.is_some());
}
