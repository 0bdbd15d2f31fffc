//! The real remote script run through `sh` with the nvidia-smi shim: the shared cases, hostile
//! process names, capped output, a hung nvidia-smi, containers.

use super::*;

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
