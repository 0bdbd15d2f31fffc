//! Generated and mutated reports: the parser never panics and hostile names change nothing.

use super::*;

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
/// `cargo test -p tunnelbook-core gpu::query::tests::fuzz::parser_never_panics_long -- --ignored --nocapture`
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
