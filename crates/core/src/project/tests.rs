#![allow(clippy::unwrap_used)]

use std::path::Path;

use super::{
    ProjectPhase, Projects, notebook_in_args,
    registry::{Entry, OpenServer, Steer},
};

fn add(projects: &Projects, id: &str, session: &str, notebook: &str, phase: ProjectPhase) {
    let entry = Entry {
        summary: super::ProjectSummary::new(id, session, Path::new(notebook), phase),
        steer: Steer::default(),
        ended: false,
        server: None,
        task: None,
    };
    projects.lock().insert(id.to_string(), entry);
}

/// Trial finding 4 (issue 21): "Open notebook…" of a notebook already open started a second
/// sync of the same folder (and a second window). A running project of that folder on that
/// session is found and reused; a stopped, failed or ended one, or another folder or session,
/// is not.
#[test]
fn a_second_open_of_a_running_projects_folder_reuses_it() {
    let projects = Projects::default();
    let folder = Path::new("/home/me/proj");
    assert_eq!(projects.running("s1", folder), None);
    add(
        &projects,
        "project-1",
        "s1",
        "/home/me/proj/analysis.ipynb",
        ProjectPhase::Stopped,
    );
    add(
        &projects,
        "project-2",
        "s2",
        "/home/me/proj/analysis.ipynb",
        ProjectPhase::Syncing,
    );
    add(
        &projects,
        "project-3",
        "s1",
        "/home/me/other/analysis.ipynb",
        ProjectPhase::Syncing,
    );
    add(
        &projects,
        "project-4",
        "s1",
        "/home/me/proj/a.ipynb",
        ProjectPhase::Syncing,
    );
    projects.end("project-4");
    assert_eq!(projects.running("s1", folder), None);
    add(
        &projects,
        "project-5",
        "s1",
        "/home/me/proj/analysis.ipynb",
        ProjectPhase::Syncing,
    );
    assert_eq!(projects.running("s1", folder).as_deref(), Some("project-5"));
    // Still uploading: reused too (its window comes when the server is ready).
    projects.lock().get_mut("project-5").unwrap().summary.phase = ProjectPhase::Uploading;
    assert_eq!(projects.running("s1", folder).as_deref(), Some("project-5"));
    let server = OpenServer {
        url: "http://127.0.0.1:8123/lab?token=t".into(),
        root_dir: Some("/home/u/tunnelbook".into()),
        remote_root: "/home/u/tunnelbook/proj".into(),
        title_tail: " — box — GPU 0".into(),
    };
    let url = server.notebook_url("second.ipynb");
    assert!(url.contains("proj/second.ipynb"), "{url}");
    assert!(url.starts_with("http://127.0.0.1:8123/"), "{url}");
}

/// "Bring back now" and "Stop syncing" steer a running project only; an ended one says to open
/// the notebook again. The list is oldest first.
#[test]
fn only_running_projects_are_steered_and_the_list_is_oldest_first() {
    let projects = Projects::default();
    let (a, steer) = projects.add("s1", Path::new("/p/a.ipynb"), ProjectPhase::Uploading, None);
    let (b, _) = projects.add("s1", Path::new("/q/b.ipynb"), ProjectPhase::Syncing, None);
    assert_eq!((a.as_str(), b.as_str()), ("project-1", "project-2"));
    projects.bring_back_now(&a).unwrap();
    projects.stop_syncing(&a).unwrap();
    assert!(steer.stop.is_cancelled());
    assert!(steer.forget.load(std::sync::atomic::Ordering::SeqCst));
    projects.end(&a);
    let e = projects.stop_syncing(&a).unwrap_err().to_string();
    assert!(e.contains("open the notebook again"), "{e}");
    assert!(projects.follows(Path::new("/q")) && !projects.follows(Path::new("/p")));
    let ids: Vec<String> = projects.list().into_iter().map(|p| p.id).collect();
    assert_eq!(ids, ["project-1", "project-2"]);
}

#[test]
fn the_command_line_notebook_is_the_first_existing_ipynb() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.ipynb"), "{}").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "").unwrap();
    let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let found = notebook_in_args(
        &args(&["tunnelbook-app", "notes.txt", "missing.ipynb", "a.ipynb"]),
        dir.path(),
    );
    assert_eq!(
        found,
        Some(std::fs::canonicalize(dir.path().join("a.ipynb")).unwrap())
    );
    assert_eq!(
        notebook_in_args(&args(&["tunnelbook-app", "--flag"]), dir.path()),
        None
    );
    // The program itself is never taken for the notebook.
    assert_eq!(notebook_in_args(&args(&["a.ipynb"]), dir.path()), None);
}
