//! What the app keeps between commands: where its files are, the open questions, and the
//! sessions — core's registry ([`Sessions`]), whose queries (`sessions()`, `host(id)`,
//! `live_session`, …) are the app state's own through `Deref`.
//!
//! Runtime-agnostic (no `AppHandle` inside) so the same state serves the real app and tests on
//! tauri's mock runtime.

use std::{
    ops::Deref,
    path::{Path, PathBuf},
    sync::Arc,
};

pub use tunnelbook_core::sessions::{NotebookHandle, SessionEntry, Sessions};
use tunnelbook_core::{
    profile::ProfileStore,
    secret::{KeychainStore, SecretStore},
};

use crate::prompt::PromptBroker;

/// The app's state, managed by tauri.
pub struct AppState {
    home: PathBuf,
    /// Saved hosts.
    pub profiles: ProfileStore,
    /// Questions waiting for the human.
    pub prompts: Arc<PromptBroker>,
    sessions: Sessions,
    /// The OS keychain, opened on first use (`None` inside: there is none).
    secrets: std::sync::OnceLock<Option<Arc<dyn SecretStore>>>,
    /// Local notebooks opened on a host ("Open notebook…"), by project id: they outlive the
    /// main window's page.
    projects: tunnelbook_core::project::Projects,
}

impl Deref for AppState {
    type Target = Sessions;

    /// The sessions the app started (core's registry).
    fn deref(&self) -> &Sessions {
        &self.sessions
    }
}

impl AppState {
    /// State whose files live under `home` (Tunnelbook's config directory).
    pub fn new(home: &Path) -> Self {
        Self {
            home: home.to_path_buf(),
            profiles: ProfileStore::in_home(home),
            prompts: Arc::new(PromptBroker::default()),
            sessions: Sessions::default(),
            secrets: std::sync::OnceLock::new(),
            projects: Default::default(),
        }
    }

    /// The OS keychain, where remembered passwords, passphrases and Jupyter tokens live; opened
    /// on first use. `None` when the system has none (no Secret Service, say): secrets are then
    /// asked each time and never written anywhere else.
    pub fn secrets(&self) -> Option<Arc<dyn SecretStore>> {
        self.secrets
            .get_or_init(|| match KeychainStore::open() {
                Ok(store) => {
                    let store = store.with_index_lock(self.home.join("keychain-index.lock"));
                    Some(Arc::new(store) as Arc<dyn SecretStore>)
                }
                Err(e) => {
                    tracing::info!("{e}; secrets will be asked each time");
                    None
                }
            })
            .clone()
    }

    /// Tunnelbook's home directory (hosts, settings, known hosts, logs).
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Tunnelbook's own known_hosts file.
    pub fn known_hosts_file(&self) -> PathBuf {
        self.home.join("known_hosts")
    }

    /// The opened notebooks' projects.
    pub fn projects(&self) -> &tunnelbook_core::project::Projects {
        &self.projects
    }
}
