use super::{super::query::tests::scenario, *};

fn ids(choices: &[GpuChoice]) -> Vec<&str> {
    choices
        .iter()
        .map(|c| c.cuda_visible_devices.as_str())
        .collect()
}

#[test]
fn a100_mig_ranking_puts_free_first() {
    let snap = scenario("a100-mig-4x", "alice");
    let ranked = snap.rank_free(false);
    // GPU 1's idle 7g.80gb instance (80 GiB by its profile), GPU 3 idle (81916 MiB free),
    // GPU 0's free 2g/1g instances, then the busy ones: GPU 0's 3g.40gb (bob) and GPU 2
    // (alice + carol).
    assert_eq!(
        ids(&ranked),
        [
            "MIG-3c4d5e6f-7a8b-5c9d-0e1f-2a3b4c5d6e7f",
            "GPU-f0e1d2c3-9999-8888-7777-666655554444",
            "MIG-1a2b3c4d-5e6f-5a7b-8c9d-0e1f2a3b4c5d",
            "MIG-2b3c4d5e-6f7a-5b8c-9d0e-1f2a3b4c5d6e",
            "MIG-c6d4f1ef-42e4-5de3-91c7-45d71c87eb3f",
            "GPU-a1b2c3d4-0000-1111-2222-333344445555",
        ]
    );
    assert_eq!(ranked.iter().filter(|c| c.free).count(), 4);
    assert_eq!(ranked[0].memory_total_mib, Some(81920));
    assert_eq!(ranked[0].label(), "GPU 1 MIG 7g.80gb #0");
    assert_eq!(ranked[1].label(), "GPU 3");
    assert_eq!(ranked[4].memory_free_mib, Some(40960 - 10163));
    assert_eq!(ranked[5].busy_processes, 2);
}

#[test]
fn a_servers_cuda_visible_devices_is_labelled_as_the_gpu_a_person_knows() {
    let snap = scenario("a100-mig-4x", "alice");
    assert_eq!(
        snap.label_of("GPU-f0e1d2c3-9999-8888-7777-666655554444")
            .as_deref(),
        Some("GPU 3")
    );
    assert_eq!(
        snap.label_of("mig-3c4d5e6f-7a8b-5c9d-0e1f-2a3b4c5d6e7f")
            .as_deref(),
        Some("GPU 1 MIG 7g.80gb #0")
    );
    // An index, a list (the first counts), a MIG-enabled GPU by its own UUID.
    assert_eq!(snap.label_of("3").as_deref(), Some("GPU 3"));
    assert_eq!(
        snap.label_of("GPU-f0e1d2c3-9999-8888-7777-666655554444,2")
            .as_deref(),
        Some("GPU 3")
    );
    let parent = snap
        .gpus
        .iter()
        .find(|g| g.index == 1)
        .unwrap()
        .uuid
        .clone();
    assert_eq!(snap.label_of(&parent).as_deref(), Some("GPU 1"));
    // Gone from the host, or no GPU at all: nothing to say.
    assert_eq!(
        snap.label_of("GPU-00000000-dead-beef-0000-000000000000"),
        None
    );
    assert_eq!(snap.label_of(""), None);
}

#[test]
fn own_processes_can_count_as_free() {
    let snap = scenario("h100-busy", "root");
    assert!(!snap.rank_free(false)[0].free);
    let mine = &snap.rank_free(true)[0];
    assert!(mine.free);
    assert_eq!(mine.memory_used_mib, Some(6955 - 6946));
    // alice's own process does not free a GPU that root also uses.
    let shared = scenario("h100-two-users", "alice");
    let c = &shared.rank_free(true)[0];
    assert!(!c.free);
    assert_eq!(c.busy_processes, 1);
}

#[test]
fn mig_processes_attributed_to_the_parent_make_every_instance_busy() {
    let mut snap = scenario("a100-mig-4x", "alice");
    for p in &mut snap.processes {
        if p.gpu_uuid.starts_with("MIG-c6d4") {
            p.gpu_uuid = "GPU-5d5ba0d6-d33d-2b2c-524d-9e3d8d2b8a77".to_string();
        }
    }
    let gpu0: Vec<_> = snap
        .rank_free(false)
        .into_iter()
        .filter(|c| c.gpu_index == 0)
        .collect();
    assert_eq!(gpu0.len(), 3);
    assert!(gpu0.iter().all(|c| !c.free));
}

#[test]
fn mig_mode_without_instances_offers_nothing() {
    let mut snap = scenario("a100-mig-4x", "alice");
    snap.gpus[1].mig.clear();
    assert!(snap.rank_free(false).iter().all(|c| c.gpu_index != 1));
    let err = snap
        .select(&GpuSelector::Index(1), false)
        .err()
        .map(|e| e.to_string());
    assert!(err.is_some_and(|e| e.contains("has no GPU 1")));
}

#[test]
fn na_fields_do_not_break_ranking() {
    let snap = scenario("mixed-na", "u");
    let ranked = snap.rank_free(false);
    assert_eq!(ranked.len(), 2);
    // The T4 reports neither memory use nor utilization: it cannot be called free; the 4090
    // runs pid 777.
    assert!(ranked.iter().all(|c| !c.free && c.usable));
    let t4 = ranked.iter().find(|c| c.gpu_index == 1);
    assert!(t4.is_some_and(|c| c.why.starts_with("cannot tell whether it is free")));
    let rtx = ranked.iter().find(|c| c.gpu_index == 0);
    assert_eq!(
        rtx.map(|c| c.why.as_str()),
        Some("in use by an unknown user (pid 777)")
    );
}

#[test]
fn thresholds_follow_the_rule_and_say_why() {
    let mut snap = scenario("h100-busy", "root");
    snap.processes.clear();
    let g = &mut snap.gpus[0];
    // Issue 14: 3 % utilization and 78 GB free with nothing running is free, and says so.
    (g.utilization_gpu, g.memory_used_mib) = (Some(3), Some(1_700));
    let c = &snap.rank_free(false)[0];
    assert!(c.free, "{c:?}");
    assert_eq!(
        c.why,
        "free: 3 % utilization, 78.0 GiB of 79.6 GiB free, no processes"
    );
    let strict = FreeRule {
        max_utilization_percent: 2,
        ..FreeRule::default()
    };
    let c = &snap.rank(&strict)[0];
    assert!(!c.free);
    assert!(
        c.why.starts_with("in use (processes not visible"),
        "{}",
        c.why
    );
    let roomy = FreeRule {
        min_free_memory_mib: 80 * 1024,
        ..FreeRule::default()
    };
    let c = &snap.rank(&roomy)[0];
    assert!(!c.free);
    assert_eq!(c.why, "only 78.0 GiB free (at least 80.0 GiB wanted)");
    // 20 % of the memory in use with no process visible: someone holds it.
    snap.gpus[0].memory_used_mib = Some(16_000);
    snap.gpus[0].utilization_gpu = Some(0);
    let c = &snap.rank_free(false)[0];
    assert!(!c.free);
    assert!(c.why.contains("15.6 GiB of 79.6 GiB in use"), "{}", c.why);
    let lenient = FreeRule {
        max_memory_percent: 25,
        ..FreeRule::default()
    };
    assert!(snap.rank(&lenient)[0].free);
    assert!(FreeRule::default().problems().is_empty());
    assert_eq!(
        FreeRule {
            max_utilization_percent: 101,
            ..FreeRule::default()
        }
        .problems()
        .len(),
        1
    );
}

#[test]
fn selector_parses() {
    let p = |s: &str| s.parse::<GpuSelector>();
    assert_eq!(p("auto").ok(), Some(GpuSelector::Auto));
    assert_eq!(p(" NONE ").ok(), Some(GpuSelector::None));
    assert_eq!(p("3").ok(), Some(GpuSelector::Index(3)));
    assert_eq!(
        p("GPU-789e").ok(),
        Some(GpuSelector::Uuid("GPU-789e".into()))
    );
    assert_eq!(
        p("MIG-1a2b").ok(),
        Some(GpuSelector::Uuid("MIG-1a2b".into()))
    );
    for bad in ["", "gpu0", "-1", "99999999999", "GPU-", "cuda:0"] {
        let err = p(bad).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("is not a GPU choice"), "{bad}: {err}");
    }
    for s in ["auto", "none", "7", "MIG-x"] {
        assert_eq!(p(s).ok().map(|g| g.to_string()).as_deref(), Some(s));
    }
}

#[test]
fn select_resolves_and_explains() {
    let snap = scenario("a100-mig-4x", "alice");
    let pick = |s: &str| s.parse().and_then(|sel| snap.select(&sel, false));
    let auto = pick("auto").ok().flatten().map(|c| c.cuda_visible_devices);
    assert_eq!(
        auto.as_deref(),
        Some("MIG-3c4d5e6f-7a8b-5c9d-0e1f-2a3b4c5d6e7f")
    );
    assert!(matches!(pick("none"), Ok(None)));
    let by_index = pick("0").ok().flatten().map(|c| c.cuda_visible_devices);
    assert_eq!(
        by_index.as_deref(),
        Some("MIG-1a2b3c4d-5e6f-5a7b-8c9d-0e1f2a3b4c5d")
    );
    let busy = pick("2").ok().flatten();
    assert!(busy.is_some_and(|c| !c.free && c.gpu_uuid.starts_with("GPU-a1b2")));
    let mig = pick("mig-2b3c4d5e-6f7a-5b8c-9d0e-1f2a3b4c5d6e")
        .ok()
        .flatten();
    assert_eq!(
        mig.and_then(|c| c.mig).and_then(|m| m.device_index),
        Some(2)
    );
    let err = pick("GPU-nope")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("gpuhost has no GPU GPU-nope"), "{err}");
    assert!(
        err.contains("MIG-3c4d5e6f-7a8b-5c9d-0e1f-2a3b4c5d6e7f"),
        "{err}"
    );
    assert!(err.contains(", 3, GPU-f0e1d2c3"), "{err}");
    let err = pick("9").err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("no GPU 9"), "{err}");
}

#[test]
fn auto_on_busy_or_empty_hosts() {
    let busy = scenario("h100-two-users", "alice");
    let err = busy
        .select(&GpuSelector::Auto, true)
        .err()
        .map(|e| e.to_string());
    assert!(err.is_some_and(|e| e.contains("every GPU on gpuhost is in use")));
    let empty = GpuSnapshot::without_gpus("h", "no NVIDIA GPU found on h".into(), None);
    assert!(matches!(empty.select(&GpuSelector::Auto, false), Ok(None)));
    assert!(empty.select(&GpuSelector::Index(0), false).is_err());
}

#[test]
fn profile_memory() {
    assert_eq!(profile_memory_mib("3g.40gb"), Some(40960));
    assert_eq!(profile_memory_mib("1g.10gb+me"), Some(10240));
    assert_eq!(profile_memory_mib("1g.5gb"), Some(5120));
    assert_eq!(profile_memory_mib("weird"), None);
    assert_eq!(profile_memory_mib("1g.99999999999999999999gb"), None);
}
