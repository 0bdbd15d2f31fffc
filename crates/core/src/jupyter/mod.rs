//! Jupyter on a host: Python environments, installing JupyterLab, launching a detached server
//! pinned to a GPU, readiness, listing and reattaching running servers, stopping them.
//!
//! What it owns: the remote (or local) side of a notebook server — the scripts that run through
//! the login shell, Tunnelbook's record of each server it started (`<runtime dir>/<id>.json`,
//! mode 0600, never the token), the token's path to the server (stdin → `JUPYTER_TOKEN`, never a
//! command line), and the Jupyter REST calls Tunnelbook makes itself. What it leaves out: which
//! GPU to pick ([`crate::gpu`]), the SSH connection and the forwarding ([`crate::ssh`],
//! [`crate::tunnel`]), the order of steps and progress reporting ([`crate::session`]), and where
//! tokens are kept ([`crate::secret`]).

mod attach;
mod env;
mod handoff;
mod host;
pub mod http;
mod launch;
// The job script of a SLURM launch answers JupyterLab's news question too.
pub(crate) use self::launch::NEWS_ANSWERED_SH;
mod listing;
mod ports;
mod servers;
mod view;
pub mod window;
// The banner texts and steps, with the window's rules (one module, `window`).
pub use self::window::words;

use serde::{Deserialize, Serialize};

// "Open in browser": the notebook URL reaches the browser through a one-time local link.
pub use self::handoff::{HANDOFF_TTL, Handoff, handoff};
pub use self::{
    attach::{
        Attached, TokenStore, attach, attach_over, check_answers, find_with_token, reattach,
        reattach_over, reopen, token_for,
    },
    env::{
        DEFAULT_VENV, EnvKind, Environment, check_environment, choose, environments,
        environments_with_modules, install, launch_candidates, parse_environments,
    },
    host::Host,
    launch::{DEFER_SLOW_IMPORTS_PY, EndpointChoice, LaunchSpec, Launched, launch, new_token},
    listing::{find, list, list_all},
    ports::PortBook,
    servers::{Look, is_running, stop, stop_by_id, wait_gone, wait_ready},
    view::{EnvironmentView, InstallEvent, ServerView},
};
use crate::{
    ssh::SshError,
    tunnel::{Target, TunnelError},
};

/// Errors of the Jupyter side. Messages say what is wrong and what to do; they never hold tokens.
#[derive(Debug, thiserror::Error)]
pub enum JupyterError {
    /// The SSH command failed.
    #[error(transparent)]
    Ssh(#[from] SshError),
    /// The tunnel to the server could not be opened.
    #[error(transparent)]
    Tunnel(#[from] TunnelError),
    /// A local shell could not be run (this computer).
    #[error("cannot run the local shell: {0}")]
    Local(String),
    /// The environment asked for does not exist.
    #[error(
        "{host} has no Python environment \"{wanted}\"; found: {}",
        list_or_none(available)
    )]
    NoEnvironment {
        /// The host.
        host: String,
        /// What was asked for.
        wanted: String,
        /// What was found.
        available: Vec<String>,
    },
    /// The environment's interpreter is missing or fails to start.
    #[error("the Python environment {env} is broken: {problem}")]
    BrokenEnvironment {
        /// The environment.
        env: String,
        /// Why.
        problem: String,
    },
    /// The environment has neither JupyterLab nor the classic notebook.
    #[error(
        "JupyterLab is not installed in {env} on {host}. Install it with `pip install jupyterlab` \
         in that environment, or let Tunnelbook make a venv with it (`tunnelbook install-jupyter`)."
    )]
    JupyterMissing {
        /// The environment.
        env: String,
        /// The host.
        host: String,
    },
    /// No environment on the host has Jupyter.
    #[error(
        "no Python environment on {host} has JupyterLab (looked at: {}). Let Tunnelbook install it \
         into a venv (`tunnelbook install-jupyter`), or name an environment that has it.",
        list_or_none(available)
    )]
    NoJupyterAnywhere {
        /// The host.
        host: String,
        /// What was found.
        available: Vec<String>,
    },
    /// `module load` of a saved or asked-for module failed (or `module` is not defined).
    #[error(
        "{detail} (on {host}). See the modules there with `tunnelbook envs`, or change the list \
         to load with `tunnelbook hosts edit NAME --module M` / `--no-modules`."
    )]
    ModuleLoad {
        /// The host.
        host: String,
        /// Which module failed and the module tool's own message.
        detail: String,
    },
    /// Creating the venv or installing into it failed.
    #[error("installing JupyterLab into {path} failed:\n{detail}")]
    Install {
        /// The venv.
        path: String,
        /// The last lines of the installer's output.
        detail: String,
    },
    /// The launch script failed before the server started.
    #[error("cannot start Jupyter: {0}")]
    Launch(String),
    /// The server process ended before it was ready.
    #[error("Jupyter exited before it was ready: {reason}\n--- last lines of {log} ---\n{tail}")]
    Exited {
        /// What the log says, in words (jupyter missing, port taken, a Python error, …).
        reason: String,
        /// The log file on the host.
        log: String,
        /// Its last lines.
        tail: String,
    },
    /// The server did not answer in time.
    #[error("Jupyter did not answer within {secs} s.\n--- last lines of {log} ---\n{tail}")]
    NotReady {
        /// The limit.
        secs: u64,
        /// The log file on the host.
        log: String,
        /// Its last lines.
        tail: String,
    },
    /// The server answered but refused the token.
    #[error("Jupyter refused the token (HTTP {status}); the server was not started with it")]
    TokenRejected {
        /// The HTTP status of `/api/status`.
        status: u16,
    },
    /// No token is known for a server.
    #[error(
        "no token known for server {id}: it is not in the keychain and `jupyter server list` does not show it"
    )]
    NoToken {
        /// The server.
        id: String,
    },
    /// No running server has this id.
    #[error(
        "no running Jupyter server \"{id}\" on {host}; running: {}",
        list_or_none(running)
    )]
    NotFound {
        /// The host.
        host: String,
        /// What was asked for.
        id: String,
        /// The ids of the running servers.
        running: Vec<String>,
    },
    /// A script's answer could not be read.
    #[error("cannot read the answer from {host}: {detail}")]
    Unreadable {
        /// The host.
        host: String,
        /// What was wrong.
        detail: String,
    },
    /// The server is not reachable from here (e.g. a Unix socket on this computer).
    #[error("cannot reach server {id}: {detail}")]
    Unreachable {
        /// The server.
        id: String,
        /// Why.
        detail: String,
    },
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

/// A Jupyter server running on a host, as Tunnelbook's record (or `jupyter server list`) says.
/// Written on the host as `<runtime dir>/<id>.json` (mode 0600) for servers Tunnelbook started;
/// never holds the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JupyterServer {
    /// Tunnelbook's id (`tb-…`), or `pid-N` for a server Tunnelbook did not start.
    pub id: String,
    /// Process id on the host (also its process group and session: it runs under `setsid`).
    pub pid: u32,
    /// Where it listens on the host.
    pub endpoint: Target,
    /// The server's base URL path, `/` unless configured otherwise.
    pub base_url: String,
    /// The environment's directory (or interpreter) it runs from.
    pub env: Option<String>,
    /// `CUDA_VISIBLE_DEVICES` it was started with (`None`: no GPU, or unknown).
    pub gpu: Option<String>,
    /// Seconds since the Unix epoch when it was started (by Tunnelbook's clock).
    pub started: Option<u64>,
    /// The directory notebooks are served from.
    pub root_dir: Option<String>,
    /// The server's log file on the host.
    pub log: Option<String>,
    /// The application: `lab` (JupyterLab) or `tree` (the classic notebook).
    pub app: String,
    /// Whether Tunnelbook started it (it has a record).
    pub managed: bool,
}

impl JupyterServer {
    /// The browser URL through a local port: `http://127.0.0.1:PORT/lab?token=…`.
    pub fn url(&self, local_port: u16, token: &crate::secret::Sensitive<String>) -> String {
        format!(
            "http://127.0.0.1:{local_port}{}{}?token={}",
            self.base_url,
            self.app,
            token.expose()
        )
    }
}

/// Characters percent-encoded in a path segment of a notebook URL: everything but RFC 3986's
/// unreserved ones (`/` separates segments and is kept).
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// The URL that opens notebook `rel` (a `/`-separated path under the server's root) in the
/// server whose lab URL is `lab_url`: `http://…/lab?token=…` → `http://…/lab/tree/REL?token=…`
/// (JupyterLab's `/lab/tree/` route; a classic server's `…/tree` URL gets `/tree/REL`).
pub fn notebook_url(lab_url: &str, rel: &str) -> String {
    let path = percent_encoding::utf8_percent_encode(rel, PATH_SEGMENT);
    match lab_url.split_once("/lab?") {
        Some((base, query)) => format!("{base}/lab/tree/{path}?{query}"),
        None => format!("{}/tree/{path}", lab_url.trim_end_matches('/')),
    }
}

/// `path` relative to `root` (both absolute `/`-separated paths on a host): `""` when they
/// are the same folder, `Some("a/b.ipynb")` when `path` lies under `root`, `None` otherwise. Only
/// whole path components count (`/home/u/tb` does not hold `/home/u/tb2`); trailing and doubled
/// slashes are ignored. Symlinks are not resolved: compare paths as the host reports them.
pub fn path_under(root: &str, path: &str) -> Option<String> {
    let parts = |p: &str| -> Vec<String> {
        p.split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .map(str::to_string)
            .collect()
    };
    if !root.starts_with('/') || !path.starts_with('/') {
        return None;
    }
    let (root, path) = (parts(root), parts(path));
    path.starts_with(&root)
        .then(|| path[root.len()..].join("/"))
}

/// Quotes one shell word.
pub(crate) fn shell_quote(s: &str) -> String {
    crate::ssh::shell_quote(s)
}

/// A path as a shell word, with a leading `~/` expanded to `$HOME/` by the remote shell.
pub(crate) fn sh_path(p: &str) -> String {
    if p == "~" {
        "\"$HOME\"".to_string()
    } else if let Some(rest) = p.strip_prefix("~/") {
        format!("\"$HOME\"/{}", shell_quote(rest))
    } else {
        shell_quote(p)
    }
}

/// The last `n` non-empty lines of `text`.
pub(crate) fn log_tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The shell lines that set `$tb_dir` to Tunnelbook's per-user runtime directory on the host,
/// `~/.tunnelbook/run`, created with mode 0700 (and `~/.tunnelbook` too). Not `$XDG_RUNTIME_DIR`:
/// systemd-logind deletes that when the user's last session ends, which would take the sockets
/// and records of servers meant to outlive the connection with it.
/// It also defines `tb_alive PID`: whether the process exists and is not a zombie (an orphan
/// whose parent does not reap it still answers `kill -0`). Where there is a `/proc` it reads the
/// state from `/proc/PID/stat` with shell builtins (after the last `) `: the command name in
/// parentheses is the process's own, any text): a listing checks every server file in the
/// runtime directories, and stale ones pile up there (Jupyter leaves its file behind when it is
/// killed), so a `ps` per file made `ls` and `attach` slower with every crash.
pub(crate) const RUNTIME_DIR_SH: &str = r#"umask 077
tb_alive() {
    if [ -r "/proc/$1/stat" ]; then
        tb_st=; read -r tb_st < "/proc/$1/stat" || return 1
        tb_st=${tb_st##*) }; case $tb_st in Z*|X*|"") return 1 ;; esac; return 0
    fi
    [ -d /proc/self ] && return 1
    tb_st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1; case $tb_st in Z*|"") return 1 ;; esac
}
tb_dir=$HOME/.tunnelbook/run
mkdir -p "$tb_dir" && chmod 700 "$HOME/.tunnelbook" "$tb_dir" || { echo "tunnelbook: cannot create $tb_dir" >&2; exit 91; }
"#;

#[cfg(test)]
mod tests {
    use super::{RUNTIME_DIR_SH, notebook_url, path_under};

    /// `tb_alive` (read from `/proc` with shell builtins): this shell and a running process are
    /// alive; an unreaped child (a zombie) and a pid nobody has are not; a command name that
    /// imitates a state field (`x) Z y`, which anyone can give their program) does not fool it.
    #[cfg(target_os = "linux")]
    #[test]
    fn tb_alive_tells_running_processes_from_zombies_and_ended_ones() {
        use std::process::Command;
        let home = tempfile::tempdir().unwrap();
        let bin = tempfile::tempdir().unwrap();
        let fake = bin.path().join("x) Z y");
        std::fs::copy("/bin/sleep", &fake).unwrap();
        let mut named = Command::new(&fake).arg("10").spawn().unwrap();
        // A parent that never reaps its child: `exec` replaces the shell that started it.
        let mut parent = Command::new("sh")
            .args(["-c", "sleep 0.01 & exec sleep 10"])
            .spawn()
            .unwrap();
        let children = format!("/proc/{0}/task/{0}/children", parent.id());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let zombie = loop {
            let listed = std::fs::read_to_string(&children).unwrap_or_default();
            if let Some(pid) = listed.split_whitespace().next()
                && std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|st| {
                    st.rsplit_once(") ")
                        .is_some_and(|(_, r)| r.starts_with('Z'))
                })
            {
                break pid.to_string();
            }
            assert!(std::time::Instant::now() < deadline, "no zombie child");
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let script = format!(
            "{RUNTIME_DIR_SH}for p in $$ {} {zombie} 99999999; do if tb_alive $p; then echo alive; else echo gone; fi; done",
            named.id()
        );
        let out = Command::new("sh")
            .args(["-c", &script])
            .env("HOME", home.path())
            .output()
            .unwrap();
        let _ = named.kill();
        let _ = parent.kill();
        let _ = (named.wait(), parent.wait());
        assert_eq!(
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .collect::<Vec<_>>(),
            ["alive", "alive", "gone", "gone"],
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn a_path_is_under_a_root_by_whole_components() {
        assert_eq!(
            path_under("/home/u/tunnelbook", "/home/u/tunnelbook/proj/a.ipynb").as_deref(),
            Some("proj/a.ipynb")
        );
        assert_eq!(path_under("/home/u/", "/home/u").as_deref(), Some(""));
        assert_eq!(path_under("/", "/srv/x").as_deref(), Some("srv/x"));
        assert_eq!(path_under("/home/u/tb", "/home/u/tb2/a.ipynb"), None);
        assert_eq!(path_under("/home/u/tb/proj", "/home/u/tb"), None);
        assert_eq!(path_under("~/tb", "/home/u/tb/a"), None);
    }

    #[test]
    fn notebook_urls_point_at_the_file_and_keep_the_token() {
        assert_eq!(
            notebook_url("http://127.0.0.1:8890/lab?token=abc", "my nb/é #1.ipynb"),
            "http://127.0.0.1:8890/lab/tree/my%20nb/%C3%A9%20%231.ipynb?token=abc"
        );
    }
}
