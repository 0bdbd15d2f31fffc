//! The parser against real captures, every failure string in every field, and hostile input.

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

#[test]
fn script_is_one_line_without_single_quotes_inside() {
    let body = script!();
    assert!(
        !body.contains('\''),
        "single quote would break the sh -c '…' wrapper"
    );
    assert!(
        !body.contains('\n'),
        "csh cannot take newlines inside quotes"
    );
    assert!(body.contains(&format!("f={FULL_FIELDS};")));
    assert!(body.contains(&format!("f={BASE_FIELDS};")));
    assert_eq!(
        FULL_FIELDS.replace(",mig.mode.current", ""),
        BASE_FIELDS,
        "the base fields are the full ones less the MIG field"
    );
    assert!(body.contains(&format!("head -c {SECTION_CAP_BYTES};")));
    assert!(body.contains(&format!("timeout -k 2 {REMOTE_TIMEOUT_SECS}")));
    // A hung first call, then 1 s for each of the other three, fits in the whole query's limit.
    assert!(u64::from(REMOTE_TIMEOUT_SECS) + 3 < QUERY_TIMEOUT.as_secs());
    assert!(REMOTE_SCRIPT.starts_with("sh -c '") && REMOTE_SCRIPT.ends_with('\''));
    // The token never appears on the command line, where `ps` would show it.
    let q = GpuQuery::for_host("h");
    assert!(!q.command().contains(&q.token));
    assert!(q.stdin().starts_with(&q.token));
    assert_ne!(GpuQuery::for_host("h").token, q.token);
}

#[test]
fn h100_busy_real_capture() {
    let snap = scenario("h100-busy", "root");
    assert_eq!(snap.host, "gpuhost");
    assert_eq!(snap.no_gpu_reason, None);
    assert_eq!(snap.current_user.as_deref(), Some("root"));
    let g = &snap.gpus[0];
    assert_eq!(g.index, 0);
    assert_eq!(g.uuid, "GPU-789e33c0-9106-33b3-da40-e9cddda27a31");
    assert_eq!(g.name.as_deref(), Some("NVIDIA H100 80GB HBM3"));
    assert_eq!(
        (g.memory_total_mib, g.memory_used_mib, g.memory_free_mib),
        (Some(81559), Some(6955), Some(74125))
    );
    assert_eq!(
        (g.utilization_gpu, g.utilization_memory),
        (Some(100), Some(10))
    );
    assert_eq!(g.temperature_c, Some(68));
    assert_eq!(
        (g.power_draw_w, g.power_limit_w),
        (Some(682.70), Some(700.00))
    );
    assert_eq!(g.mig_enabled, Some(false));
    assert_eq!(g.pci_bus_id.as_deref(), Some("00000000:00:06.0"));
    assert_eq!(g.compute_mode.as_deref(), Some("Default"));
    assert!(g.mig.is_empty());
    assert_eq!(snap.processes.len(), 1);
    let p = &snap.processes[0];
    assert_eq!((p.pid, p.used_memory_mib), (433, Some(6946)));
    assert_eq!(p.user.as_deref(), Some("root"));
    assert_eq!(p.command.as_deref(), Some("python3"));
    assert_eq!(p.running_secs, Some(127));
    assert!(p.own);
}

#[test]
fn real_report_from_an_h100_parses_whole() {
    let snap = parse_report("h100", &fixture("real/report-h100-torch.txt"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(snap.current_user.as_deref(), Some("root"));
    assert_eq!(snap.gpus.len(), 1);
    assert_eq!(
        snap.gpus[0].uuid,
        "GPU-629413a5-2b2b-37a3-3e2c-0728c7f662ef"
    );
    assert_eq!(snap.gpus[0].memory_used_mib, Some(683));
    let p = &snap.processes[0];
    assert_eq!(
        (p.pid, p.used_memory_mib, p.running_secs),
        (452, Some(674), Some(8))
    );
    assert_eq!(
        (p.user.as_deref(), p.command.as_deref(), p.own),
        (Some("root"), Some("python3"), true)
    );
    // 683 MiB of 81559 is "low memory", but a compute process makes it busy.
    assert!(!snap.rank_free(false)[0].free);
    assert!(snap.rank_free(true)[0].free);
}

/// The text of `file` between the line `start` and the next line beginning with `end`.
fn section(file: &str, start: &str, end: &str) -> String {
    let text = fixture(file);
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("{start:?} missing"))
        + start.len();
    let rest = &text[from..];
    let to = rest.find(end).unwrap_or_else(|| panic!("{end:?} missing"));
    rest[..to].trim_start_matches('\n').to_string()
}

#[test]
fn nvml_and_the_query_agree_on_a_real_h100() {
    for file in ["real/device-check-busy.txt", "real/device-check-idle.txt"] {
        let raw = section(file, "=== remote query run locally through sh\n", "(took ");
        let parsed = parse_report("vm", &raw).unwrap_or_else(|e| panic!("{file}: {e}"));
        let nvml: serde_json::Value = serde_json::from_str(&section(
            file,
            "=== NVML: tunnelbook gpus local --json\n",
            "=== NVML: tunnelbook gpus local\n",
        ))
        .unwrap_or_else(|e| panic!("{file}: {e}"));
        let query = serde_json::to_value(&parsed).unwrap_or_else(|e| panic!("{e}"));
        let gpu_fields = ["uuid", "name", "memoryTotalMib", "migEnabled", "pciBusId"];
        for field in gpu_fields {
            assert_eq!(
                query["gpus"][0][field], nvml["gpus"][0][field],
                "{file}: {field}"
            );
        }
        // Sampled a few ms apart: memory may move by a MiB.
        let used = |v: &serde_json::Value| v["gpus"][0]["memoryUsedMib"].as_i64();
        let (q, n) = (used(&query), used(&nvml));
        assert!(
            q.zip(n).is_some_and(|(q, n)| (q - n).abs() <= 2),
            "{q:?} vs {n:?}"
        );
        assert_eq!(query["processes"], nvml["processes"], "{file}: processes");
        assert_eq!(query["currentUser"], nvml["currentUser"], "{file}");
    }
    let busy = parse_report(
        "vm",
        &section(
            "real/device-check-busy.txt",
            "=== remote query run locally through sh\n",
            "(took ",
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(busy.processes.len(), 1);
    assert!(!busy.rank_free(false)[0].free);
}

#[test]
fn verbatim_captures_with_header_and_units_parse_the_same() {
    // The real captures were taken with `--format=csv` (header, units, extra driver_version
    // column): the header line is skipped, units are stripped, the extra column ignored.
    let text = report(
        "alice",
        &fixture("real/query-gpu-busy.csv"),
        &fixture("real/query-apps-busy.csv"),
        &fixture("real/nvidia-smi-L.txt"),
        "",
    );
    let snap = parse_report("h", &text).unwrap_or_else(|e| panic!("{e}"));
    let expected = scenario("h100-busy", "alice");
    assert_eq!(snap.gpus, expected.gpus);
    assert_eq!(snap.processes[0].pid, 433);
    assert_eq!(snap.processes[0].used_memory_mib, Some(6946));
    assert_eq!(snap.processes[0].user, None);
    assert!(!snap.processes[0].own);
}

#[test]
fn two_users_on_one_gpu_are_mapped_from_ps() {
    let snap = scenario("h100-two-users", "alice");
    let by_pid = |pid| snap.processes.iter().find(|p| p.pid == pid);
    let root = by_pid(428).unwrap_or_else(|| panic!("428 missing"));
    let alice = by_pid(432).unwrap_or_else(|| panic!("432 missing"));
    assert_eq!(root.user.as_deref(), Some("root"));
    assert!(!root.own);
    assert_eq!(alice.user.as_deref(), Some("alice"));
    assert!(alice.own);
    // nvidia-smi's process name is the fuller one; ps's comm is only a fallback.
    assert_eq!(alice.command.as_deref(), Some("/usr/bin/python3.12"));
    assert_eq!(
        (alice.used_memory_mib, alice.running_secs),
        (Some(5288), Some(13))
    );
}

#[test]
fn a100_mig_instances_attach_to_their_gpu() {
    let snap = scenario("a100-mig-4x", "alice");
    assert_eq!(snap.gpus.len(), 4);
    let g0 = &snap.gpus[0];
    assert_eq!(g0.mig_enabled, Some(true));
    assert_eq!(g0.utilization_gpu, None);
    assert_eq!(g0.mig.len(), 3);
    assert_eq!(g0.mig[0].profile.as_deref(), Some("3g.40gb"));
    assert_eq!(g0.mig[0].device_index, Some(0));
    assert_eq!(g0.mig[2].uuid, "MIG-2b3c4d5e-6f7a-5b8c-9d0e-1f2a3b4c5d6e");
    assert_eq!(g0.mig[2].device_index, Some(2));
    assert_eq!(snap.gpus[1].mig.len(), 1);
    assert!(snap.gpus[2].mig.is_empty() && snap.gpus[3].mig.is_empty());
    assert_eq!(snap.processes.len(), 3);
    assert_eq!(
        snap.processes_on("GPU-a1b2c3d4-0000-1111-2222-333344445555")
            .count(),
        2
    );
    let carol = snap.processes.iter().find(|p| p.pid == 48911);
    assert_eq!(carol.and_then(|p| p.user.as_deref()), Some("carol"));
}

#[test]
fn legacy_mig_uuid_format_is_kept_whole() {
    let list = "GPU 0: A100-SXM4-40GB (UUID: GPU-e91edf3b-b297-37c1-a2a7-7601c2c1f8fd)\n  \
                    MIG 3g.20gb Device 0: (UUID: MIG-GPU-e91edf3b-b297-37c1-a2a7-7601c2c1f8fd/1/0)\n";
    let gpus = "0, GPU-e91edf3b-b297-37c1-a2a7-7601c2c1f8fd, A100-SXM4-40GB, 40536, 0, 40536, [N/A], [N/A], 30, 50, 400, Enabled, 00000000:00:04.0, Default\n";
    let snap =
        parse_report("h", &report("u", gpus, "", list, "")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        snap.gpus[0].mig[0].uuid,
        "MIG-GPU-e91edf3b-b297-37c1-a2a7-7601c2c1f8fd/1/0"
    );
}

#[test]
fn na_and_not_supported_become_none() {
    let snap = scenario("mixed-na", "u");
    let (rtx, t4) = (&snap.gpus[0], &snap.gpus[1]);
    assert_eq!(
        (rtx.power_draw_w, rtx.power_limit_w, rtx.mig_enabled),
        (None, None, None)
    );
    assert_eq!(rtx.utilization_gpu, Some(3));
    assert_eq!((t4.memory_used_mib, t4.memory_free_mib), (None, None));
    assert_eq!((t4.utilization_gpu, t4.temperature_c), (None, None));
    assert_eq!(t4.compute_mode.as_deref(), Some("Exclusive_Process"));
    let p = &snap.processes[0];
    assert_eq!(
        (
            p.pid,
            p.command.as_deref(),
            p.used_memory_mib,
            p.user.as_deref()
        ),
        (777, None, None, None)
    );
}

#[test]
fn missing_and_extra_columns() {
    let gpus = "0, GPU-a, Short Card\n1, GPU-b, Long, 100, 50, 50, 1, 2, 3, 4, 5, Disabled, 0000:01:00.0, Default, extra, more\n";
    let apps = "GPU-a, 10\nGPU-a, 11, weird, name, with, commas, 42\nGPU-b, 12, onlyname\n";
    let snap =
        parse_report("h", &report("u", gpus, apps, "", "")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(snap.gpus.len(), 2);
    assert_eq!(snap.gpus[0].name.as_deref(), Some("Short Card"));
    assert_eq!(snap.gpus[0].memory_total_mib, None);
    assert_eq!(snap.gpus[1].compute_mode.as_deref(), Some("Default"));
    assert_eq!(snap.processes.len(), 3);
    assert_eq!(
        snap.processes[1].command.as_deref(),
        Some("weird, name, with, commas")
    );
    assert_eq!(snap.processes[1].used_memory_mib, Some(42));
    assert_eq!(snap.processes[2].command.as_deref(), Some("onlyname"));
}

#[test]
fn no_nvidia_smi_is_a_snapshot_not_an_error() {
    let text = format!("{MARK}user@@\nbob\n{MARK}no-nvidia-smi@@\n");
    let snap = parse_report("box", &text).unwrap_or_else(|e| panic!("{e}"));
    assert!(snap.gpus.is_empty());
    assert_eq!(
        snap.no_gpu_reason.as_deref(),
        Some("no NVIDIA GPU found on box (nvidia-smi is not installed)")
    );
    assert_eq!(snap.current_user.as_deref(), Some("bob"));
}

#[test]
fn no_devices_found_is_a_snapshot() {
    let text = format!(
        "{MARK}user@@\nbob\n{MARK}gpus@@\nNo devices were found\n{MARK}gpus-rc 6@@\n{MARK}end@@\n"
    );
    let snap = parse_report("box", &text).unwrap_or_else(|e| panic!("{e}"));
    assert!(snap.gpus.is_empty());
    assert!(
        snap.no_gpu_reason
            .as_deref()
            .is_some_and(|r| r.contains("no NVIDIA GPU found on box"))
    );
}

#[test]
fn driver_failures_are_typed_errors_quoting_nvidia_smi() {
    for line in [
        "Failed to initialize NVML: Driver/library version mismatch",
        "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.",
    ] {
        let text = format!("{MARK}user@@\nbob\n{MARK}gpus@@\n{line}\n{MARK}gpus-rc 9@@\n");
        match parse_report("box", &text) {
            Err(GpuError::Driver { host, message }) => {
                assert_eq!(host, "box");
                assert_eq!(message, line);
            }
            other => panic!("expected a driver error, got {other:?}"),
        }
    }
}

#[test]
fn unknown_failures_and_garbage_are_unreadable() {
    let bad_field = fixture("real/errors.txt");
    let bad_field = bad_field.lines().nth(1).unwrap_or_default();
    let text = format!("{MARK}user@@\nbob\n{MARK}gpus@@\n{bad_field}\n{MARK}gpus-rc 2@@\n");
    let err = parse_report("box", &text)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("nvidia-smi exited with 2") && err.contains("bogus.field"),
        "{err}"
    );
    assert!(matches!(
        parse_report("box", ""),
        Err(GpuError::Unreadable { .. })
    ));
    assert!(matches!(
        parse_report("box", "Welcome to Ubuntu\n\x00\u{fffd}"),
        Err(GpuError::Unreadable { .. })
    ));
    let truncated = format!("{MARK}user@@\nbob\n");
    assert!(matches!(
        parse_report("box", &truncated),
        Err(GpuError::Unreadable { .. })
    ));
}

#[test]
fn profile_chatter_before_the_first_marker_is_ignored() {
    let text = format!(
        "Last login: yesterday\n{MARK}fake@@ no\n{}",
        report("u", &fixture("h100-busy/query-gpu.csv"), "", "", "")
    );
    let snap = parse_report("h", &text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(snap.gpus.len(), 1);
    assert!(snap.processes.is_empty());
}

#[test]
fn numbers_are_defensive() {
    assert_eq!(number("81559 MiB"), Some(81559.0));
    assert_eq!(number(" 682.70 W"), Some(682.70));
    assert_eq!(number("[N/A]"), None);
    assert_eq!(number("N/A"), None);
    assert_eq!(number("-5"), None);
    assert_eq!(number("NaN"), None);
    assert_eq!(number("inf"), None);
    assert_eq!(whole_u32("1e300"), None);
    assert_eq!(whole_u64("1e300"), None);
    assert_eq!(whole_u32("99.6 %"), Some(100));
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

/// Case 08 (shared/cases/08-gpu-fallen-off-bus.md): one GPU of four fell off the bus.
#[cfg(unix)]
#[test]
fn case_08_a_lost_gpu_leaves_the_other_three() {
    let dir = scenario_dir("case08-lost");
    let snap = query("lost", dir.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(indexes(&snap), [0, 2, 3]);
    assert_eq!(snap.no_gpu_reason, None);
    assert_eq!(snap.unreadable.len(), 1, "{snap:#?}");
    let lost = &snap.unreadable[0];
    assert_eq!(lost.pci_bus_id.as_deref(), Some("0000:0B:00.0"));
    assert_eq!(
        lost.message,
        "Unable to determine the device handle for GPU 0000:0B:00.0: Unknown Error"
    );
    assert_eq!(snap.processes.len(), 1);
    assert_eq!(snap.processes[0].pid, 4242);
    assert_eq!(snap.processes[0].command.as_deref(), Some("python"));
    let ranked = snap.rank_free(false);
    let free: Vec<u32> = ranked
        .iter()
        .filter(|c| c.free)
        .map(|c| c.gpu_index)
        .collect();
    assert_eq!(free, [0, 3]);
    let busy = ranked.iter().find(|c| c.gpu_index == 2);
    assert!(busy.is_some_and(|c| !c.free && c.why.starts_with("in use by")));
    let auto = snap.select(&GpuSelector::Auto, false);
    assert_eq!(auto.ok().flatten().map(|c| c.gpu_index), Some(0));
}

/// Case 10 (shared/cases/10-container-busy-gpu-no-processes.md): a GPU at 99 % whose
/// processes are in another container.
#[cfg(unix)]
#[test]
fn case_10_a_busy_gpu_without_visible_processes_is_not_free() {
    let dir = scenario_dir("case10-container");
    let snap = query("ctr", dir.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(indexes(&snap), [0, 1]);
    let ranked = snap.rank_free(false);
    assert!(ranked.iter().all(|c| !c.free), "{ranked:#?}");
    let gpu0 = ranked.iter().find(|c| c.gpu_index == 0);
    let why = gpu0.map(|c| c.why.as_str()).unwrap_or_default();
    assert!(
        why.starts_with("in use (processes not visible: another container or namespace)")
            && why.contains("99 % utilization"),
        "{why}"
    );
    let err = snap.select(&GpuSelector::Auto, false).err();
    assert!(matches!(err, Some(GpuError::NoFreeGpu { .. })), "{err:?}");
}

/// A GPU at 100 % with nothing listed (the real H100 capture with its process hidden).
#[test]
fn a_fully_busy_gpu_with_no_processes_is_in_use() {
    let text = report(
        "alice",
        &fixture("h100-busy/query-gpu.csv"),
        "",
        &fixture("h100-busy/list.txt"),
        "",
    );
    let snap = parse_report("h", &text).unwrap_or_else(|e| panic!("{e}"));
    assert!(snap.processes.is_empty());
    let c = &snap.rank_free(true)[0];
    assert!(!c.free);
    assert!(c.why.contains("processes not visible"), "{}", c.why);
    assert!(c.why.contains("100 % utilization"), "{}", c.why);
}

/// Every failure string nvidia-smi writes, in every field of one GPU beside a healthy one:
/// never an error, the healthy GPU always there, a failed field makes its GPU unusable.
#[test]
fn each_failure_string_in_each_field_is_partial() {
    let healthy = "1, GPU-0f0e0d0c-0b0a-0908-0706-050403020100, NVIDIA H100 80GB HBM3, 81559, 0, 81559, 0, 0, 31, 70.10, 700.00, Disabled, 00000000:00:07.0, Default";
    // GPU 0 would win on free memory if it were healthy.
    let victim = "0, GPU-75cbcb3f-3580-af7a-4e6d-03d5aa80af6b, NVIDIA H100 80GB HBM3, 81559, 0, 81559, 0, 0, 30, 69.00, 700.00, Disabled, 00000000:00:06.0, Default";
    let hard = ["ERR!", "[Unknown Error]", "[GPU is lost]", "Unknown Error"];
    let soft = ["[N/A]", "[Not Supported]", "N/A"];
    let fields: Vec<&str> = FULL_FIELDS.split(',').collect();
    for (i, field) in fields.iter().enumerate() {
        for bad in hard.iter().chain(&soft) {
            let mut cols: Vec<&str> = victim.split(", ").collect();
            cols[i] = bad;
            let gpus = format!("{}\n{healthy}\n", cols.join(", "));
            let text = report("u", &gpus, "", "", "");
            let snap = parse_report("h", &text).unwrap_or_else(|e| panic!("{field} = {bad}: {e}"));
            assert!(
                snap.gpus
                    .iter()
                    .any(|g| g.index == 1 && g.problem.is_none()),
                "{field} = {bad}: {snap:#?}"
            );
            let picked = snap
                .select(&GpuSelector::Auto, false)
                .unwrap_or_else(|e| panic!("{field} = {bad}: {e}"))
                .map(|c| c.gpu_index);
            let victim_gpu = snap.gpus.iter().find(|g| g.index == 0);
            if hard.contains(bad) || *field == "uuid" || *field == "index" {
                assert_eq!(picked, Some(1), "{field} = {bad}");
                // Shown with its reason: as a GPU with a problem, or as unreadable.
                let shown = victim_gpu.is_some_and(|g| {
                    g.problem.as_deref().is_some_and(|p| {
                        p.contains(field) && p.contains(bad.trim_matches(['[', ']']))
                    })
                }) || snap.unreadable.iter().any(|u| u.message.contains(bad));
                assert!(shown, "{field} = {bad}: {snap:#?}");
                if let Some(g) = victim_gpu {
                    let err =
                        snap.select_with(&GpuSelector::Uuid(g.uuid.clone()), &FreeRule::default());
                    assert!(matches!(err, Err(GpuError::UnusableGpu { .. })), "{err:?}");
                }
            } else {
                assert!(
                    victim_gpu.is_some_and(|g| g.problem.is_none()),
                    "{field} = {bad}"
                );
                assert!(picked.is_some(), "{field} = {bad}");
            }
        }
    }
    // Whole lines for a GPU.
    for line in [
        "Unable to determine the device handle for GPU 0000:00:06.0: Unknown Error",
        "Unable to determine the device handle for GPU0000:00:06.0: GPU is lost.  Reboot the system to recover this GPU",
    ] {
        let text = report("u", &format!("{line}\n{healthy}\n"), "", "", "");
        let snap = parse_report("h", &text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(indexes(&snap), [1]);
        assert_eq!(snap.unreadable.len(), 1);
        assert_eq!(
            snap.unreadable[0].pci_bus_id.as_deref(),
            Some("0000:00:06.0")
        );
    }
    // Nothing readable at all: an error that quotes the output.
    let text = report(
        "u",
        "Unable to determine the device handle for GPU 0000:00:06.0: Unknown Error\n",
        "",
        "",
        "",
    );
    let snap = parse_report("h", &text).unwrap_or_else(|e| panic!("{e}"));
    assert!(snap.gpus.is_empty());
    assert!(
        snap.no_gpu_reason
            .as_deref()
            .is_some_and(|r| r.contains("1 unreadable"))
    );
}

/// An old driver rejects `mig.mode.current`: asked again without it, MIG mode then comes from
/// `nvidia-smi -L`, and the host is asked without it from then on.
#[cfg(unix)]
#[test]
fn a_driver_rejecting_the_mig_fields_is_asked_without_them() {
    let dir = scenario_dir("a100-mig-4x");
    std::fs::write(dir.path().join("rejects"), "mig.mode.current\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let host = "old-driver-box";
    assert_eq!(GpuQuery::for_host(host).fields, FULL_FIELDS);
    let snap = query(host, dir.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(snap.gpus.len(), 4);
    assert_eq!(snap.gpus[0].mig_enabled, Some(true));
    assert_eq!(snap.gpus[0].mig.len(), 3);
    assert_eq!(snap.gpus[2].pci_bus_id.as_deref(), Some("00000000:47:00.0"));
    assert_eq!(snap.gpus[2].compute_mode.as_deref(), Some("Default"));
    assert!(
        snap.warnings.iter().any(|w| w.contains("MIG")),
        "{:?}",
        snap.warnings
    );
    assert_eq!(GpuQuery::for_host(host).fields, BASE_FIELDS);
    // Asked with the base fields straight away: no rejection the second time.
    let again = query(host, dir.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.gpus, snap.gpus);
    assert!(again.warnings.is_empty(), "{:?}", again.warnings);
    // The same scenario on a current driver reads MIG mode from the query.
    let dir = scenario_dir("a100-mig-4x");
    let current = query("new-driver-box", dir.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(current.gpus[2].mig_enabled, Some(false));
    // The old driver cannot say whether a GPU without instances has MIG mode off or no MIG.
    let mut without = current.gpus.clone();
    for g in without.iter_mut().filter(|g| g.mig.is_empty()) {
        g.mig_enabled = None;
    }
    assert_eq!(without, snap.gpus);
}

/// Hostile process names: each marker (legacy and a guess at the token), nvidia-smi's failure
/// lines, a newline followed by forged rows, terminal escapes. Nothing changes but names.
#[cfg(unix)]
#[test]
fn process_names_cannot_forge_markers_inject_or_fail() {
    let dir = scenario_dir("case08-lost");
    let clean = query("names", dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let hostile = [
            "@@tunnelbook-gpu gpus@@".to_string(),
            "@@tunnelbook-gpu end@@".to_string(),
            "@@tunnelbook-gpu no-nvidia-smi@@".to_string(),
            format!("@@{TOKEN} gpus@@"),
            "/tmp/NVIDIA-SMI has failed/python3".to_string(),
            "Failed to initialize NVML: Driver/library version mismatch".to_string(),
            "Unable to determine the device handle for GPU 0000:0C:00.0: Unknown Error".to_string(),
            "x\n9, GPU-eeeeeeee-0000-0000-0000-000000000000, Evil GPU, 1, 0, 1, 0, 0, 1, 1, 1, Disabled, 00000000:99:00.0, Default".to_string(),
            "x\n4243, GPU-67a571b1-79ee-1016-8ea3-c1fff3f1c1d2, 99999".to_string(),
            "x\n4242, forged-name".to_string(),
            "\u{1b}[2J\u{1b}]0;pwned\u{7}red\u{1b}[31m".to_string(),
            "x\n@@tunnelbook-gpu gpus@@\n9, GPU-eeeeeeee-0000-0000-0000-000000000000, Evil".to_string(),
            format!("x\n@@{TOKEN} gpus@@\n9, GPU-eeeeeeee-0000-0000-0000-000000000000, Evil"),
        ];
    for name in &hostile {
        let names = format!("4242, {name}\n");
        std::fs::write(dir.path().join("names.csv"), &names).unwrap_or_else(|e| panic!("{e}"));
        let snap = query("names", dir.path()).unwrap_or_else(|e| panic!("{name:?}: {e}"));
        assert_eq!(snap.gpus, clean.gpus, "{name:?}");
        assert_eq!(snap.unreadable, clean.unreadable, "{name:?}");
        let pids: Vec<(u32, &str, Option<u64>)> = snap
            .processes
            .iter()
            .map(|p| (p.pid, p.gpu_uuid.as_str(), p.used_memory_mib))
            .collect();
        assert_eq!(
            pids,
            [(
                4242,
                "GPU-2d540dd6-583b-cf11-80dd-cc28edc1dd62",
                Some(10640)
            )]
        );
        let command = snap.processes[0].command.clone().unwrap_or_default();
        assert!(!command.chars().any(char::is_control), "{command:?}");
        assert_ne!(command, "forged-name");
        // Over the legacy marker (the saved-capture format, which a newline and the marker in a
        // name can forge: why live queries carry a token) the rest holds.
        if name.contains("\n@@") {
            continue;
        }
        let legacy = run_script(dir.path(), "tunnelbook-gpu\n\n");
        let snap = parse_report("names", &legacy).unwrap_or_else(|e| panic!("{name:?}: {e}"));
        assert_eq!(snap.gpus, clean.gpus, "{name:?}");
    }
}

/// 10 MB of process list: cut on the host, the report stays small, the GPUs intact.
#[cfg(unix)]
#[test]
fn ten_megabytes_of_output_are_capped() {
    let dir = scenario_dir("case08-lost");
    let row = format!(
        "GPU-2d540dd6-583b-cf11-80dd-cc28edc1dd62, 4242, {}, 10640\n",
        "p".repeat(1000)
    );
    let big = row.repeat(10 * 1024 * 1024 / row.len() + 1);
    assert!(big.len() >= 10 * 1024 * 1024);
    std::fs::write(dir.path().join("apps.csv"), &big).unwrap_or_else(|e| panic!("{e}"));
    let q = GpuQuery::for_host("big");
    let text = run_script(dir.path(), &q.stdin());
    assert!(text.len() < REPORT_CAP_BYTES, "{} bytes", text.len());
    let snap = q.parse("big", &text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(indexes(&snap), [0, 2, 3]);
    assert!(
        snap.warnings.iter().any(|w| w.contains("only the first")),
        "{:?}",
        snap.warnings
    );
    // The parser alone, given 10 MB, reads only its cap.
    let huge = format!(
        "{}{}",
        report("u", &fixture("case10-container/query-gpu.csv"), "", "", ""),
        big
    );
    let snap = parse_report("h", &huge).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(snap.gpus.len(), 2);
    assert!(snap.warnings.iter().any(|w| w.contains("only the first")));
}

/// A hung nvidia-smi is stopped on the host and the query says so.
#[cfg(unix)]
#[test]
fn a_hung_nvidia_smi_ends_within_the_time_limit() {
    if std::process::Command::new("sh")
        .args(["-c", "command -v timeout"])
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
    {
        return;
    }
    let dir = scenario_dir("case10-container");
    std::fs::write(dir.path().join("hang"), "600").unwrap_or_else(|e| panic!("{e}"));
    let start = std::time::Instant::now();
    let result = query("hung", dir.path());
    assert!(
        start.elapsed() < QUERY_TIMEOUT,
        "took {:?}",
        start.elapsed()
    );
    assert!(
        matches!(result, Err(GpuError::TimedOut { secs: 8, .. })),
        "{result:?}"
    );
}

#[test]
fn control_characters_never_reach_the_snapshot() {
    let gpus = "0, GPU-a1, NVIDIA \u{1b}[31mH100\u{7}, 100, 0, 100, 0, 0, 30, 1, 2, Disabled, 0000:01:00.0, Default\n";
    let apps = "GPU-a1, 12, py\u{1b}]0;x\u{7}thon\u{202e}, 1\n";
    let ps = "bo\u{1b}[1mb 12 5 python\n";
    let snap =
        parse_report("h", &report("u", gpus, apps, "", ps)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(snap.gpus[0].name.as_deref(), Some("NVIDIA H100"));
    assert_eq!(snap.processes[0].command.as_deref(), Some("python"));
    assert_eq!(snap.processes[0].user.as_deref(), Some("bob"));
    let json = serde_json::to_string(&snap).unwrap_or_default();
    assert!(!json.contains("\\u001b"), "{json}");
}

#[test]
fn containers_are_read_from_cgroups() {
    let gpus = "0, GPU-a1, X, 100, 50, 50, 90, 0, 30, 1, 2, Disabled, 0000:01:00.0, Default\n";
    let text = format!(
        "{MARK}user@@\nu\n{MARK}gpus {FULL_FIELDS}@@\n{gpus}{MARK}gpus-rc 0 10@@\n\
             {MARK}apps@@\n12, GPU-a1, 40\n13, GPU-a1, 10\n{MARK}apps-rc 0 10@@\n\
             {MARK}names@@\n12, python\n13, torchrun\n{MARK}names-rc 0 10@@\n\
             {MARK}cgroups@@\n12 0::/system.slice/docker-4f9a1c2b3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8.scope \n13 0::/user.slice/user-1000.slice/session-3.scope \n\
             {MARK}ps@@\nbob 12 5 python\nann 13 5 torchrun\n{MARK}ps-rc 0 10@@\n{MARK}end@@\n"
    );
    let snap = parse_report("h", &text).unwrap_or_else(|e| panic!("{e}"));
    let by = |pid| snap.processes.iter().find(|p| p.pid == pid);
    assert_eq!(
        by(12).and_then(|p| p.container.as_deref()),
        Some("docker 4f9a1c2b3d4e")
    );
    assert_eq!(by(12).and_then(|p| p.user.as_deref()), Some("bob"));
    assert_eq!(by(13).and_then(|p| p.container.as_deref()), None);
    let why = &snap.rank_free(false)[0].why;
    assert_eq!(
        why,
        "in use by bob in docker 4f9a1c2b3d4e, ann (2 processes)"
    );
}

/// Text built from the pieces real output is made of, so mutations reach deep paths.
fn noisy_report() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just(MARK.to_string()),
        Just("@@".to_string()),
        Just("user@@\n".to_string()),
        Just("gpus@@\n".to_string()),
        Just("apps@@\n".to_string()),
        Just("list@@\n".to_string()),
        Just("ps@@\n".to_string()),
        Just("gpus-rc ".to_string()),
        Just("no-nvidia-smi@@\n".to_string()),
        Just(", ".to_string()),
        Just("\n".to_string()),
        Just("[N/A]".to_string()),
        Just("[Not Supported]".to_string()),
        Just("GPU-789e33c0".to_string()),
        Just("MIG 3g.40gb Device 0: (UUID: MIG-1)".to_string()),
        Just("GPU 0: X (UUID: GPU-789e33c0)".to_string()),
        Just("UUID:".to_string()),
        Just(")".to_string()),
        Just("Device".to_string()),
        Just("MiB".to_string()),
        "[0-9]{1,25}".prop_map(|s| s),
        "-?[0-9]{0,5}\\.[0-9]{0,5}(e[0-9]{1,3})?".prop_map(|s| s),
        any::<String>(),
        ".{0,40}".prop_map(|s| s),
    ];
    prop::collection::vec(piece, 0..80).prop_map(|v| v.concat())
}

/// The real captures (in the saved format, and in today's with a token), cut and spliced at
/// arbitrary char offsets.
fn mutated_capture() -> impl Strategy<Value = String> {
    let legacy = report(
        "root",
        &fixture("h100-two-users/query-gpu.csv"),
        &fixture("h100-two-users/apps.csv"),
        &fixture("a100-mig-4x/list.txt"),
        &fixture("h100-two-users/ps.txt"),
    );
    let bases = [legacy, token_report("python3")];
    (
        0..bases.len(),
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        any::<String>(),
        any::<prop::sample::Index>(),
    )
        .prop_map(move |(which, a, b, insert, c)| {
            let chars: Vec<char> = bases[which].chars().collect();
            let len = chars.len() + 1;
            let (a, b) = (a.index(len), b.index(len));
            let (lo, hi) = (a.min(b), a.max(b));
            let mut out: String = chars[..lo].iter().collect();
            out.push_str(&insert);
            out.extend(&chars[hi..]);
            let c = c.index(out.chars().count() + 1);
            let mut dup: String = out.chars().take(c).collect();
            dup.push_str(&out);
            dup
        })
}

/// A process name made of what could fool a parser: markers, failure lines, separators,
/// newlines, UUIDs, escapes, and anything.
fn hostile_name() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("\n".to_string()),
        Just(",".to_string()),
        Just(", ".to_string()),
        Just("@@".to_string()),
        Just(MARK.to_string()),
        // A guess at the token (the real one is random and never on a command line).
        Just("@@tunnelbook-gpu-00000000000000000000000000000000 ".to_string()),
        Just("gpus@@".to_string()),
        Just("end@@".to_string()),
        Just("no-nvidia-smi@@".to_string()),
        Just("gpus-rc 0@@".to_string()),
        Just("NVIDIA-SMI has failed".to_string()),
        Just("Failed to initialize NVML: Driver/library version mismatch".to_string()),
        Just(
            "Unable to determine the device handle for GPU 0000:04:00.0: Unknown Error".to_string()
        ),
        Just("GPU-67a571b1-79ee-1016-8ea3-c1fff3f1c1d2".to_string()),
        Just("7, GPU-eeeeeeee-0000-0000-0000-000000000000, Evil, 1, 0, 1, 0, 0".to_string()),
        Just("4242".to_string()),
        Just("ERR!".to_string()),
        Just("[N/A]".to_string()),
        Just("\u{1b}[".to_string()),
        "[0-9]{1,7}".prop_map(|s| s),
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

/// What the script prints for case 08 with the token, the process named `name`.
fn token_report(name: &str) -> String {
    static FILES: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    let (gpus, list) = FILES.get_or_init(|| {
        (
            fixture("case08-lost/query-gpu.csv"),
            fixture("case08-lost/list.txt"),
        )
    });
    let m = format!("@@{TOKEN} ");
    format!(
        "{m}user@@\nalice\n{m}gpus {FULL_FIELDS}@@\n{gpus}\n{m}gpus-rc 15 100@@\n\
             {m}apps@@\n4242, GPU-2d540dd6-583b-cf11-80dd-cc28edc1dd62, 10640\n\n{m}apps-rc 0 10@@\n\
             {m}names@@\n4242, {name}\n\n{m}names-rc 0 10@@\n{m}list@@\n{list}\n{m}list-rc 15 10@@\n\
             {m}cgroups@@\n4242 0::/init.scope \n{m}ps@@\nbob 4242 10 python\n\n{m}ps-rc 0 10@@\n{m}end@@\n"
    )
}

/// No process name changes the GPUs, the unreadable ones, or which processes hold what.
fn check_hostile_name(name: &str) {
    static CLEAN: std::sync::OnceLock<GpuSnapshot> = std::sync::OnceLock::new();
    let q = GpuQuery::with_token(TOKEN);
    let clean = CLEAN.get_or_init(|| {
        q.parse("h", &token_report("python"))
            .unwrap_or_else(|e| panic!("{e}"))
    });
    let snap = q
        .parse("h", &token_report(name))
        .unwrap_or_else(|e| panic!("{name:?}: {e}"));
    assert_eq!(snap.gpus, clean.gpus, "{name:?}");
    assert_eq!(snap.unreadable, clean.unreadable, "{name:?}");
    assert_eq!(snap.no_gpu_reason, clean.no_gpu_reason, "{name:?}");
    let shape = |s: &GpuSnapshot| -> Vec<(u32, String, Option<u64>, Option<String>)> {
        s.processes
            .iter()
            .map(|p| (p.pid, p.gpu_uuid.clone(), p.used_memory_mib, p.user.clone()))
            .collect()
    };
    assert_eq!(shape(&snap), shape(clean), "{name:?}");
    assert_eq!(snap.rank_free(false), {
        let mut ranked = clean.rank_free(false);
        // Only the busy GPU's words name the process.
        for (c, s) in ranked.iter_mut().zip(snap.rank_free(false)) {
            c.why = s.why;
        }
        ranked
    });
    for p in &snap.processes {
        let c = p.command.as_deref().unwrap_or_default();
        assert!(!c.chars().any(char::is_control), "{c:?}");
    }
}

#[test]
#[cfg(unix)] // runs the query script with `sh`
fn the_token_report_matches_the_real_script() {
    // The hand-built report the fuzzer mutates is what the script prints.
    let dir = scenario_dir("case08-lost");
    let from_script = GpuQuery::with_token(TOKEN)
        .parse("h", &run_script(dir.path(), &format!("{TOKEN}\n\n")))
        .unwrap_or_else(|e| panic!("{e}"));
    let built = GpuQuery::with_token(TOKEN)
        .parse("h", &token_report("python"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(from_script.gpus, built.gpus);
    assert_eq!(from_script.unreadable, built.unreadable);
    assert_eq!(from_script.processes[0].command, built.processes[0].command);
}

fn check_total(text: &str) {
    // Must return, never panic; whatever it returns can be ranked and serialized.
    if let Ok(snap) = parse_report("fuzz", text) {
        assert_eq!(snap.host, "fuzz");
        assert!(snap.gpus.is_empty() || snap.no_gpu_reason.is_none());
        let _ = snap.rank_free(true);
        let _ = snap.rank_free(false);
        assert!(serde_json::to_string(&snap).is_ok());
        for c in snap.rank_free(false) {
            assert!(!c.free || c.usable, "{c:?}");
        }
        let strings = snap
            .gpus
            .iter()
            .flat_map(|g| [g.name.clone(), g.problem.clone(), g.compute_mode.clone()])
            .chain(
                snap.processes
                    .iter()
                    .flat_map(|p| [p.command.clone(), p.user.clone()]),
            )
            .flatten()
            .chain(snap.warnings.iter().cloned())
            .chain(snap.unreadable.iter().map(|u| u.message.clone()));
        for s in strings {
            assert!(!s.chars().any(char::is_control), "{s:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn parser_never_panics_quick(text in prop_oneof![noisy_report(), mutated_capture(), any::<String>()]) {
        check_total(&text);
    }

    #[test]
    fn no_process_name_changes_the_set_of_gpus(name in hostile_name()) {
        check_hostile_name(&name);
    }
}

/// The long fuzz run: at least a minute of generated and mutated reports.
/// `cargo test -p tunnelbook-core gpu::query::tests::parser_never_panics_long -- --ignored --nocapture`
/// (`GPU_FUZZ_SECS` changes the duration).
#[test]
#[ignore = "runs for a minute; see the doc comment for the command"]
fn parser_never_panics_long() {
    use proptest::test_runner::{Config, TestRunner};
    let secs: u64 = std::env::var("GPU_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let strategy = prop_oneof![noisy_report(), mutated_capture(), any::<String>()];
    let mut rounds = 0u64;
    while std::time::Instant::now() < deadline {
        let mut runner = TestRunner::new(Config {
            cases: 500,
            failure_persistence: None,
            ..Config::default()
        });
        let result = runner.run(&strategy, |text| {
            check_total(&text);
            Ok(())
        });
        if let Err(e) = result {
            panic!("parser failed: {e}");
        }
        let result = runner.run(&hostile_name(), |name| {
            check_hostile_name(&name);
            check_total(&token_report(&name));
            Ok(())
        });
        if let Err(e) = result {
            panic!("a process name changed the snapshot: {e}");
        }
        rounds += 1;
    }
    println!(
        "fuzzed the GPU parser with {} inputs in {secs} s",
        rounds * 1_000
    );
}
