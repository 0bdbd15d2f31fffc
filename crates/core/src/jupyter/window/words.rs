//! What a notebook's window and steps say when its server or its connection changes, in words
//! a person acts on; the technical details (process id, the server's log on the host) go to the
//! log and the main window's step.

use std::fmt::Display;

/// The banner when the server on `host` is gone (stopped or crashed there): what happened and
/// what the Restart button does.
pub fn server_gone_banner(host: &str) -> String {
    format!(
        "The notebook server on {host} has stopped (it was ended or crashed on the host). Restart \
         starts it again at the same address; changes that were not saved are lost."
    )
}

/// The banner of a window on a server reopened from an earlier run that is gone.
pub fn reopened_gone_banner(host: &str) -> String {
    format!(
        "The notebook server on {host} has stopped (it was stopped or killed on the host). What \
         was saved is on the host; start JupyterLab again from Tunnelbook's Connect screen, then \
         close this window."
    )
}

/// The banner while the connection to `host` is dialed again (try `attempt`, when known: a
/// reopened server's window follows the host session's events, which say it only in words).
pub fn reconnecting_banner(host: &str, attempt: Option<u32>) -> String {
    let attempt = attempt
        .map(|a| format!(" (attempt {a})"))
        .unwrap_or_default();
    format!(
        "Connection to {host} lost — reconnecting{attempt}. Your kernels keep running on the \
         host; this notebook carries on when the connection is back."
    )
}

/// The step while reconnecting: why it was lost, the try and when.
pub fn reconnecting_step(reason: &impl Display, attempt: u32, next_try_in_secs: u64) -> String {
    format!(
        "connection lost ({reason}); reconnecting, attempt {attempt} in {next_try_in_secs} s — \
         the local port stays"
    )
}

/// The step once the connection is back: how long it was gone, after how many tries
/// (`reconnected after 9 s (1 attempt)`).
pub fn reconnected_step(outage_secs: u64, attempts: u32) -> String {
    format!(
        "reconnected after {outage_secs} s ({})",
        attempts_phrase(attempts)
    )
}

/// `1 attempt`, `3 attempts`.
pub fn attempts_phrase(attempts: u32) -> String {
    match attempts {
        1 => "1 attempt".to_string(),
        n => format!("{n} attempts"),
    }
}

/// The error once the connection is lost for good (`reason`: why no more tries).
pub fn disconnected_error(reason: &impl Display) -> String {
    format!(
        "the notebook's connection is lost ({reason}); the server keeps running — close this \
         session and open the server again from a new one"
    )
}

/// The banner once the connection to `host` is lost for good.
pub fn disconnected_banner(host: &str, reason: &impl Display) -> String {
    format!(
        "The connection to {host} is lost ({reason}); Tunnelbook stopped trying. The server keeps \
         running on the host: open it again from Tunnelbook's Sessions."
    )
}

/// The ready step: core's `done` message (`ready` when empty), the local port, the GPU.
pub fn ready_step(done: &str, local_port: u16, gpu_label: Option<&str>) -> String {
    let done = if done.is_empty() { "ready" } else { done };
    format!(
        "{done} — JupyterLab on 127.0.0.1:{local_port} ({})",
        gpu_label.unwrap_or("CPU only")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A launch's window says which try it is; a reopened server's window (which only sees the
    /// host session's events in words) says the same without it.
    #[test]
    fn the_reconnecting_banner_names_the_try_when_known() {
        assert_eq!(
            reconnecting_banner("gpu-box", Some(2)),
            "Connection to gpu-box lost — reconnecting (attempt 2). Your kernels keep running on \
             the host; this notebook carries on when the connection is back."
        );
        assert_eq!(
            reconnecting_banner("gpu-box", None),
            "Connection to gpu-box lost — reconnecting. Your kernels keep running on the host; \
             this notebook carries on when the connection is back."
        );
    }

    /// Trial of #14 in s28: the step list said "(1 attempts)".
    #[test]
    fn reconnected_says_attempt_in_the_singular_once() {
        assert_eq!(reconnected_step(9, 1), "reconnected after 9 s (1 attempt)");
        assert_eq!(reconnected_step(0, 3), "reconnected after 0 s (3 attempts)");
    }

    /// Trial of #14, finding 13: the "server is gone" banner showed a pid and a log path.
    #[test]
    fn the_server_gone_banner_says_what_happened_in_words() {
        for text in [
            server_gone_banner("gpu-box"),
            reopened_gone_banner("gpu-box"),
        ] {
            assert!(
                text.contains("notebook server on gpu-box has stopped"),
                "{text}"
            );
            for technical in ["pid", "log", "/", "tb-"] {
                assert!(!text.contains(technical), "{technical} in: {text}");
            }
        }
        assert!(server_gone_banner("gpu-box").contains("Restart"));
    }

    /// The ready step names the port and the GPU, CPU only without one.
    #[test]
    fn the_ready_step_says_where_and_on_what() {
        assert_eq!(
            ready_step("", 8888, None),
            "ready — JupyterLab on 127.0.0.1:8888 (CPU only)"
        );
        assert_eq!(
            ready_step("up", 1, Some("GPU 1")),
            "up — JupyterLab on 127.0.0.1:1 (GPU 1)"
        );
    }
}
