//! SLURM on core's host session (issue 20), against the real SLURM test bed behind a real sshd:
//!
//! - the host session detects a SLURM login node when it connects — nobody asks — and saves the
//!   host as `scheduler: slurm`; a scheduler the user set stands; a plain host is not saved;
//! - a job launched under one `TUNNELBOOK_HOME` is found from a second one (another computer) by
//!   core's lookup (what the app's Sessions screen and `tunnelbook attach` use), with its end
//!   time from SLURM; a kernel through that second home's forward runs on the job's GPU; core's
//!   stop of a listed job ends it CANCELLED.
//!
//! Its own binary (one bed) so it runs beside the other SLURM scenarios.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio_util::sync::CancellationToken;
use tunnelbook_core::{
    gpu::FreeRule,
    host::{HostSession, HostSpec},
    profile::{Profile, ProfileStore, scheduler::Scheduler},
    session::{ReconnectPolicy, SessionHost},
    slurm::{JobRequest, job::JupyterJob, launch},
    ssh::{HostKeyPolicy, NoPrompter},
};
use tunnelbook_testbed::{
    Client, KeyFile, Sshd, SshdOptions, jupyter_venv,
    kernel::{execute, start_kernel},
    key_only, make_key,
    slurm::{SLURM_USER, SlurmBed},
};

/// A client whose saved host `box` is `sshd` as the SLURM user, with `scheduler` as given.
fn client_for(sshd: &Sshd, key: &KeyFile, scheduler: Option<Scheduler>) -> (Client, Profile) {
    let client = Client::new();
    client.trust(sshd);
    let mut profile = key_only(sshd.profile("box", SLURM_USER), key);
    profile.scheduler = scheduler;
    ProfileStore::in_home(&client.home())
        .save(std::slice::from_ref(&profile))
        .unwrap();
    (client, profile)
}

fn start(client: &Client, profile: Profile) -> HostSession {
    let (host, mut events) = HostSession::start(HostSpec {
        host: SessionHost::Ssh {
            chain: vec![profile],
            context: client.context(Arc::new(NoPrompter), HostKeyPolicy::Strict, None),
        },
        reconnect: ReconnectPolicy::default(),
        free_rule: FreeRule::default(),
        profiles: Some(ProfileStore::in_home(&client.home())),
        probe: true,
    });
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    host
}

fn saved(client: &Client) -> Option<Scheduler> {
    ProfileStore::in_home(&client.home())
        .get("box")
        .unwrap()
        .scheduler
}

/// Waits until the host session knows the scheduler by itself (nobody asks for it); returns it
/// and how long after connecting it was known.
async fn known_after_connect(host: &HostSession) -> (Scheduler, Duration) {
    host.next_connection(None).await.unwrap();
    let connected = Instant::now();
    loop {
        if let Some(s) = host.scheduler() {
            return (s, connected.elapsed());
        }
        assert!(
            connected.elapsed() < Duration::from_secs(5),
            "the scheduler is not known 5 s after connecting"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_session_detects_slurm_on_connect_and_a_second_home_attaches_and_stops() {
    let slurm = SlurmBed::start();
    let keys = tempfile::tempdir().unwrap();
    let key = make_key(keys.path(), "id", "ed25519", None);
    let sshd = Sshd::start(
        &[&key],
        SshdOptions {
            extra: slurm.sshd_lines(),
            ..SshdOptions::default()
        },
    );

    // 1. Detected on connect and saved with the host (the app's GPU step shows the cluster at
    // once; a plain launch is refused there).
    let (home_a, profile) = client_for(&sshd, &key, None);
    let host_a = start(&home_a, profile);
    let (found, after) = known_after_connect(&host_a).await;
    assert_eq!(found, Scheduler::Slurm);
    eprintln!("SLURM detected {after:?} after connecting");
    assert!(after < Duration::from_secs(3), "{after:?}");
    assert_eq!(saved(&home_a), Some(Scheduler::Slurm));

    // 2. The user's own setting stands: `scheduler: none` is neither probed over nor changed.
    let (home_none, profile) = client_for(&sshd, &key, Some(Scheduler::None));
    let host_none = start(&home_none, profile);
    host_none.next_connection(None).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(host_none.scheduler(), Some(Scheduler::None));
    assert_eq!(saved(&home_none), Some(Scheduler::None));
    host_none.close().await;

    // 3. A plain host (no controller for its sessions): known as none, nothing saved.
    let plain = Sshd::start(&[&key], SshdOptions::default());
    let (home_plain, profile) = client_for(&plain, &key, None);
    let host_plain = start(&home_plain, profile);
    let (found, _) = known_after_connect(&host_plain).await;
    assert_eq!(found, Scheduler::None);
    assert_eq!(saved(&home_plain), None);
    host_plain.close().await;

    // 4. A job launched from home A (core's launch flow, as `up --slurm` and the app run it)…
    let conn_a = host_a.connection().unwrap();
    let req = JobRequest {
        time_secs: Some(600),
        gpus: Some("v100:1".parse().unwrap()),
        ..JobRequest::default()
    };
    let jupyter = JupyterJob {
        env_prefix: Some(jupyter_venv().display().to_string()),
        notebook_dir: None,
    };
    let token = tunnelbook_core::jupyter::new_token();
    let launched = launch::launch(
        &conn_a,
        &req,
        &jupyter,
        &token,
        |_| {},
        &CancellationToken::new(),
    )
    .await
    .unwrap_or_else(|e| panic!("launch: {e}\n{}", slurm.logs()));
    let job_id = launched.submitted.job_id.clone();
    host_a.close().await;

    // … is found from home B, another computer: its GPU, its end time from SLURM, its token.
    let (home_b, profile) = client_for(&sshd, &key, None);
    let host_b = start(&home_b, profile);
    let conn_b = host_b.next_connection(None).await.unwrap();
    let found = launch::find_attachable(&conn_b, None).await.unwrap();
    assert_eq!(found.row.id, job_id);
    assert_eq!(found.token.expose(), token.expose());
    assert_eq!(
        found.connection.cuda_visible_devices,
        launched.connection.cuda_visible_devices
    );
    let end = &found.row.end_time;
    assert!(
        end.len() == 19 && end.as_bytes()[10] == b'T',
        "end time {end:?}"
    );
    let scontrol = slurm.output(&["scontrol", "show", "job", "-o", &job_id]);
    assert!(
        scontrol.contains(&format!("EndTime={end}")),
        "squeue's end {end} is not scontrol's: {scontrol}"
    );
    let err = launch::find_attachable(&conn_b, Some("999999"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("999999"), "{err}");

    // A kernel through home B's forward (through the login node, core's one way to reach a
    // job's JupyterLab: the app's Sessions → Open) runs on the job's GPU.
    let (forward, local) = host_b
        .forward_to_jupyter(
            &found.connection.host,
            found.connection.port,
            &found.token,
            Duration::from_secs(60),
        )
        .await
        .unwrap()
        .expect("the job's JupyterLab answers through the forward");
    let port = local.port();
    let kernel = start_kernel(port, &found.token).await;
    let seen = execute(
        port,
        &found.token,
        &kernel,
        "import os; print(os.environ.get('CUDA_VISIBLE_DEVICES'), os.environ.get('SLURM_JOB_GPUS'))",
    )
    .await;
    let (cuda, job_gpus) = seen.trim().split_once(' ').unwrap();
    assert_eq!(cuda, found.connection.cuda_visible_devices);
    assert_eq!(cuda, job_gpus, "{seen}");
    assert!(["2", "3"].contains(&cuda), "v100s are GPUs 2 and 3: {seen}");

    // Core's stop of a listed job (the app's Sessions → Stop, `down`): CANCELLED, confirmed.
    let state = launch::stop_job(&conn_b, &job_id, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(state, "CANCELLED");
    let err = launch::stop_job(&conn_b, "999999", Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not a Tunnelbook job"), "{err}");
    assert_eq!(slurm.job_state(&job_id), "CANCELLED");
    forward.close().await;
    host_b.close().await;
}
