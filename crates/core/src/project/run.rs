//! A project's task: up, launch, open, follow ([`Projects::open`]), or follow again after a
//! restart ([`Projects::resume`]).

use std::{
    path::{Path, PathBuf},
    sync::atomic::Ordering,
    time::Duration,
};

use tokio_util::sync::CancellationToken;

use super::{
    ProjectEvent, ProjectPhase, Projects,
    registry::{OpenServer, Steer, file_name},
};
use crate::{
    error::Problem,
    host::HostSession,
    session::{ReadyInfo, Session, SessionControl, SessionEvent, SessionSpec},
    sftp::{self, Progress, Sftp},
    ssh::Connection,
    sync::{Follow, FollowEvent, Project, SyncSettings},
};

/// How often a followed project's host folder is checked for saves.
pub const FOLLOW_INTERVAL: Duration = Duration::from_secs(2);

/// What a front end does for projects: tell its windows, and open or show notebook windows.
pub trait ProjectUi: Clone + Send + Sync + 'static {
    /// Tells the windows (the event is already recorded in [`Projects`]).
    fn emit(&self, event: ProjectEvent);

    /// Opens `url` in a new notebook window titled `title`; returns the window's label.
    ///
    /// # Errors
    /// Why no window opened.
    fn open_window(&self, url: &str, title: &str) -> Result<String, Problem>;

    /// Brings the window `label` to the front, navigated to `url` when `navigate`; `false` when
    /// that window is closed.
    ///
    /// # Errors
    /// Why it could not be shown.
    fn show_window(&self, label: &str, url: &str, navigate: bool) -> Result<bool, Problem>;

    /// The address (with its token) under which the front end already shows the Jupyter server
    /// `server_id` — a notebook it launched or reopened — if it does. A project whose launch
    /// reused that server opens its notebook there, over that tunnel and in that window
    /// ([`ProjectUi::open_window`] on that address), instead of on a second local port in a
    /// second window. `None` (the default): the project's own tunnel.
    fn shown_server(&self, server_id: &str) -> Option<String> {
        let _ = server_id;
        None
    }
}

/// What [`Projects::open`] opens.
pub struct OpenRequest {
    /// The front end's session whose host it runs on.
    pub session_id: String,
    /// The local notebook (absolute, see [`super::notebook_path`]).
    pub notebook: PathBuf,
    /// Tunnelbook's state folder.
    pub home: PathBuf,
    /// The host's saved name.
    pub host: String,
    /// The host session's connection now, for the upload.
    pub connection: Connection,
    /// The sync settings (`sync.toml`).
    pub settings: SyncSettings,
    /// The launch, as for a notebook of that host (its folder and reuse are set here).
    pub spec: SessionSpec,
}

impl Projects {
    /// Opens `req.notebook` on its host: a new project whose task uploads the folder, starts or
    /// reuses JupyterLab in it, opens the notebook in a window of `ui` and follows the saves
    /// until "Stop syncing" (remembered meanwhile, so the next connection resumes it). Returns
    /// its id at once; the rest comes as [`ProjectEvent`]s. Call [`Projects::reuse`] first.
    pub fn open(&self, ui: &impl ProjectUi, req: OpenRequest) -> String {
        let (id, steer) = self.add(
            &req.session_id,
            &req.notebook,
            ProjectPhase::Uploading,
            None,
        );
        let (this, ui, task_id) = (self.clone(), ui.clone(), id.clone());
        let task = tokio::spawn(async move {
            this.run_open(&ui, &task_id, req, steer).await;
            // The summary stays for the window; there is nothing left to steer.
            this.end(&task_id);
        });
        self.set_task(&id, task);
        id
    }

    async fn run_open(&self, ui: &impl ProjectUi, id: &str, req: OpenRequest, steer: Steer) {
        let failed = |error: String| {
            self.emit(
                ui,
                ProjectEvent::Failed {
                    project_id: id.to_string(),
                    error,
                },
            );
        };
        let sftp = match Sftp::open(&req.connection).await {
            Ok(s) => s,
            Err(e) => return failed(e.to_string()),
        };
        let folder = req.notebook.parent().unwrap_or(Path::new(""));
        let (mut project, projects_dir) =
            match Project::on_host(&req.home, &req.host, folder, &sftp, None, req.settings) {
                Ok(p) => p,
                Err(e) => return failed(e.to_string()),
            };
        let remote_root = project.remote_root().to_string();
        let plan = match project.plan_upload(&sftp).await {
            Ok(p) => p,
            Err(e) => return failed(e.to_string()),
        };
        let left_out: Vec<String> = plan.too_large.iter().map(|f| f.rel.clone()).collect();
        let progress = Progress::default();
        let uploading = || ProjectEvent::Uploading {
            project_id: id.to_string(),
            progress: progress.snapshot(),
            left_out: left_out.clone(),
        };
        let uploaded = {
            let cancel = CancellationToken::new();
            let upload = project.upload(&sftp, &plan, false, &progress, &cancel);
            let mut upload = std::pin::pin!(upload);
            loop {
                tokio::select! {
                    r = &mut upload => break r,
                    () = tokio::time::sleep(Duration::from_millis(200)) => self.emit(ui, uploading()),
                }
            }
        };
        self.emit(ui, uploading());
        match uploaded {
            Ok(files) if !files.is_empty() => self.emit(
                ui,
                ProjectEvent::BroughtBack {
                    project_id: id.to_string(),
                    files,
                },
            ),
            Ok(_) => {}
            Err(e) => return failed(format!("upload failed: {e}")),
        }
        let mut spec = req.spec;
        launch_for(&mut spec, &project, &projects_dir);
        let host = spec.profile.name.clone();
        let host_session = spec.host_session.clone();
        // `None` once closed: the notebook shows on a tunnel the front end already had.
        let mut session = Some(Session::start(spec));
        let rel = file_name(&req.notebook);
        // Saves come back from Ready on, through reconnects, until "Stop syncing"; the session
        // (the notebook window's tunnel) runs on after that.
        let mut project = Some((project, sftp));
        let mut follow = None;
        loop {
            tokio::select! {
                event = next_event(&mut session) => match event {
                    None => break,
                    Some(SessionEvent::Progress(p)) => self.emit(ui, ProjectEvent::Launching {
                        project_id: id.to_string(), message: p.message,
                    }),
                    Some(SessionEvent::Failed { step, error }) => {
                        failed(format!("{step} failed: {error}"));
                        break;
                    }
                    Some(SessionEvent::Ready(info)) if follow.is_none() => {
                        let Some((project, sftp)) = project.take() else { continue };
                        // A reused server the front end shows already (its own notebook, or one
                        // it reopened): the notebook opens there, in that window.
                        let shown = info.reused.then(|| ui.shown_server(&info.server_id)).flatten();
                        let server = OpenServer {
                            url: shown.clone().unwrap_or_else(|| info.url.clone()),
                            root_dir: info.root_dir.clone(),
                            remote_root: remote_root.clone(),
                            title_tail: format!(" — {host} — {}", info.gpu_label.as_deref().unwrap_or("CPU only")),
                        };
                        let url = server.notebook_url(&rel);
                        let title = format!("{rel}{}", server.title_tail);
                        if let Some(entry) = self.lock().get_mut(id) {
                            entry.server = Some(server);
                        }
                        match ui.open_window(&url, &title) {
                            Ok(window) => self.emit(ui, ProjectEvent::Syncing {
                                project_id: id.to_string(), remote_dir: remote_root.clone(), window,
                            }),
                            Err(e) => failed(e.message),
                        }
                        let control = session.as_ref().map(Session::control);
                        let host_session = host_session.clone();
                        // Over the host session's connection now (after a reconnect, the new one).
                        let connection = move || match &host_session {
                            Some(h) => h.connection(),
                            None => control.as_ref().and_then(SessionControl::connection),
                        };
                        let (this, ui, id, rel) = (self.clone(), ui.clone(), id.to_string(), rel.clone());
                        let steer = steer.clone();
                        follow = Some(tokio::spawn(async move {
                            this.follow(&ui, &id, project, &rel, sftp, connection, steer).await;
                        }));
                        // Its own tunnel, on a port nothing shows, goes (the server is reused:
                        // never stopped by it).
                        if shown.is_some() && let Some(session) = session.take() {
                            session.close(false).await;
                        }
                    }
                    Some(_) => {}
                },
                () = steer.stop.cancelled(), if follow.is_none() && project.is_some() => {
                    if let Some((_, sftp)) = project.take() {
                        sftp.close();
                    }
                    self.emit(ui, ProjectEvent::Stopped { project_id: id.to_string() });
                }
                // "Stop syncing" with no session of its own left: nothing more to do.
                () = steer.stop.cancelled(), if session.is_none() => break,
                // The app quits or the session closes (`Projects::close`).
                () = steer.close.cancelled() => break,
            }
        }
        steer.stop.cancel();
        // The last saves come back before the server may stop.
        if let Some(follow) = follow {
            let _ = follow.await;
        }
        if let Some((_, sftp)) = project {
            sftp.close();
        }
        if steer.close.is_cancelled()
            && let Some(session) = session
        {
            session
                .close(steer.stop_server.load(Ordering::SeqCst))
                .await;
        }
    }

    /// Follows `project`'s saves over `sftp` (reopened over `connection()` after a reconnect)
    /// until `steer.stop`, reporting as [`ProjectEvent`]s; remembers it as followed meanwhile,
    /// so the next connection after a restart resumes ([`Projects::resume`]), and forgets it
    /// after "Stop syncing".
    #[allow(clippy::too_many_arguments)]
    async fn follow(
        &self,
        ui: &impl ProjectUi,
        id: &str,
        mut project: Project,
        notebook_rel: &str,
        sftp: Sftp,
        connection: impl Fn() -> Option<Connection>,
        steer: Steer,
    ) {
        let how = Follow {
            interval: FOLLOW_INTERVAL,
            now: steer.now.clone(),
            stop: steer.stop.clone(),
        };
        let forget = || steer.forget.load(Ordering::SeqCst);
        follow_remembered(
            &mut project,
            notebook_rel,
            sftp,
            connection,
            how,
            forget,
            |e| match e {
                FollowEvent::Back(files) => self.emit(
                    ui,
                    ProjectEvent::BroughtBack {
                        project_id: id.to_string(),
                        files,
                    },
                ),
                FollowEvent::Failed(e) => {
                    tracing::warn!(error = %e, "bringing back saves failed; trying again");
                }
            },
        )
        .await;
        self.emit(
            ui,
            ProjectEvent::Stopped {
                project_id: id.to_string(),
            },
        );
    }

    /// Resumes following the projects of host `host` (its saved name) that were followed when
    /// the front end last ran ([`crate::sync::followed`] in `home`), on session `session_id`
    /// whose host session `host_session` just connected: each gets a project
    /// ([`ProjectEvent::Resumed`]) and brings back the saves made meanwhile (a local file
    /// changed meanwhile is kept, the host's version written beside it). Projects followed
    /// already in this run are skipped.
    pub fn resume(
        &self,
        ui: &impl ProjectUi,
        home: &Path,
        session_id: &str,
        host: &str,
        host_session: &HostSession,
    ) {
        let settings = SyncSettings::load(home).unwrap_or_default();
        for f in crate::sync::followed(home, host) {
            if self.follows(&f.local_root) {
                continue;
            }
            let project =
                match Project::open(home, host, &f.local_root, &f.remote_root, settings.clone()) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot resume syncing a project");
                        continue;
                    }
                };
            let notebook = f.local_root.join(&f.notebook);
            let (id, steer) = self.add(
                session_id,
                &notebook,
                ProjectPhase::Syncing,
                Some(f.remote_root.clone()),
            );
            let (this, ui, host_session) = (self.clone(), ui.clone(), host_session.clone());
            tokio::spawn(async move {
                // The connect event comes before the session holds its connection: wait for it.
                let conn = tokio::time::timeout(
                    Duration::from_secs(30),
                    host_session.next_connection(None),
                )
                .await;
                let sftp = match conn {
                    Ok(Ok(conn)) => Sftp::open(&conn).await.map_err(|e| e.to_string()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("the host did not connect within 30 s".to_string()),
                };
                match sftp {
                    Ok(sftp) => {
                        this.emit(
                            &ui,
                            ProjectEvent::Resumed {
                                project_id: id.clone(),
                                notebook: notebook.display().to_string(),
                                remote_dir: f.remote_root.clone(),
                            },
                        );
                        let connection = move || host_session.connection();
                        this.follow(&ui, &id, project, &f.notebook, sftp, connection, steer)
                            .await;
                    }
                    Err(error) => this.emit(
                        &ui,
                        ProjectEvent::Failed {
                            project_id: id.clone(),
                            error,
                        },
                    ),
                }
                this.end(&id);
            });
        }
    }
}

/// The next event of `session`; never, once it is closed.
async fn next_event(session: &mut Option<Session>) -> Option<SessionEvent> {
    match session {
        Some(s) => s.next_event().await,
        None => std::future::pending().await,
    }
}

/// Follows `project`'s saves over `sftp` as `how` says ([`Project::follow`]), remembered as
/// followed meanwhile (its notebook `notebook_rel`), so the next connection to the host — the
/// app's, after a restart or a lost connection — resumes following ([`Projects::resume`]);
/// forgotten at the end when `forget()` says so (a deliberate stop). The app's projects and
/// `tunnelbook open` both follow this way.
pub async fn follow_remembered(
    project: &mut Project,
    notebook_rel: &str,
    sftp: Sftp,
    connection: impl Fn() -> Option<Connection>,
    how: Follow,
    forget: impl Fn() -> bool,
    report: impl FnMut(FollowEvent),
) {
    if let Err(e) = project.set_followed(Some(notebook_rel)) {
        tracing::warn!(error = %e, "cannot remember the project for the next start");
    }
    project.follow(sftp, connection, how, report).await;
    if forget()
        && let Err(e) = project.set_followed(None)
    {
        tracing::warn!(error = %e, "cannot forget the stopped project");
    }
}

/// Sets `spec` to start or reuse the JupyterLab of `project`, as the app and `tunnelbook open`
/// both do: a server of ours whose root holds the project is reused
/// ([`SessionSpec::reuse_for`]); a new one starts in the host's projects folder `projects_dir`
/// when it holds the project ([`Project::server_root`]), so the next project opened there reuses
/// it in turn.
pub fn launch_for(spec: &mut SessionSpec, project: &Project, projects_dir: &str) {
    spec.notebook_dir = Some(project.server_root(projects_dir));
    spec.reuse_for = Some(project.remote_root().to_string());
}

/// The address of the notebook `rel` of the project at `remote_root` (absolute) on the ready
/// server `info`, and the notebook's path under the server's root (which may be above the
/// project).
pub fn notebook_address(info: &ReadyInfo, remote_root: &str, rel: &str) -> (String, String) {
    let path = info
        .path_in_root(&sftp::join(remote_root, rel))
        .unwrap_or_else(|| rel.to_string());
    (crate::jupyter::notebook_url(&info.url, &path), path)
}
