//! Talking to a Jupyter kernel through a tunnel's local port: start one (REST) and run code in it
//! over its websocket, as JupyterLab does.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};
use tunnelbook_core::{jupyter::http, secret::Sensitive};

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Starts a kernel through the tunnel (REST); returns its id.
pub async fn start_kernel(port: u16, token: &Sensitive<String>) -> String {
    let r = http::request(addr(port), "POST", "/api/kernels", Some(token))
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    v["id"].as_str().unwrap().to_string()
}

/// Runs `code` in the kernel over its websocket; returns its `execute_result` / `stream` text.
pub async fn execute(port: u16, token: &Sensitive<String>, kernel: &str, code: &str) -> String {
    let mut req = format!("ws://127.0.0.1:{port}/api/kernels/{kernel}/channels")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Authorization",
        format!("token {}", token.expose()).parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let msg_id = format!(
        "tb-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let request = serde_json::json!({
        "header": {"msg_id": msg_id, "username": "test", "session": "tb-test", "msg_type": "execute_request", "version": "5.3", "date": ""},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": false, "store_history": true, "user_expressions": {}, "allow_stdin": false, "stop_on_error": true},
    });
    ws.send(Message::text(request.to_string())).await.unwrap();
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let msg = match tokio::time::timeout(Duration::from_secs(60), ws.next())
            .await
            .unwrap()
        {
            Some(Ok(msg)) => msg,
            Some(Err(e)) => panic!("the kernel websocket failed: {e}"),
            None => panic!("the kernel websocket closed"),
        };
        let Message::Text(body) = msg else { continue };
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        if v["parent_header"]["msg_id"] != msg_id {
            continue;
        }
        match v["header"]["msg_type"].as_str().unwrap_or("") {
            "execute_result" => {
                text.push_str(v["content"]["data"]["text/plain"].as_str().unwrap_or(""))
            }
            "stream" => text.push_str(v["content"]["text"].as_str().unwrap_or("")),
            "error" => panic!("the kernel raised: {}", v["content"]),
            "status" if v["content"]["execution_state"] == "idle" => break,
            _ => {}
        }
    }
    let _ = ws.close(None).await;
    text
}
