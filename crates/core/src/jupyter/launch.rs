//! Starting a detached Jupyter server with a Tunnelbook-made token.

use std::time::{SystemTime, UNIX_EPOCH};

use super::{
    EnvKind, Environment, Host, JupyterError, JupyterServer, RUNTIME_DIR_SH, log_tail, sh_path,
    shell_quote,
};
use crate::{secret::Sensitive, tunnel::Target};

/// How the server should listen on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EndpointChoice {
    /// A 0600 Unix socket when the SSH server forwards to Unix sockets (`direct-streamlocal`),
    /// else TCP on 127.0.0.1. Always TCP on this computer (the browser needs a port).
    #[default]
    Auto,
    /// TCP on 127.0.0.1, a free port chosen on the host.
    Tcp,
    /// A Unix socket in the runtime directory, mode 0600.
    UnixSocket,
}

/// What to launch.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    /// The environment to run Jupyter from (see [`super::choose`]).
    pub env: Environment,
    /// Value for `CUDA_VISIBLE_DEVICES` (a `GPU-`/`MIG-` UUID); `None` unsets it (CPU only).
    pub cuda_visible_devices: Option<String>,
    /// Directory to serve; `None` is the home directory. `~/` is expanded on the host.
    pub notebook_dir: Option<String>,
    /// Lmod / Environment Modules modules loaded first, in order (`module load NAME`); one that
    /// does not load fails the launch with [`JupyterError::ModuleLoad`] naming it.
    pub modules: Vec<String>,
    /// Shell lines run first in the same shell (e.g. `module load cuda`).
    pub pre_launch: Vec<String>,
    /// Unix socket or TCP.
    pub endpoint: EndpointChoice,
}

/// A server that was just started (not yet known to be ready: see [`super::wait_ready`]).
#[derive(Debug)]
pub struct Launched {
    /// Its record, as written on the host.
    pub server: JupyterServer,
    /// Its token. Keep it in the [`crate::secret::SecretStore`]; never log it.
    pub token: Sensitive<String>,
}

/// A fresh token: 32 random bytes as hex.
pub fn new_token() -> Sensitive<String> {
    let bytes: [u8; 32] = rand::random();
    Sensitive::new(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn new_id() -> String {
    let bytes: [u8; 5] = rand::random();
    format!(
        "tb-{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// Python that Tunnelbook's runners ([`MAIN_PY`]'s launch, the SLURM job's) run before Jupyter
/// starts: `rfc3987_syntax`, which `jsonschema` imports at start-up (through `jupyter_events`)
/// only to offer the "iri" format checks no Jupyter schema uses, compiles about 35 Lark parsers
/// when imported — 0.8–2 s of every Jupyter Server 2 start (jupyter-server/jupyter_server#1559).
/// A stand-in module takes its place in `sys.modules` and loads the real module at its first use,
/// so validation is unchanged and only the server's own process is affected (kernels are
/// processes of their own). Nothing happens where the module is not installed.
pub const DEFER_SLOW_IMPORTS_PY: &str = r#"def _tb_defer_rfc3987_syntax():
    import importlib, importlib.util, sys, types
    name = "rfc3987_syntax"
    try:
        if name in sys.modules or importlib.util.find_spec(name) is None:
            return
    except (ImportError, ValueError):
        return
    stand_in = types.ModuleType(name)
    def real():
        if sys.modules.get(name) is stand_in:
            del sys.modules[name]
        module = importlib.import_module(name)
        stand_in.__dict__.update({k: v for k, v in vars(module).items() if not k.startswith("__")})
        return module
    def is_valid_syntax(term, value):
        return real().is_valid_syntax(term, value)
    def first_use(attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(real(), attr)
    stand_in.is_valid_syntax = is_valid_syntax
    stand_in.__getattr__ = first_use
    sys.modules[name] = stand_in
_tb_defer_rfc3987_syntax()
del _tb_defer_rfc3987_syntax
"#;

/// How the server is started: `python -c MAIN_PY ID MODULE ARGS…` runs `python -m MODULE ARGS…`
/// with Tunnelbook's token added to the arguments inside the process. Command-line settings beat
/// everything in the user's `~/.jupyter` / `JUPYTER_CONFIG_DIR` config files (a fixed token, an
/// empty token, a password, `base_url`, `ip`, `port`, `root_dir`), and arguments added here never
/// reach the process's command line that `ps` shows. The class that owns each setting depends
/// on the install: classic Notebook 6 (`NotebookApp`), jupyter_server 1 (`ServerApp.token`) or 2
/// (`IdentityProvider.token`).
const MAIN_PY: &str = r#"import os, runpy, sys
from importlib.metadata import version
def major(name):
    try:
        return int(version(name).split(".")[0])
    except Exception:
        return 0
sys.argv.pop(1)  # Tunnelbook's server id: on the command line so `stop` can tell this process
m = sys.argv.pop(1)
t = os.environ.get("JUPYTER_TOKEN", "")
classic = m == "notebook" and 0 < major("notebook") < 7
app = "NotebookApp" if classic else "ServerApp"
args = [a.replace("--ServerApp.", "--%s." % app, 1) for a in sys.argv[1:]]
if classic:
    args = [a.replace("--NotebookApp.root_dir=", "--NotebookApp.notebook_dir=", 1) for a in args]
    args.append("--NotebookApp.token=" + t)
    args.append("--NotebookApp.password=")
elif major("jupyter_server") >= 2:
    args.append("--IdentityProvider.token=" + t)
else:
    args.append("--ServerApp.token=" + t)
    args.append("--ServerApp.password=")
sys.argv[1:] = args
pf = os.environ.pop("TB_PORT_FILE", "")
def report_port():
    # The port this very process listens on (asked for port 0): its own socket's inode in
    # /proc/self/fd matched against the kernel's table of listening sockets.
    import time
    for _ in range(900):
        time.sleep(0.05)
        try:
            mine = set()
            for fd in os.listdir("/proc/self/fd"):
                try:
                    link = os.readlink("/proc/self/fd/" + fd)
                except OSError:
                    continue
                if link.startswith("socket:["):
                    mine.add(link[8:-1])
            with open("/proc/self/net/tcp") as f:
                rows = [r.split() for r in f.readlines()[1:]]
            for r in rows:
                if r[3] == "0A" and r[9] in mine:
                    with open(pf + ".tmp", "w") as o:
                        o.write("%d\n" % int(r[1].rsplit(":", 1)[1], 16))
                    os.rename(pf + ".tmp", pf)
                    return
        except OSError:
            pass
if pf:
    import threading
    threading.Thread(target=report_port, daemon=True).start()
runpy.run_module(m, run_name="__main__", alter_sys=True)
"#;

/// Answers JupyterLab's first-run "Would you like to get notified about official Jupyter news?"
/// toast (and its "a newer version is available" checks) before it is asked: the window is an
/// app, not a browser tab. The documented way (JupyterLab 4, "Announcements") is to disable the
/// `@jupyterlab/apputils-extension:announcements` plugin in a `labconfig/page_config.json`; it goes
/// in a directory of Tunnelbook's own put first on `JUPYTER_CONFIG_PATH`, so neither the user's
/// settings nor a shared environment is written to, and the user's own configuration still
/// applies. A `jupyter_lab_config.json` there sets `LabApp.expose_app_in_browser`, so the app can
/// save every open document (`docmanager:save-all` on `window.jupyterapp`) before it closes a
/// notebook window (a classic Notebook 6 server ignores it).
pub(crate) const NEWS_ANSWERED_SH: &str = r#"mkdir -p "$tb_dir/jupyter-config/labconfig" && printf '%s\n' '{"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": true}}' > "$tb_dir/jupyter-config/labconfig/page_config.json" && printf '%s\n' '{"LabApp": {"expose_app_in_browser": true}}' > "$tb_dir/jupyter-config/jupyter_lab_config.json" && export JUPYTER_CONFIG_PATH="$tb_dir/jupyter-config${JUPYTER_CONFIG_PATH:+:$JUPYTER_CONFIG_PATH}"
"#;

/// The launch script. The token is the first line of stdin; `read` is a shell builtin, so it
/// never appears in a process's arguments, and `JUPYTER_TOKEN` reaches Jupyter through its
/// environment (readable only by the user and root). `setsid nohup … &` detaches the server from
/// the SSH session: in a non-interactive shell the background child is not a group leader, so
/// `setsid` execs in place and `$!` is the server's pid, session and process group.
fn script(id: &str, spec: &LaunchSpec, socket: bool, record: &str) -> String {
    let mut s = String::new();
    s.push_str("IFS= read -r JUPYTER_TOKEN || { echo 'tunnelbook: no token on stdin' >&2; exit 90; }\nexport JUPYTER_TOKEN\n");
    s.push_str(RUNTIME_DIR_SH);
    s.push_str(&format!(
        "tb_id={}\ntb_log=$tb_dir/$tb_id.log\n: > \"$tb_log\"\n",
        shell_quote(id)
    ));
    let dir = spec.notebook_dir.as_deref().unwrap_or("~");
    s.push_str(&format!(
        "cd {} || {{ echo \"tunnelbook: cannot enter the notebook directory {}\" >&2; exit 92; }}\n",
        sh_path(dir),
        dir.replace(['"', '\\', '$', '`'], "")
    ));
    s.push_str(NEWS_ANSWERED_SH);
    s.push_str("export CUDA_DEVICE_ORDER=PCI_BUS_ID\n");
    match &spec.cuda_visible_devices {
        Some(devices) => s.push_str(&format!(
            "export CUDA_VISIBLE_DEVICES={}\n",
            shell_quote(devices)
        )),
        None => s.push_str("unset CUDA_VISIBLE_DEVICES\n"),
    }
    s.push_str(&super::env::module_load_sh(&spec.modules, "\"$tb_log\""));
    if let Some(prefix) = &spec.env.prefix {
        s.push_str(&format!(
            "tb_prefix={}\nexport PATH=\"$tb_prefix/bin:$PATH\"\n",
            shell_quote(prefix)
        ));
        match spec.env.kind {
            EnvKind::Conda => s.push_str("export CONDA_PREFIX=\"$tb_prefix\"\n"),
            _ => s.push_str("export VIRTUAL_ENV=\"$tb_prefix\"\n"),
        }
    }
    if !spec.pre_launch.is_empty() {
        s.push_str("{\n");
        for line in &spec.pre_launch {
            s.push_str(line);
            s.push('\n');
        }
        s.push_str("} >> \"$tb_log\" 2>&1 || { echo 'tunnelbook: a pre-launch command failed:' >&2; tail -n 20 \"$tb_log\" >&2; exit 93; }\n");
    }
    s.push_str(&format!("tb_py={}\n", shell_quote(&spec.env.python)));
    let module = if spec.env.jupyter_lab {
        "jupyterlab"
    } else {
        "notebook"
    };
    s.push_str("tb_port=; tb_sock=\n");
    if socket {
        s.push_str("tb_sock=$tb_dir/$tb_id.sock\n");
        // sun_path holds 108 bytes: a long home directory falls back to TCP.
        s.push_str("if [ ${#tb_sock} -gt 100 ]; then tb_sock=; fi\n");
    }
    s.push_str(
        r#"if [ -n "$tb_sock" ]; then
    rm -f "$tb_sock"
    set -- "--ServerApp.sock=$tb_sock" --ServerApp.sock_mode=0600
else
    if [ -d /proc/self/fd ]; then
        # The server binds a port the kernel picks and reports the one its own socket holds.
        TB_PORT_FILE=$tb_dir/$tb_id.port; export TB_PORT_FILE; rm -f "$TB_PORT_FILE"
        set -- --ServerApp.ip=127.0.0.1 --ServerApp.port=0 --ServerApp.port_retries=0
    else
        tb_port=$("$tb_py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') || { echo "tunnelbook: $tb_py cannot run" >&2; exit 94; }
        set -- --ServerApp.ip=127.0.0.1 "--ServerApp.port=$tb_port" --ServerApp.port_retries=0
    fi
fi
set -- "$@" --ServerApp.base_url=/ "--ServerApp.root_dir=$PWD" --ServerApp.open_browser=False
"#,
    );
    s.push_str(&format!(
        "tb_main={}\n",
        shell_quote(&format!("{DEFER_SLOW_IMPORTS_PY}{MAIN_PY}"))
    ));
    s.push_str(&format!(
        "setsid nohup \"$tb_py\" -c \"$tb_main\" \"$tb_id\" {module} --no-browser \"$@\" < /dev/null >> \"$tb_log\" 2>&1 &\n"
    ));
    s.push_str(
        r#"tb_pid=$!
if [ -n "${TB_PORT_FILE:-}" ]; then
    tb_i=0
    while [ ! -s "$TB_PORT_FILE" ] && tb_alive "$tb_pid" && [ $tb_i -lt 450 ]; do sleep 0.1; tb_i=$((tb_i+1)); done
    tb_port=$(cat "$TB_PORT_FILE" 2>/dev/null); rm -f "$TB_PORT_FILE"
    if [ -z "$tb_port" ]; then
        echo "tunnelbook: the server did not start listening; its log ($tb_log) ends:" >&2
        tail -n 20 "$tb_log" >&2
        kill -TERM "-$tb_pid" 2>/dev/null
        exit 95
    fi
fi
"#,
    );
    s.push_str(&format!("tb_rec={}\n", shell_quote(record)));
    s.push_str(RECORD_SH);
    s.push_str("printf 'tb_launched\\t%s\\t%s\\t%s\\t%s\\t%s\\n' \"$tb_pid\" \"$tb_dir\" \"$tb_port\" \"$tb_sock\" \"$PWD\"\n");
    s
}

/// Exit status of a launch whose record could not be written (the server is stopped again).
const RECORD_FAILED: u32 = 97;

/// Writes Tunnelbook's record of the server just started, in the same round trip as the launch:
/// `$tb_rec` is the record as JSON with the four values only the host knows left as the strings
/// `"@TB_PID@"`, `"@TB_ENDPOINT@"`, `"@TB_ROOT@"` and `"@TB_LOG@"`, which are filled in here
/// (paths JSON-escaped). Written to a temporary file and renamed, mode 0600 (`umask 077`).
const RECORD_SH: &str = r#"tb_js() { printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g'; }
tb_sub() { tb_rec=${tb_rec%%"$1"*}$2${tb_rec#*"$1"}; }
if [ -n "$tb_sock" ]; then
    tb_ep="{\"kind\":\"unixSocket\",\"path\":\"$(tb_js "$tb_sock")\"}"
else
    tb_ep="{\"kind\":\"tcp\",\"host\":\"127.0.0.1\",\"port\":$tb_port}"
fi
tb_sub '"@TB_PID@"' "$tb_pid"
tb_sub '"@TB_ENDPOINT@"' "$tb_ep"
tb_sub '"@TB_ROOT@"' "\"$(tb_js "$PWD")\""
tb_sub '"@TB_LOG@"' "\"$(tb_js "$tb_log")\""
if ! { printf '%s\n' "$tb_rec" > "$tb_dir/$tb_id.json.tmp" && mv "$tb_dir/$tb_id.json.tmp" "$tb_dir/$tb_id.json"; }; then
    echo "tunnelbook: cannot write the server record in $tb_dir" >&2
    kill -TERM "-$tb_pid" 2>/dev/null
    exit 97
fi
"#;

/// The record of a server about to start, as JSON, with the values only the host knows as the
/// placeholders [`RECORD_SH`] fills in.
fn record_template(server: &JupyterServer) -> Result<String, serde_json::Error> {
    let mut v = serde_json::to_value(server)?;
    v["pid"] = "@TB_PID@".into();
    v["endpoint"] = "@TB_ENDPOINT@".into();
    v["rootDir"] = "@TB_ROOT@".into();
    v["log"] = "@TB_LOG@".into();
    serde_json::to_string(&v)
}

/// Starts Jupyter on `host` from `spec.env`, detached from the connection, with a new token
/// handed over on stdin, and writes Tunnelbook's record of it (mode 0600, no token) next to its
/// log in the user's runtime directory, all in one round trip. Returns as soon as the process is
/// started.
pub async fn launch(host: &Host, spec: &LaunchSpec) -> Result<Launched, JupyterError> {
    let socket = match (spec.endpoint, host) {
        (_, Host::Local) | (EndpointChoice::Tcp, _) => false,
        (EndpointChoice::UnixSocket, _) => true,
        // A 0600 socket unless only TCP forwarding works; where neither works the socket is
        // reached through a relay over an exec channel (`Connection::open_unix_socket`).
        (EndpointChoice::Auto, Host::Ssh(conn)) => {
            let policy = conn.forwarding().await;
            if !policy.tcp && policy.streamlocal == Some(false) && policy.relay_python.is_none() {
                return Err(JupyterError::Launch(format!(
                    "{} on {}, and it has no python3 to relay the notebook through; ask its \
                     administrator to allow forwarding for your account",
                    policy.describe(),
                    host.name()
                )));
            }
            !(policy.tcp && policy.streamlocal == Some(false))
        }
    };
    let id = new_id();
    let token = new_token();
    let stdin = format!("{}\n", token.expose());
    let mut server = JupyterServer {
        id: id.clone(),
        pid: 0,
        endpoint: Target::Tcp {
            host: "127.0.0.1".into(),
            port: 0,
        },
        base_url: "/".into(),
        env: Some(spec.env.label()),
        gpu: spec.cuda_visible_devices.clone(),
        started: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs()),
        root_dir: None,
        log: None,
        app: if spec.env.jupyter_lab { "lab" } else { "tree" }.into(),
        managed: true,
    };
    let template = record_template(&server).map_err(|e| JupyterError::Unreadable {
        host: host.name(),
        detail: e.to_string(),
    })?;
    let out = host
        .exec(&script(&id, spec, socket, &template), stdin.as_bytes())
        .await?;
    let line = out
        .stdout_text()
        .lines()
        .find_map(|l| l.strip_prefix("tb_launched\t").map(str::to_string));
    if out.status == Some(super::env::MODULE_LOAD_FAILED) {
        return Err(JupyterError::ModuleLoad {
            host: host.name(),
            detail: log_tail(&out.stderr_text(), 5),
        });
    }
    if out.status == Some(RECORD_FAILED) {
        return Err(JupyterError::Launch(log_tail(&out.stderr_text(), 3)));
    }
    let Some(line) = line.filter(|_| out.success()) else {
        let detail = log_tail(&out.stderr_text(), 10);
        return Err(JupyterError::Launch(if detail.is_empty() {
            format!("the launch script exited with {:?}", out.status)
        } else {
            detail
        }));
    };
    let f: Vec<&str> = line.split('\t').collect();
    let unreadable = || JupyterError::Unreadable {
        host: host.name(),
        detail: format!("unexpected launch answer {line:?}"),
    };
    let (Some(pid), Some(dir), Some(port), Some(sock), Some(cwd)) =
        (f.first(), f.get(1), f.get(2), f.get(3), f.get(4))
    else {
        return Err(unreadable());
    };
    let pid: u32 = pid.parse().map_err(|_| unreadable())?;
    let endpoint = if sock.is_empty() {
        Target::Tcp {
            host: "127.0.0.1".into(),
            port: port.parse().map_err(|_| unreadable())?,
        }
    } else {
        Target::UnixSocket {
            path: sock.to_string(),
        }
    };
    server.pid = pid;
    server.endpoint = endpoint;
    server.root_dir = Some(cwd.to_string());
    server.log = Some(format!("{dir}/{id}.log"));
    Ok(Launched { server, token })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_never_in_the_script() {
        let env = Environment {
            kind: EnvKind::Venv,
            name: "v".into(),
            prefix: Some("/opt/v".into()),
            python: "/opt/v/bin/python3".into(),
            python_version: Some("3.11.2".into()),
            jupyter_lab: true,
            notebook: false,
            problem: None,
            configured: false,
        };
        let spec = LaunchSpec {
            env,
            cuda_visible_devices: Some("GPU-1".into()),
            notebook_dir: Some("~/work dir".into()),
            modules: vec!["python/3.11".into()],
            pre_launch: vec!["module load cuda".into()],
            endpoint: EndpointChoice::Auto,
        };
        let s = script("tb-1", &spec, true, "{}");
        assert!(s.contains("IFS= read -r JUPYTER_TOKEN"));
        assert!(s.contains("export CUDA_VISIBLE_DEVICES='GPU-1'"));
        assert!(s.contains("tb_m='python/3.11'\ntb_ml=$(mktemp)"), "{s}");
        assert!(s.contains("cd \"$HOME\"/'work dir'"));
        assert!(s.contains("-c \"$tb_main\" \"$tb_id\" jupyterlab --no-browser"));
        assert!(s.contains("--ServerApp.base_url=/"));
        // The token is added inside the Python process, never as a shell-level argument.
        assert!(!s.contains("token=$"), "{s}");
        let t = new_token();
        assert_eq!(t.expose().len(), 64);
        assert_ne!(t.expose(), new_token().expose());
    }

    /// The record the launch script writes on the host is the record `launch` returns, for a
    /// Unix socket and for TCP, with paths that need JSON escaping.
    #[cfg(unix)]
    #[test]
    fn the_record_written_on_the_host_is_the_one_returned() {
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join("a \"quoted\" \\ dir");
        std::fs::create_dir(&odd).unwrap();
        let tb_dir = odd.display().to_string();
        for sock in [format!("{tb_dir}/tb-1.sock"), String::new()] {
            let mut server = JupyterServer {
                id: "tb-1".into(),
                pid: 0,
                endpoint: Target::Tcp {
                    host: "127.0.0.1".into(),
                    port: 0,
                },
                base_url: "/".into(),
                env: Some("/opt/v".into()),
                gpu: Some("GPU-1".into()),
                started: Some(7),
                root_dir: None,
                log: None,
                app: "lab".into(),
                managed: true,
            };
            let template = record_template(&server).unwrap();
            let script = format!(
                "cd {dir} && tb_dir={dir} tb_id=tb-1 tb_log={dir}/tb-1.log tb_pid=4242 tb_port=8888 tb_sock={sock} tb_rec={rec}\n{RECORD_SH}",
                dir = shell_quote(&tb_dir),
                sock = shell_quote(&sock),
                rec = shell_quote(&template),
            );
            let out = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(&script)
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            let written: JupyterServer =
                serde_json::from_str(&std::fs::read_to_string(odd.join("tb-1.json")).unwrap())
                    .unwrap();
            server.pid = 4242;
            server.endpoint = if sock.is_empty() {
                Target::Tcp {
                    host: "127.0.0.1".into(),
                    port: 8888,
                }
            } else {
                Target::UnixSocket { path: sock.clone() }
            };
            server.root_dir = Some(tb_dir.clone());
            server.log = Some(format!("{tb_dir}/tb-1.log"));
            assert_eq!(written, server);
        }
        assert!(RECORD_SH.contains(&format!("exit {RECORD_FAILED}")));
    }
}
