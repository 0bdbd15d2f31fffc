//! Running servers: readiness and stopping (finding them: [`super::listing`]; tokens and
//! tunnels: [`super::attach`]).

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use super::{
    Host, JupyterError, JupyterServer, RUNTIME_DIR_SH,
    attach::{TokenStore, attach},
    http, log_tail, shell_quote,
};
use crate::{secret::Sensitive, tunnel::Listen};

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

/// Stops server `server_id` running on `host` ([`super::find`] among [`super::list`]), with
/// its token when one is known ([`super::token_for`]) so JupyterLab shuts down its kernels
/// first; as [`stop`].
///
/// # Errors
/// No such server; those of [`super::list`] and [`stop`].
pub async fn stop_by_id(
    host: &Host,
    server_id: &str,
    tokens: &TokenStore,
    configured_env: Option<&str>,
) -> Result<(), JupyterError> {
    let servers = super::list(host, configured_env).await?;
    let server = super::find(&host.name(), &servers, Some(server_id))?;
    let token = super::token_for(host, server, tokens, configured_env)
        .await
        .ok();
    stop(host, server, token.as_ref(), tokens).await
}

/// What a watch on a server ([`wait_gone`]) sees at one look.
pub enum Look {
    /// Stop watching (the server was stopped here, the session closed).
    Stop,
    /// Not now (the connection is down: an outage is not the server's end).
    Later,
    /// List the servers on this host (with the profile's environment).
    Check(Host, Option<String>),
}

/// Watches server `server_id`, looking every `every`: `true` once a [`Look::Check`] no longer
/// lists it (killed, out of memory, stopped elsewhere); `false` when `look` says
/// [`Look::Stop`]. A listing that fails tells nothing.
pub async fn wait_gone(server_id: &str, every: Duration, mut look: impl FnMut() -> Look) -> bool {
    loop {
        tokio::time::sleep(every).await;
        let (host, configured) = match look() {
            Look::Stop => return false,
            Look::Later => continue,
            Look::Check(host, configured) => (host, configured),
        };
        if let Ok(servers) = super::list(&host, configured.as_deref()).await
            && !servers.iter().any(|s| s.id == server_id)
        {
            return true;
        }
    }
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
}
