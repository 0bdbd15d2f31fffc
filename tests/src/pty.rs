//! Runs a program in a real pseudo-terminal, scripted: `tests/pty/drive.py` (python3's `pty`
//! module) makes the program a session leader with the pty as its controlling terminal, as a
//! terminal emulator does, so raw mode, `SIGWINCH` and job control behave as for a person.

use std::{path::PathBuf, process::Command};

use serde_json::{Value, json};

/// One step of a script.
#[derive(Debug, Clone)]
pub enum Step {
    /// Type this text.
    Send(String),
    /// Wait (up to the seconds given) until the output since the last match matches the regex.
    Expect(String, u64),
    /// Change the terminal size to (cols, rows).
    Resize(u16, u16),
    /// Let this many seconds pass, reading output.
    Sleep(f64),
    /// Type `count` single characters, timing each until its echo (see [`PtyRun::latencies_ms`]).
    EchoBench(usize),
}

/// What a scripted run gave.
#[derive(Debug, Clone)]
pub struct PtyRun {
    /// The program's exit status.
    pub status: Option<i32>,
    /// The signal that killed it.
    pub signal: Option<i32>,
    /// Everything it printed to the terminal.
    pub output: String,
    /// The first step that failed, and why.
    pub failed: Option<String>,
    /// Echo round trips of [`Step::EchoBench`], in milliseconds.
    pub latencies_ms: Vec<f64>,
}

fn driver() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pty/drive.py")
}

/// Runs `cmd` (its program, arguments and environment changes; not its stdio) in a `cols` ×
/// `rows` pseudo-terminal, following `steps`, and waits for it to exit (killed after 30 s).
pub fn run_in_pty(cmd: &Command, cols: u16, rows: u16, steps: &[Step]) -> PtyRun {
    let script: Vec<Value> = steps
        .iter()
        .map(|s| match s {
            Step::Send(t) => json!({ "send": t }),
            Step::Expect(re, secs) => json!({ "expect": re, "timeout": secs }),
            Step::Resize(c, r) => json!({ "resize": [c, r] }),
            Step::Sleep(secs) => json!({ "sleep": secs }),
            Step::EchoBench(n) => json!({ "echo_bench": { "count": n, "char": "x" } }),
        })
        .collect();
    let mut py = Command::new("python3");
    py.arg(driver())
        .arg(cols.to_string())
        .arg(rows.to_string())
        .arg(Value::Array(script).to_string())
        .arg("--")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => py.env(k, v),
            None => py.env_remove(k),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        py.current_dir(dir);
    }
    let out = py.output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "pty driver: {e}; stdout {:?}; stderr {:?}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    PtyRun {
        status: v["status"].as_i64().map(|s| s as i32),
        signal: v["signal"].as_i64().map(|s| s as i32),
        output: v["output"].as_str().unwrap_or_default().to_string(),
        failed: v["failed"].as_str().map(str::to_string),
        latencies_ms: v["latencies_ms"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default(),
    }
}

/// A program for [`echo_pair`]: its argv and environment changes (not its stdio).
fn program(cmd: &Command) -> Value {
    let env: serde_json::Map<String, Value> = cmd
        .get_envs()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.map_or(Value::Null, |v| {
                    Value::String(v.to_string_lossy().into_owned())
                }),
            )
        })
        .collect();
    let argv: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    json!({ "argv": argv, "env": env })
}

/// Keystroke echo round trips (ms) of two programs, each in a `cols` × `rows` pseudo-terminal
/// running a shell: `count` keystrokes each, typed in pairs that alternate which program goes
/// first (`tests/pty/echo_pair.py`), so a machine whose load changes weighs on both alike.
///
/// # Errors
/// The step that failed (a shell that did not answer, an echo that did not come back).
pub fn echo_pair(
    a: &Command,
    b: &Command,
    cols: u16,
    rows: u16,
    count: usize,
) -> Result<(Vec<f64>, Vec<f64>), String> {
    let out = Command::new("python3")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pty/echo_pair.py"))
        .arg(cols.to_string())
        .arg(rows.to_string())
        .arg(count.to_string())
        .arg(Value::Array(vec![program(a), program(b)]).to_string())
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "echo_pair.py: {e}; stderr {:?}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    if let Some(failed) = v["failed"].as_str() {
        return Err(failed.to_string());
    }
    let times = |i: usize| -> Vec<f64> {
        v["latencies_ms"][i]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default()
    };
    Ok((times(0), times(1)))
}
