use super::*;

/// Trial of issue 14, finding 18: the launch step's line is in words — the GPU as the
/// person knows it, no pid; the server id follows "server" for `tunnelbook down`.
#[test]
fn the_launch_line_names_the_gpu_in_words_without_a_pid() {
    let choice = crate::gpu::GpuChoice {
        cuda_visible_devices: "GPU-0f0e0d0c-0b0a-0908-0706-050403020100".into(),
        gpu_index: 3,
        gpu_uuid: "GPU-0f0e0d0c-0b0a-0908-0706-050403020100".into(),
        mig: None,
        name: Some("NVIDIA A100".into()),
        free: true,
        why: "free".into(),
        usable: true,
        busy_processes: 0,
        memory_used_mib: None,
        memory_total_mib: None,
        memory_free_mib: None,
        utilization_gpu: None,
    };
    let line = steps::launched_words("tb-1a2b", "started", Some(&choice));
    assert_eq!(line, "server tb-1a2b started — JupyterLab on GPU 3");
    assert_eq!(line.split_whitespace().nth(1), Some("tb-1a2b"));
    assert!(
        !line.contains("pid") && !line.contains("GPU-0f0e"),
        "{line}"
    );
    assert_eq!(
        steps::launched_words("tb-1", "reused", None),
        "server tb-1 reused — JupyterLab without a GPU"
    );
}

#[test]
fn backoff_doubles_up_to_the_cap() {
    let p = ReconnectPolicy::default();
    let secs: Vec<u64> = (1..=8).map(|a| p.delay(a).as_secs()).collect();
    assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
    assert_eq!(p.delay(u32::MAX), Duration::from_secs(30));
}

#[cfg(feature = "ts")]
#[test]
fn typescript_twin_matches_the_wire_names() {
    use ts_rs::TS;
    let decl = SessionEvent::decl(&ts_rs::Config::new());
    for name in [
        "\"type\": \"reconnecting\"",
        "nextTryInSecs",
        "\"type\": \"reconnected\"",
        "outageSecs",
        "\"type\": \"serverGone\"",
        "\"type\": \"disconnected\"",
    ] {
        assert!(decl.contains(name), "{name} not in {decl}");
    }
}

#[test]
fn new_events_serialize_camel_case_with_a_type_tag() {
    let ev = SessionEvent::Reconnecting {
        attempt: 2,
        next_try_in_secs: 4,
        reason: Problem::new(ErrorCode::Unreachable, "x"),
    };
    assert_eq!(
        serde_json::to_value(&ev).unwrap(),
        serde_json::json!({"type": "reconnecting", "attempt": 2, "nextTryInSecs": 4, "reason": {"code": "unreachable", "message": "x"}})
    );
    let ev = SessionEvent::Reconnected {
        attempts: 3,
        outage_secs: 7,
    };
    assert_eq!(
        serde_json::to_value(&ev).unwrap(),
        serde_json::json!({"type": "reconnected", "attempts": 3, "outageSecs": 7})
    );
    let ev = SessionEvent::ServerGone {
        reason: Problem::new(ErrorCode::ServerGone, "y"),
    };
    assert_eq!(
        serde_json::to_value(&ev).unwrap(),
        serde_json::json!({"type": "serverGone", "reason": {"code": "serverGone", "message": "y"}})
    );
}
