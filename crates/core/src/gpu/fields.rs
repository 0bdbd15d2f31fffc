//! Reading nvidia-smi's fields and lines: values with or without units, the answers it writes
//! in place of a value (`[N/A]`, `ERR!`, `[GPU is lost]`), the GPU list, the compute-apps list,
//! `ps` and cgroup lines, and MIG devices. Every reader is total: a line it cannot read gives
//! `None` or [`GpuLine::Other`], never a panic.

use std::collections::HashMap;

use super::{Gpu, GpuProcess, MigInstance, UnreadableGpu, display_safe};

/// nvidia-smi's lines that mean the driver itself is broken (only believed in the GPU list's
/// answer, and only when no GPU could be read at all).
const DRIVER_FAILURES: [&str; 4] = [
    "Failed to initialize NVML",
    "NVIDIA-SMI has failed",
    "couldn't communicate with the NVIDIA driver",
    "Driver/library version mismatch",
];

/// What nvidia-smi puts in a field it failed to read (as opposed to `[N/A]`, a field the card
/// does not have).
const FIELD_FAILURES: [&str; 4] = ["ERR!", "Unknown Error", "GPU is lost", "requires reset"];

/// A field's value, or `None` for empty, `N/A` and every bracketed answer (`[N/A]`,
/// `[Not Supported]`, `[Insufficient Permissions]`, …).
pub(super) fn value(raw: &str) -> Option<&str> {
    let v = raw.trim();
    if v.is_empty() || v.starts_with('[') || v.eq_ignore_ascii_case("N/A") || failure(v).is_some() {
        None
    } else {
        Some(v)
    }
}

/// The failure nvidia-smi wrote in place of a value (`ERR!`, `[Unknown Error]`, `[GPU is lost]`).
pub(super) fn failure(raw: &str) -> Option<&str> {
    let v = raw.trim();
    let lower = v.to_ascii_lowercase();
    FIELD_FAILURES
        .iter()
        .any(|f| lower.contains(&f.to_ascii_lowercase()))
        .then_some(v)
}

/// A non-negative number, with or without its unit (`81559 MiB`, `682.70 W`, `100 %`).
pub(super) fn number(raw: &str) -> Option<f64> {
    let token = value(raw)?.split_whitespace().next()?;
    let n: f64 = token.parse().ok()?;
    (n.is_finite() && n >= 0.0).then_some(n)
}

pub(super) fn whole_u64(raw: &str) -> Option<u64> {
    number(raw)
        .filter(|n| *n <= u64::MAX as f64)
        .map(|n| n.round() as u64)
}

pub(super) fn whole_u32(raw: &str) -> Option<u32> {
    number(raw)
        .filter(|n| *n <= f64::from(u32::MAX))
        .map(|n| n.round() as u32)
}

/// What one line of the GPU list is.
pub(super) enum GpuLine {
    Gpu(Box<Gpu>),
    Unreadable(UnreadableGpu),
    Driver,
    Other,
}

/// Reads one (display-safe) line of `--query-gpu` asked with `fields`. A row whose index reads
/// but whose UUID does not is an unreadable GPU; `Unable to determine the device handle for GPU
/// BUS: …` and `GPU is lost` lines are unreadable GPUs; driver failure lines and anything else
/// (a header, a newer driver's notice) are told apart for the caller.
pub(super) fn classify_gpu_line(line: &str, fields: &[&str]) -> GpuLine {
    let lower = line.to_ascii_lowercase();
    if lower.contains("unable to determine the device handle") || lower.starts_with("gpu is lost") {
        return GpuLine::Unreadable(UnreadableGpu {
            index: None,
            pci_bus_id: bus_id_in(line),
            message: line.to_string(),
        });
    }
    if DRIVER_FAILURES.iter().any(|f| line.contains(f)) {
        return GpuLine::Driver;
    }
    let f: Vec<&str> = line.split(',').collect();
    let col = |name: &str| {
        fields
            .iter()
            .position(|n| *n == name)
            .and_then(|i| f.get(i).copied())
            .unwrap_or("")
    };
    let pci_bus_id = value(col("pci.bus_id")).map(str::to_string);
    let uuid = col("uuid").trim();
    let uuid_ok = uuid.len() > 4
        && uuid.is_char_boundary(4)
        && uuid[..4].eq_ignore_ascii_case("GPU-")
        && !uuid.contains(char::is_whitespace);
    let Ok(index) = col("index").trim().parse::<u32>() else {
        // A GPU row whose index nvidia-smi could not read.
        return if uuid_ok {
            GpuLine::Unreadable(UnreadableGpu {
                index: None,
                pci_bus_id,
                message: format!("nvidia-smi cannot read the index of {uuid}: {line}"),
            })
        } else {
            GpuLine::Other
        };
    };
    if !uuid_ok {
        return GpuLine::Unreadable(UnreadableGpu {
            index: Some(index),
            pci_bus_id,
            message: format!("nvidia-smi cannot read GPU {index}: {line}"),
        });
    }
    let failures: Vec<String> = fields
        .iter()
        .zip(&f)
        .filter_map(|(name, raw)| failure(raw).map(|v| format!("{name} is \"{v}\"")))
        .collect();
    GpuLine::Gpu(Box::new(Gpu {
        index,
        uuid: uuid.to_string(),
        name: value(col("name")).map(str::to_string),
        memory_total_mib: whole_u64(col("memory.total")),
        memory_used_mib: whole_u64(col("memory.used")),
        memory_free_mib: whole_u64(col("memory.free")),
        utilization_gpu: whole_u32(col("utilization.gpu")),
        utilization_memory: whole_u32(col("utilization.memory")),
        temperature_c: whole_u32(col("temperature.gpu")),
        power_draw_w: number(col("power.draw")),
        power_limit_w: number(col("power.limit")),
        mig_enabled: value(col("mig.mode.current")).and_then(|v| {
            match v.to_ascii_lowercase().as_str() {
                "enabled" => Some(true),
                "disabled" => Some(false),
                _ => None,
            }
        }),
        pci_bus_id,
        compute_mode: value(col("compute_mode")).map(str::to_string),
        mig: Vec::new(),
        problem: (!failures.is_empty())
            .then(|| format!("nvidia-smi cannot read it ({})", failures.join(", "))),
    }))
}

/// The PCI bus id in `… for GPU 0000:0B:00.0: Unknown Error` (also `GPU0000:0B:00.0`).
pub(super) fn bus_id_in(line: &str) -> Option<String> {
    line.split(|c: char| c.is_whitespace() || c == ',')
        .map(|w| w.trim_start_matches("GPU").trim_end_matches([':', '.']))
        .find(|w| {
            let parts: Vec<&str> = w.split(':').collect();
            parts.len() >= 2
                && parts.last().is_some_and(|p| p.contains('.'))
                && w.chars()
                    .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        })
        .map(str::to_string)
}

/// One line of `--query-compute-apps=pid,gpu_uuid,used_memory`.
pub(super) fn parse_app_line(line: &str) -> Option<GpuProcess> {
    let f: Vec<&str> = line.split(',').collect();
    let pid: u32 = f.first()?.trim().parse().ok()?;
    let uuid = value(f.get(1)?)?;
    let upper = uuid.get(..4)?.to_ascii_uppercase();
    if !(upper == "GPU-" || upper == "MIG-") || uuid.contains(char::is_whitespace) {
        return None;
    }
    Some(GpuProcess {
        gpu_uuid: uuid.to_string(),
        pid,
        used_memory_mib: f.get(2).and_then(|m| whole_u64(m)),
        ..GpuProcess::default()
    })
}

/// An old report's `gpu_uuid, pid, process_name, used_memory` line as the two new ones
/// (`pid, gpu_uuid, used_memory` and `pid, process_name`); the name is everything between the
/// pid and the last column.
pub(super) fn legacy_app_line(line: &str) -> Option<(String, String)> {
    let f: Vec<&str> = line.split(',').collect();
    let uuid = f.first()?.trim();
    let pid = f.get(1)?.trim();
    pid.parse::<u32>().ok()?;
    let (name, memory) = match f.len() {
        0..=2 => (String::new(), ""),
        3 => (f[2].to_string(), ""),
        n => (f[2..n - 1].join(","), f[n - 1]),
    };
    Some((format!("{pid}, {uuid}, {memory}"), format!("{pid},{name}")))
}

/// What `ps -o user=,pid=,etimes=,comm=` says about one pid.
#[derive(Debug, Default, PartialEq)]
pub(super) struct PsRow {
    pub(super) user: Option<String>,
    pub(super) running_secs: Option<u64>,
    pub(super) command: Option<String>,
}

pub(super) fn parse_ps(lines: &[&str]) -> HashMap<u32, PsRow> {
    let mut rows = HashMap::new();
    for line in lines {
        let line = display_safe(line);
        let mut words = line.split_whitespace();
        let (Some(user), Some(pid)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        let running_secs = words.next().and_then(|s| s.parse().ok());
        let command = words.collect::<Vec<_>>().join(" ");
        rows.entry(pid).or_insert(PsRow {
            user: Some(user.to_string()),
            running_secs,
            command: (!command.is_empty()).then_some(command),
        });
    }
    rows
}

/// `PID CGROUP-LINES…` rows: the container each pid runs in, when its cgroup path names one.
pub(super) fn parse_cgroups(lines: &[&str]) -> HashMap<u32, String> {
    let mut out = HashMap::new();
    for line in lines {
        let Some((pid, rest)) = line.trim().split_once(' ') else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if let Some(name) = super::container::from_cgroup(rest) {
            out.entry(pid).or_insert(name);
        }
    }
    out
}

/// The UUID in `… (UUID: GPU-…)`.
pub(super) fn uuid_in(line: &str) -> Option<&str> {
    let start = line.find("UUID:")? + "UUID:".len();
    let rest = line[start..].trim_start();
    let end = rest.find(')').unwrap_or(rest.len());
    let uuid = rest[..end].trim();
    (!uuid.is_empty()).then_some(uuid)
}

/// For drivers that cannot be asked `mig.mode.current`: a GPU with `MIG` lines under it in
/// `nvidia-smi -L` is in MIG mode.
pub(super) fn mig_mode_from_list(gpus: &mut [Gpu], list: &[&str]) {
    let mut parent: Option<usize> = None;
    for line in list {
        let t = line.trim();
        if t.starts_with("GPU ") {
            parent = uuid_in(t).and_then(|u| gpus.iter().position(|g| g.uuid == u));
        } else if t.starts_with("MIG ")
            && let Some(g) = parent.and_then(|i| gpus.get_mut(i))
        {
            g.mig_enabled = Some(true);
        }
    }
}

/// Reads `nvidia-smi -L`: `GPU i: NAME (UUID: GPU-…)` lines, each followed by its indented
/// `MIG 3g.40gb Device 0: (UUID: MIG-…)` lines, and attaches the instances to their GPU.
pub(super) fn attach_mig(gpus: &mut [Gpu], list: &[&str]) {
    let mut parent: Option<usize> = None;
    for line in list {
        let line = display_safe(line);
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
            if let Some(g) = gpus.get_mut(gpu)
                && !g.mig.iter().any(|m| m.uuid == uuid)
            {
                g.mig.push(MigInstance {
                    uuid: uuid.to_string(),
                    profile,
                    device_index,
                });
            }
        }
    }
}
