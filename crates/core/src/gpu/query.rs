//! The remote query: one shell command that prints every answer in marked sections, and the
//! parser that turns those sections into a [`GpuSnapshot`].
//!
//! The parser is total: any input (garbage, truncated output, `[N/A]`, units or no units, extra
//! or missing columns) gives a snapshot or a [`GpuError`], never a panic. nvidia-smi's man page
//! says its output "is not guaranteed to be backwards compatible", so every field is read on its
//! own and a line that cannot be read is skipped rather than failing the whole snapshot.

use std::collections::HashMap;

use super::{Gpu, GpuError, GpuProcess, GpuSnapshot, MigInstance, excerpt};

/// Marks the start of a section in the script's output: `@@tunnelbook-gpu NAME [ARG]@@`.
const MARK: &str = "@@tunnelbook-gpu ";

/// The POSIX sh script (one line, no single quotes, so it survives being quoted for any login
/// shell, csh and fish included). Each nvidia-smi answer goes in its own section, followed by its
/// exit status; `ps` runs only for the pids nvidia-smi reported.
macro_rules! script {
    () => {
        "PATH=\"$PATH:/usr/local/nvidia/bin:/usr/lib/wsl/lib\"; \
         echo \"@@tunnelbook-gpu user@@\"; id -un 2>/dev/null; \
         if ! command -v nvidia-smi >/dev/null 2>&1; then echo \"@@tunnelbook-gpu no-nvidia-smi@@\"; exit 0; fi; \
         echo \"@@tunnelbook-gpu gpus@@\"; \
         nvidia-smi --query-gpu=index,uuid,name,memory.total,memory.used,memory.free,utilization.gpu,utilization.memory,temperature.gpu,power.draw,power.limit,mig.mode.current,pci.bus_id,compute_mode --format=csv,noheader,nounits 2>&1; \
         echo \"@@tunnelbook-gpu gpus-rc $?@@\"; \
         apps=$(nvidia-smi --query-compute-apps=gpu_uuid,pid,process_name,used_memory --format=csv,noheader,nounits 2>&1); rc=$?; \
         echo \"@@tunnelbook-gpu apps@@\"; echo \"$apps\"; echo \"@@tunnelbook-gpu apps-rc $rc@@\"; \
         echo \"@@tunnelbook-gpu list@@\"; nvidia-smi -L 2>&1; echo \"@@tunnelbook-gpu list-rc $?@@\"; \
         pids=$(echo \"$apps\" | cut -d, -f2 | tr -d \" \" | grep -E \"^[0-9]+$\" | paste -sd, -); \
         echo \"@@tunnelbook-gpu ps@@\"; \
         if [ -n \"$pids\" ]; then \
         if ps -o user:64= -p $$ >/dev/null 2>&1; then ps -o user:64=,pid=,etimes=,comm= -p \"$pids\" 2>/dev/null; \
         else ps -o user=,pid=,etimes=,comm= -p \"$pids\" 2>/dev/null; fi; fi; \
         echo \"@@tunnelbook-gpu end@@\"; exit 0"
    };
}

/// The command [`super::snapshot`] runs on the remote host (through the login shell, so PATH is
/// the user's). Public so tests and `scripts/gpu-check.sh` run exactly the same thing.
pub const REMOTE_SCRIPT: &str = concat!("sh -c '", script!(), "'");

/// nvidia-smi's lines that mean the driver itself is broken.
const DRIVER_FAILURES: [&str; 5] = [
    "Failed to initialize NVML",
    "NVIDIA-SMI has failed",
    "couldn't communicate with the NVIDIA driver",
    "Driver/library version mismatch",
    "Unable to determine the device handle",
];

/// Parses the output of [`REMOTE_SCRIPT`] run on `host`.
///
/// Lines before the first marker (a chatty `.profile`) are ignored. A host without nvidia-smi,
/// or where nvidia-smi finds no device, gives a snapshot with `no_gpu_reason`; a broken driver
/// gives [`GpuError::Driver`] with nvidia-smi's own line.
pub fn parse_report(host: &str, text: &str) -> Result<GpuSnapshot, GpuError> {
    let report = Sections::split(text);
    if report.sections.is_empty() {
        return Err(unreadable(
            host,
            "it has none of the expected section markers",
            text,
        ));
    }
    let current_user = report
        .lines("user")
        .iter()
        .map(|l| l.trim())
        .find(|l| !l.is_empty() && !l.contains(char::is_whitespace))
        .map(str::to_string);
    if report.sections.contains_key("no-nvidia-smi") {
        return Ok(GpuSnapshot::without_gpus(
            host,
            format!("no NVIDIA GPU found on {host} (nvidia-smi is not installed)"),
            current_user,
        ));
    }
    for section in ["gpus", "apps", "list"] {
        if let Some(line) = report.lines(section).iter().find(|l| is_driver_failure(l)) {
            return Err(GpuError::Driver {
                host: host.to_string(),
                message: line.trim().to_string(),
            });
        }
    }
    let Some(gpu_lines) = report.sections.get("gpus") else {
        return Err(unreadable(host, "it stops before the GPU list", text));
    };
    let mut gpus: Vec<Gpu> = gpu_lines.iter().filter_map(|l| parse_gpu_line(l)).collect();
    if gpus.is_empty() {
        let all = gpu_lines.join("\n");
        let rc = report.status("gpus-rc");
        if all.contains("No devices were found") || (rc == Some(0) && all.trim().is_empty()) {
            return Ok(GpuSnapshot::without_gpus(
                host,
                format!("no NVIDIA GPU found on {host} (nvidia-smi found no devices)"),
                current_user,
            ));
        }
        if rc == Some(127) || all.contains("command not found") {
            return Ok(GpuSnapshot::without_gpus(
                host,
                format!("no NVIDIA GPU found on {host} (nvidia-smi is not installed)"),
                current_user,
            ));
        }
        let detail = match rc {
            Some(rc) if rc != 0 => format!("nvidia-smi exited with {rc}"),
            _ => "no GPU line could be read".to_string(),
        };
        return Err(unreadable(host, &detail, &all));
    }
    attach_mig(&mut gpus, report.lines("list"));
    let users = parse_ps(report.lines("ps"));
    let processes = report
        .lines("apps")
        .iter()
        .filter_map(|l| parse_app_line(l))
        .map(|mut p| {
            if let Some(row) = users.get(&p.pid) {
                p.user = row.user.clone();
                p.running_secs = row.running_secs;
                if p.command.is_none() {
                    p.command = row.command.clone();
                }
            }
            p.own = p.user.is_some() && p.user == current_user;
            p
        })
        .collect();
    Ok(GpuSnapshot {
        host: host.to_string(),
        gpus,
        processes,
        no_gpu_reason: None,
        current_user,
    })
}

fn unreadable(host: &str, what: &str, output: &str) -> GpuError {
    GpuError::Unreadable {
        host: host.to_string(),
        detail: format!("{what}; the output was: {}", excerpt(output)),
    }
}

fn is_driver_failure(line: &str) -> bool {
    DRIVER_FAILURES.iter().any(|p| line.contains(p))
}

/// The script's output cut at its markers.
#[derive(Default)]
struct Sections<'a> {
    sections: HashMap<&'a str, Vec<&'a str>>,
}

impl<'a> Sections<'a> {
    fn split(text: &'a str) -> Self {
        let mut out = Self::default();
        let mut current: Option<&'a str> = None;
        for line in text.lines() {
            let trimmed = line.trim();
            if let Some(name) = trimmed
                .strip_prefix(MARK)
                .and_then(|r| r.strip_suffix("@@"))
            {
                // `gpus-rc 0`: a one-line section whose content is the status.
                let mut words = name.split_whitespace();
                let Some(key) = words.next() else { continue };
                let entry = out.sections.entry(key).or_default();
                entry.extend(words);
                current = Some(key);
            } else if let Some(key) = current {
                out.sections.entry(key).or_default().push(line);
            }
        }
        out
    }

    fn lines(&self, name: &str) -> &[&'a str] {
        self.sections
            .get(name)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    fn status(&self, name: &str) -> Option<i32> {
        self.lines(name).first().and_then(|s| s.trim().parse().ok())
    }
}

/// A field's value, or `None` for empty, `N/A` and every bracketed answer (`[N/A]`,
/// `[Not Supported]`, `[Insufficient Permissions]`, …).
fn value(raw: &str) -> Option<&str> {
    let v = raw.trim();
    if v.is_empty() || v.starts_with('[') || v.eq_ignore_ascii_case("N/A") {
        None
    } else {
        Some(v)
    }
}

/// A non-negative number, with or without its unit (`81559 MiB`, `682.70 W`, `100 %`).
fn number(raw: &str) -> Option<f64> {
    let token = value(raw)?.split_whitespace().next()?;
    let n: f64 = token.parse().ok()?;
    (n.is_finite() && n >= 0.0).then_some(n)
}

fn whole_u64(raw: &str) -> Option<u64> {
    number(raw)
        .filter(|n| *n <= u64::MAX as f64)
        .map(|n| n.round() as u64)
}

fn whole_u32(raw: &str) -> Option<u32> {
    number(raw)
        .filter(|n| *n <= f64::from(u32::MAX))
        .map(|n| n.round() as u32)
}

/// One line of `--query-gpu`. Lines whose first two columns are not an index and a UUID (a
/// header, an error message, garbage) are skipped; extra columns are ignored.
fn parse_gpu_line(line: &str) -> Option<Gpu> {
    let f: Vec<&str> = line.split(',').collect();
    let field = |i: usize| f.get(i).copied().unwrap_or("");
    let index: u32 = field(0).trim().parse().ok()?;
    let uuid = value(field(1))?;
    if uuid.contains(char::is_whitespace) {
        return None;
    }
    Some(Gpu {
        index,
        uuid: uuid.to_string(),
        name: value(field(2)).map(str::to_string),
        memory_total_mib: whole_u64(field(3)),
        memory_used_mib: whole_u64(field(4)),
        memory_free_mib: whole_u64(field(5)),
        utilization_gpu: whole_u32(field(6)),
        utilization_memory: whole_u32(field(7)),
        temperature_c: whole_u32(field(8)),
        power_draw_w: number(field(9)),
        power_limit_w: number(field(10)),
        mig_enabled: value(field(11)).and_then(|v| match v.to_ascii_lowercase().as_str() {
            "enabled" => Some(true),
            "disabled" => Some(false),
            _ => None,
        }),
        pci_bus_id: value(field(12)).map(str::to_string),
        compute_mode: value(field(13)).map(str::to_string),
        mig: Vec::new(),
    })
}

/// One line of `--query-compute-apps=gpu_uuid,pid,process_name,used_memory`. A process name
/// may itself contain commas, so the name is everything between the pid and the last column.
fn parse_app_line(line: &str) -> Option<GpuProcess> {
    let f: Vec<&str> = line.split(',').collect();
    let uuid = value(f.first()?)?;
    if uuid.contains(char::is_whitespace) {
        return None;
    }
    let pid: u32 = f.get(1)?.trim().parse().ok()?;
    let (command, memory) = match f.len() {
        0..=2 => (None, None),
        3 => (value(f[2]).map(str::to_string), None),
        n => {
            let name = f[2..n - 1].join(",");
            (value(&name).map(str::to_string), whole_u64(f[n - 1]))
        }
    };
    Some(GpuProcess {
        gpu_uuid: uuid.to_string(),
        pid,
        command,
        used_memory_mib: memory,
        ..GpuProcess::default()
    })
}

/// What `ps -o user=,pid=,etimes=,comm=` says about one pid.
#[derive(Debug, Default, PartialEq)]
struct PsRow {
    user: Option<String>,
    running_secs: Option<u64>,
    command: Option<String>,
}

fn parse_ps(lines: &[&str]) -> HashMap<u32, PsRow> {
    let mut rows = HashMap::new();
    for line in lines {
        let mut words = line.split_whitespace();
        let (Some(user), Some(pid)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        let running_secs = words.next().and_then(|s| s.parse().ok());
        let command = words.collect::<Vec<_>>().join(" ");
        rows.insert(
            pid,
            PsRow {
                user: Some(user.to_string()),
                running_secs,
                command: (!command.is_empty()).then_some(command),
            },
        );
    }
    rows
}

/// The UUID in `… (UUID: GPU-…)`.
fn uuid_in(line: &str) -> Option<&str> {
    let start = line.find("UUID:")? + "UUID:".len();
    let rest = line[start..].trim_start();
    let end = rest.find(')').unwrap_or(rest.len());
    let uuid = rest[..end].trim();
    (!uuid.is_empty()).then_some(uuid)
}

/// Reads `nvidia-smi -L`: `GPU i: NAME (UUID: GPU-…)` lines, each followed by its indented
/// `MIG 3g.40gb Device 0: (UUID: MIG-…)` lines, and attaches the instances to their GPU.
fn attach_mig(gpus: &mut [Gpu], list: &[&str]) {
    let mut parent: Option<usize> = None;
    for line in list {
        let t = line.trim();
        if t.starts_with("GPU ") {
            parent = uuid_in(t).and_then(|u| gpus.iter().position(|g| g.uuid == u));
        } else if t.starts_with("MIG ") {
            let (Some(gpu), Some(uuid)) = (parent, uuid_in(t)) else {
                continue;
            };
            let words: Vec<&str> = t.split_whitespace().collect();
            let profile = words
                .get(1)
                .filter(|p| **p != "Device")
                .map(|p| p.to_string());
            let device_index = words
                .iter()
                .position(|w| *w == "Device")
                .and_then(|i| words.get(i + 1))
                .and_then(|w| w.trim_end_matches(':').parse().ok());
            if let Some(g) = gpus.get_mut(gpu) {
                g.mig.push(MigInstance {
                    uuid: uuid.to_string(),
                    profile,
                    device_index,
                });
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A fixture file under `crates/core/tests/fixtures/nvidia-smi/`.
    pub(crate) fn fixture(path: &str) -> String {
        let full = format!(
            "{}/tests/fixtures/nvidia-smi/{path}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
    }

    /// Builds what [`REMOTE_SCRIPT`] prints from its parts.
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
        assert!(body.contains("--query-gpu=index,uuid,name,memory.total,memory.used,memory.free,utilization.gpu,utilization.memory,temperature.gpu,power.draw,power.limit,mig.mode.current,pci.bus_id,compute_mode --format=csv,noheader,nounits"));
        assert!(REMOTE_SCRIPT.starts_with("sh -c '") && REMOTE_SCRIPT.ends_with('\''));
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

    /// The real captures, cut and spliced at arbitrary byte offsets (char boundaries).
    fn mutated_capture() -> impl Strategy<Value = String> {
        let base = report(
            "root",
            &fixture("h100-two-users/query-gpu.csv"),
            &fixture("h100-two-users/apps.csv"),
            &fixture("a100-mig-4x/list.txt"),
            &fixture("h100-two-users/ps.txt"),
        );
        let len = base.chars().count();
        (0..=len, 0..=len, any::<String>(), 0..=len).prop_map(move |(a, b, insert, c)| {
            let chars: Vec<char> = base.chars().collect();
            let (lo, hi) = (a.min(b), a.max(b));
            let mut out: String = chars[..lo].iter().collect();
            out.push_str(&insert);
            out.extend(&chars[hi..]);
            let c = c.min(out.chars().count());
            let mut dup: String = out.chars().take(c).collect();
            dup.push_str(&out);
            dup
        })
    }

    fn check_total(text: &str) {
        // Must return, never panic; whatever it returns can be ranked and serialized.
        if let Ok(snap) = parse_report("fuzz", text) {
            assert_eq!(snap.host, "fuzz");
            assert!(snap.gpus.is_empty() || snap.no_gpu_reason.is_none());
            let _ = snap.rank_free(true);
            let _ = snap.rank_free(false);
            assert!(serde_json::to_string(&snap).is_ok());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn parser_never_panics_quick(text in prop_oneof![noisy_report(), mutated_capture(), any::<String>()]) {
            check_total(&text);
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
                cases: 2_000,
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
            rounds += 1;
        }
        println!(
            "fuzzed the GPU parser with {} inputs in {secs} s",
            rounds * 2_000
        );
    }
}
