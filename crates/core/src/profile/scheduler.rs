//! Where a host runs JupyterLab: on itself, or as a batch job through a scheduler, and a host's
//! saved SLURM launch defaults. Profile data only; `crate::slurm` submits and watches the jobs.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Which batch scheduler a host's login node talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum Scheduler {
    /// No scheduler: JupyterLab runs on the host itself.
    None,
    /// SLURM: JupyterLab runs as a batch job on a compute node.
    Slurm,
}

impl std::str::FromStr for Scheduler {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "plain" => Ok(Scheduler::None),
            "slurm" => Ok(Scheduler::Slurm),
            other => Err(format!(
                "unknown scheduler {other:?}: use `slurm` or `none`"
            )),
        }
    }
}

/// How a GPU request is written on `sbatch`'s command line (sites reject one or another).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "kebab-case")]
pub enum GpuFlag {
    /// `--gres=gpu:[TYPE:]N`.
    #[default]
    Gres,
    /// `--gpus-per-node=[TYPE:]N`.
    GpusPerNode,
    /// `--gpus=[TYPE:]N`.
    Gpus,
}

impl fmt::Display for GpuFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GpuFlag::Gres => "gres",
            GpuFlag::GpusPerNode => "gpus-per-node",
            GpuFlag::Gpus => "gpus",
        })
    }
}

impl std::str::FromStr for GpuFlag {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().trim_start_matches("--") {
            "gres" => Ok(GpuFlag::Gres),
            "gpus-per-node" => Ok(GpuFlag::GpusPerNode),
            "gpus" => Ok(GpuFlag::Gpus),
            other => Err(format!(
                "unknown GPU flag style {other:?}: use gres, gpus-per-node or gpus"
            )),
        }
    }
}

/// A host's saved launch defaults for SLURM jobs (each overridable per launch).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase", default)]
pub struct SlurmDefaults {
    /// Partition (`-p`); `None`: the cluster's default partition.
    pub partition: Option<String>,
    /// Account (`-A`); `None`: the user's default account.
    pub account: Option<String>,
    /// Time limit as SLURM writes it (`90`, `2:00:00`, `1-00:00:00`); `None`: the
    /// partition's DefaultTime.
    pub time: Option<String>,
    /// GPU request `[TYPE:]N` (e.g. `v100:1`, `2`); `None`: no GPU.
    pub gpus: Option<String>,
    /// How the GPU request is written.
    pub gpu_flag: GpuFlag,
    /// Extra `#SBATCH` lines, written as given (e.g. `#SBATCH --mem=16G` or `--mem=16G`).
    pub sbatch_lines: Vec<String>,
    /// Shell lines run in the job before JupyterLab starts (e.g. `module load cuda`).
    pub setup: Vec<String>,
}
