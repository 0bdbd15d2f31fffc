#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn a_new_server_starts_in_the_projects_folder_when_it_holds_the_project() {
    let home = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let at = |remote: &str| {
        Project::open(
            home.path(),
            "box",
            local.path(),
            remote,
            SyncSettings::default(),
        )
        .unwrap()
    };
    assert_eq!(
        at("/home/u/tunnelbook/proj").server_root("/home/u/tunnelbook/"),
        "/home/u/tunnelbook"
    );
    // Elsewhere (`--remote-dir`), or the projects folder itself: the project's own folder.
    assert_eq!(
        at("/srv/data/proj").server_root("/home/u/tunnelbook"),
        "/srv/data/proj"
    );
    assert_eq!(
        at("/home/u/tunnelbook").server_root("/home/u/tunnelbook"),
        "/home/u/tunnelbook"
    );
}

#[test]
fn excludes_cover_vcs_caches_temporaries_and_the_ignore_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(IGNORE_FILE),
        "*.ckpt\nscratch/\n!keep.ckpt\n",
    )
    .unwrap();
    let ex = Excludes::of(dir.path()).unwrap();
    assert!(ex.excludes(".git", true));
    assert!(ex.excludes("sub/__pycache__", true));
    assert!(ex.excludes(".ipynb_checkpoints", true));
    assert!(ex.excludes("model.ckpt", false));
    assert!(ex.excludes("deep/model.ckpt", false));
    assert!(!ex.excludes("keep.ckpt", false));
    assert!(ex.excludes("scratch", true));
    assert!(ex.excludes("scratch/a.txt", false));
    assert!(ex.excludes(".a.csv.tbpart-0011aabb", false));
    assert!(!ex.excludes("data/small.csv", false));
    assert!(!ex.excludes("analysis.ipynb", false));
}

#[test]
fn local_scan_skips_environments_and_excludes() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    for (f, body) in [
        ("analysis.ipynb", "{}"),
        ("data/small.csv", "a,b\n"),
        (".git/HEAD", "ref"),
        ("__pycache__/x.pyc", "x"),
        ("venv/pyvenv.cfg", "home = /usr"),
        ("venv/lib/site.py", "x"),
        ("env2/conda-meta/history", "x"),
    ] {
        let path = p.join(f);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
    let ex = Excludes::of(p).unwrap();
    let rels: Vec<String> = scan_local(p, &ex)
        .unwrap()
        .into_iter()
        .map(|f| f.rel)
        .collect();
    assert_eq!(rels, vec!["analysis.ipynb", "data/small.csv"]);
}

#[test]
fn beside_names_keep_the_extension() {
    assert_eq!(
        beside_name(Path::new("/p/analysis.ipynb"), "gpu-box"),
        PathBuf::from("/p/analysis (gpu-box).ipynb")
    );
    assert_eq!(
        beside_name(Path::new("/p/Makefile"), "box"),
        PathBuf::from("/p/Makefile (box)")
    );
}

/// Trial finding 5 (issue 21): after a restart nothing resumed the sync of a project followed
/// before. A followed project is remembered in its state file until "Stop syncing", and listed
/// for its host only.
#[test]
fn followed_projects_are_remembered_per_host_until_stopped() {
    let home = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let open = |host: &str, dir: &Path, remote: &str| {
        Project::open(home.path(), host, dir, remote, SyncSettings::default()).unwrap()
    };
    assert_eq!(followed(home.path(), "box"), vec![]);
    let mut p = open("box", local.path(), "/home/u/tunnelbook/proj");
    p.set_followed(Some("analysis.ipynb")).unwrap();
    let mut q = open("gpu-2", other.path(), "/home/u/tunnelbook/other");
    q.set_followed(Some("b.ipynb")).unwrap();
    let found = followed(home.path(), "box");
    assert_eq!(
        found,
        vec![Followed {
            host: "box".into(),
            local_root: std::fs::canonicalize(local.path()).unwrap(),
            remote_root: "/home/u/tunnelbook/proj".into(),
            notebook: "analysis.ipynb".into(),
        }]
    );
    // Read back by a new run (the state file), the files seen stay known too.
    let again = open("box", local.path(), "/home/u/tunnelbook/proj");
    assert_eq!(again.remote_root(), "/home/u/tunnelbook/proj");
    // Stopped: not resumed any more.
    p.set_followed(None).unwrap();
    assert_eq!(followed(home.path(), "box"), vec![]);
    assert_eq!(followed(home.path(), "gpu-2").len(), 1);
    // A local folder gone since is not resumed.
    let gone = other.path().to_path_buf();
    drop(other);
    assert!(!gone.exists());
    assert_eq!(followed(home.path(), "gpu-2"), vec![]);
}
