//! "Open in browser" without the token on a command line: a one-time link on Tunnelbook's own
//! listener.
//!
//! Starting a browser means running a program (`xdg-open URL`, `open URL`, `cmd /c start URL`)
//! whose arguments every local user can read (`ps`, `/proc/*/cmdline`). So the browser is handed
//! `http://127.0.0.1:PORT/handoff/<random>` instead: a listener on 127.0.0.1 that answers that one
//! path once with a redirect to the notebook's URL (token included; the browser keeps it, as it
//! would a typed one), then `410 Gone`; any other path is `404`. The listener stops after its
//! time to live. Leaves out which URL to hand over and opening the browser (the callers').

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::Mutex,
};

use crate::secret::Sensitive;

/// How long a one-time link waits for the browser by default.
pub const HANDOFF_TTL: Duration = Duration::from_secs(60);

/// The largest request head read from a browser, in bytes.
const MAX_REQUEST: usize = 16 * 1024;

/// A one-time link, live until used or until its time to live ends.
#[derive(Debug, Clone)]
pub struct Handoff {
    /// The link to give the browser: `http://127.0.0.1:PORT/handoff/<64 hex digits>`. It holds
    /// no token, only a random path that works once.
    pub url: String,
    /// The listener's address.
    pub addr: SocketAddr,
}

/// Serves `target` (the notebook URL with its token) once through a new one-time link on
/// 127.0.0.1, for `ttl` at most; returns the link. The listener runs on the current Tokio
/// runtime and stops by itself after `ttl`.
///
/// Errors: binding the local listener failed.
pub async fn handoff(target: Sensitive<String>, ttl: Duration) -> std::io::Result<Handoff> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let secret: [u8; 32] = rand::random();
    let path = format!(
        "/handoff/{}",
        secret
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let url = format!("http://{addr}{path}");
    let state = Arc::new(Mutex::new(Some(target)));
    tokio::spawn(async move {
        let serve = async {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (state, path) = (state.clone(), path.clone());
                tokio::spawn(async move {
                    if let Err(e) = answer(stream, &path, &state).await {
                        tracing::debug!(error = %e, "one-time link: request failed");
                    }
                });
            }
        };
        let _ = tokio::time::timeout(ttl, serve).await;
        tracing::debug!(%addr, "one-time link expired");
    });
    Ok(Handoff { url, addr })
}

/// Answers one request: the redirect the first time `path` is asked for, 410 after, 404 for
/// anything else.
async fn answer(
    mut stream: TcpStream,
    path: &str,
    state: &Mutex<Option<Sensitive<String>>>,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let mut words = head.lines().next().unwrap_or_default().split(' ');
    let (method, asked) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let asked = asked.split('?').next().unwrap_or("");
    let response = if !matches!(method, "GET" | "HEAD") || !same(asked, path) {
        plain("404 Not Found", "Not found.\n")
    } else {
        match state.lock().await.take() {
            Some(target) => format!(
                "HTTP/1.1 302 Found\r\nLocation: {}\r\nCache-Control: no-store\r\n\
                 Referrer-Policy: no-referrer\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                target.expose()
            ),
            None => plain(
                "410 Gone",
                "This link has been used. Open the notebook again from Tunnelbook.\n",
            ),
        }
    };
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

fn plain(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Compares the asked path with the secret one in time independent of where they differ.
fn same(asked: &str, path: &str) -> bool {
    asked.len() == path.len()
        && asked
            .bytes()
            .zip(path.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn the_link_redirects_once_then_is_gone_and_holds_no_token() {
        let target = "http://127.0.0.1:8890/lab?token=0123456789abcdef";
        let link = handoff(Sensitive::new(target.to_string()), HANDOFF_TTL)
            .await
            .unwrap();
        assert!(!link.url.contains("0123456789abcdef"), "{}", link.url);
        let path = link
            .url
            .trim_start_matches(&format!("http://{}", link.addr));
        assert_eq!(path.len(), "/handoff/".len() + 64, "{path}");

        let wrong = get(link.addr, "/handoff/00").await;
        assert!(wrong.starts_with("HTTP/1.1 404"), "{wrong}");
        assert!(!wrong.contains("0123456789abcdef"));
        let first = get(link.addr, path).await;
        assert!(first.starts_with("HTTP/1.1 302"), "{first}");
        assert!(
            first.contains(&format!("Location: {target}\r\n")),
            "{first}"
        );
        let again = get(link.addr, path).await;
        assert!(again.starts_with("HTTP/1.1 410"), "{again}");
        assert!(!again.contains("0123456789abcdef"));
    }

    #[tokio::test(start_paused = true)]
    async fn the_listener_stops_after_its_time_to_live() {
        let link = handoff(Sensitive::new("http://x/".into()), Duration::from_secs(5))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(6)).await;
        tokio::time::resume();
        // Let the expired task drop its listener.
        for _ in 0..50 {
            if TcpStream::connect(link.addr).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the one-time link still listens after its time to live");
    }
}
