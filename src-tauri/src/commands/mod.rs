//! Tauri commands, grouped by area. Each is a thin adapter: read the arguments, call core (or
//! an adapter standing in for a core module that has not landed), map the error.

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
