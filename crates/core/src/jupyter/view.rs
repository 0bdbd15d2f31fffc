//! How the desktop app shows Jupyter things: environments, installer lines and running servers,
//! as wire types with TypeScript twins (never with a token in a log).

use serde::Serialize;

use super::{EnvKind, Environment};

/// One Python environment on a session's host (core's `jupyter::Environment`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentView {
    pub kind: EnvKind,
    /// The conda env name, the venv directory's name, or `python3`.
    pub name: String,
    /// What to pass as the environment when launching: the directory, or the interpreter.
    pub path: String,
    /// `3.11.2`, when the interpreter ran.
    pub python_version: Option<String>,
    /// Whether JupyterLab is importable.
    pub jupyter_lab: bool,
    /// Whether the classic notebook is importable.
    pub notebook: bool,
    /// Why the environment is unusable.
    pub problem: Option<String>,
    /// Whether it is the profile's environment.
    pub configured: bool,
}

impl From<Environment> for EnvironmentView {
    fn from(e: Environment) -> Self {
        Self {
            kind: e.kind,
            path: e.label(),
            name: e.name,
            python_version: e.python_version,
            jupyter_lab: e.jupyter_lab,
            notebook: e.notebook,
            problem: e.problem,
            configured: e.configured,
        }
    }
}

/// One line of installer output, emitted as the `install` event while `install_jupyter` runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct InstallEvent {
    /// The session whose host is being installed into.
    pub session_id: String,
    /// The line (pip's output).
    pub line: String,
}

/// A Jupyter server running on a session's host: started by this app, by the CLI, earlier, or
/// by hand (core's `jupyter::JupyterServer`, never with its token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ServerView {
    /// The session whose host runs it.
    pub session_id: String,
    /// `tb-…` for servers Tunnelbook started, `pid-N` otherwise.
    pub id: String,
    pub pid: u32,
    /// Where it listens on the host, e.g. `127.0.0.1:8890` or `unix:/run/…/tb-1.sock`.
    pub endpoint: String,
    /// The environment it runs from, when known.
    pub env: Option<String>,
    /// `CUDA_VISIBLE_DEVICES` it was started with, when known.
    pub gpu: Option<String>,
    /// Seconds since the Unix epoch it was started, when known.
    pub started: Option<u64>,
    /// Whether Tunnelbook started it.
    pub managed: bool,
    /// The local URL when this app has a tunnel to it (holds the token: show, never log).
    pub url: Option<String>,
}
