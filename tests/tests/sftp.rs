//! SFTP and project-folder sync against a real sshd (`Subsystem sftp internal-sftp`), as the
//! test user: a folder goes up byte for byte with the remote times set, unchanged files are not
//! sent again, excludes and oversized files stay here, a cancelled transfer leaves no
//! half-written file on either side, the host's saves come back and never over a local edit,
//! and a save made while away comes back on the next run instead of being overwritten.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, UNIX_EPOCH},
};

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use tunnelbook_core::{
    sftp::{Progress, Sftp, SftpError},
    ssh::{Connection, HostKeyPolicy, NoPrompter},
    sync::{Project, SyncSettings},
};
use tunnelbook_testbed::{Client, KeyFile, Sshd, SshdOptions, USER, key_only, make_key};

struct Bed {
    _keys: tempfile::TempDir,
    sshd: Sshd,
    client: Client,
    conn: Connection,
    /// The remote folder of this test (absolute, under the user's home), removed on drop.
    remote: PathBuf,
    key: KeyFile,
}

impl Drop for Bed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.remote);
    }
}

async fn bed(name: &str) -> Bed {
    let keys = tempfile::tempdir().unwrap();
    let key = make_key(keys.path(), "id", "ed25519", None);
    let sshd = Sshd::start(&[&key], SshdOptions::default());
    let client = Client::new();
    client.trust(&sshd);
    let ctx = client.context(Arc::new(NoPrompter), HostKeyPolicy::Strict, None);
    let conn = Connection::open(&[key_only(sshd.profile("box", USER), &key)], &ctx)
        .await
        .unwrap();
    let remote = PathBuf::from(format!(
        "/home/{USER}/tb-sftp-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&remote);
    Bed {
        _keys: keys,
        sshd,
        client,
        conn,
        remote,
        key,
    }
}

fn write(root: &Path, rel: &str, body: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

fn sha(path: &Path) -> Vec<u8> {
    Sha256::digest(std::fs::read(path).unwrap()).to_vec()
}

/// Pseudo-random bytes (incompressible, so compression cannot flatter the transfer).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn set_mtime(path: &Path, secs: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_modified(UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

fn temporaries(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.contains(".tbpart-") {
                found.push(name);
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_goes_up_byte_for_byte_and_unchanged_files_are_not_sent_again() {
    let bed = bed("up").await;
    let local = tempfile::tempdir().unwrap();
    let root = local.path().join("proj");
    for i in 0..40 {
        write(
            &root,
            &format!("data/part-{i:02}.bin"),
            &noise(1000 + i * 2500, i as u64),
        );
    }
    write(&root, "big.bin", &noise(24 << 20, 7));
    write(&root, "analysis.ipynb", b"{}");
    let sftp = Sftp::open(&bed.conn).await.unwrap();
    let remote = bed.remote.display().to_string();
    let mut project = Project::open(
        &bed.client.home(),
        "box",
        &root,
        &remote,
        SyncSettings::default(),
    )
    .unwrap();

    let plan = project.plan_upload(&sftp).await.unwrap();
    assert_eq!(plan.send.len(), 42);
    assert_eq!(plan.unchanged, 0);
    let progress = Progress::default();
    project
        .upload(&sftp, &plan, false, &progress, &CancellationToken::new())
        .await
        .unwrap();
    let p = progress.snapshot();
    assert_eq!(p.files_done, 42);
    assert_eq!(p.files_total, 42);
    assert_eq!(p.bytes_done, p.bytes_total);
    assert!(p.bytes_done > 24 << 20);
    assert!(p.bytes_per_sec > 0.0);

    // Byte for byte, with the local times and modes, owned by the user.
    for rel in [
        "big.bin",
        "analysis.ipynb",
        "data/part-00.bin",
        "data/part-39.bin",
    ] {
        let (l, r) = (root.join(rel), bed.remote.join(rel));
        assert_eq!(sha(&l), sha(&r), "{rel}");
        let (lm, rm) = (
            std::fs::metadata(&l).unwrap(),
            std::fs::metadata(&r).unwrap(),
        );
        assert_eq!(lm.mtime(), rm.mtime(), "{rel}");
        assert_eq!(lm.mode() & 0o777, rm.mode() & 0o777, "{rel}");
        assert_ne!(rm.uid(), 0, "{rel} is root's: not written as the user");
    }
    assert_eq!(temporaries(&bed.remote), Vec::<String>::new());
    assert_eq!(temporaries(&bed.remote.join("data")), Vec::<String>::new());

    // Nothing changed: nothing to send. One file touched: only that one.
    let plan = project.plan_upload(&sftp).await.unwrap();
    assert_eq!((plan.send.len(), plan.unchanged), (0, 42), "{plan:?}");
    write(&root, "data/part-03.bin", b"changed");
    let plan = project.plan_upload(&sftp).await.unwrap();
    let sent: Vec<&str> = plan.send.iter().map(|f| f.rel.as_str()).collect();
    assert_eq!(sent, ["data/part-03.bin"]);
    project
        .upload(
            &sftp,
            &plan,
            false,
            &Progress::default(),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(bed.remote.join("data/part-03.bin")).unwrap(),
        b"changed"
    );

    // And back down, pipelined, byte for byte, with the remote time.
    let back = local.path().join("big-back.bin");
    let (n, mtime) = sftp
        .download(
            &format!("{remote}/big.bin"),
            &back,
            &Progress::default(),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(n, 24 << 20);
    assert_eq!(sha(&back), sha(&root.join("big.bin")));
    assert_eq!(i64::from(mtime), std::fs::metadata(&back).unwrap().mtime());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn excluded_and_oversized_files_stay_here_unless_asked_for() {
    let bed = bed("excl").await;
    let local = tempfile::tempdir().unwrap();
    let root = local.path().join("proj");
    write(&root, "analysis.ipynb", b"{}");
    write(&root, "data/small.csv", b"a,b\n1,2\n");
    write(&root, ".git/HEAD", b"ref: refs/heads/main\n");
    write(&root, "__pycache__/util.cpython-311.pyc", b"x");
    write(&root, "pkg/__pycache__/m.pyc", b"x");
    write(&root, ".venv/pyvenv.cfg", b"home = /usr/bin\n");
    write(&root, ".venv/lib/python3.11/site.py", b"x");
    write(&root, "myenv/conda-meta/history", b"x");
    write(&root, ".ipynb_checkpoints/analysis-checkpoint.ipynb", b"{}");
    write(&root, "scratch/tmp.txt", b"x");
    write(&root, "model.ckpt", b"x");
    write(&root, ".tunnelbookignore", b"# mine\nscratch/\n*.ckpt\n");
    // 101 MB, sparse: over the default 100 MB limit without costing the disk anything.
    let big = std::fs::File::create(root.join("weights.bin")).unwrap();
    big.set_len(101_000_000).unwrap();
    drop(big);

    let sftp = Sftp::open(&bed.conn).await.unwrap();
    let remote = bed.remote.display().to_string();
    let mut project = Project::open(
        &bed.client.home(),
        "box",
        &root,
        &remote,
        SyncSettings::default(),
    )
    .unwrap();
    let plan = project.plan_upload(&sftp).await.unwrap();
    let mut sent: Vec<&str> = plan.send.iter().map(|f| f.rel.as_str()).collect();
    sent.sort_unstable();
    assert_eq!(
        sent,
        [".tunnelbookignore", "analysis.ipynb", "data/small.csv"]
    );
    let large: Vec<&str> = plan.too_large.iter().map(|f| f.rel.as_str()).collect();
    assert_eq!(large, ["weights.bin"]);
    project
        .upload(
            &sftp,
            &plan,
            false,
            &Progress::default(),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    let mut on_host = Vec::new();
    for e in walk(&bed.remote) {
        on_host.push(e);
    }
    on_host.sort();
    assert_eq!(
        on_host,
        [
            ".tunnelbookignore",
            "analysis.ipynb",
            "data",
            "data/small.csv"
        ]
    );

    // Asked for (the CLI's --include-large / "yes"): it goes too.
    let plan = project.plan_upload(&sftp).await.unwrap();
    project
        .upload(
            &sftp,
            &plan,
            true,
            &Progress::default(),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        std::fs::metadata(bed.remote.join("weights.bin"))
            .unwrap()
            .len(),
        101_000_000
    );
}

fn walk(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let rel = e.path().strip_prefix(root).unwrap().display().to_string();
            if e.file_type().unwrap().is_dir() {
                dirs.push(e.path());
            }
            out.push(rel);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_transfer_leaves_nothing_half_written_either_way() {
    let bed = bed("cancel").await;
    let local = tempfile::tempdir().unwrap();
    let root = local.path().join("proj");
    write(&root, "huge.bin", &noise(96 << 20, 3));
    let sftp = Sftp::open(&bed.conn).await.unwrap();
    sftp.mkdir_all(&bed.remote.display().to_string())
        .await
        .unwrap();
    let target = format!("{}/huge.bin", bed.remote.display());

    let cancel_when_started = |progress: Progress, cancel: CancellationToken| {
        tokio::spawn(async move {
            while progress.snapshot().bytes_done < 4 << 20 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            cancel.cancel();
        })
    };
    let progress = Progress::default();
    let cancel = CancellationToken::new();
    let watcher = cancel_when_started(progress.clone(), cancel.clone());
    let r = sftp
        .upload(&root.join("huge.bin"), &target, &progress, &cancel)
        .await;
    watcher.await.unwrap();
    assert!(matches!(r, Err(SftpError::Cancelled)), "{r:?}");
    assert!(progress.snapshot().bytes_done < 96 << 20, "it had finished");
    assert!(!bed.remote.join("huge.bin").exists());
    assert_eq!(temporaries(&bed.remote), Vec::<String>::new());

    // The same the other way: the file exists on the host, the download is cancelled.
    std::fs::copy(root.join("huge.bin"), bed.remote.join("huge.bin")).unwrap();
    std::os::unix::fs::chown(bed.remote.join("huge.bin"), Some(uid_of(USER)), None).unwrap();
    let back = local.path().join("back.bin");
    std::fs::write(&back, b"the old local version").unwrap();
    let progress = Progress::default();
    let cancel = CancellationToken::new();
    let watcher = cancel_when_started(progress.clone(), cancel.clone());
    let r = sftp.download(&target, &back, &progress, &cancel).await;
    watcher.await.unwrap();
    assert!(matches!(r, Err(SftpError::Cancelled)), "{r:?}");
    assert_eq!(std::fs::read(&back).unwrap(), b"the old local version");
    assert_eq!(temporaries(local.path()), Vec::<String>::new());

    // A missing remote file is a clear error naming it.
    let e = sftp
        .download(
            &format!("{}/nope.bin", bed.remote.display()),
            &back,
            &Progress::default(),
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    assert!(e.to_string().contains("nope.bin"), "{e}");
}

fn uid_of(user: &str) -> u32 {
    std::fs::metadata(format!("/home/{user}")).unwrap().uid()
}

/// What the host's side does to a file (a notebook save), with a time that differs from any
/// earlier one.
fn host_save(path: &Path, body: &[u8], secs: u64) {
    std::fs::write(path, body).unwrap();
    set_mtime(path, secs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_saves_come_back_never_over_a_local_edit_and_are_not_lost_while_away() {
    let bed = bed("back").await;
    let local = tempfile::tempdir().unwrap();
    let root = local.path().join("proj");
    write(&root, "analysis.ipynb", b"v1");
    write(&root, "notes.txt", b"n1");
    let sftp = Sftp::open(&bed.conn).await.unwrap();
    let remote = bed.remote.display().to_string();
    let home = bed.client.home();
    let open = || Project::open(&home, "gpu-box", &root, &remote, SyncSettings::default()).unwrap();
    let mut project = open();
    let plan = project.plan_upload(&sftp).await.unwrap();
    project
        .upload(
            &sftp,
            &plan,
            false,
            &Progress::default(),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    let cancel = CancellationToken::new();
    assert_eq!(project.bring_back(&sftp, &cancel).await.unwrap(), vec![]);

    // A save on the host comes back over the unchanged local file; a new output file too.
    host_save(
        &bed.remote.join("analysis.ipynb"),
        b"v2 from the host",
        1_700_000_100,
    );
    write(&bed.remote, "out/result.txt", b"42");
    let back = project.bring_back(&sftp, &cancel).await.unwrap();
    let mut rels: Vec<(&str, bool)> = back.iter().map(|b| (b.rel.as_str(), b.beside)).collect();
    rels.sort_unstable();
    assert_eq!(rels, [("analysis.ipynb", false), ("out/result.txt", false)]);
    assert_eq!(
        std::fs::read(root.join("analysis.ipynb")).unwrap(),
        b"v2 from the host"
    );
    assert_eq!(std::fs::read(root.join("out/result.txt")).unwrap(), b"42");
    // Brought back files are not sent up again.
    let plan = project.plan_upload(&sftp).await.unwrap();
    assert!(plan.send.is_empty(), "{plan:?}");

    // Edited here, then saved on the host: both versions are kept, nothing overwritten.
    std::fs::write(root.join("analysis.ipynb"), b"v3 edited here").unwrap();
    host_save(
        &bed.remote.join("analysis.ipynb"),
        b"v3 from the host",
        1_700_000_200,
    );
    let back = project.bring_back(&sftp, &cancel).await.unwrap();
    assert_eq!(back.len(), 1);
    assert!(back[0].beside);
    assert_eq!(back[0].local_path, root.join("analysis (gpu-box).ipynb"));
    assert_eq!(
        std::fs::read(root.join("analysis.ipynb")).unwrap(),
        b"v3 edited here"
    );
    assert_eq!(
        std::fs::read(root.join("analysis (gpu-box).ipynb")).unwrap(),
        b"v3 from the host"
    );
    // The host's version is not fetched again until it changes again.
    assert_eq!(project.bring_back(&sftp, &cancel).await.unwrap(), vec![]);
    drop(project);

    // Away (no sync running): the host saves notes.txt. The next run brings it back first
    // instead of sending the old local copy over it.
    host_save(
        &bed.remote.join("notes.txt"),
        b"n2 saved while away",
        1_700_000_300,
    );
    let mut project = open();
    let plan = project.plan_upload(&sftp).await.unwrap();
    let bring: Vec<&str> = plan.bring_back.iter().map(|f| f.rel.as_str()).collect();
    assert_eq!(bring, ["notes.txt"]);
    assert!(!plan.send.iter().any(|f| f.rel == "notes.txt"), "{plan:?}");
    project
        .upload(
            &sftp,
            &plan,
            false,
            &Progress::default(),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(root.join("notes.txt")).unwrap(),
        b"n2 saved while away"
    );
    assert_eq!(
        std::fs::read(bed.remote.join("notes.txt")).unwrap(),
        b"n2 saved while away"
    );
    // The local edit of analysis.ipynb (kept above) goes up now.
    assert_eq!(
        std::fs::read(bed.remote.join("analysis.ipynb")).unwrap(),
        b"v3 edited here"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_files_verb_puts_lists_gets_moves_and_removes() {
    let bed = bed("cli").await;
    let profile = key_only(bed.sshd.profile("box", USER), &bed.key);
    tunnelbook_core::profile::ProfileStore::in_home(&bed.client.home())
        .save(&[profile])
        .unwrap();
    let cli = |args: &[&str]| {
        let out = bed
            .client
            .cli()
            .arg("files")
            .arg("box")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let local = tempfile::tempdir().unwrap();
    let root = local.path().join("runs");
    write(&root, "a.txt", b"alpha");
    write(&root, "deep/b.bin", &noise(300_000, 5));
    let remote = bed.remote.display().to_string();

    // put: the folder whole, into a remote folder made on the way.
    let (code, _, err) = cli(&["put", &root.display().to_string(), &remote]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        sha(&bed.remote.join("runs/deep/b.bin")),
        sha(&root.join("deep/b.bin"))
    );
    // ls --json: the entries as the app gets them.
    let (code, out, err) = cli(&["ls", &format!("{remote}/runs"), "--json"]);
    assert_eq!(code, 0, "{err}");
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed[0]["name"], "deep");
    assert_eq!(listed[0]["isDir"], true);
    assert_eq!(listed[1]["name"], "a.txt");
    assert_eq!(listed[1]["size"], 5);
    // mv, then get the folder back.
    let (code, _, err) = cli(&[
        "mv",
        &format!("{remote}/runs/a.txt"),
        &format!("{remote}/runs/c.txt"),
    ]);
    assert_eq!(code, 0, "{err}");
    let back = local.path().join("back");
    let (code, _, err) = cli(&[
        "get",
        &format!("{remote}/runs"),
        &back.display().to_string(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(back.join("runs/c.txt")).unwrap(), b"alpha");
    assert_eq!(
        sha(&back.join("runs/deep/b.bin")),
        sha(&root.join("deep/b.bin"))
    );
    // rm: the folder and everything in it; a missing path is an error naming it.
    let (code, _, err) = cli(&["rm", &format!("{remote}/runs")]);
    assert_eq!(code, 0, "{err}");
    assert!(!bed.remote.join("runs").exists());
    let (code, _, err) = cli(&[
        "get",
        &format!("{remote}/nope"),
        &back.display().to_string(),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("nope"), "{err}");
}

/// Issue 21, new-user trial finding 4: two syncs of the same folder (a second "Open notebook…"
/// of an open notebook) both followed the host; the one that brought the save back second saw
/// the local file changed (by the first) and wrote `analysis (gpu-box).ipynb`, byte for byte the
/// local file. A host save identical to the local file is never a conflict, whichever way the
/// bytes got here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_save_identical_to_the_local_file_is_no_conflict() {
    let bed = bed("same").await;
    let local = tempfile::tempdir().unwrap();
    let root = local.path().join("proj");
    write(&root, "analysis.ipynb", b"v1");
    let sftp = Sftp::open(&bed.conn).await.unwrap();
    let remote = bed.remote.display().to_string();
    let home = bed.client.home();
    let open = || Project::open(&home, "gpu-box", &root, &remote, SyncSettings::default()).unwrap();
    let mut first = open();
    let plan = first.plan_upload(&sftp).await.unwrap();
    first
        .upload(
            &sftp,
            &plan,
            false,
            &Progress::default(),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    // A second sync of the same folder, with what was seen at the upload.
    let mut second = open();
    let cancel = CancellationToken::new();

    host_save(
        &bed.remote.join("analysis.ipynb"),
        b"v2 from the host",
        1_700_000_100,
    );
    let back = first.bring_back(&sftp, &cancel).await.unwrap();
    assert_eq!(back.len(), 1);
    assert!(!back[0].beside);
    // The second sync finds the local file changed since it looked, but holding the host's
    // bytes: nothing to write, nothing beside.
    let back = second.bring_back(&sftp, &cancel).await.unwrap();
    assert_eq!(back, vec![]);
    let beside = root.join("analysis (gpu-box).ipynb");
    assert!(!beside.exists(), "a conflict copy of identical bytes");
    assert_eq!(temporaries(&root), Vec::<String>::new());
    assert_eq!(
        std::fs::read(root.join("analysis.ipynb")).unwrap(),
        b"v2 from the host"
    );
    // And it does not come back again, nor goes up again.
    assert_eq!(second.bring_back(&sftp, &cancel).await.unwrap(), vec![]);
    let plan = second.plan_upload(&sftp).await.unwrap();
    assert!(
        plan.send.is_empty() && plan.conflicts.is_empty(),
        "{plan:?}"
    );

    // The same edit made on both sides (other times): no conflict either.
    std::fs::write(root.join("analysis.ipynb"), b"v3 on both sides").unwrap();
    host_save(
        &bed.remote.join("analysis.ipynb"),
        b"v3 on both sides",
        1_700_000_200,
    );
    assert_eq!(first.bring_back(&sftp, &cancel).await.unwrap(), vec![]);
    assert!(!beside.exists(), "a conflict copy of identical bytes");
    // A real conflict still keeps both.
    std::fs::write(root.join("analysis.ipynb"), b"v4 edited here").unwrap();
    host_save(
        &bed.remote.join("analysis.ipynb"),
        b"v4 from the host",
        1_700_000_300,
    );
    let back = first.bring_back(&sftp, &cancel).await.unwrap();
    assert_eq!(back.len(), 1);
    assert!(back[0].beside);
    assert_eq!(std::fs::read(&beside).unwrap(), b"v4 from the host");
    assert_eq!(
        std::fs::read(root.join("analysis.ipynb")).unwrap(),
        b"v4 edited here"
    );
    assert_eq!(temporaries(&root), Vec::<String>::new());
}

/// The Files view's logic in core, on a real sshd: a folder's listing with its parent, a rename
/// by name staying in its folder (an empty name refused), dropped files and folders going up
/// whole with their progress told and ended, a drag-out copy staged privately and reused while
/// the remote file is unchanged, and a vanished path said in words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_files_view_lists_renames_uploads_and_stages_drag_copies() {
    use tunnelbook_core::sftp::{FilesError, Uploads, reporting, staging::DragCopies};
    let bed = bed("view").await;
    let sftp = Sftp::open(&bed.conn).await.unwrap();
    let remote = bed.remote.display().to_string();
    sftp.mkdir_all(&remote).await.unwrap();

    // Dropped on the window: a file and a folder with a subfolder.
    let local = tempfile::tempdir().unwrap();
    write(local.path(), "notes.txt", b"hello");
    write(local.path(), "data/sub/a.csv", &noise(300_000, 7));
    let uploads = Uploads::of(&[
        local.path().join("notes.txt").display().to_string(),
        local.path().join("data").display().to_string(),
    ])
    .unwrap();
    assert_eq!(uploads.what(), "2 files");
    let progress = uploads.progress();
    let mut ticks = Vec::new();
    let cancel = CancellationToken::new();
    let sent = reporting(
        &progress,
        uploads.send(&sftp, &remote, &progress, &cancel),
        |p, done, error| ticks.push((p, done, error)),
    )
    .await
    .unwrap();
    assert_eq!(sent, 2);
    let (last, done, error) = ticks.last().unwrap().clone();
    assert!(done && error.is_none(), "{ticks:?}");
    assert_eq!((last.files_done, last.bytes_done), (2, 300_005));
    assert_eq!(
        sha(&bed.remote.join("data/sub/a.csv")),
        sha(&local.path().join("data/sub/a.csv"))
    );

    // Listed, folders first, with the parent.
    let listing = sftp.listing(Some(&remote)).await.unwrap();
    let names: Vec<&str> = listing.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["data", "notes.txt"]);
    assert_eq!(
        listing.parent.as_deref(),
        Some(format!("/home/{USER}").as_str())
    );

    // Renamed by name: stays in its folder.
    let notes = format!("{remote}/notes.txt");
    sftp.rename_to(&notes, "renamed.txt").await.unwrap();
    assert!(bed.remote.join("renamed.txt").is_file());
    assert!(matches!(
        sftp.rename_to(&format!("{remote}/renamed.txt"), "  ").await,
        Err(FilesError::EmptyName)
    ));

    // Dragged out: staged privately, then reused while unchanged on the host.
    let staging = tempfile::tempdir().unwrap();
    let copies = DragCopies::default();
    let csv = format!("{remote}/data/sub/a.csv");
    let mut told = Vec::new();
    let (name, copy) = copies
        .fetch(&sftp, "s1", &csv, staging.path(), |n, _, done, _| {
            told.push((n.to_string(), done))
        })
        .await
        .unwrap();
    assert_eq!(name, "a.csv");
    assert!(copy.starts_with(staging.path()));
    assert_eq!(sha(&copy), sha(&local.path().join("data/sub/a.csv")));
    assert_eq!(told.last(), Some(&("a.csv".to_string(), true)));
    let (_, again) = copies
        .fetch(&sftp, "s1", &csv, staging.path(), |_, _, _, _| {
            panic!("an unchanged copy is not downloaded again")
        })
        .await
        .unwrap();
    assert_eq!(again, copy);
    // A folder goes whole.
    let (_, folder) = copies
        .fetch(
            &sftp,
            "s1",
            &format!("{remote}/data"),
            staging.path(),
            |_, _, _, _| {},
        )
        .await
        .unwrap();
    assert!(folder.join("sub/a.csv").is_file());
    // Gone since it was listed: said in words.
    let gone = copies
        .fetch(&sftp, "s1", &notes, staging.path(), |_, _, _, _| {})
        .await
        .unwrap_err();
    assert!(matches!(gone, FilesError::Gone { .. }), "{gone}");
    assert!(gone.to_string().contains("refresh the folder"), "{gone}");
    sftp.close();
}
