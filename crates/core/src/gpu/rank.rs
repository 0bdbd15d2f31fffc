//! Choosing a GPU: the free ranking (after nvitop's `nvisel`) and the user's selector.
//!
//! A candidate is a whole GPU, or each MIG instance of a GPU in MIG mode (CUDA sees no device on
//! a MIG-mode GPU through its `GPU-` UUID, only through its instances). Free means no compute
//! process of anybody else, and memory use and utilization within the [`FreeRule`]'s thresholds
//! even when no process is visible (processes in another container or PID namespace are not
//! listed, but their memory and utilization are). A GPU nvidia-smi cannot fully read is never
//! free. Free candidates come first, then by free memory (most first) and utilization (least
//! first); each says why it is or is not free, in words.

use std::{cmp::Reverse, fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use super::{Gpu, GpuError, GpuSnapshot, MigInstance};

/// When a GPU counts as free: the thresholds of nvitop's `nvisel` (`--max-gpu-utilization`,
/// `--max-memory-utilization`, `--min-free-memory`), kept in the settings.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FreeRule {
    /// Most GPU utilization, percent, a free GPU may show (nvisel's `--max-gpu-utilization`).
    /// Default 10: a display server or an idle context shows a few percent.
    pub max_utilization_percent: u32,
    /// Most memory in use, percent of the total, a free GPU may show (nvisel's
    /// `--max-memory-utilization`). Default 10.
    pub max_memory_percent: u32,
    /// Least free memory, MiB, a free GPU must have (nvisel's `--min-free-memory`). Default 0.
    pub min_free_memory_mib: u64,
    /// Whether the current user's own processes (and their memory) leave a GPU free: handy to
    /// replace one's own notebook (`--own-as-free`).
    pub own_as_free: bool,
}

impl Default for FreeRule {
    fn default() -> Self {
        Self {
            max_utilization_percent: 10,
            max_memory_percent: 10,
            min_free_memory_mib: 0,
            own_as_free: false,
        }
    }
}

impl FreeRule {
    /// The default thresholds, with own processes counted as free or not.
    pub fn own_as_free(own_as_free: bool) -> Self {
        Self {
            own_as_free,
            ..Self::default()
        }
    }

    /// Problems that keep this rule from being saved, as messages.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.max_utilization_percent > 100 {
            out.push("The most utilization a free GPU may show must be 0 to 100 %.".to_string());
        }
        if self.max_memory_percent > 100 {
            out.push("The most memory a free GPU may use must be 0 to 100 %.".to_string());
        }
        out
    }
}

/// MiB as GiB with one decimal, for the words of [`GpuChoice::why`].
fn gib(mib: u64) -> String {
    format!("{:.1} GiB", mib as f64 / 1024.0)
}

/// One GPU or MIG instance a program can be pinned to, with what the ranking saw.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GpuChoice {
    /// The value for `CUDA_VISIBLE_DEVICES` (with `CUDA_DEVICE_ORDER=PCI_BUS_ID`): the GPU's
    /// `GPU-` UUID or the instance's `MIG-` UUID.
    pub cuda_visible_devices: String,
    /// Index of the (parent) GPU.
    pub gpu_index: u32,
    /// UUID of the (parent) GPU.
    pub gpu_uuid: String,
    /// The MIG instance, when the choice is one.
    pub mig: Option<MigInstance>,
    /// The GPU's name.
    pub name: Option<String>,
    /// No compute process counted against it, memory and utilization within the [`FreeRule`],
    /// and nothing nvidia-smi could not read.
    pub free: bool,
    /// Why it is or is not free, in words: `free: 0 % utilization, 79.6 GiB of 79.6 GiB free`,
    /// `in use by bob (python3)`, `in use (processes not visible: another container or
    /// namespace): 99 % utilization`, `nvidia-smi cannot read it (…)`.
    pub why: String,
    /// Whether it can be picked at all (`false`: nvidia-smi cannot read it; see `why`).
    pub usable: bool,
    /// Compute processes counted against it (the current user's are left out when they are
    /// counted as free). For a MIG instance this includes processes nvidia-smi only attributed
    /// to the parent GPU, since they may be on this instance.
    pub busy_processes: usize,
    /// Memory counted as used, MiB (own processes' memory subtracted when counted as free).
    pub memory_used_mib: Option<u64>,
    /// Total memory, MiB (for a MIG instance, from its profile name, e.g. `3g.40gb`).
    pub memory_total_mib: Option<u64>,
    /// Memory available to a new program, MiB.
    pub memory_free_mib: Option<u64>,
    /// GPU utilization, percent (`None` for MIG instances).
    pub utilization_gpu: Option<u32>,
}

impl GpuChoice {
    /// A short human name: `GPU 0` or `GPU 0 MIG 3g.40gb #1`.
    pub fn label(&self) -> String {
        match &self.mig {
            None => format!("GPU {}", self.gpu_index),
            Some(m) => {
                let mut s = format!(
                    "GPU {} MIG {}",
                    self.gpu_index,
                    m.profile.as_deref().unwrap_or("?")
                );
                if let Some(i) = m.device_index {
                    s.push_str(&format!(" #{i}"));
                }
                s
            }
        }
    }
}

/// Which GPU to use, as the user says it: `auto`, `none`, an index, or a `GPU-…` / `MIG-…` UUID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum GpuSelector {
    /// The best free GPU or MIG instance.
    Auto,
    /// No GPU (`CUDA_VISIBLE_DEVICES` left empty).
    None,
    /// The GPU with this index (the best of its MIG instances when MIG is on).
    Index(u32),
    /// The GPU or MIG instance with this UUID.
    Uuid(String),
}

impl FromStr for GpuSelector {
    type Err = GpuError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let upper = t.to_ascii_uppercase();
        if t.eq_ignore_ascii_case("auto") {
            Ok(Self::Auto)
        } else if t.eq_ignore_ascii_case("none") {
            Ok(Self::None)
        } else if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
            t.parse()
                .map(Self::Index)
                .map_err(|_| GpuError::InvalidSelector {
                    input: s.to_string(),
                })
        } else if (upper.starts_with("GPU-") || upper.starts_with("MIG-")) && t.len() > 4 {
            Ok(Self::Uuid(t.to_string()))
        } else {
            Err(GpuError::InvalidSelector {
                input: s.to_string(),
            })
        }
    }
}

impl fmt::Display for GpuSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::None => f.write_str("none"),
            Self::Index(i) => write!(f, "{i}"),
            Self::Uuid(u) => f.write_str(u),
        }
    }
}

/// Memory of a MIG profile from its name: `3g.40gb` → 40 GiB, `1g.10gb+me` → 10 GiB.
fn profile_memory_mib(profile: &str) -> Option<u64> {
    let gb = profile.split('.').nth(1)?;
    let digits: String = gb.chars().take_while(char::is_ascii_digit).collect();
    let rest = &gb[digits.len()..];
    if !rest.to_ascii_lowercase().starts_with("gb") {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(1024)
}

impl GpuSnapshot {
    /// Every GPU and MIG instance, best first, with the default [`FreeRule`]. With
    /// `own_as_free`, the current user's own processes (and their memory) do not make a GPU busy.
    pub fn rank_free(&self, own_as_free: bool) -> Vec<GpuChoice> {
        self.rank(&FreeRule::own_as_free(own_as_free))
    }

    /// Every GPU and MIG instance, best first, judged by `rule`; unusable ones last.
    pub fn rank(&self, rule: &FreeRule) -> Vec<GpuChoice> {
        let mut choices: Vec<GpuChoice> = self
            .gpus
            .iter()
            .flat_map(|g| self.candidates(g, rule))
            .collect();
        choices.sort_by_key(|c| {
            (
                !c.free,
                !c.usable,
                Reverse(c.memory_free_mib.unwrap_or(0)),
                c.utilization_gpu.unwrap_or(0),
                c.busy_processes,
                c.gpu_index,
                c.mig.as_ref().and_then(|m| m.device_index).unwrap_or(0),
            )
        });
        choices
    }

    /// Resolves `selector` against this snapshot. `Ok(None)` means "no GPU": asked for with
    /// [`GpuSelector::None`], or `auto` on a host without a usable GPU. `auto` on a host whose
    /// GPUs are all busy is [`GpuError::NoFreeGpu`]; an id that names nothing is
    /// [`GpuError::UnknownGpu`] listing the valid ones.
    pub fn select(
        &self,
        selector: &GpuSelector,
        own_as_free: bool,
    ) -> Result<Option<GpuChoice>, GpuError> {
        self.select_with(selector, &FreeRule::own_as_free(own_as_free))
    }

    /// [`GpuSnapshot::select`] judged by `rule`. A GPU nvidia-smi cannot read is never picked:
    /// naming it is [`GpuError::UnusableGpu`].
    pub fn select_with(
        &self,
        selector: &GpuSelector,
        rule: &FreeRule,
    ) -> Result<Option<GpuChoice>, GpuError> {
        let ranked = self.rank(rule);
        let found = match selector {
            GpuSelector::None => return Ok(None),
            GpuSelector::Auto => {
                return match ranked.into_iter().next() {
                    None => Ok(None),
                    Some(best) if best.free => Ok(Some(best)),
                    Some(_) => Err(GpuError::NoFreeGpu {
                        host: self.host.clone(),
                        valid: self.valid_ids(),
                    }),
                };
            }
            GpuSelector::Index(i) => ranked.into_iter().find(|c| c.gpu_index == *i),
            GpuSelector::Uuid(u) => ranked.into_iter().find(|c| {
                c.cuda_visible_devices.eq_ignore_ascii_case(u) || c.gpu_uuid.eq_ignore_ascii_case(u)
            }),
        };
        match found {
            Some(c) if !c.usable => Err(GpuError::UnusableGpu {
                host: self.host.clone(),
                id: c.label(),
                reason: c.why,
            }),
            Some(c) => Ok(Some(c)),
            None => Err(GpuError::UnknownGpu {
                host: self.host.clone(),
                id: selector.to_string(),
                valid: self.valid_ids(),
            }),
        }
    }

    /// The GPU a server was started on, as a person knows it (`GPU 3`, `GPU 0 MIG 3g.40gb #1`),
    /// from the `CUDA_VISIBLE_DEVICES` it was started with (a `GPU-`/`MIG-` UUID or an index;
    /// the first of a list). UUIDs are matched, so the label is right even when the indexes
    /// changed since the launch. `None` when it is empty or names nothing in this snapshot (the
    /// GPU fell off the bus, say).
    pub fn label_of(&self, cuda_visible_devices: &str) -> Option<String> {
        let first = cuda_visible_devices.split(',').next()?.trim();
        if first.is_empty() {
            return None;
        }
        let instance = self
            .rank(&FreeRule::own_as_free(false))
            .into_iter()
            .find(|c| c.cuda_visible_devices.eq_ignore_ascii_case(first));
        if let Some(choice) = instance {
            return Some(choice.label());
        }
        // A whole GPU named by index, or a MIG-enabled GPU named by its own UUID.
        self.gpus
            .iter()
            .find(|g| g.uuid.eq_ignore_ascii_case(first) || g.index.to_string() == first)
            .map(|g| format!("GPU {}", g.index))
    }

    /// Every id [`GpuSnapshot::select`] accepts: indexes, GPU UUIDs, MIG UUIDs.
    pub fn valid_ids(&self) -> Vec<String> {
        let mut ids = vec!["auto".to_string(), "none".to_string()];
        for g in &self.gpus {
            ids.push(g.index.to_string());
            ids.push(g.uuid.clone());
            ids.extend(g.mig.iter().map(|m| m.uuid.clone()));
        }
        ids
    }

    fn candidates(&self, gpu: &Gpu, rule: &FreeRule) -> Vec<GpuChoice> {
        let counts = |p: &&super::GpuProcess| !(rule.own_as_free && p.own);
        if gpu.mig_enabled == Some(true) {
            // nvidia-smi may attribute a MIG process to the parent GPU only; such a process could
            // be on any instance, so it counts against each (never call a busy slice free).
            let unattributed: Vec<_> = self.processes_on(&gpu.uuid).filter(counts).collect();
            return gpu
                .mig
                .iter()
                .map(|m| {
                    let on_it: Vec<_> = self.processes_on(&m.uuid).filter(counts).collect();
                    let used: u64 = on_it.iter().filter_map(|p| p.used_memory_mib).sum();
                    let total = m.profile.as_deref().and_then(profile_memory_mib);
                    let busy: Vec<&super::GpuProcess> =
                        on_it.iter().chain(&unattributed).copied().collect();
                    let free_memory = total.map(|t| t.saturating_sub(used));
                    let (free, why) = if let Some(problem) = &gpu.problem {
                        (false, problem.clone())
                    } else if !busy.is_empty() {
                        (false, in_use_by(&busy))
                    } else if free_memory.is_some_and(|f| f < rule.min_free_memory_mib) {
                        (
                            false,
                            format!(
                                "only {} free (at least {} wanted)",
                                gib(free_memory.unwrap_or(0)),
                                gib(rule.min_free_memory_mib)
                            ),
                        )
                    } else {
                        let mut why = "free: no process on this MIG instance".to_string();
                        if let Some(t) = total {
                            why.push_str(&format!(", {} of {} free", gib(t - used.min(t)), gib(t)));
                        }
                        (true, why)
                    };
                    GpuChoice {
                        cuda_visible_devices: m.uuid.clone(),
                        gpu_index: gpu.index,
                        gpu_uuid: gpu.uuid.clone(),
                        mig: Some(m.clone()),
                        name: gpu.name.clone(),
                        free,
                        why,
                        usable: gpu.problem.is_none(),
                        busy_processes: busy.len(),
                        memory_used_mib: Some(used),
                        memory_total_mib: total,
                        memory_free_mib: free_memory,
                        utilization_gpu: None,
                    }
                })
                .collect();
        }
        let busy: Vec<_> = self.processes_on(&gpu.uuid).filter(counts).collect();
        let own: Vec<_> = self.processes_on(&gpu.uuid).filter(|p| p.own).collect();
        let own_memory: u64 = if rule.own_as_free {
            own.iter().filter_map(|p| p.used_memory_mib).sum()
        } else {
            0
        };
        let used = gpu.memory_used_mib.map(|u| u.saturating_sub(own_memory));
        let free_memory = match (gpu.memory_total_mib, used) {
            (Some(t), Some(u)) => Some(t.saturating_sub(u)),
            _ => gpu.memory_free_mib,
        };
        let memory_percent = match (used, gpu.memory_total_mib) {
            (Some(u), Some(t)) if t > 0 => Some(u as f64 * 100.0 / t as f64),
            _ => None,
        };
        // Own processes running on it explain its utilization when they count as free.
        let utilization = gpu
            .utilization_gpu
            .filter(|_| !rule.own_as_free || own.is_empty());
        let too_busy = utilization.is_some_and(|u| u > rule.max_utilization_percent);
        let too_full = memory_percent.is_some_and(|m| m > f64::from(rule.max_memory_percent));
        let unknown = used.is_none() && gpu.utilization_gpu.is_none();
        let (free, why) = if let Some(problem) = &gpu.problem {
            (false, problem.clone())
        } else if !busy.is_empty() {
            (false, in_use_by(&busy))
        } else if too_busy || too_full {
            let mut seen = Vec::new();
            if let Some(u) = gpu.utilization_gpu {
                seen.push(format!("{u} % utilization"));
            }
            if let (Some(u), Some(t)) = (used, gpu.memory_total_mib) {
                seen.push(format!("{} of {} in use", gib(u), gib(t)));
            }
            (
                false,
                format!(
                    "in use (processes not visible: another container or namespace): {}",
                    seen.join(", ")
                ),
            )
        } else if unknown {
            (
                false,
                "cannot tell whether it is free: nvidia-smi reports neither its memory use nor \
                 its utilization"
                    .to_string(),
            )
        } else if free_memory.is_some_and(|f| f < rule.min_free_memory_mib) {
            (
                false,
                format!(
                    "only {} free (at least {} wanted)",
                    gib(free_memory.unwrap_or(0)),
                    gib(rule.min_free_memory_mib)
                ),
            )
        } else {
            let mut seen = Vec::new();
            if let Some(u) = gpu.utilization_gpu {
                seen.push(format!("{u} % utilization"));
            }
            match (free_memory, gpu.memory_total_mib) {
                (Some(f), Some(t)) => seen.push(format!("{} of {} free", gib(f), gib(t))),
                (Some(f), None) => seen.push(format!("{} free", gib(f))),
                _ => {}
            }
            if rule.own_as_free && !own.is_empty() {
                seen.push("only your own processes".to_string());
            } else {
                seen.push("no processes".to_string());
            }
            (true, format!("free: {}", seen.join(", ")))
        };
        vec![GpuChoice {
            cuda_visible_devices: gpu.uuid.clone(),
            gpu_index: gpu.index,
            gpu_uuid: gpu.uuid.clone(),
            mig: None,
            name: gpu.name.clone(),
            free,
            why,
            usable: gpu.problem.is_none(),
            busy_processes: busy.len(),
            memory_used_mib: used,
            memory_total_mib: gpu.memory_total_mib,
            memory_free_mib: free_memory,
            utilization_gpu: gpu.utilization_gpu,
        }]
    }
}

/// `in use by bob (python3)`, `in use by bob, carol (3 processes)`, `in use by an unknown user
/// (pid 4242)`.
fn in_use_by(processes: &[&super::GpuProcess]) -> String {
    let mut who: Vec<String> = Vec::new();
    for p in processes {
        let name = match (&p.user, &p.container) {
            (Some(u), Some(c)) => format!("{u} in {c}"),
            (Some(u), None) => u.clone(),
            (None, Some(c)) => format!("a process in {c}"),
            (None, None) => "an unknown user".to_string(),
        };
        if !who.contains(&name) {
            who.push(name);
        }
    }
    let what = match processes {
        [one] => one
            .command
            .clone()
            .unwrap_or_else(|| format!("pid {}", one.pid)),
        many => format!("{} processes", many.len()),
    };
    format!("in use by {} ({what})", who.join(", "))
}

#[cfg(test)]
mod tests;
