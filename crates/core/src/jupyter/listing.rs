//! Finding running servers: Tunnelbook's own records and Jupyter's runtime files, with tokens.

use serde::Deserialize;

use super::{Host, JupyterError, JupyterServer, RUNTIME_DIR_SH};
use crate::{secret::Sensitive, tunnel::Target};

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
pub(super) struct Listing {
    /// Read the tokens too (they cross the connection only then).
    pub(super) tokens: bool,
    /// Also ask Jupyter itself (starts Python on the host).
    pub(super) ask_jupyter: bool,
}

/// Servers plus their tokens when `how.tokens` (same user; never logged), in one exec.
pub(super) async fn list_with_tokens(
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
/// is the profile's environment; only [`list_all`] and the last resort of
/// [`token_for`](super::token_for) use it.
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

#[cfg(test)]
mod tests {
    use super::*;

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
