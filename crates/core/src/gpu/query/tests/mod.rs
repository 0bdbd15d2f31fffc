//! Tests of the GPU query: the parser against real captures ([`captures`]), the real script
//! through the nvidia-smi shim ([`script`]), and generated input ([`fuzz`]). The helpers here
//! are shared with the ranking tests.

use proptest::prelude::*;

use super::{
    super::{GpuSelector, fields::*},
    *,
};
use crate::gpu::FreeRule;

/// The marker of reports made by the script before it had a token (saved captures).
const MARK: &str = "@@tunnelbook-gpu ";

/// A fixture file under `crates/core/tests/fixtures/nvidia-smi/`.
pub(crate) fn fixture(path: &str) -> String {
    let full = format!(
        "{}/tests/fixtures/nvidia-smi/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// Builds what [`REMOTE_SCRIPT`] printed before the marker token (the saved captures' format)
/// from its parts.
pub(crate) fn report(user: &str, gpus: &str, apps: &str, list: &str, ps: &str) -> String {
    format!(
        "{MARK}user@@\n{user}\n{MARK}gpus@@\n{gpus}{MARK}gpus-rc 0@@\n{MARK}apps@@\n{apps}\n\
             {MARK}apps-rc 0@@\n{MARK}list@@\n{list}{MARK}list-rc 0@@\n{MARK}ps@@\n{ps}{MARK}end@@\n"
    )
}

/// The report for a fixture scenario directory, as `user` would get it.
pub(crate) fn scenario(dir: &str, user: &str) -> GpuSnapshot {
    let text = report(
        user,
        &fixture(&format!("{dir}/query-gpu.csv")),
        &fixture(&format!("{dir}/apps.csv")),
        &fixture(&format!("{dir}/list.txt")),
        &fixture(&format!("{dir}/ps.txt")),
    );
    parse_report("gpuhost", &text).unwrap_or_else(|e| panic!("{dir}: {e}"))
}

/// The token the script tests send.
const TOKEN: &str = "tunnelbook-gpu-0123456789abcdef0123456789abcdef";

/// A copy of fixture scenario `name` (in the `tests/shims/nvidia-smi` layout) to add files
/// to.
#[cfg(unix)]
pub(crate) fn scenario_dir(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let src = format!(
        "{}/tests/fixtures/nvidia-smi/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    for entry in std::fs::read_dir(&src).unwrap_or_else(|e| panic!("{src}: {e}")) {
        let entry = entry.unwrap_or_else(|e| panic!("{e}"));
        std::fs::copy(entry.path(), dir.path().join(entry.file_name()))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    dir
}

/// Runs the real [`REMOTE_SCRIPT`] through `sh` as a host would, with the test shim
/// (`tests/shims/nvidia-smi`, reading `dir`) first on PATH and `stdin` as the query's stdin;
/// returns what it printed.
#[cfg(unix)]
pub(crate) fn run_script(dir: &std::path::Path, stdin: &str) -> String {
    use std::io::Write as _;
    let bin = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let shim = format!(
        "{}/../../tests/shims/nvidia-smi",
        env!("CARGO_MANIFEST_DIR")
    );
    std::os::unix::fs::symlink(&shim, bin.path().join("nvidia-smi"))
        .unwrap_or_else(|e| panic!("{e}"));
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = std::process::Command::new("sh")
        .args(["-c", script!()])
        .env("PATH", path)
        .env("NVIDIA_SMI_SHIM_DIR", dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin.as_bytes());
    }
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `dir` queried through the real script and parsed, as `gpus` does for host `host`.
#[cfg(unix)]
fn query(host: &str, dir: &std::path::Path) -> Result<GpuSnapshot, GpuError> {
    let q = GpuQuery::for_host(host);
    q.parse(host, &run_script(dir, &q.stdin()))
}

fn indexes(snap: &GpuSnapshot) -> Vec<u32> {
    snap.gpus.iter().map(|g| g.index).collect()
}

mod captures;
mod fuzz;
mod script;
