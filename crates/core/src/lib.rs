//! tunnelbook-core: everything Tunnelbook knows how to do, with no UI attached.
//!
//! The desktop app (`src-tauri`) and the command line (`crates/cli`) are thin fronts over this
//! crate. It must never depend on tauri (CI checks `cargo tree -p tunnelbook-core -i tauri`).
//! Collaborators that belong to a front end — asking the human a question, the OS keychain — come
//! in as traits ([`ssh::Prompter`], [`secret::SecretStore`]) so tests run core with no app around.

pub mod error;
pub mod gpu;
pub mod home;
pub mod host;
pub mod jupyter;
pub mod memory;
pub mod profile;
pub mod project;
pub mod prompt;
pub mod secret;
pub mod session;
pub mod sessions;
pub mod settings;
pub mod sftp;
pub mod slurm;
pub mod ssh;
pub mod startup;
pub mod sync;
pub mod terminal;
pub mod timeline;
pub mod tray;
pub mod tunnel;
pub mod wake;
