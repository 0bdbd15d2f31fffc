//! `tunnelbook gpus NAME [--json] [--watch]`: who is using which GPU, gpustat-style.
//!
//! NAME is a saved host, or `local` for this computer (NVML). Reading, parsing and ranking are
//! core's ([`tunnelbook_core::gpu`]); this file only renders.

use std::{fmt::Write as _, io::Write, process::ExitCode, time::Duration};

use tunnelbook_core::gpu::{
    self, FreeRule, GpuChoice, GpuSnapshot, GpuSource, LocalGpus, display_safe,
};

use crate::{Global, connect};

/// Width of the memory bar, in characters.
const BAR: usize = 20;

/// Arguments of `gpus`.
#[derive(Debug, clap::Args)]
pub struct GpusArgs {
    /// Saved host name, or `local` for this computer's GPUs.
    name: String,
    /// Print the snapshot as JSON (one line per refresh with --watch).
    #[arg(long)]
    json: bool,
    /// Refresh until interrupted.
    #[arg(long)]
    watch: bool,
    /// Seconds between refreshes with --watch.
    #[arg(long, default_value_t = 2.0, value_parser = parse_interval)]
    interval: f64,
    /// Count your own processes as free when marking free GPUs.
    #[arg(long)]
    own_as_free: bool,
    /// When a GPU counts as free (from the settings; `--own-as-free` added).
    #[arg(skip)]
    rule: FreeRule,
    /// Print the remote query command and exit (for scripts/gpu-check.sh).
    #[arg(long, hide = true)]
    print_query: bool,
    /// Parse the remote query's output from stdin instead of asking NAME (for debugging).
    #[arg(long, hide = true)]
    from_stdin: bool,
}

fn parse_interval(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.1..=3600.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "{s} is not a number of seconds between 0.1 and 3600"
        )),
    }
}

/// Shows the GPUs of a saved host or of `local`; exit status 1 on a query error, 255 when the
/// host cannot be reached (as ssh). `--json` prints the snapshot with a `choices` array (the
/// ranking: `free`, `usable`, `why` for each GPU and MIG instance).
pub async fn run(global: &Global, mut args: GpusArgs) -> ExitCode {
    args.rule = FreeRule {
        own_as_free: args.own_as_free,
        ..connect::free_rule(global)
    };
    if args.print_query {
        println!("{}", gpu::REMOTE_SCRIPT);
        return ExitCode::SUCCESS;
    }
    if args.from_stdin {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut std::io::stdin(), &mut text);
        return match gpu::parse_report(&args.name, &text) {
            Ok(snap) => {
                print!("{}", render(&snap, &args));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("tunnelbook: {e}");
                ExitCode::from(1)
            }
        };
    }
    if args.name == "local" {
        return show(LocalGpus::new(), &args).await;
    }
    let conn = match connect::open(global, &args.name).await {
        Ok(c) => c,
        Err(e) => return connect::unreachable(e),
    };
    // A SLURM login node shows the cluster's GPUs as the scheduler sees them (issue 20).
    if let Some(code) = crate::slurm::gpus(global, &args.name, &conn, args.json).await {
        conn.close().await;
        return code;
    }
    let code = show(conn.clone(), &args).await;
    conn.close().await;
    code
}

async fn show<S: GpuSource>(source: S, args: &GpusArgs) -> ExitCode {
    let mut out = std::io::stdout();
    if !args.watch {
        return match source.snapshot().await {
            Ok(snap) => {
                let _ = out.write_all(render(&snap, args).as_bytes());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("tunnelbook: {e}");
                ExitCode::from(1)
            }
        };
    }
    let mut rx = gpu::watch(source, Duration::from_secs_f64(args.interval));
    // The last snapshot that worked, shown marked stale while a refresh fails (a hung
    // nvidia-smi, a dropped connection).
    let mut last: Option<(GpuSnapshot, std::time::Instant)> = None;
    loop {
        let next = tokio::select! {
            next = rx.recv() => next,
            _ = tokio::signal::ctrl_c() => return ExitCode::SUCCESS,
        };
        let Some(result) = next else {
            return ExitCode::from(1);
        };
        let text = match (&result, args.json) {
            (Ok(snap), _) => {
                last = Some((snap.clone(), std::time::Instant::now()));
                render(snap, args)
            }
            (Err(e), true) => {
                eprintln!("tunnelbook: {e}");
                continue;
            }
            (Err(e), false) => match &last {
                Some((snap, at)) => {
                    stale_frame(&e.to_string(), at.elapsed().as_secs(), &render(snap, args))
                }
                None => format!("tunnelbook: {e}\n"),
            },
        };
        if !args.json {
            // Home and clear: redraw in place.
            let _ = out.write_all(b"\x1b[H\x1b[2J");
        }
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

fn render(snap: &GpuSnapshot, args: &GpusArgs) -> String {
    let ranked = snap.rank(&args.rule);
    if args.json {
        // The snapshot, plus `choices`: core's ranking with why each GPU is or is not free.
        let value = serde_json::to_value(snap).and_then(|mut v| {
            if let Some(map) = v.as_object_mut() {
                map.insert("choices".to_string(), serde_json::to_value(&ranked)?);
            }
            Ok(v)
        });
        let json = value.and_then(|v| {
            if args.watch {
                serde_json::to_string(&v)
            } else {
                serde_json::to_string_pretty(&v)
            }
        });
        return json
            .map(|j| j + "\n")
            .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}\n"));
    }
    render_table(snap, &ranked)
}

/// A `--watch` frame while refreshes fail: the last table that worked under a `STALE` line that
/// says how old it is and why the refresh failed.
fn stale_frame(error: &str, age_secs: u64, last_table: &str) -> String {
    format!(
        "STALE (last read {} ago): {}\n{last_table}",
        duration(age_secs),
        display_safe(error)
    )
}

fn opt<T: std::fmt::Display>(v: Option<T>, unit: &str) -> String {
    v.map(|v| format!("{v}{unit}"))
        .unwrap_or_else(|| "-".to_string())
}

fn bar(used: Option<u64>, total: Option<u64>) -> String {
    match (used, total) {
        (Some(u), Some(t)) if t > 0 => {
            let filled = ((u.min(t) as f64 / t as f64) * BAR as f64).round() as usize;
            format!(
                "[{}{}]",
                "#".repeat(filled),
                ".".repeat(BAR - filled.min(BAR))
            )
        }
        _ => format!("[{}]", "?".repeat(BAR)),
    }
}

fn duration(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        3600..86400 => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d{:02}h", secs / 86400, secs % 86400 / 3600),
    }
}

/// Where a GPU or MIG instance stands in the ranking: `free *` for the best pick, `free`,
/// `busy`, or `unusable` (nvidia-smi cannot read it).
fn mark(uuid: &str, ranked: &[GpuChoice]) -> &'static str {
    match ranked.iter().position(|c| c.cuda_visible_devices == uuid) {
        Some(0) if ranked[0].free => "free *",
        Some(i) if ranked[i].free => "free",
        Some(i) if !ranked[i].usable => "unusable",
        Some(_) => "busy",
        None => "",
    }
}

/// The ranking's words for a GPU or MIG instance (why it is or is not free).
fn why<'a>(uuid: &str, ranked: &'a [GpuChoice]) -> Option<&'a str> {
    ranked
        .iter()
        .find(|c| c.cuda_visible_devices == uuid)
        .map(|c| c.why.as_str())
}

/// The gpustat-like table: one line per GPU (index, name, memory bar used/total, utilization,
/// temperature, power, free/busy), why it is or is not free, its MIG instances, and its
/// processes (user, container, pid, memory, command, running time); then the GPUs nvidia-smi
/// cannot read and the warnings. `free *` marks the pick `--gpu auto` would make. Every remote
/// string is display-safe (no control characters or escape sequences reach the terminal).
pub fn render_table(snapshot: &GpuSnapshot, ranked: &[GpuChoice]) -> String {
    let mut s = String::new();
    let user = display_safe(snapshot.current_user.as_deref().unwrap_or("?"));
    let _ = writeln!(s, "{} (as {user})", display_safe(&snapshot.host));
    let footer = |s: &mut String| {
        for u in &snapshot.unreadable {
            let id = match (&u.index, &u.pci_bus_id) {
                (Some(i), _) => format!("[{i}]"),
                (None, Some(bus)) => format!("[{}]", display_safe(bus)),
                (None, None) => "[?]".to_string(),
            };
            let _ = writeln!(s, "{id} unreadable: {}", display_safe(&u.message));
        }
        for w in &snapshot.warnings {
            let _ = writeln!(s, "warning: {}", display_safe(w));
        }
    };
    if snapshot.gpus.is_empty() {
        let reason = snapshot
            .no_gpu_reason
            .as_deref()
            .unwrap_or("no NVIDIA GPU found");
        let _ = writeln!(s, "  {}", display_safe(reason));
        footer(&mut s);
        return s;
    }
    let name_width = snapshot
        .gpus
        .iter()
        .map(|g| {
            display_safe(g.name.as_deref().unwrap_or("-"))
                .chars()
                .count()
        })
        .max()
        .unwrap_or(0);
    for g in &snapshot.gpus {
        let memory = format!(
            "{} {:>6} / {:>6} MiB",
            bar(g.memory_used_mib, g.memory_total_mib),
            opt(g.memory_used_mib, ""),
            opt(g.memory_total_mib, "")
        );
        let power = format!(
            "{} / {} W",
            opt(g.power_draw_w.map(|w| w.round() as u64), ""),
            opt(g.power_limit_w.map(|w| w.round() as u64), "")
        );
        let _ = writeln!(
            s,
            "[{}] {:<name_width$} | {} | {:>4} | {:>5} | {:>11} | {}",
            g.index,
            display_safe(g.name.as_deref().unwrap_or("-")),
            memory,
            opt(g.utilization_gpu, "%"),
            opt(g.temperature_c, "°C"),
            power,
            if g.mig_enabled == Some(true) {
                "MIG"
            } else {
                mark(&g.uuid, ranked)
            },
        );
        if g.mig_enabled != Some(true)
            && let Some(why) = why(&g.uuid, ranked)
        {
            let _ = writeln!(s, "    -> {}", display_safe(why));
        }
        for m in &g.mig {
            let _ = writeln!(
                s,
                "    MIG {:<10} #{} {}  {}",
                display_safe(m.profile.as_deref().unwrap_or("?")),
                opt(m.device_index, ""),
                display_safe(&m.uuid),
                mark(&m.uuid, ranked)
            );
            if let Some(why) = why(&m.uuid, ranked) {
                let _ = writeln!(s, "        -> {}", display_safe(why));
            }
        }
        let on_gpu = snapshot
            .processes
            .iter()
            .filter(|p| p.gpu_uuid == g.uuid || g.mig.iter().any(|m| m.uuid == p.gpu_uuid));
        for p in on_gpu {
            let who = match &p.container {
                Some(c) => format!("{} [{}]", p.user.as_deref().unwrap_or("?"), c),
                None => p.user.as_deref().unwrap_or("?").to_string(),
            };
            let line = format!(
                "    {:<10} {:>8} {:>10} {} {}{}",
                display_safe(&who),
                p.pid,
                opt(p.used_memory_mib, " MiB"),
                display_safe(p.command.as_deref().unwrap_or("?")),
                p.running_secs
                    .map(|t| format!("({}) ", duration(t)))
                    .unwrap_or_default(),
                if p.own { "(you)" } else { "" },
            );
            let _ = writeln!(s, "{}", line.trim_end());
        }
    }
    footer(&mut s);
    s
}

#[cfg(test)]
mod tests {
    use tunnelbook_core::gpu::{Gpu, GpuProcess, MigInstance};

    use super::*;

    fn snapshot() -> GpuSnapshot {
        let gpu = |index: u32, uuid: &str, used: u64| Gpu {
            index,
            uuid: uuid.into(),
            name: Some("NVIDIA H100 80GB HBM3".into()),
            memory_total_mib: Some(81559),
            memory_used_mib: Some(used),
            memory_free_mib: Some(81559 - used),
            utilization_gpu: Some(if used > 100 { 100 } else { 0 }),
            utilization_memory: Some(10),
            temperature_c: Some(68),
            power_draw_w: Some(682.7),
            power_limit_w: Some(700.0),
            mig_enabled: Some(false),
            pci_bus_id: None,
            compute_mode: Some("Default".into()),
            mig: vec![],
            problem: None,
        };
        let mut mig = gpu(2, "GPU-c", 10);
        mig.mig_enabled = Some(true);
        mig.utilization_gpu = None;
        mig.mig = vec![MigInstance {
            uuid: "MIG-1".into(),
            profile: Some("3g.40gb".into()),
            device_index: Some(0),
        }];
        GpuSnapshot {
            host: "gpubox".into(),
            gpus: vec![gpu(0, "GPU-a", 40778), gpu(1, "GPU-b", 0), mig],
            processes: vec![GpuProcess {
                gpu_uuid: "GPU-a".into(),
                pid: 433,
                user: Some("root".into()),
                command: Some("python3".into()),
                used_memory_mib: Some(6946),
                running_secs: Some(3725),
                own: false,
                container: None,
            }],
            no_gpu_reason: None,
            current_user: Some("alice".into()),
            ..GpuSnapshot::default()
        }
    }

    #[test]
    fn table_shows_gpus_processes_and_free_marks() {
        let snap = snapshot();
        let table = render_table(&snap, &snap.rank_free(false));
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "gpubox (as alice)");
        assert!(lines[1].starts_with("[0] NVIDIA H100 80GB HBM3 | [##########..........]  40778 /  81559 MiB | 100% |  68°C | 683 / 700 W | busy"), "{table}");
        assert_eq!(lines[2], "    -> in use by root (python3)");
        assert!(
            lines[3].contains("root") && lines[3].contains("433") && lines[3].contains("6946 MiB")
        );
        assert!(lines[3].ends_with("python3 (1h02m)"), "{table}");
        assert!(
            lines[4].starts_with("[1] ") && lines[4].ends_with("| free *"),
            "{table}"
        );
        assert!(
            lines[4].contains("[....................]      0 /  81559 MiB |   0% |"),
            "{table}"
        );
        assert_eq!(
            lines[5],
            "    -> free: 0 % utilization, 79.6 GiB of 79.6 GiB free, no processes"
        );
        assert!(
            lines[6].starts_with("[2] ")
                && lines[6].contains("|    - |")
                && lines[6].ends_with("| MIG")
        );
        assert_eq!(lines[7], "    MIG 3g.40gb    #0 MIG-1  free");
        assert_eq!(
            lines[8],
            "        -> free: no process on this MIG instance, 40.0 GiB of 40.0 GiB free"
        );
        assert_eq!(lines.len(), 9, "{table}");
    }

    #[test]
    fn unreadable_gpus_problems_and_hostile_text_are_shown_safely() {
        let mut snap = snapshot();
        snap.processes[0].command = Some("py\u{1b}[2Jthon\u{1b}]0;owned\u{7}".into());
        snap.processes[0].container = Some("docker 4f9a1c2b3d4e".into());
        snap.gpus[1].problem = Some("nvidia-smi cannot read it (memory.used is \"ERR!\")".into());
        snap.unreadable = vec![tunnelbook_core::gpu::UnreadableGpu {
            index: None,
            pci_bus_id: Some("0000:0B:00.0".into()),
            message: "Unable to determine the device handle for GPU 0000:0B:00.0: Unknown Error"
                .into(),
        }];
        snap.warnings = vec!["nvidia-smi also said: \u{1b}[31mhi".into()];
        let table = render_table(&snap, &snap.rank_free(false));
        assert!(
            !table.contains('\u{1b}') && !table.contains('\u{7}'),
            "{table:?}"
        );
        assert!(table.contains("root [docker 4f9a1c2b3d4e]"), "{table}");
        assert!(table.contains(" python (1h02m)"), "{table}");
        let gpu1 = table
            .lines()
            .find(|l| l.starts_with("[1] "))
            .unwrap_or_default();
        assert!(gpu1.ends_with("| unusable"), "{table}");
        assert!(table.contains("    -> nvidia-smi cannot read it (memory.used is \"ERR!\")"));
        assert!(table.ends_with(
            "[0000:0B:00.0] unreadable: Unable to determine the device handle for GPU 0000:0B:00.0: Unknown Error\n\
             warning: nvidia-smi also said: hi\n"
        ), "{table}");
    }

    #[test]
    fn empty_host_shows_the_reason() {
        let snap = GpuSnapshot::without_gpus(
            "box",
            "no NVIDIA GPU found on box (nvidia-smi is not installed)".into(),
            None,
        );
        assert_eq!(
            render_table(&snap, &[]),
            "box (as ?)\n  no NVIDIA GPU found on box (nvidia-smi is not installed)\n"
        );
    }

    #[test]
    fn unknown_values_render_as_dashes() {
        let mut snap = snapshot();
        let g = &mut snap.gpus[0];
        (g.memory_used_mib, g.temperature_c, g.power_draw_w, g.name) = (None, None, None, None);
        let table = render_table(&snap, &snap.rank_free(false));
        assert!(table.contains("[-] ") || table.contains("[0] -"), "{table}");
        assert!(
            table.contains("[????????????????????]      - /  81559 MiB"),
            "{table}"
        );
        assert!(table.contains("- / 700 W"), "{table}");
    }

    #[test]
    fn a_failed_refresh_shows_the_last_table_marked_stale() {
        let snap = snapshot();
        let table = render_table(&snap, &snap.rank_free(false));
        let err = tunnelbook_core::gpu::GpuError::TimedOut {
            host: "gpubox".into(),
            secs: 20,
        };
        let frame = stale_frame(&err.to_string(), 75, &table);
        assert!(
            frame.starts_with(
                "STALE (last read 1m15s ago): nvidia-smi on gpubox did not answer within 20 s"
            ),
            "{frame}"
        );
        assert!(frame.ends_with(&table));
    }

    #[test]
    fn durations_and_bars() {
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(61), "1m01s");
        assert_eq!(duration(86400 + 7200), "1d02h");
        assert_eq!(bar(Some(5), Some(10)), "[##########..........]");
        assert_eq!(bar(Some(50), Some(10)), "[####################]");
        assert_eq!(bar(None, Some(10)), "[????????????????????]");
    }
}
