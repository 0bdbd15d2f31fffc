//! The bed most JupyterLab tests start from: a real sshd, a client that trusts it, and the saved
//! host `box` ([`USER`], key only) whose environment is the test bed's JupyterLab venv.

use std::sync::Arc;

use tempfile::TempDir;
use tunnelbook_core::{
    profile::ProfileStore,
    ssh::{Connection, HostKeyPolicy, NoPrompter},
};

use crate::{Client, KeyFile, Sshd, SshdOptions, USER, jupyter_venv, key_only, make_key};

/// sshd + client + the saved host `box`; everything stops or goes when dropped.
pub struct JupyterBox {
    /// The server (started with the options given to [`JupyterBox::start`]).
    pub sshd: Sshd,
    /// The client, with `box` saved in its profiles and the server's key trusted.
    pub client: Client,
    /// The key `box` logs in with.
    pub key: KeyFile,
    _keys: TempDir,
}

impl JupyterBox {
    /// Starts sshd with `options` and saves `box` for a fresh client.
    pub fn start(options: SshdOptions) -> JupyterBox {
        let keys = tempfile::tempdir().unwrap();
        let key = make_key(keys.path(), "id", "ed25519", None);
        let sshd = Sshd::start(&[&key], options);
        let client = Client::new();
        client.trust(&sshd);
        let mut profile = key_only(sshd.profile("box", USER), &key);
        profile.environment = Some(jupyter_venv().display().to_string());
        ProfileStore::in_home(&client.home())
            .save(&[profile])
            .unwrap();
        JupyterBox {
            sshd,
            client,
            key,
            _keys: keys,
        }
    }

    /// sshd with `extra` lines in its config (`AllowTcpForwarding no`, …).
    pub fn with_sshd_config(extra: &[&str]) -> JupyterBox {
        JupyterBox::start(SshdOptions {
            extra: extra.iter().map(|s| (*s).to_string()).collect(),
            ..SshdOptions::default()
        })
    }

    /// A connection to `box` in this process (strict host keys, nothing asked).
    pub async fn connect(&self) -> Connection {
        let ctx = self
            .client
            .context(Arc::new(NoPrompter), HostKeyPolicy::Strict, None);
        Connection::open(&[key_only(self.sshd.profile("box", USER), &self.key)], &ctx)
            .await
            .unwrap()
    }
}
