//! Choosing a GPU: the free ranking (after nvitop's `nvisel`) and the user's selector.
//!
//! A candidate is a whole GPU, or each MIG instance of a GPU in MIG mode (CUDA sees no device on
//! a MIG-mode GPU through its `GPU-` UUID, only through its instances). Free means no compute
//! process of anybody else and little memory in use; free candidates come first, then by free
//! memory (most first) and utilization (least first).

use std::{cmp::Reverse, fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use super::{Gpu, GpuError, GpuSnapshot, MigInstance};

/// Memory use at or under this share of the total still counts as "free" (a desktop's display
/// server or a stray context holds a little memory without being a compute process).
const LOW_MEMORY_SHARE: f64 = 0.10;

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
    /// No compute process counted against it and little memory in use.
    pub free: bool,
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
    /// Every usable GPU and MIG instance, best first. With `own_as_free`, the current user's own
    /// processes (and their memory) do not make a GPU busy: handy to replace one's own notebook.
    pub fn rank_free(&self, own_as_free: bool) -> Vec<GpuChoice> {
        let mut choices: Vec<GpuChoice> = self
            .gpus
            .iter()
            .flat_map(|g| self.candidates(g, own_as_free))
            .collect();
        choices.sort_by_key(|c| {
            (
                !c.free,
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
        let ranked = self.rank_free(own_as_free);
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
        found.map(Some).ok_or_else(|| GpuError::UnknownGpu {
            host: self.host.clone(),
            id: selector.to_string(),
            valid: self.valid_ids(),
        })
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

    fn candidates(&self, gpu: &Gpu, own_as_free: bool) -> Vec<GpuChoice> {
        let counts = |p: &&super::GpuProcess| !(own_as_free && p.own);
        if gpu.mig_enabled == Some(true) {
            // nvidia-smi may attribute a MIG process to the parent GPU only; such a process could
            // be on any instance, so it counts against each (never call a busy slice free).
            let unattributed = self.processes_on(&gpu.uuid).filter(counts).count();
            return gpu
                .mig
                .iter()
                .map(|m| {
                    let on_it: Vec<_> = self.processes_on(&m.uuid).filter(counts).collect();
                    let used: u64 = on_it.iter().filter_map(|p| p.used_memory_mib).sum();
                    let total = m.profile.as_deref().and_then(profile_memory_mib);
                    let busy = on_it.len() + unattributed;
                    GpuChoice {
                        cuda_visible_devices: m.uuid.clone(),
                        gpu_index: gpu.index,
                        gpu_uuid: gpu.uuid.clone(),
                        mig: Some(m.clone()),
                        name: gpu.name.clone(),
                        free: busy == 0,
                        busy_processes: busy,
                        memory_used_mib: Some(used),
                        memory_total_mib: total,
                        memory_free_mib: total.map(|t| t.saturating_sub(used)),
                        utilization_gpu: None,
                    }
                })
                .collect();
        }
        let busy = self.processes_on(&gpu.uuid).filter(counts).count();
        let own_memory: u64 = if own_as_free {
            self.processes_on(&gpu.uuid)
                .filter(|p| p.own)
                .filter_map(|p| p.used_memory_mib)
                .sum()
        } else {
            0
        };
        let used = gpu.memory_used_mib.map(|u| u.saturating_sub(own_memory));
        let low_memory = match (used, gpu.memory_total_mib) {
            (Some(u), Some(t)) if t > 0 => (u as f64) <= (t as f64) * LOW_MEMORY_SHARE,
            _ => true,
        };
        let free_memory = match (gpu.memory_total_mib, used) {
            (Some(t), Some(u)) => Some(t.saturating_sub(u)),
            _ => gpu.memory_free_mib,
        };
        vec![GpuChoice {
            cuda_visible_devices: gpu.uuid.clone(),
            gpu_index: gpu.index,
            gpu_uuid: gpu.uuid.clone(),
            mig: None,
            name: gpu.name.clone(),
            free: busy == 0 && low_memory,
            busy_processes: busy,
            memory_used_mib: used,
            memory_total_mib: gpu.memory_total_mib,
            memory_free_mib: free_memory,
            utilization_gpu: gpu.utilization_gpu,
        }]
    }
}

#[cfg(test)]
mod tests {
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
        // The T4 has no compute process and unknown memory: free; the 4090 runs pid 777.
        assert_eq!(ranked[0].gpu_index, 1);
        assert!(ranked[0].free && !ranked[1].free);
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
}
