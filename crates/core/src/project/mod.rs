//! A notebook of this computer opened on a host (the app's "Open notebook…"): its folder goes up
//! over SFTP ([`crate::sync`], over the host session's connection), JupyterLab starts in that
//! folder on the chosen GPU through [`crate::session`] (starting or reusing a server, as
//! `tunnelbook open` does), the notebook opens in a front end's window, and each save on the
//! host comes back until "Stop syncing" — through reconnects, and again on the next connection
//! after a restart ([`Projects::resume`]).
//!
//! What a front end shows of a project is a [`ProjectSummary`], built from its
//! [`ProjectEvent`]s; [`Projects`] keeps them (they outlive a reloaded window) and steers the
//! running ones. The front end only opens and shows windows ([`ProjectUi`]).

mod registry;
mod run;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use self::{
    registry::Projects,
    run::{
        FOLLOW_INTERVAL, OpenRequest, ProjectUi, follow_remembered, launch_for, notebook_address,
    },
};
use crate::{
    error::{ErrorCode, Problem},
    sftp::TransferProgress,
    sync::BroughtBack,
};

/// What an opened notebook's project does, for the front end.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum ProjectEvent {
    /// The folder is going up.
    Uploading {
        /// The project.
        #[serde(rename = "projectId")]
        project_id: String,
        /// The counters.
        progress: TransferProgress,
        /// Files over the size limit, left here.
        #[serde(rename = "leftOut")]
        left_out: Vec<String>,
    },
    /// JupyterLab is being started (a launch step, in words).
    Launching {
        /// The project.
        #[serde(rename = "projectId")]
        project_id: String,
        /// What happens.
        message: String,
    },
    /// The notebook is open in a notebook window; saves come back from now on.
    Syncing {
        /// The project.
        #[serde(rename = "projectId")]
        project_id: String,
        /// The folder on the host.
        #[serde(rename = "remoteDir")]
        remote_dir: String,
        /// The notebook window's label.
        window: String,
    },
    /// Following resumed on connect: the project was being synced when the app last ran (closed
    /// or disconnected, never stopped); saves made meanwhile come back from now on.
    Resumed {
        /// The project.
        #[serde(rename = "projectId")]
        project_id: String,
        /// The local notebook (absolute path).
        notebook: String,
        /// The folder on the host.
        #[serde(rename = "remoteDir")]
        remote_dir: String,
    },
    /// Files came back from the host.
    BroughtBack {
        /// The project.
        #[serde(rename = "projectId")]
        project_id: String,
        /// What came back, and where (`beside`: the local file had changed, so the host's
        /// version was written beside it).
        files: Vec<BroughtBack>,
    },
    /// Syncing stopped (the server and the window stay).
    Stopped {
        /// The project.
        #[serde(rename = "projectId")]
        project_id: String,
    },
    /// The upload or the launch failed.
    Failed {
        /// The project.
        #[serde(rename = "projectId")]
        project_id: String,
        /// Why, in words.
        error: String,
    },
}

impl ProjectEvent {
    /// The project the event is about.
    pub fn project_id(&self) -> &str {
        match self {
            ProjectEvent::Uploading { project_id, .. }
            | ProjectEvent::Launching { project_id, .. }
            | ProjectEvent::Syncing { project_id, .. }
            | ProjectEvent::Resumed { project_id, .. }
            | ProjectEvent::BroughtBack { project_id, .. }
            | ProjectEvent::Stopped { project_id }
            | ProjectEvent::Failed { project_id, .. } => project_id,
        }
    }
}

/// Where a project is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum ProjectPhase {
    /// The folder is going up.
    Uploading,
    /// JupyterLab is being started or reused.
    Launching,
    /// Open in a notebook window; saves come back.
    Syncing,
    /// Syncing stopped (the server and the window stay).
    Stopped,
    /// The upload or the launch failed.
    Failed,
}

/// What is known of one opened notebook, built from its [`ProjectEvent`]s and kept in
/// [`Projects`] (not in the window): a reloaded main window shows it again, with its "Bring back
/// now" and "Stop syncing".
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ProjectSummary {
    /// The project's id (`project-N`).
    pub id: String,
    /// The app session whose host it runs on.
    pub session_id: String,
    /// The local notebook (absolute path).
    pub notebook: String,
    /// Where it is.
    pub phase: ProjectPhase,
    /// The upload's counters, once it began.
    pub upload: Option<TransferProgress>,
    /// Files over the size limit, left here.
    pub left_out: Vec<String>,
    /// The last launch step, in words (while launching).
    pub message: Option<String>,
    /// The folder on the host, once syncing.
    pub remote_dir: Option<String>,
    /// The notebook window's label, once open.
    pub window: Option<String>,
    /// What came back, newest first (the last [`LOG_LINES`]).
    pub log: Vec<BroughtBack>,
    /// Why it failed, in words.
    pub error: Option<String>,
}

/// How many brought-back files a [`ProjectSummary`] keeps.
pub const LOG_LINES: usize = 20;

impl ProjectSummary {
    /// A project `id` of session `session_id` showing `notebook`, in `phase`.
    pub fn new(id: &str, session_id: &str, notebook: &Path, phase: ProjectPhase) -> Self {
        ProjectSummary {
            id: id.to_string(),
            session_id: session_id.to_string(),
            notebook: notebook.display().to_string(),
            phase,
            upload: None,
            left_out: Vec::new(),
            message: None,
            remote_dir: None,
            window: None,
            log: Vec::new(),
            error: None,
        }
    }

    /// Takes in one event of this project.
    pub fn apply(&mut self, event: &ProjectEvent) {
        match event {
            ProjectEvent::Uploading {
                progress, left_out, ..
            } => {
                self.upload = Some(*progress);
                self.left_out = left_out.clone();
            }
            ProjectEvent::Launching { message, .. } => {
                self.phase = ProjectPhase::Launching;
                self.message = Some(message.clone());
            }
            ProjectEvent::Syncing {
                remote_dir, window, ..
            } => {
                self.phase = ProjectPhase::Syncing;
                self.remote_dir = Some(remote_dir.clone());
                self.window = Some(window.clone());
                self.message = None;
            }
            ProjectEvent::Resumed { remote_dir, .. } => {
                self.phase = ProjectPhase::Syncing;
                self.remote_dir = Some(remote_dir.clone());
            }
            ProjectEvent::BroughtBack { files, .. } => {
                for f in files {
                    self.log.insert(0, f.clone());
                }
                self.log.truncate(LOG_LINES);
            }
            ProjectEvent::Stopped { .. } => self.phase = ProjectPhase::Stopped,
            ProjectEvent::Failed { error, .. } => {
                self.phase = ProjectPhase::Failed;
                self.error = Some(error.clone());
            }
        }
    }
}

/// What went wrong with a project request.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// The notebook cannot be found here.
    #[error("{path}: {source}")]
    NotFound {
        /// The path as given.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The path is not a notebook file.
    #[error("{path} is not a notebook (.ipynb file)")]
    NotANotebook {
        /// The path as given.
        path: String,
    },
    /// The project's task has ended: nothing to steer.
    #[error("project {id} is not running (its notebook session ended); open the notebook again")]
    NotRunning {
        /// The project's id.
        id: String,
    },
    /// The front end could not show the notebook's window.
    #[error("{}", .0.message)]
    Window(Problem),
}

impl From<ProjectError> for Problem {
    fn from(e: ProjectError) -> Self {
        match e {
            ProjectError::Window(p) => p,
            e @ (ProjectError::NotFound { .. } | ProjectError::NotRunning { .. }) => {
                Problem::new(ErrorCode::NotFound, e.to_string())
            }
            e @ ProjectError::NotANotebook { .. } => {
                Problem::new(ErrorCode::Validation, e.to_string())
            }
        }
    }
}

/// The notebook file `path` (a `.ipynb` file), made absolute.
///
/// # Errors
/// [`ProjectError::NotFound`] when it is not there, [`ProjectError::NotANotebook`] when it is
/// not a `.ipynb` file.
pub fn notebook_path(path: &str) -> Result<PathBuf, ProjectError> {
    let notebook = std::fs::canonicalize(path).map_err(|source| ProjectError::NotFound {
        path: path.to_string(),
        source,
    })?;
    if notebook.extension().and_then(|e| e.to_str()) != Some("ipynb") || !notebook.is_file() {
        return Err(ProjectError::NotANotebook {
            path: path.to_string(),
        });
    }
    Ok(notebook)
}

/// The notebook a command line names (the desktop's "Open with Tunnelbook" passes the file as an
/// argument): the first argument after the program that is an existing `.ipynb` file, made
/// absolute against `cwd`.
pub fn notebook_in_args(args: &[String], cwd: &Path) -> Option<PathBuf> {
    args.iter().skip(1).find_map(|a| {
        let p = cwd.join(a);
        (p.extension().and_then(|e| e.to_str()) == Some("ipynb") && p.is_file())
            .then(|| std::fs::canonicalize(&p).unwrap_or(p))
    })
}
