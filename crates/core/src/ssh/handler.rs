//! The russh client handler: host-key decisions and channels the server opens towards us.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use russh::{
    Channel,
    client::{self, Msg, Session},
    keys::{PublicKey, PublicKeyOrCertificate},
};
use tokio::sync::{broadcast, mpsc};
use tracing::{info, warn};

use super::{
    ConnectContext, ConnectionState, HostKeyPolicy, HostKeyQuestion, HostKeyStatus, KnownHosts,
    Prompter, SshError, fingerprint, known_hosts,
};
use crate::profile::Profile;

/// Server listen address and port → the task serving that forward.
type Routes = HashMap<(String, u32), mpsc::Sender<Channel<Msg>>>;

/// Where channels for remote (`-R`) forwards go: the server's listen address and port, mapped
/// to the task that serves that forward.
#[derive(Clone, Default)]
pub struct RemoteForwards {
    routes: Arc<Mutex<Routes>>,
}

impl RemoteForwards {
    /// Routes channels for `address:port` on the server to `tx`.
    pub fn insert(&self, address: &str, port: u32, tx: mpsc::Sender<Channel<Msg>>) {
        if let Ok(mut routes) = self.routes.lock() {
            routes.insert((address.to_string(), port), tx);
        }
    }

    /// Stops routing `address:port`.
    pub fn remove(&self, address: &str, port: u32) {
        if let Ok(mut routes) = self.routes.lock() {
            routes.remove(&(address.to_string(), port));
        }
    }

    fn get(&self, address: &str, port: u32) -> Option<mpsc::Sender<Channel<Msg>>> {
        self.routes
            .lock()
            .ok()?
            .get(&(address.to_string(), port))
            .cloned()
    }
}

/// One hop's handler.
pub struct ClientHandler {
    host: String,
    port: u16,
    /// What known_hosts lists the host under (`host`, `[host]:port` or its `HostKeyAlias`).
    name: String,
    /// The files this hop reads (its `UserKnownHostsFile` / `GlobalKnownHostsFile`).
    pub(super) known_hosts: KnownHosts,
    prompter: Arc<dyn Prompter>,
    policy: HostKeyPolicy,
    events: broadcast::Sender<ConnectionState>,
    remote_forwards: RemoteForwards,
}

impl ClientHandler {
    pub(super) fn new(
        hop: &Profile,
        ctx: &ConnectContext,
        events: broadcast::Sender<ConnectionState>,
        remote_forwards: RemoteForwards,
    ) -> Self {
        Self {
            host: hop.host.clone(),
            port: hop.port,
            name: known_hosts::lookup_name(&hop.host, hop.port, hop.host_key_alias.as_deref()),
            known_hosts: ctx
                .known_hosts
                .with_profile_files(&hop.user_known_hosts_files, &hop.global_known_hosts_files),
            prompter: ctx.prompter.clone(),
            policy: match hop.strict_host_key_checking {
                Some(strict) if !ctx.options.host_key_policy_forced => strict.into(),
                _ => ctx.options.host_key_policy,
            },
            events,
            remote_forwards,
        }
    }

    /// Decides on a known_hosts answer for the presented `key` (a certificate's plain key when
    /// `cert` is set): known passes, changed/revoked/invalid fail, unknown follows the policy.
    async fn decide(
        &self,
        status: HostKeyStatus,
        key: &PublicKey,
        cert: bool,
    ) -> Result<bool, SshError> {
        let presented = fingerprint(key);
        match status {
            HostKeyStatus::Known => Ok(true),
            HostKeyStatus::Changed {
                expected,
                file,
                line,
            } => {
                warn!(host = %self.host, port = self.port, %expected, %presented, "host key changed");
                Err(SshError::HostKeyChanged {
                    host: self.host.clone(),
                    port: self.port,
                    expected,
                    presented,
                    file: file.display().to_string(),
                    line,
                })
            }
            HostKeyStatus::Revoked { file, line } => {
                warn!(host = %self.host, port = self.port, %presented, "host key revoked");
                Err(SshError::HostKeyRevoked {
                    host: self.host.clone(),
                    port: self.port,
                    fingerprint: presented,
                    file: file.display().to_string(),
                    line,
                })
            }
            HostKeyStatus::CertificateInvalid { reason } => Err(SshError::HostCertificateInvalid {
                host: self.host.clone(),
                port: self.port,
                reason,
            }),
            HostKeyStatus::Unknown => {
                let accepted = match self.policy {
                    HostKeyPolicy::Strict => false,
                    HostKeyPolicy::AcceptNew => true,
                    HostKeyPolicy::Ask => {
                        let question = HostKeyQuestion {
                            host: self.host.clone(),
                            port: self.port,
                            algorithm: key.algorithm().to_string(),
                            fingerprint: presented.clone(),
                        };
                        self.prompter.confirm_host_key(&question).await
                    }
                };
                if !accepted {
                    return Err(SshError::HostKeyNotTrusted {
                        host: self.host.clone(),
                        port: self.port,
                        fingerprint: presented,
                    });
                }
                info!(host = %self.host, port = self.port, fingerprint = %presented, cert, "host key accepted");
                // A certificate's plain key is remembered: the next connection knows the host
                // by it, as OpenSSH does after "Retry with plain key".
                self.known_hosts.learn_named(&self.name, key)?;
                Ok(true)
            }
        }
    }
}

impl client::Handler for ClientHandler {
    type Error = SshError;

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> Result<bool, SshError> {
        match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => {
                let status = self.known_hosts.check_named(&self.name, key)?;
                self.decide(status, key, false).await
            }
            // Asked for only when a @cert-authority is listed for the host (russh_config).
            PublicKeyOrCertificate::Certificate(cert) => {
                let principal = self
                    .name
                    .strip_prefix('[')
                    .and_then(|n| n.split_once("]:"))
                    .map_or(self.name.as_str(), |(host, _)| host)
                    .to_string();
                let status = self
                    .known_hosts
                    .check_certificate(&self.name, &principal, cert)?;
                let plain = PublicKey::from(cert.public_key().clone());
                self.decide(status, &plain, true).await
            }
        }
    }

    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        channel: Channel<Msg>,
        connected_address: &str,
        connected_port: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: client::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), SshError> {
        match self.remote_forwards.get(connected_address, connected_port) {
            Some(tx) => {
                reply.accept().await;
                let _ = tx.send(channel).await;
            }
            None => {
                warn!(
                    connected_address,
                    connected_port, "unexpected forwarded connection refused"
                );
                drop(reply);
            }
        }
        Ok(())
    }

    async fn server_channel_open_forwarded_streamlocal(
        &mut self,
        _channel: Channel<Msg>,
        _socket_path: &str,
        reply: client::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), SshError> {
        // We never ask for remote Unix-socket forwards; refuse what we did not ask for.
        drop(reply);
        Ok(())
    }

    async fn disconnected(
        &mut self,
        reason: client::DisconnectReason<SshError>,
    ) -> Result<(), SshError> {
        let text = match &reason {
            client::DisconnectReason::ReceivedDisconnect(info) => {
                format!("the server closed the connection ({:?})", info.reason_code)
            }
            client::DisconnectReason::Error(e) => e.to_string(),
        };
        let _ = self
            .events
            .send(ConnectionState::Disconnected { reason: text });
        match reason {
            client::DisconnectReason::ReceivedDisconnect(_) => Ok(()),
            client::DisconnectReason::Error(e) => Err(e),
        }
    }
}
