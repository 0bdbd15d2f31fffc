//! The parser against real captures: whole reports, verbatim output, MIG, every missing or
//! failed field, driver failures.

use super::*;

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
