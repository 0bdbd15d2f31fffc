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
    /// For a local or SOCKS rule with port 0 ("any free port"): the port it got when it last
    /// started, asked for again at the next start so its address stays the same (a free one
    /// when it is taken then). Kept by the forwards that start it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub last_port: Option<u16>,
}

impl ForwardRule {
    /// The spec to start: a rule with port 0 asks for the port it got last time, if any.
    pub fn spec_to_start(&self) -> ForwardSpec {
        match (&self.spec, self.last_port) {
            (
                ForwardSpec::Local { port: 0, .. } | ForwardSpec::Dynamic { port: 0, .. },
                Some(last),
            ) if last != 0 => {
                let mut spec = self.spec.clone();
                if let ForwardSpec::Local { port, .. } | ForwardSpec::Dynamic { port, .. } =
                    &mut spec
                {
                    *port = last;
                }
                spec
            }
            _ => self.spec.clone(),
        }
    }

    /// Whether its local port is chosen when it starts (port 0), so the one it got is kept in
    /// [`ForwardRule::last_port`].
    pub fn picks_its_port(&self) -> bool {
        matches!(
            self.spec,
            ForwardSpec::Local { port: 0, .. } | ForwardSpec::Dynamic { port: 0, .. }
        )
    }
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
