//! A host's saved forwarding rules, as the profile keeps them (the data only: starting one is
//! [`crate::tunnel`]'s job, which re-exports these types). Kept here so that the profile does not
//! depend on the tunnel module, which depends on SSH, which reads profiles.

use serde::{Deserialize, Serialize};

/// A saved forwarding rule (Bitvise's C2S / S2C lists, OpenSSH's `-L` / `-R` / `-D`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ForwardRule {
    /// Whether the rule starts with the connection.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// What is forwarded.
    #[serde(flatten)]
    pub spec: ForwardSpec,
}

fn enabled_by_default() -> bool {
    true
}

/// What a forward does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum ForwardSpec {
    /// `-L bind:port:host:host_port`: listen here, connect there.
    Local {
        /// Local address to listen on (127.0.0.1 unless the user asks otherwise).
        bind: String,
        /// Local port; 0 picks a free one.
        port: u16,
        /// Host to reach from the server.
        host: String,
        /// Port on that host.
        host_port: u16,
    },
    /// `-R bind:port:host:host_port`: the server listens, connections come back here.
    Remote {
        /// Address the server listens on.
        bind: String,
        /// Port on the server.
        port: u16,
        /// Host to reach from this computer.
        host: String,
        /// Port on that host.
        host_port: u16,
    },
    /// `-D bind:port`: a SOCKS5 proxy here whose connections leave from the server.
    Dynamic {
        /// Local address to listen on.
        bind: String,
        /// Local port.
        port: u16,
    },
}
