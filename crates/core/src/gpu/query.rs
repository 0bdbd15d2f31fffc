//! The remote query: one shell command that prints every answer in marked sections, and the
//! parser that turns those sections into a [`GpuSnapshot`] (its field and line readers are in
//! `gpu/fields.rs`).
//!
//! The parser is total: any input (garbage, truncated output, `[N/A]`, units or no units, extra
//! or missing columns) gives a snapshot or a [`GpuError`], never a panic. nvidia-smi's man page
//! says its output "is not guaranteed to be backwards compatible", so every field is read on its
//! own and a line that cannot be read is skipped rather than failing the whole snapshot.
//!
//! Remote text is hostile on a shared machine: any user names their processes as they like. So
//! the section marker carries a random token sent on stdin (not on the command line, where `ps`
//! would show it), the processes and their memory come from a query without names in it (names
//! are attached by pid afterwards), only the GPU list can say the driver is broken, every answer
//! is cut at [`SECTION_CAP_BYTES`] on the host and the whole report at [`REPORT_CAP_BYTES`]
//! here, and all text is made display-safe.

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
    time::Duration,
};

use super::{
    Gpu, GpuError, GpuProcess, GpuSnapshot, display_safe, excerpt,
    fields::{
        GpuLine, attach_mig, classify_gpu_line, legacy_app_line, mig_mode_from_list,
        parse_app_line, parse_cgroups, parse_ps, value,
    },
    text::cut,
};

/// The marker token of reports made without a random one (`scripts/gpu-check.sh`, captures).
const LEGACY_TOKEN: &str = "tunnelbook-gpu";

/// The `--query-gpu` fields asked of drivers that know them all, in column order.
const FULL_FIELDS: &str = "index,uuid,name,memory.total,memory.used,memory.free,utilization.gpu,utilization.memory,temperature.gpu,power.draw,power.limit,mig.mode.current,pci.bus_id,compute_mode";

/// The fields every driver since MIG-less times knows: [`FULL_FIELDS`] without the MIG one.
const BASE_FIELDS: &str = "index,uuid,name,memory.total,memory.used,memory.free,utilization.gpu,utilization.memory,temperature.gpu,power.draw,power.limit,pci.bus_id,compute_mode";

/// Most bytes of one nvidia-smi (or `ps`) answer the remote script passes on; the rest is cut
/// there and the snapshot says so in its warnings.
pub const SECTION_CAP_BYTES: usize = 256 * 1024;

/// Most bytes of a report that are parsed: more than the script can print (five answers of at
/// most [`SECTION_CAP_BYTES`], up to 512 cgroup lines of 256 bytes, the markers).
pub const REPORT_CAP_BYTES: usize = 6 * SECTION_CAP_BYTES + 64 * 1024;

/// How long the whole query may take, end to end, before [`GpuError::TimedOut`]. Each
/// nvidia-smi call on the host is also stopped after [`REMOTE_TIMEOUT_SECS`] where `timeout -k`
/// exists.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(20);

/// The time limit of each nvidia-smi call on the host, seconds.
const REMOTE_TIMEOUT_SECS: u32 = 8;

/// The POSIX sh script (one line, no single quotes, so it survives being quoted for any login
/// shell, csh and fish included). It reads two lines on stdin: the marker token and the
/// `--query-gpu` fields (empty: all of them). Each answer goes in its own section, followed by
/// `NAME-rc STATUS LENGTH`; a driver that rejects a field is asked again with [`BASE_FIELDS`]
/// and the `rejected` section says so; `ps` runs only for the pids nvidia-smi reported.
macro_rules! script {
    () => {
        "IFS= read -r t; IFS= read -r f; m=\"@@$t\"; [ -n \"$f\" ] || f=index,uuid,name,memory.total,memory.used,memory.free,utilization.gpu,utilization.memory,temperature.gpu,power.draw,power.limit,mig.mode.current,pci.bus_id,compute_mode; \
         PATH=\"$PATH:/usr/local/nvidia/bin:/usr/lib/wsl/lib\"; \
         s() { printf \"%s %s@@\\n\" \"$m\" \"$*\"; }; \
         c() { printf \"%s\\n\" \"$o\" | head -c 262144; echo; s \"$1-rc\" \"$rc\" \"${#o}\"; if [ \"$rc\" = 124 ]; then w=\"timeout -k 1 1\"; fi; }; \
         r() { o=$( { $w nvidia-smi \"$@\" 2>&1; echo \"@@rc $?\"; } | head -c 262400); case \"$o\" in *\"@@rc \"*) rc=${o##*@@rc }; o=$(printf \"%s\" \"${o%@@rc *}\");; *) rc=125;; esac; case \"$rc\" in \"\"|*[!0-9]*) rc=125;; esac; }; \
         s user; id -un 2>/dev/null; \
         if ! command -v nvidia-smi >/dev/null 2>&1; then s no-nvidia-smi; exit 0; fi; \
         w=; if timeout -k 1 5 true >/dev/null 2>&1; then w=\"timeout -k 2 8\"; fi; \
         r --query-gpu=\"$f\" --format=csv,noheader,nounits; \
         case \"$rc:$o\" in 0:*) ;; *\"is not a valid field\"*) s rejected \"$f\"; f=index,uuid,name,memory.total,memory.used,memory.free,utilization.gpu,utilization.memory,temperature.gpu,power.draw,power.limit,pci.bus_id,compute_mode; r --query-gpu=\"$f\" --format=csv,noheader,nounits;; esac; \
         s gpus \"$f\"; c gpus; \
         r --query-compute-apps=pid,gpu_uuid,used_memory --format=csv,noheader,nounits; a=$o; s apps; c apps; \
         r --query-compute-apps=pid,process_name --format=csv,noheader,nounits; s names; c names; \
         r -L; s list; c list; \
         p=$(printf \"%s\\n\" \"$a\" | cut -d, -f1 | tr -d \" \" | grep -E \"^[0-9]+$\" | sort -un | head -n 512 | paste -sd, -); \
         o=; rc=0; \
         if [ -n \"$p\" ]; then \
         s cgroups; for x in $(printf \"%s\\n\" \"$p\" | tr , \" \"); do printf \"%s \" \"$x\"; head -c 256 /proc/$x/cgroup 2>/dev/null | tr \"\\n\" \" \"; echo; done; \
         if ps -o user:64= -p $$ >/dev/null 2>&1; then o=$(ps -o user:64=,pid=,etimes=,comm= -p \"$p\" 2>/dev/null); \
         else o=$(ps -o user=,pid=,etimes=,comm= -p \"$p\" 2>/dev/null); fi; fi; \
         s ps; c ps; \
         s end; exit 0"
    };
}

/// The command [`super::snapshot`] runs on the remote host (through the login shell, so PATH is
/// the user's), fed [`GpuQuery::stdin`]. Public so tests and `scripts/gpu-check.sh` run exactly
/// the same thing (`printf "tunnelbook-gpu\n\n" | sh -c "$REMOTE_SCRIPT"`).
pub const REMOTE_SCRIPT: &str = concat!("sh -c '", script!(), "'");

/// Hosts whose driver rejected [`FULL_FIELDS`]: asked with [`BASE_FIELDS`] from then on.
static OLD_DRIVERS: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// One run of [`REMOTE_SCRIPT`]: the random marker token and the fields to ask for, and the parser
/// for its answer.
#[derive(Debug, Clone)]
pub struct GpuQuery {
    token: String,
    fields: &'static str,
}

impl GpuQuery {
    /// A query for `host` with a fresh random token, asking for the fields its driver accepted
    /// last time (all of them the first time).
    pub fn for_host(host: &str) -> Self {
        let old = OLD_DRIVERS
            .lock()
            .ok()
            .and_then(|set| set.as_ref().map(|s| s.contains(host)))
            .unwrap_or(false);
        Self {
            token: format!("{LEGACY_TOKEN}-{:032x}", rand::random::<u128>()),
            fields: if old { BASE_FIELDS } else { FULL_FIELDS },
        }
    }

    /// A query with a known token (tests, saved captures).
    pub fn with_token(token: &str) -> Self {
        Self {
            token: display_safe(token).replace(char::is_whitespace, ""),
            fields: FULL_FIELDS,
        }
    }

    /// The command to run ([`REMOTE_SCRIPT`]).
    pub fn command(&self) -> &'static str {
        REMOTE_SCRIPT
    }

    /// What to write to the command's stdin: the token, then the fields.
    pub fn stdin(&self) -> String {
        format!("{}\n{}\n", self.token, self.fields)
    }

    /// Parses the answer to this query from `host`; remembers when its driver rejected fields.
    pub fn parse(&self, host: &str, text: &str) -> Result<GpuSnapshot, GpuError> {
        let parsed = parse_marked(host, text, &self.token);
        if let Ok((_, true)) = &parsed
            && let Ok(mut set) = OLD_DRIVERS.lock()
        {
            set.get_or_insert_with(HashSet::new)
                .insert(host.to_string());
        }
        parsed.map(|(snap, _)| snap)
    }
}

/// Parses a saved report of [`REMOTE_SCRIPT`] from `host`, finding its marker token from its
/// `user` section (for `--from-stdin` and captures; live queries use [`GpuQuery::parse`]).
///
/// Lines before the first marker (a chatty `.profile`) are ignored. A host without nvidia-smi,
/// or where nvidia-smi finds no device, gives a snapshot with `no_gpu_reason`; a broken driver
/// gives [`GpuError::Driver`] with nvidia-smi's own line; GPUs that cannot be read are listed in
/// [`GpuSnapshot::unreadable`] beside the healthy ones.
pub fn parse_report(host: &str, text: &str) -> Result<GpuSnapshot, GpuError> {
    let token = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("@@")?.strip_suffix(" user@@"))
        .find(|t| t.starts_with(LEGACY_TOKEN) && !t.contains(char::is_whitespace))
        .unwrap_or(LEGACY_TOKEN);
    parse_marked(host, text, token).map(|(snap, _)| snap)
}

/// The parser: the snapshot, and whether the driver rejected [`FULL_FIELDS`].
fn parse_marked(host: &str, text: &str, token: &str) -> Result<(GpuSnapshot, bool), GpuError> {
    let mut warnings = Vec::new();
    let capped = cut(text, REPORT_CAP_BYTES);
    if capped.len() < text.len() {
        warnings.push(format!(
            "the answer was {} bytes; only the first {REPORT_CAP_BYTES} were read",
            text.len()
        ));
    }
    let mark = format!("@@{token} ");
    let report = Sections::split(capped, &mark);
    if report.sections.is_empty() {
        return Err(unreadable(
            host,
            "it has none of the expected section markers",
            capped,
        ));
    }
    let current_user = report
        .lines("user")
        .iter()
        .map(|l| display_safe(l.trim()))
        .find(|l| !l.is_empty() && !l.contains(char::is_whitespace));
    if report.sections.contains_key("no-nvidia-smi") {
        return Ok((
            GpuSnapshot::without_gpus(
                host,
                format!("no NVIDIA GPU found on {host} (nvidia-smi is not installed)"),
                current_user,
            ),
            false,
        ));
    }
    let rejected = report.sections.contains_key("rejected");
    if rejected {
        warnings.push(
            "this NVIDIA driver does not know the MIG query fields; MIG mode is read from \
             nvidia-smi -L instead"
                .to_string(),
        );
    }
    let Some(gpu_section) = report.sections.get("gpus") else {
        return Err(unreadable(host, "it stops before the GPU list", capped));
    };
    let fields: Vec<&str> = gpu_section
        .args
        .first()
        .copied()
        .unwrap_or(FULL_FIELDS)
        .split(',')
        .collect();
    let mut gpus = Vec::new();
    let mut lost = Vec::new();
    let mut driver_lines = Vec::new();
    let mut other_lines = Vec::new();
    for line in &gpu_section.lines {
        let line = display_safe(line);
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match classify_gpu_line(line, &fields) {
            GpuLine::Gpu(g) => gpus.push(*g),
            GpuLine::Unreadable(u) => lost.push(u),
            GpuLine::Driver => driver_lines.push(line.to_string()),
            GpuLine::Other => other_lines.push(line.to_string()),
        }
    }
    let rc = report.status("gpus-rc");
    note_cut(&report, "gpus-rc", "nvidia-smi --query-gpu", &mut warnings);
    if gpus.is_empty() && lost.is_empty() {
        let all = gpu_section.lines.join("\n");
        if let Some(line) = driver_lines.first() {
            return Err(GpuError::Driver {
                host: host.to_string(),
                message: line.clone(),
            });
        }
        if all.contains("No devices were found") || (rc == Some(0) && all.trim().is_empty()) {
            return Ok((
                GpuSnapshot::without_gpus(
                    host,
                    format!("no NVIDIA GPU found on {host} (nvidia-smi found no devices)"),
                    current_user,
                ),
                rejected,
            ));
        }
        if rc == Some(127) || all.contains("command not found") {
            return Ok((
                GpuSnapshot::without_gpus(
                    host,
                    format!("no NVIDIA GPU found on {host} (nvidia-smi is not installed)"),
                    current_user,
                ),
                rejected,
            ));
        }
        if rc == Some(124) {
            return Err(GpuError::TimedOut {
                host: host.to_string(),
                secs: u64::from(REMOTE_TIMEOUT_SECS),
            });
        }
        let detail = match rc {
            Some(rc) if rc != 0 => format!("nvidia-smi exited with {rc}"),
            _ => "no GPU line could be read".to_string(),
        };
        return Err(unreadable(host, &detail, &all));
    }
    for line in driver_lines.iter().chain(&other_lines).take(3) {
        warnings.push(format!("nvidia-smi also said: {}", excerpt(line)));
    }
    if rejected || !fields.contains(&"mig.mode.current") {
        mig_mode_from_list(&mut gpus, report.lines("list"));
    }
    attach_mig(&mut gpus, report.lines("list"));
    // Reports of the script before the marker token (saved captures) list processes as
    // `gpu_uuid, pid, process_name, used_memory` and have no `names` section.
    let legacy = gpu_section.args.is_empty();
    let processes = processes(
        &report,
        &gpus,
        current_user.as_deref(),
        legacy,
        &mut warnings,
    );
    let no_gpu_reason = gpus.is_empty().then(|| {
        format!(
            "no NVIDIA GPU on {host} can be read ({} unreadable)",
            lost.len()
        )
    });
    Ok((
        GpuSnapshot {
            host: host.to_string(),
            gpus,
            processes,
            no_gpu_reason,
            current_user,
            unreadable: lost,
            warnings,
        },
        rejected,
    ))
}

/// The compute processes: pids, GPUs and memory from the name-free answer; names attached by
/// pid from the second one (a pid named twice differently gets no name: one of the two was
/// forged through a newline in a process name); users and running times from `ps`.
fn processes(
    report: &Sections<'_>,
    gpus: &[Gpu],
    current_user: Option<&str>,
    legacy: bool,
    warnings: &mut Vec<String>,
) -> Vec<GpuProcess> {
    let known: HashSet<&str> = gpus
        .iter()
        .flat_map(|g| std::iter::once(g.uuid.as_str()).chain(g.mig.iter().map(|m| m.uuid.as_str())))
        .collect();
    let mut names: HashMap<u32, Option<String>> = HashMap::new();
    let legacy_rows: Vec<(String, String)> = if legacy {
        report
            .lines("apps")
            .iter()
            .filter_map(|l| legacy_app_line(l))
            .collect()
    } else {
        Vec::new()
    };
    let (apps, name_lines): (Vec<&str>, Vec<&str>) = if legacy {
        (
            legacy_rows.iter().map(|(a, _)| a.as_str()).collect(),
            legacy_rows.iter().map(|(_, n)| n.as_str()).collect(),
        )
    } else {
        (
            report.lines("apps").to_vec(),
            report.lines("names").to_vec(),
        )
    };
    for line in name_lines {
        let Some((pid, name)) = line.split_once(',') else {
            continue;
        };
        let Ok(pid) = pid.trim().parse::<u32>() else {
            continue;
        };
        let name = value(name).map(display_safe);
        names
            .entry(pid)
            .and_modify(|seen| {
                if *seen != name {
                    *seen = None;
                }
            })
            .or_insert(name);
    }
    let users = parse_ps(report.lines("ps"));
    let containers = parse_cgroups(report.lines("cgroups"));
    let mut out: Vec<GpuProcess> = Vec::new();
    let mut unparsed = Vec::new();
    for line in apps {
        let safe = display_safe(line);
        if safe.trim().is_empty() {
            continue;
        }
        let Some(mut p) = parse_app_line(&safe) else {
            unparsed.push(safe);
            continue;
        };
        if !known.contains(p.gpu_uuid.as_str())
            || out
                .iter()
                .any(|q| q.pid == p.pid && q.gpu_uuid == p.gpu_uuid)
        {
            continue;
        }
        p.command = names.get(&p.pid).cloned().flatten();
        if let Some(row) = users.get(&p.pid) {
            p.user = row.user.clone();
            p.running_secs = row.running_secs;
            if p.command.is_none() {
                p.command = row.command.clone();
            }
        }
        if let Some(container) = containers.get(&p.pid) {
            p.container = Some(container.clone());
        }
        p.own = p.user.is_some() && p.user.as_deref() == current_user;
        out.push(p);
    }
    let rc = report.status("apps-rc");
    if out.is_empty() && rc.is_some_and(|rc| rc != 0) {
        let said = unparsed
            .iter()
            .find(|l| !l.contains("Unable to determine the device handle"))
            .or(unparsed.first())
            .map(|l| excerpt(l))
            .unwrap_or_default();
        warnings.push(format!(
            "the list of GPU processes could not be read (nvidia-smi exited with {}: {said}); \
             GPUs are judged by their memory and utilization alone",
            rc.unwrap_or_default()
        ));
    }
    note_cut(
        report,
        "apps-rc",
        "nvidia-smi --query-compute-apps",
        warnings,
    );
    out
}

/// Adds a warning when the section whose status line is `rc_section` was cut on the host.
fn note_cut(report: &Sections<'_>, rc_section: &str, what: &str, warnings: &mut Vec<String>) {
    let length = report
        .sections
        .get(rc_section)
        .and_then(|s| s.args.get(1))
        .and_then(|n| n.parse::<usize>().ok());
    if let Some(n) = length.filter(|n| *n > SECTION_CAP_BYTES) {
        warnings.push(format!(
            "{what} printed {n} bytes; only the first {SECTION_CAP_BYTES} were read"
        ));
    }
}

fn unreadable(host: &str, what: &str, output: &str) -> GpuError {
    GpuError::Unreadable {
        host: host.to_string(),
        detail: format!("{what}; the output was: {}", excerpt(output)),
    }
}

/// One section of the script's output: the marker's arguments and the lines after it.
#[derive(Default)]
struct Section<'a> {
    args: Vec<&'a str>,
    lines: Vec<&'a str>,
}

/// The script's output cut at its markers. Each section counts once (the first).
#[derive(Default)]
struct Sections<'a> {
    sections: HashMap<&'a str, Section<'a>>,
}

impl<'a> Sections<'a> {
    fn split(text: &'a str, mark: &str) -> Self {
        let mut out = Self::default();
        let mut current: Option<&'a str> = None;
        for line in text.lines() {
            let trimmed = line.trim();
            if let Some(name) = trimmed
                .strip_prefix(mark)
                .and_then(|r| r.strip_suffix("@@"))
            {
                let mut words = name.split_whitespace();
                let Some(key) = words.next() else { continue };
                if out.sections.contains_key(key) {
                    current = None;
                    continue;
                }
                out.sections.insert(
                    key,
                    Section {
                        args: words.collect(),
                        lines: Vec::new(),
                    },
                );
                current = Some(key);
            } else if let Some(section) = current.and_then(|k| out.sections.get_mut(k)) {
                section.lines.push(line);
            }
        }
        out
    }

    fn lines(&self, name: &str) -> &[&'a str] {
        self.sections
            .get(name)
            .map(|s| s.lines.as_slice())
            .unwrap_or_default()
    }

    /// The exit status a `NAME-rc STATUS [LENGTH]` marker (or an old `NAME-rc` section) gives.
    fn status(&self, name: &str) -> Option<i32> {
        let section = self.sections.get(name)?;
        section
            .args
            .first()
            .or(section.lines.first())
            .and_then(|s| s.trim().parse().ok())
    }
}

#[cfg(test)]
pub(crate) mod tests;
