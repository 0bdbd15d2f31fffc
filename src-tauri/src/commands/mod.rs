//! Tauri commands, grouped by area. Each is a thin adapter: read the arguments, call core, map the
//! error. Their TypeScript wrappers are generated (`ui/src/lib/bindings/ipc.ts`).

pub mod connect;
pub mod gpus;
pub mod hosts;
pub mod jupyter;
pub mod notebook;
pub mod sessions;
pub mod settings;
// Terminal tabs (issue 23).
pub mod terminal;
pub mod tunnels;
