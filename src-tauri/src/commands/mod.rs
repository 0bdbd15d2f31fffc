//! Tauri commands, grouped by area. Each is a thin adapter: read the arguments, call core, map the
//! error. Their TypeScript wrappers are generated (`ui/src/lib/bindings/ipc.ts`).

pub mod connect;
// The Files view (SFTP browser over the host's connection).
pub mod files;
pub mod gpus;
pub mod hosts;
pub mod jupyter;
pub mod notebook;
// "Open notebook…": a local notebook run on the host, its saves brought back.
pub mod projects;
pub mod sessions;
pub mod settings;
// SLURM hosts: the cluster view, the request form, JupyterLab as a batch job (issue 20).
pub mod slurm;
// Terminal tabs (issue 23).
pub mod terminal;
pub mod tunnels;
