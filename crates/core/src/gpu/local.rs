//! This computer's GPUs through NVML (nvml-wrapper), in the same model as the remote query.
//!
//! NVML is loaded once per [`LocalGpus`] (`Nvml::init` costs ~13 ms; a read ~10 µs). No library
//! or no driver is "no local NVIDIA GPU", never a crash. Process owners come from the local
//! process table; the platform-specific part is the `procs` module at the bottom, nowhere else.

use std::sync::Arc;

use nvml_wrapper::{
    Device, Nvml, enum_wrappers::device::TemperatureSensor, enums::device::UsedGpuMemory,
    error::NvmlError, struct_wrappers::device::ProcessInfo,
};

use super::{Gpu, GpuError, GpuProcess, GpuSnapshot, MigInstance, UnreadableGpu, display_safe};

/// The host name local snapshots carry.
const LOCAL_HOST: &str = "local";

const MIB: u64 = 1024 * 1024;

/// This computer's GPUs. Cheap to clone; NVML is loaded once, when it is created.
#[derive(Clone)]
pub struct LocalGpus {
    nvml: Arc<Result<Nvml, String>>,
}

impl std::fmt::Debug for LocalGpus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalGpus")
            .field("nvml_loaded", &self.nvml.is_ok())
            .finish()
    }
}

/// Takes one snapshot of this computer's GPUs (loads NVML for it; keep a [`LocalGpus`] to poll).
pub fn local() -> Result<GpuSnapshot, GpuError> {
    LocalGpus::new().read()
}

impl Default for LocalGpus {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalGpus {
    /// Loads NVML. Never fails: a missing library or driver shows up in the snapshots as
    /// [`GpuSnapshot::no_gpu_reason`], other NVML failures as errors from [`LocalGpus::read`].
    pub fn new() -> Self {
        let nvml = Nvml::init().map_err(|e| match e {
            NvmlError::LibloadingError(_) | NvmlError::LibraryNotFound => {
                "no local NVIDIA GPU (the NVIDIA driver's NVML library is not installed)"
                    .to_string()
            }
            NvmlError::DriverNotLoaded => {
                "no local NVIDIA GPU (the NVIDIA driver is not loaded)".to_string()
            }
            other => format!("NVML could not start: {other}"),
        });
        Self {
            nvml: Arc::new(nvml),
        }
    }

    /// Reads every GPU, MIG instance and compute process now. Blocking (NVML calls and `/proc`
    /// reads); the [`super::GpuSource`] implementation runs it on a blocking thread.
    pub fn read(&self) -> Result<GpuSnapshot, GpuError> {
        let table = procs::ProcessTable::load();
        let current_user = table.current_user();
        let nvml = match self.nvml.as_ref() {
            Ok(nvml) => nvml,
            Err(reason) if reason.starts_with("no local NVIDIA GPU") => {
                return Ok(GpuSnapshot::without_gpus(
                    LOCAL_HOST,
                    reason.clone(),
                    current_user,
                ));
            }
            Err(reason) => return Err(GpuError::Nvml(reason.clone())),
        };
        let count = nvml.device_count().map_err(driver_error)?;
        if count == 0 {
            return Ok(GpuSnapshot::without_gpus(
                LOCAL_HOST,
                "no local NVIDIA GPU (NVML found no devices)".to_string(),
                current_user,
            ));
        }
        let mut gpus = Vec::new();
        let mut unreadable = Vec::new();
        let mut processes = Vec::new();
        for index in 0..count {
            // The same rule as the remote query: a GPU that cannot be read is listed with its
            // reason beside the healthy ones, never dropped and never fatal.
            let device = match nvml.device_by_index(index) {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(index, error = %e, "a local GPU NVML cannot open");
                    unreadable.push(UnreadableGpu {
                        index: Some(index),
                        pci_bus_id: None,
                        message: display_safe(&format!("NVML cannot open GPU {index}: {e}")),
                    });
                    continue;
                }
            };
            let mut gpu = match read_gpu(&device, index) {
                Ok(gpu) => gpu,
                Err(u) => {
                    unreadable.push(u);
                    continue;
                }
            };
            if gpu.mig_enabled == Some(true) {
                // Asked per instance, processes carry the MIG UUID they really run on.
                for (mig_device, instance) in mig_devices(&device) {
                    collect_processes(&mig_device, &instance.uuid, &mut processes);
                    gpu.mig.push(instance);
                }
            } else {
                collect_processes(&device, &gpu.uuid, &mut processes);
            }
            gpus.push(gpu);
        }
        for p in &mut processes {
            let info = table.process(p.pid);
            p.user = info.user.as_deref().map(display_safe);
            p.command = info.command.as_deref().map(display_safe);
            p.running_secs = info.running_secs;
            p.container = info.container;
            p.own = p.user.is_some() && p.user == current_user;
        }
        let no_gpu_reason = gpus.is_empty().then(|| {
            format!(
                "no local NVIDIA GPU can be read ({} unreadable)",
                unreadable.len()
            )
        });
        Ok(GpuSnapshot {
            host: LOCAL_HOST.to_string(),
            gpus,
            processes,
            no_gpu_reason,
            current_user,
            unreadable,
            warnings: Vec::new(),
        })
    }
}

fn driver_error(e: NvmlError) -> GpuError {
    GpuError::Driver {
        host: LOCAL_HOST.to_string(),
        message: e.to_string(),
    }
}

/// Whether an NVML error means the GPU failed (as opposed to a field the card does not have).
fn is_failure(e: &NvmlError) -> bool {
    !matches!(
        e,
        NvmlError::NotSupported | NvmlError::NotFound | NvmlError::NoPermission
    )
}

fn read_gpu(device: &Device<'_>, index: u32) -> Result<Gpu, UnreadableGpu> {
    let pci_bus_id = device.pci_info().ok().map(|p| display_safe(&p.bus_id));
    let uuid = match device.uuid() {
        Ok(u) => display_safe(&u),
        Err(e) => {
            return Err(UnreadableGpu {
                index: Some(index),
                pci_bus_id,
                message: display_safe(&format!("NVML cannot read GPU {index}'s UUID: {e}")),
            });
        }
    };
    let memory = device.memory_info();
    let utilization = device.utilization_rates();
    let mut failures = Vec::new();
    if let Err(e) = &memory
        && is_failure(e)
    {
        failures.push(format!("memory: {e}"));
    }
    if let Err(e) = &utilization
        && is_failure(e)
    {
        failures.push(format!("utilization: {e}"));
    }
    let memory = memory.ok();
    let utilization = utilization.ok();
    Ok(Gpu {
        problem: (!failures.is_empty())
            .then(|| display_safe(&format!("NVML cannot read it ({})", failures.join(", ")))),
        index: device.index().unwrap_or(index),
        uuid,
        name: device.name().ok().map(|n| display_safe(&n)),
        memory_total_mib: memory.as_ref().map(|m| m.total / MIB),
        memory_used_mib: memory.as_ref().map(|m| m.used / MIB),
        memory_free_mib: memory.as_ref().map(|m| m.free / MIB),
        utilization_gpu: utilization.as_ref().map(|u| u.gpu),
        utilization_memory: utilization.as_ref().map(|u| u.memory),
        temperature_c: device.temperature(TemperatureSensor::Gpu).ok(),
        power_draw_w: device.power_usage().ok().map(|mw| f64::from(mw) / 1000.0),
        power_limit_w: device
            .enforced_power_limit()
            .ok()
            .map(|mw| f64::from(mw) / 1000.0),
        mig_enabled: device.mig_mode().ok().map(|m| m.current == 1),
        pci_bus_id,
        compute_mode: device.compute_mode().ok().map(|m| format!("{m:?}")),
        mig: Vec::new(),
    })
}

/// The MIG instances that exist on `device`. `mig_device_count` is the maximum, so empty slots
/// are skipped.
fn mig_devices<'n>(device: &Device<'n>) -> Vec<(Device<'n>, MigInstance)> {
    let max = device.mig_device_count().unwrap_or(0);
    (0..max)
        .filter_map(|i| {
            let mig = device.mig_device_by_index(i).ok()?;
            let uuid = display_safe(&mig.uuid().ok()?);
            // NVML names a MIG device "NVIDIA A100-SXM4-80GB MIG 3g.40gb".
            let profile = mig
                .name()
                .ok()
                .and_then(|n| n.split_once(" MIG ").map(|(_, p)| display_safe(p.trim())));
            Some((
                mig,
                MigInstance {
                    uuid,
                    profile,
                    device_index: Some(i),
                },
            ))
        })
        .collect()
}

fn collect_processes(device: &Device<'_>, uuid: &str, out: &mut Vec<GpuProcess>) {
    let list: Vec<ProcessInfo> = device.running_compute_processes().unwrap_or_default();
    out.extend(list.into_iter().map(|p| GpuProcess {
        gpu_uuid: uuid.to_string(),
        pid: p.pid,
        used_memory_mib: match p.used_gpu_memory {
            UsedGpuMemory::Used(bytes) => Some(bytes / MIB),
            UsedGpuMemory::Unavailable => None,
        },
        ..GpuProcess::default()
    }));
}

/// The local process table: who owns a pid, what it runs, since when. The only platform-specific
/// code of the module.
mod procs {
    /// What the process table says about one pid.
    #[derive(Debug, Default, PartialEq)]
    pub(super) struct ProcessInfo {
        pub(super) user: Option<String>,
        pub(super) command: Option<String>,
        pub(super) running_secs: Option<u64>,
        pub(super) container: Option<String>,
    }

    #[cfg(target_os = "linux")]
    pub(super) use self::linux::ProcessTable;
    #[cfg(not(target_os = "linux"))]
    pub(super) use self::other::ProcessTable;

    #[cfg(target_os = "linux")]
    mod linux {
        use std::{collections::HashMap, fs, path::Path};

        use super::ProcessInfo;

        /// `/proc` and `/etc/passwd`, read without `getent` or libc.
        pub(in super::super) struct ProcessTable {
            users: HashMap<u32, String>,
            root: std::path::PathBuf,
        }

        impl ProcessTable {
            pub(in super::super) fn load() -> Self {
                Self::at(Path::new("/"))
            }

            /// A table rooted elsewhere (tests point it at a fake `/proc` and `/etc`).
            pub(in super::super) fn at(root: &Path) -> Self {
                let passwd = fs::read_to_string(root.join("etc/passwd")).unwrap_or_default();
                Self {
                    users: parse_passwd(&passwd),
                    root: root.to_path_buf(),
                }
            }

            pub(in super::super) fn current_user(&self) -> Option<String> {
                self.owner("self").or_else(|| std::env::var("USER").ok())
            }

            fn owner(&self, pid: &str) -> Option<String> {
                let status =
                    fs::read_to_string(self.root.join(format!("proc/{pid}/status"))).ok()?;
                let uid = effective_uid(&status)?;
                Some(
                    self.users
                        .get(&uid)
                        .cloned()
                        .unwrap_or_else(|| uid.to_string()),
                )
            }

            pub(in super::super) fn process(&self, pid: u32) -> ProcessInfo {
                let dir = self.root.join(format!("proc/{pid}"));
                // argv[0] only: the arguments may hold tokens.
                let command = fs::read(dir.join("cmdline"))
                    .ok()
                    .and_then(|c| {
                        let argv0 = c.split(|b| *b == 0).next()?.to_vec();
                        (!argv0.is_empty()).then(|| String::from_utf8_lossy(&argv0).into_owned())
                    })
                    .or_else(|| {
                        fs::read_to_string(dir.join("comm"))
                            .ok()
                            .map(|c| c.trim().to_string())
                    });
                let uptime = fs::read_to_string(self.root.join("proc/uptime")).ok();
                let stat = fs::read_to_string(dir.join("stat")).ok();
                let running_secs = match (uptime, stat) {
                    (Some(u), Some(s)) => running_secs(&u, &s),
                    _ => None,
                };
                let container = fs::read_to_string(dir.join("cgroup"))
                    .ok()
                    .and_then(|c| crate::gpu::container::from_cgroup(&c));
                ProcessInfo {
                    user: self.owner(&pid.to_string()),
                    command,
                    running_secs,
                    container,
                }
            }
        }

        /// `name:x:uid:…` lines to a uid → name map.
        pub(in super::super) fn parse_passwd(text: &str) -> HashMap<u32, String> {
            text.lines()
                .filter_map(|l| {
                    let mut f = l.split(':');
                    let name = f.next()?;
                    let uid = f.nth(1)?.parse().ok()?;
                    (!name.is_empty() && !name.starts_with('#')).then(|| (uid, name.to_string()))
                })
                .collect()
        }

        /// The effective uid from `/proc/<pid>/status` (`Uid: real effective saved fs`).
        pub(in super::super) fn effective_uid(status: &str) -> Option<u32> {
            let line = status.lines().find(|l| l.starts_with("Uid:"))?;
            line.split_whitespace().nth(2)?.parse().ok()
        }

        /// Seconds since start, from `/proc/uptime` and `/proc/<pid>/stat` (field 22, in clock
        /// ticks; USER_HZ is 100 on every Linux architecture's user ABI).
        pub(in super::super) fn running_secs(uptime: &str, stat: &str) -> Option<u64> {
            const USER_HZ: u64 = 100;
            let up: f64 = uptime.split_whitespace().next()?.parse().ok()?;
            // The command name (field 2) may contain spaces and parentheses: count after the last ')'.
            let after = &stat[stat.rfind(')')? + 1..];
            let start_ticks: u64 = after.split_whitespace().nth(19)?.parse().ok()?;
            let up = if up.is_finite() && up >= 0.0 {
                up as u64
            } else {
                return None;
            };
            Some(up.saturating_sub(start_ticks / USER_HZ))
        }
    }

    #[cfg(not(target_os = "linux"))]
    mod other {
        use super::ProcessInfo;

        /// Elsewhere owners are not looked up: processes show without a user.
        pub(in super::super) struct ProcessTable;

        impl ProcessTable {
            pub(in super::super) fn load() -> Self {
                Self
            }

            pub(in super::super) fn current_user(&self) -> Option<String> {
                std::env::var("USER")
                    .or_else(|_| std::env::var("USERNAME"))
                    .ok()
            }

            pub(in super::super) fn process(&self, _pid: u32) -> ProcessInfo {
                ProcessInfo::default()
            }
        }
    }

    #[cfg(all(test, target_os = "linux"))]
    mod tests {
        use super::linux::*;

        #[test]
        fn passwd_status_and_stat() {
            let users = parse_passwd(
                "root:x:0:0:root:/root:/bin/bash\n#c:x:1\nalice:x:1001:1001::/home/alice:/bin/sh\nbad\n",
            );
            assert_eq!(users.get(&0).map(String::as_str), Some("root"));
            assert_eq!(users.get(&1001).map(String::as_str), Some("alice"));
            assert_eq!(users.len(), 2);
            assert_eq!(
                effective_uid("Name:\tx\nUid:\t1000\t1001\t1001\t1001\n"),
                Some(1001)
            );
            assert_eq!(effective_uid("garbage"), None);
            let stat =
                "433 (py thon) (x)) S 1 433 433 0 -1 4194560 1 0 0 0 5 6 0 0 20 0 3 0 12345 1 1";
            assert_eq!(running_secs("1000.5 200.0\n", stat), Some(1000 - 123));
            assert_eq!(running_secs("nope", stat), None);
        }

        #[test]
        fn real_process_table_knows_this_process() {
            let table = ProcessTable::load();
            let me = table.process(std::process::id());
            assert!(me.user.is_some());
            assert_eq!(me.user, table.current_user());
            assert!(me.command.is_some());
            assert!(me.running_secs.is_some());
        }

        #[test]
        fn fake_root_maps_uids() {
            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            let root = dir.path();
            std::fs::create_dir_all(root.join("etc")).unwrap_or_else(|e| panic!("{e}"));
            std::fs::create_dir_all(root.join("proc/42")).unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(root.join("etc/passwd"), "bob:x:1002:1002::/h:/bin/sh\n")
                .unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(
                root.join("proc/42/status"),
                "Uid:\t1002\t1002\t1002\t1002\n",
            )
            .unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(
                root.join("proc/42/cmdline"),
                b"/usr/bin/python3\0--token=secret\0",
            )
            .unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(
                root.join("proc/42/cgroup"),
                "0::/system.slice/docker-4f9a1c2b3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8.scope\n",
            )
            .unwrap_or_else(|e| panic!("{e}"));
            let info = ProcessTable::at(root).process(42);
            assert_eq!(info.user.as_deref(), Some("bob"));
            assert_eq!(info.command.as_deref(), Some("/usr/bin/python3"));
            // A process in a container is named by its container, as over SSH.
            assert_eq!(info.container.as_deref(), Some("docker 4f9a1c2b3d4e"));
            assert_eq!(
                ProcessTable::at(root).process(43),
                super::ProcessInfo::default()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CI and developer machines have no NVIDIA driver: that must be a snapshot with a reason.
    #[test]
    fn without_a_driver_local_is_an_empty_snapshot() {
        let gpus = LocalGpus::new();
        if gpus.nvml.is_ok() {
            eprintln!("NVML loaded: this machine has a driver; nothing to check here");
            return;
        }
        let snap = gpus.read().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(snap.host, "local");
        assert!(snap.gpus.is_empty());
        assert!(
            snap.no_gpu_reason
                .as_deref()
                .is_some_and(|r| r.starts_with("no local NVIDIA GPU"))
        );
        assert!(snap.current_user.is_some());
    }
}
