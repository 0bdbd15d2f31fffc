//! Running servers: readiness, listing, tokens, reattaching a tunnel, stopping.

use std::{
    fmt,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use serde::Deserialize;

use super::{Host, JupyterError, JupyterServer, RUNTIME_DIR_SH, http, log_tail, shell_quote};
use crate::{
    secret::{SecretKey, SecretKind, SecretStore, Sensitive},
    tunnel::{Link, Listen, Target, Tunnel},
};

/// Waits until `server` answers `GET /api` (unauthenticated liveness) and then
/// `GET /api/status` with the token, through `addr` (the tunnel's local end), asking every 30 ms
/// for the first 8 s and every 100 ms after. Checks every 0.7 s whether the process still lives; when it died or `timeout` passes, the error carries
/// the last lines of the server's log and what they mean. Returns the server's version.
pub async fn wait_ready(
    host: &Host,
    server: &JupyterServer,
    addr: SocketAddr,
    token: &Sensitive<String>,
    timeout: Duration,
) -> Result<String, JupyterError> {
    let start = Instant::now();
    let mut last_check = Instant::now();
    let api = format!("{}api", server.base_url);
    let status = format!("{}api/status", server.base_url);
    loop {
        if let Ok(r) = http::request(addr, "GET", &api, None).await
            && r.status == 200
        {
            let version = serde_json::from_slice::<serde_json::Value>(&r.body)
                .ok()
                .and_then(|v| {
                    v.get("version")
                        .and_then(|s| s.as_str())
                        .map(str::to_string)
                })
                .unwrap_or_default();
            match http::request(addr, "GET", &status, Some(token)).await {
                Ok(r) if r.status == 200 => return Ok(version),
                Ok(r) if r.status == 401 || r.status == 403 => {
                    return Err(JupyterError::TokenRejected { status: r.status });
                }
                _ => {}
            }
        }
        if start.elapsed() >= timeout {
            let (_, tail) = log_of(host, server).await;
            return Err(JupyterError::NotReady {
                secs: timeout.as_secs(),
                log: server.log.clone().unwrap_or_default(),
                tail,
            });
        }
        if last_check.elapsed() >= Duration::from_millis(700) {
            last_check = Instant::now();
            if !alive(host, server.pid).await? {
                let (reason, tail) = log_of(host, server).await;
                return Err(JupyterError::Exited {
                    reason,
                    log: server.log.clone().unwrap_or_default(),
                    tail,
                });
            }
        }
        // JupyterLab takes a second or more to start: ask often at first, so the moment it
        // answers is not lost, then every 100 ms.
        let pause = if start.elapsed() < FAST_POLL_FOR {
            FAST_POLL
        } else {
            Duration::from_millis(100)
        };
        tokio::time::sleep(pause).await;
    }
}

/// How often [`wait_ready`] asks during its first [`FAST_POLL_FOR`].
const FAST_POLL: Duration = Duration::from_millis(30);
/// How long [`wait_ready`] asks every [`FAST_POLL`].
const FAST_POLL_FOR: Duration = Duration::from_secs(8);

/// Whether `server`'s process still runs on `host` (not a zombie). A failed command (the
/// connection, say) is an error, not a "no".
pub async fn is_running(host: &Host, server: &JupyterServer) -> Result<bool, JupyterError> {
    let out = host
        .exec(&format!("{RUNTIME_DIR_SH}tb_alive {}", server.pid), &[])
        .await?;
    // Only `tb_alive`'s own answers count: a channel cut before the exit status arrived (no
    // status) says nothing about the server.
    match out.status {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        other => Err(JupyterError::Unreadable {
            host: host.name(),
            detail: format!(
                "the liveness check of pid {} ended with {other:?}: {}",
                server.pid,
                log_tail(&out.stderr_text(), 2)
            ),
        }),
    }
}

async fn alive(host: &Host, pid: u32) -> Result<bool, JupyterError> {
    let out = host
        .exec(&format!("{RUNTIME_DIR_SH}tb_alive {pid}"), &[])
        .await?;
    Ok(out.success())
}

/// The server's log tail and what it means in words.
async fn log_of(host: &Host, server: &JupyterServer) -> (String, String) {
    let Some(log) = &server.log else {
        return ("no log".into(), String::new());
    };
    let tail = match host
        .exec(&format!("tail -n 25 {}", shell_quote(log)), &[])
        .await
    {
        Ok(out) => log_tail(&out.stdout_text(), 25),
        Err(e) => format!("(cannot read the log: {e})"),
    };
    (diagnose(&tail), tail)
}

/// Turns a server log into one sentence.
pub(crate) fn diagnose(log: &str) -> String {
    let last_error = log
        .lines()
        .rev()
        .find(|l| l.contains("Error") || l.contains("error:"))
        .map(str::trim);
    if log.contains("No module named jupyterlab") || log.contains("No module named notebook") {
        "JupyterLab is not installed in this environment".into()
    } else if log.contains("already in use") || log.contains("Address in use") {
        "the port is already taken on the host".into()
    } else if log.contains("No such file or directory") && !log.contains("Traceback") {
        format!("a file is missing: {}", last_error.unwrap_or("see the log"))
    } else if log.contains("Running as root is not recommended") {
        "Jupyter refuses to run as root; run Tunnelbook as a normal user".into()
    } else if let Some(line) = last_error {
        format!("a Python error: {line}")
    } else {
        "see the log".into()
    }
}

/// One server file Jupyter writes in its runtime directory (`jpserver-PID.json`, or
/// `nbserver-PID.json` for the classic notebook), the same fields `jupyter server list --json`
/// prints.
#[derive(Debug, Deserialize)]
struct JpServer {
    pid: u32,
    #[serde(default)]
    hostname: String,
    #[serde(default)]
    port: u16,
    #[serde(default)]
    sock: String,
    #[serde(default)]
    base_url: Option<String>,
    #[serde(default, alias = "notebook_dir")]
    root_dir: Option<String>,
    #[serde(default)]
    token: String,
}

/// Lists the running servers in one round trip, without starting Python (`$tb_tok` = 1 adds
/// the tokens):
/// - Tunnelbook's records in the runtime dir whose process is alive, not a zombie, and still
///   the recorded server (its command line holds the server's id: a pid reused by another
///   program is not). Other records are stale and removed with their socket. The token of a
///   recorded server is read from its own environment (`JUPYTER_TOKEN`, `/proc/PID/environ`,
///   readable by the same user only), never from a file.
/// - The server files Jupyter itself writes (`jpserver-PID.json`, `nbserver-PID.json`) in its
///   runtime directories (`$JUPYTER_RUNTIME_DIR`, `$JUPYTER_DATA_DIR/runtime`, the XDG data
///   dir's and macOS's), whose process is alive and runs Jupyter: what `jupyter server list`
///   reads. Their tokens are blanked unless asked for.
const LIST: &str = r#"tb_cmdline() { if [ -r "/proc/$1/cmdline" ]; then tr '\0' '\n' < "/proc/$1/cmdline"; else ps -o args= -p "$1"; fi 2>/dev/null; }
tb_pys=
for tb_f in "$tb_dir"/*.json; do
    [ -f "$tb_f" ] || continue
    tb_id=${tb_f##*/}; tb_id=${tb_id%.json}
    tb_pid=$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' "$tb_f")
    if [ -n "$tb_pid" ] && [ "$tb_pid" -gt 1 ] && tb_alive "$tb_pid" && tb_cmdline "$tb_pid" | grep -qF -- "$tb_id"; then
        printf 'record\t'; tr -d '\n' < "$tb_f"; echo
        if [ "$tb_tok" = 1 ] && [ -r "/proc/$tb_pid/environ" ]; then
            tb_t=$(tr '\0' '\n' < "/proc/$tb_pid/environ" 2>/dev/null | sed -n 's/^JUPYTER_TOKEN=//p' | sed -n 1p)
            [ -n "$tb_t" ] && printf 'token\t%s\t%s\n' "$tb_pid" "$tb_t"
        fi
        tb_env=$(sed -n 's/.*"env":"\([^"]*\)".*/\1/p' "$tb_f")
        tb_pys="$tb_pys $tb_env"
    else
        rm -f "$tb_f" "${tb_f%.json}.sock"
    fi
done
tb_rt=${JUPYTER_RUNTIME_DIR:-}
[ -z "$tb_rt" ] && [ -n "${JUPYTER_DATA_DIR:-}" ] && tb_rt=$JUPYTER_DATA_DIR/runtime
for tb_d in "$tb_rt" "${XDG_DATA_HOME:-$HOME/.local/share}/jupyter/runtime" "$HOME/Library/Jupyter/runtime" "$HOME/Library/Application Support/jupyter/runtime"; do
    [ -n "$tb_d" ] && [ -d "$tb_d" ] || continue
    for tb_f in "$tb_d"/jpserver-*.json "$tb_d"/nbserver-*.json; do
        [ -f "$tb_f" ] || continue
        tb_pid=${tb_f##*-}; tb_pid=${tb_pid%.json}
        case $tb_pid in ''|*[!0-9]*) continue ;; esac
        tb_alive "$tb_pid" && tb_cmdline "$tb_pid" | grep -qiE 'jupyter|notebook' || continue
        printf 'jpserver\t'
        if [ "$tb_tok" = 1 ]; then tr -d '\n' < "$tb_f"; else tr -d '\n' < "$tb_f" | sed 's/"token": *"[^"]*"/"token": ""/g'; fi
        echo
    done
done
"#;

/// Asks Jupyter itself (`jupyter server list --json`, run with the records' environments, the
/// configured one, or the PATH's `jupyter`): starts Python, so only for `ls --all` and as the
/// last way to a token. Finds servers whose runtime directory [`LIST`] does not look in.
const ASK_JUPYTER: &str = r#"tb_listed=
for tb_c in $tb_cfg $tb_pys; do
    [ -x "$tb_c/bin/python3" ] && tb_c=$tb_c/bin/python3
    [ -f "$tb_c" ] && [ -x "$tb_c" ] || continue
    if "$tb_c" -m jupyter_server list --json 2>/dev/null | sed 's/^/jpserver\t/'; then tb_listed=1; break; fi
done
if [ -z "$tb_listed" ] && command -v jupyter >/dev/null 2>&1; then
    jupyter server list --json 2>/dev/null | sed 's/^/jpserver\t/'
fi
"#;

/// How much a listing does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Listing {
    /// Read the tokens too (they cross the connection only then).
    tokens: bool,
    /// Also ask Jupyter itself (starts Python on the host).
    ask_jupyter: bool,
}

/// Servers plus their tokens when `how.tokens` (same user; never logged), in one exec.
async fn list_with_tokens(
    host: &Host,
    configured_env: Option<&str>,
    how: Listing,
) -> Result<Vec<(JupyterServer, Option<Sensitive<String>>)>, JupyterError> {
    let cfg = configured_env
        .filter(|c| c.contains('/'))
        .map(super::sh_path)
        .unwrap_or_default();
    let script = format!(
        "{RUNTIME_DIR_SH}tb_cfg={cfg}\ntb_tok={}\n{LIST}{}",
        u8::from(how.tokens),
        if how.ask_jupyter { ASK_JUPYTER } else { "" }
    );
    let out = host.exec(&script, &[]).await?;
    Ok(parse_listing(&out.stdout_text()))
}

/// Reads the lines [`LIST`] and [`ASK_JUPYTER`] print: Tunnelbook's records first, then the
/// servers only Jupyter knows (one per pid), each with its token when one was printed.
fn parse_listing(text: &str) -> Vec<(JupyterServer, Option<Sensitive<String>>)> {
    let mut found: Vec<(JupyterServer, Option<Sensitive<String>>)> = Vec::new();
    let mut foreign = Vec::new();
    let mut own_tokens = Vec::new();
    for line in text.lines() {
        if let Some(json) = line.strip_prefix("record\t") {
            match serde_json::from_str::<JupyterServer>(json) {
                Ok(s) if !found.iter().any(|(f, _)| f.pid == s.pid) => found.push((s, None)),
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "skipping an unreadable server record"),
            }
        } else if let Some(rest) = line.strip_prefix("token\t")
            && let Some((pid, token)) = rest.split_once('\t')
            && let Ok(pid) = pid.parse::<u32>()
            && !token.is_empty()
        {
            own_tokens.push((pid, token.to_string()));
        } else if let Some(json) = line.strip_prefix("jpserver\t")
            && let Ok(s) = serde_json::from_str::<JpServer>(json)
        {
            foreign.push(s);
        }
    }
    for (pid, token) in own_tokens {
        if let Some(entry) = found.iter_mut().find(|(f, _)| f.pid == pid) {
            entry.1 = Some(Sensitive::new(token));
        }
    }
    for s in foreign {
        let token = (!s.token.is_empty()).then(|| Sensitive::new(s.token.clone()));
        if let Some(entry) = found.iter_mut().find(|(f, _)| f.pid == s.pid) {
            if entry.1.is_none() {
                entry.1 = token;
            }
            continue;
        }
        let endpoint = if s.sock.is_empty() {
            let host = match s.hostname.as_str() {
                // A server listening on every address is reached through loopback.
                "" | "0.0.0.0" | "localhost" | "::" => "127.0.0.1".to_string(), // connect, not bind
                h => h.to_string(),
            };
            Target::Tcp { host, port: s.port }
        } else {
            Target::UnixSocket { path: s.sock }
        };
        found.push((
            JupyterServer {
                id: format!("pid-{}", s.pid),
                pid: s.pid,
                endpoint,
                base_url: s.base_url.unwrap_or_else(|| "/".into()),
                env: None,
                gpu: None,
                started: None,
                root_dir: s.root_dir,
                log: None,
                app: "lab".into(),
                managed: false,
            },
            token,
        ));
    }
    found
}

/// The user's running Jupyter servers on `host`, in one round trip and without starting Python:
/// Tunnelbook's records whose process is still the recorded server (stale records are removed:
/// process gone, or its pid reused by another program) plus the servers Jupyter's own server
/// files in its runtime directories name (started by hand or by other tools). `configured_env`
/// is the profile's environment; only [`list_all`] and [`token_for`]'s last resort use it.
pub async fn list(
    host: &Host,
    configured_env: Option<&str>,
) -> Result<Vec<JupyterServer>, JupyterError> {
    let how = Listing {
        tokens: false,
        ask_jupyter: false,
    };
    Ok(list_with_tokens(host, configured_env, how)
        .await?
        .into_iter()
        .map(|(s, _)| s)
        .collect())
}

/// Like [`list`], and also asks Jupyter itself (`jupyter server list --json` with the records'
/// environments, `configured_env`, or the PATH's `jupyter`), which finds servers whose runtime
/// directory is set somewhere [`list`] does not look. Starts Python on the host: about a second
/// more.
pub async fn list_all(
    host: &Host,
    configured_env: Option<&str>,
) -> Result<Vec<JupyterServer>, JupyterError> {
    let how = Listing {
        tokens: false,
        ask_jupyter: true,
    };
    Ok(list_with_tokens(host, configured_env, how)
        .await?
        .into_iter()
        .map(|(s, _)| s)
        .collect())
}

/// One running server (see [`find`] for `id`) and its token, in one round trip when the host
/// can tell the token (Tunnelbook's servers on Linux, and any server whose Jupyter server file
/// holds it); else from the keychain, else by asking Jupyter ([`token_for`]). What `attach` and
/// the app's Reopen need.
///
/// # Errors
/// [`JupyterError::NotFound`] when no running server matches, [`JupyterError::NoToken`] when
/// no token is known, and the connection's errors.
pub async fn find_with_token(
    host: &Host,
    id: Option<&str>,
    tokens: &TokenStore,
    configured_env: Option<&str>,
) -> Result<(JupyterServer, Sensitive<String>), JupyterError> {
    let how = Listing {
        tokens: true,
        ask_jupyter: false,
    };
    let listed = list_with_tokens(host, configured_env, how).await?;
    let servers: Vec<JupyterServer> = listed.iter().map(|(s, _)| s.clone()).collect();
    let server = find(&host.name(), &servers, id)?.clone();
    let token = listed
        .into_iter()
        .find(|(s, _)| s.pid == server.pid)
        .and_then(|(_, t)| t);
    match token {
        Some(t) => Ok((server, t)),
        None => {
            let t = token_for(host, &server, tokens, configured_env).await?;
            Ok((server, t))
        }
    }
}

/// Finds one running server by id (`tb-…`, `pid-N`, or the bare pid); `None` picks the only
/// one, or the newest Tunnelbook started.
pub fn find<'a>(
    host: &str,
    servers: &'a [JupyterServer],
    id: Option<&str>,
) -> Result<&'a JupyterServer, JupyterError> {
    let found = match id {
        Some(id) => servers
            .iter()
            .find(|s| s.id == id || s.pid.to_string() == id),
        None => servers
            .iter()
            .filter(|s| s.managed)
            .max_by_key(|s| s.started)
            .or(servers.first()),
    };
    found.ok_or_else(|| JupyterError::NotFound {
        host: host.to_string(),
        id: id.unwrap_or("(any)").to_string(),
        running: servers.iter().map(|s| s.id.clone()).collect(),
    })
}

/// Where server tokens are remembered: the keychain entry
/// `SecretKind::JupyterToken(server id)` of one profile, when a keychain is available.
#[derive(Clone)]
pub struct TokenStore {
    /// The keychain, if any.
    pub store: Option<Arc<dyn SecretStore>>,
    /// The profile the servers belong to.
    pub profile: String,
}

impl fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenStore")
            .field("keychain", &self.store.is_some())
            .field("profile", &self.profile)
            .finish()
    }
}

impl TokenStore {
    fn key(&self, id: &str) -> SecretKey {
        SecretKey {
            profile: self.profile.clone(),
            kind: SecretKind::JupyterToken(id.to_string()),
        }
    }

    /// Keeps a server's token (a no-op without a keychain; failures are logged, not fatal:
    /// `jupyter server list` can still give it back).
    pub fn remember(&self, id: &str, token: &Sensitive<String>) {
        if let Some(store) = &self.store
            && let Err(e) = store.persist(&self.key(id), token)
        {
            tracing::warn!(error = %e, server = id, "cannot keep the Jupyter token in the keychain");
        }
    }

    /// The remembered token of a server.
    pub fn retrieve(&self, id: &str) -> Option<Sensitive<String>> {
        self.store
            .as_ref()
            .and_then(|s| s.retrieve(&self.key(id)).ok().flatten())
    }

    /// Forgets a server's token.
    pub fn forget(&self, id: &str) {
        if let Some(store) = &self.store {
            let _ = store.delete(&self.key(id));
        }
    }
}

/// The token of `server`: from the keychain, else read on the host as the same user (the
/// server's own environment or Jupyter's server file, one round trip), else from
/// `jupyter server list --json` (starts Python). Never from a log.
pub async fn token_for(
    host: &Host,
    server: &JupyterServer,
    tokens: &TokenStore,
    configured_env: Option<&str>,
) -> Result<Sensitive<String>, JupyterError> {
    if let Some(t) = tokens.retrieve(&server.id) {
        return Ok(t);
    }
    for ask_jupyter in [false, true] {
        let how = Listing {
            tokens: true,
            ask_jupyter,
        };
        if let Some(t) = list_with_tokens(host, configured_env, how)
            .await?
            .into_iter()
            .find(|(s, _)| s.pid == server.pid)
            .and_then(|(_, t)| t)
        {
            return Ok(t);
        }
    }
    Err(JupyterError::NoToken {
        id: server.id.clone(),
    })
}

/// Reattaches to a running server: finds server `id` (see [`find`]) and its token in one round
/// trip ([`find_with_token`]), forwards it on `listen(server)` ([`attach`]) and hands it out only
/// once it answers through the tunnel ([`check_answers`]); else the tunnel is closed again.
/// `attach`, the app's Reopen and the tray's reopen all go through here.
///
/// # Errors
/// Those of [`find_with_token`], [`attach`] and [`check_answers`].
pub async fn reattach(
    host: &Host,
    id: Option<&str>,
    tokens: &TokenStore,
    configured_env: Option<&str>,
    listen: impl FnOnce(&JupyterServer) -> Listen,
) -> Result<(JupyterServer, Attached), JupyterError> {
    let (server, token) = find_with_token(host, id, tokens, configured_env).await?;
    let attached = attach(host, &server, &token, listen(&server)).await?;
    if let Err(e) = check_answers(&server, attached.local_addr, &token).await {
        if let Some(t) = attached.tunnel {
            t.close().await;
        }
        return Err(e);
    }
    Ok((server, attached))
}

/// Checks that the server behind `addr` (an [`Attached::local_addr`]) answers
/// `GET /api/status` with `token`: one request through the tunnel, so the URL handed out works.
///
/// # Errors
/// [`JupyterError::TokenRejected`] on 401/403, [`JupyterError::Unreachable`] when it does not
/// answer (within 10 s) or answers something else.
pub async fn check_answers(
    server: &JupyterServer,
    addr: SocketAddr,
    token: &Sensitive<String>,
) -> Result<(), JupyterError> {
    let path = format!("{}api/status", server.base_url);
    match http::request(addr, "GET", &path, Some(token)).await {
        Ok(r) if r.status == 200 => Ok(()),
        Ok(r) if r.status == 401 || r.status == 403 => {
            Err(JupyterError::TokenRejected { status: r.status })
        }
        Ok(r) => Err(JupyterError::Unreachable {
            id: server.id.clone(),
            detail: format!("it answered HTTP {} to {path}", r.status),
        }),
        Err(e) => Err(JupyterError::Unreachable {
            id: server.id.clone(),
            detail: format!("it does not answer through the tunnel ({e}); see `tunnelbook ls`"),
        }),
    }
}

/// A server made reachable from this computer.
pub struct Attached {
    /// The forward (`None` on this computer, where the server's own port is used).
    pub tunnel: Option<Tunnel>,
    /// Where the browser connects.
    pub local_addr: SocketAddr,
    /// `http://127.0.0.1:PORT/lab?token=…` — holds the token: show it to the user, never log it.
    pub url: String,
}

impl fmt::Debug for Attached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attached")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

/// Opens a local listener on `listen` forwarding to `server` (or, on this computer, uses its own
/// port) and builds the browser URL.
pub async fn attach(
    host: &Host,
    server: &JupyterServer,
    token: &Sensitive<String>,
    listen: Listen,
) -> Result<Attached, JupyterError> {
    attach_over(host, None, server, token, listen).await
}

/// Like [`attach`], forwarding over whatever connection `link` holds (when given), so the local
/// port outlives the connection (see [`Link`]).
pub async fn attach_over(
    host: &Host,
    link: Option<&Link>,
    server: &JupyterServer,
    token: &Sensitive<String>,
    listen: Listen,
) -> Result<Attached, JupyterError> {
    let (tunnel, local_addr) = match (host, &server.endpoint) {
        (Host::Ssh(conn), target) => {
            let link = link.cloned().unwrap_or_else(|| Link::fixed(conn));
            let t = Tunnel::local_over(&link, listen, target.clone()).await?;
            let addr = t.local_addr().ok_or_else(|| JupyterError::Unreachable {
                id: server.id.clone(),
                detail: "the tunnel has no local address".into(),
            })?;
            (Some(t), addr)
        }
        (Host::Local, Target::Tcp { host, port }) => {
            let ip = host.parse().unwrap_or(std::net::Ipv4Addr::LOCALHOST.into());
            (None, SocketAddr::new(ip, *port))
        }
        (Host::Local, Target::UnixSocket { path }) => {
            return Err(JupyterError::Unreachable {
                id: server.id.clone(),
                detail: format!(
                    "it listens on the Unix socket {path}, which a browser cannot open"
                ),
            });
        }
    };
    Ok(Attached {
        tunnel,
        local_addr,
        url: server.url(local_addr.port(), token),
    })
}

/// Stops `server`: `POST /api/shutdown` with its token (through a short-lived tunnel), then,
/// if the process is still alive after 5 s, SIGTERM and finally SIGKILL to its process group;
/// removes its record, socket and log, and forgets its token.
pub async fn stop(
    host: &Host,
    server: &JupyterServer,
    token: Option<&Sensitive<String>>,
    tokens: &TokenStore,
) -> Result<(), JupyterError> {
    if let Some(token) = token
        && let Ok(attached) = attach(host, server, token, Listen::loopback_any()).await
    {
        let path = format!("{}api/shutdown", server.base_url);
        if let Err(e) = http::request(attached.local_addr, "POST", &path, Some(token)).await {
            tracing::debug!(error = %e, "shutdown request failed; signalling instead");
        }
        if let Some(t) = attached.tunnel {
            t.close().await;
        }
    }
    let pid = server.pid;
    // Signals go only to the recorded process, and only while it is still the server: a pid
    // reused by another program (the server died, the host rebooted) no longer has the server's
    // id (Tunnelbook's) or `jupyter` (a server found running) on its command line. Never pid <= 1.
    let needle = if server.managed {
        server.id.as_str()
    } else {
        "jupyter"
    };
    let cleanup = if server.managed {
        format!(
            "if tb_ours; then kill -KILL -$tb_pid 2>/dev/null; fi\nrm -f \"$tb_dir\"/{id}.json \"$tb_dir\"/{id}.sock \"$tb_dir\"/{id}.log\n",
            id = shell_quote(&server.id)
        )
    } else {
        String::new()
    };
    let script = format!(
        r#"{RUNTIME_DIR_SH}tb_pid={pid}
tb_ours() {{ [ "$tb_pid" -gt 1 ] 2>/dev/null && tb_alive $tb_pid && {{ if [ -r /proc/$tb_pid/cmdline ]; then tr '\0' '\n' < /proc/$tb_pid/cmdline; else ps -o args= -p $tb_pid; fi; }} 2>/dev/null | grep -qF -- {needle}; }}
tb_wait() {{ i=0; while tb_ours && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; }}
tb_wait
if tb_ours; then
    if [ "$(ps -o pgid= -p $tb_pid | tr -d ' ')" = "$tb_pid" ]; then tb_t=-$tb_pid; else tb_t=$tb_pid; fi
    kill -TERM $tb_t 2>/dev/null
    tb_wait
    if tb_ours; then kill -KILL $tb_t 2>/dev/null; fi
    sleep 0.2
fi
{cleanup}if tb_ours; then echo "tunnelbook: process $tb_pid is still alive ($(ps -o stat=,args= -p $tb_pid 2>/dev/null | cut -c1-200))" >&2; exit 1; fi
"#,
        needle = shell_quote(needle)
    );
    let out = host.exec(&script, &[]).await?;
    tokens.forget(&server.id);
    if !out.success() {
        return Err(JupyterError::Launch(format!(
            "cannot stop server {}: {}",
            server.id,
            log_tail(&out.stderr_text(), 3)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnoses_common_failures() {
        assert!(diagnose("/x/bin/python3: No module named jupyterlab").contains("not installed"));
        assert!(diagnose("[C 12:00] ERROR: the Jupyter server is already in use").contains("port"));
        assert!(
            diagnose("Traceback (most recent call last):\nImportError: cannot import name 'x'")
                .contains("ImportError")
        );
    }

    #[test]
    fn listing_joins_records_tokens_and_jupyters_own_files_once_per_pid() {
        let record = r#"{"id":"tb-1","pid":10,"endpoint":{"kind":"unixSocket","path":"/r/tb-1.sock"},"baseUrl":"/","env":"/v","gpu":null,"started":5,"rootDir":"/h","log":"/r/tb-1.log","app":"lab","managed":true}"#;
        let text = format!(
            "record\t{record}\ntoken\t10\tfrom-environ\n\
             jpserver\t{{\"pid\": 10, \"sock\": \"/r/tb-1.sock\", \"token\": \"from-file\"}}\n\
             jpserver\t{{\"pid\": 20, \"hostname\": \"0.0.0.0\", \"port\": 8888, \"notebook_dir\": \"/w\", \"token\": \"t20\"}}\n\
             jpserver\t{{\"pid\": 20, \"hostname\": \"0.0.0.0\", \"port\": 8888, \"token\": \"t20\"}}\n\
             jpserver\tnot json\nrecord\t{{broken\n"
        );
        let found = parse_listing(&text);
        assert_eq!(found.len(), 2, "{found:?}");
        let (own, token) = &found[0];
        assert_eq!((own.id.as_str(), own.managed), ("tb-1", true));
        assert_eq!(
            token.as_ref().map(|t| t.expose().as_str()),
            Some("from-environ")
        );
        let (theirs, token) = &found[1];
        assert_eq!((theirs.id.as_str(), theirs.managed), ("pid-20", false));
        assert_eq!(
            theirs.endpoint,
            Target::Tcp {
                host: "127.0.0.1".into(),
                port: 8888
            }
        );
        assert_eq!(theirs.root_dir.as_deref(), Some("/w"));
        assert_eq!(token.as_ref().map(|t| t.expose().as_str()), Some("t20"));
    }
}
