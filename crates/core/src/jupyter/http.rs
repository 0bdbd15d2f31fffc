//! A tiny HTTP/1.1 client for the few Jupyter REST calls Tunnelbook makes itself (readiness,
//! shutdown) through the tunnel's local port. One request per connection (`Connection: close`),
//! plain or chunked bodies; nothing else of HTTP is needed here.

use std::{net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::secret::Sensitive;

/// Limit for one request, connect to last byte.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A response: status and body.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

/// Sends `method path` to `addr` with the Jupyter token (when given) in the `Authorization`
/// header, never in the URL.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&Sensitive<String>>,
) -> std::io::Result<Response> {
    tokio::time::timeout(REQUEST_TIMEOUT, request_inner(addr, method, path, token))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in 10 s"))?
}

async fn request_inner(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&Sensitive<String>>,
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: application/json\r\n"
    );
    if let Some(t) = token {
        head.push_str(&format!("Authorization: token {}\r\n", t.expose()));
    }
    if method != "GET" {
        head.push_str("Content-Length: 0\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    parse(&raw)
}

fn bad(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_string())
}

/// Asks `GET /api/status` through `addr` with `token` every 300 ms until the server answers 200
/// or `timeout` has passed; whether it answered. For a server just reached through a new tunnel
/// (a SLURM job's JupyterLab behind the login node).
pub async fn wait_answers(addr: SocketAddr, token: &Sensitive<String>, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if let Ok(r) = request(addr, "GET", "/api/status", Some(token)).await
            && r.status == 200
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    false
}

/// Parses a whole `Connection: close` response.
pub fn parse(raw: &[u8]) -> std::io::Result<Response> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("the connection closed before a full HTTP header arrived"))?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("not an HTTP status line"))?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let mut body = raw[end + 4..].to_vec();
    if chunked {
        body = dechunk(&body)?;
    }
    Ok(Response { status, body })
}

fn dechunk(mut data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let nl = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| bad("truncated chunk"))?;
        let size_text = String::from_utf8_lossy(&data[..nl]);
        let size_hex = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16).map_err(|_| bad("bad chunk size"))?;
        data = &data[nl + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size {
            return Err(bad("truncated chunk"));
        }
        out.extend_from_slice(&data[..size]);
        data = data.get(size + 2..).unwrap_or(&[]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked() {
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, b"ok".as_slice()));
        let r = parse(b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
            .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (403, b"abcde".as_slice()));
        assert!(parse(b"HTTP/1.1 200").is_err());
    }
}
