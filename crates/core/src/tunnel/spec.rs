//! Parsing OpenSSH-style forward specs (`-L`, `-R`, `-D`) and starting saved rules.

use std::net::IpAddr;

use super::{ForwardSpec, Link, Listen, Target, Tunnel, TunnelError};
use crate::ssh::{Connection, SshError};

const LOOPBACK: &str = "127.0.0.1";

fn spec_error(spec: &str, message: &str) -> TunnelError {
    TunnelError::Spec {
        spec: spec.to_string(),
        message: message.to_string(),
    }
}

fn port(spec: &str, text: &str) -> Result<u16, TunnelError> {
    text.parse()
        .map_err(|_| spec_error(spec, &format!("\"{text}\" is not a port number (0-65535)")))
}

/// Splits on ':' outside `[...]` so IPv6 addresses can be written as `[::1]`.
fn fields(spec: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut depth = 0;
    for c in spec.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ':' if depth == 0 => {
                out.push(String::new());
                continue;
            }
            _ => {}
        }
        if let Some(last) = out.last_mut() {
            last.push(c);
        }
    }
    out.into_iter()
        .map(|f| f.trim_start_matches('[').trim_end_matches(']').to_string())
        .collect()
}

impl ForwardSpec {
    /// `-L [BIND:]PORT:HOST:HOSTPORT`.
    pub fn parse_local(spec: &str) -> Result<ForwardSpec, TunnelError> {
        let f = fields(spec);
        let (bind, rest) = match f.len() {
            3 => (LOOPBACK.to_string(), &f[..]),
            4 => (f[0].clone(), &f[1..]),
            _ => return Err(spec_error(spec, "expected [BIND:]PORT:HOST:HOSTPORT")),
        };
        Ok(ForwardSpec::Local {
            bind,
            port: port(spec, &rest[0])?,
            host: rest[1].clone(),
            host_port: port(spec, &rest[2])?,
        })
    }

    /// `-R [BIND:]PORT:HOST:HOSTPORT` (BIND and PORT on the server).
    pub fn parse_remote(spec: &str) -> Result<ForwardSpec, TunnelError> {
        match ForwardSpec::parse_local(spec) {
            Ok(ForwardSpec::Local {
                bind,
                port,
                host,
                host_port,
            }) => Ok(ForwardSpec::Remote {
                bind,
                port,
                host,
                host_port,
            }),
            Ok(_) => Err(spec_error(spec, "expected [BIND:]PORT:HOST:HOSTPORT")),
            Err(e) => Err(e),
        }
    }

    /// `-D [BIND:]PORT`.
    pub fn parse_dynamic(spec: &str) -> Result<ForwardSpec, TunnelError> {
        let f = fields(spec);
        match f.as_slice() {
            [p] => Ok(ForwardSpec::Dynamic {
                bind: LOOPBACK.into(),
                port: port(spec, p)?,
            }),
            [b, p] => Ok(ForwardSpec::Dynamic {
                bind: b.clone(),
                port: port(spec, p)?,
            }),
            _ => Err(spec_error(spec, "expected [BIND:]PORT")),
        }
    }

    /// Starts this forward over `conn`.
    pub async fn start(&self, conn: &Connection) -> Result<Tunnel, TunnelError> {
        self.start_over(&Link::fixed(conn)).await
    }

    /// Whether the forward lives on the server's side (`-R`): it ends with its connection and
    /// must be started again on a new one. Local and dynamic forwards started with
    /// [`ForwardSpec::start_over`] keep their listeners across connections.
    pub fn is_remote(&self) -> bool {
        matches!(self, ForwardSpec::Remote { .. })
    }

    /// Starts this forward over the connection `link` holds; local and dynamic forwards follow
    /// the link to later connections, a remote one stays with the current connection.
    pub async fn start_over(&self, link: &Link) -> Result<Tunnel, TunnelError> {
        let listen = |spec: &ForwardSpec, bind: &str, port: u16| -> Result<Listen, TunnelError> {
            let bind: IpAddr = match bind {
                "" | "localhost" => LOOPBACK
                    .parse()
                    .map_err(|_| spec_error(bind, "bad address"))?,
                b => b.parse().map_err(|_| {
                    spec_error(
                        &format!("{spec:?}"),
                        &format!("\"{b}\" is not an IP address to listen on"),
                    )
                })?,
            };
            Ok(Listen {
                bind,
                port,
                port_is_preference: false,
            })
        };
        match self {
            ForwardSpec::Local {
                bind,
                port,
                host,
                host_port,
            } => {
                let target = if host.starts_with('/') {
                    Target::UnixSocket { path: host.clone() }
                } else {
                    Target::Tcp {
                        host: host.clone(),
                        port: *host_port,
                    }
                };
                Tunnel::local_over(link, listen(self, bind, *port)?, target).await
            }
            ForwardSpec::Remote {
                bind,
                port,
                host,
                host_port,
            } => {
                let conn = link.current().ok_or_else(|| {
                    SshError::Closed("the host (no connection at the moment)".into())
                })?;
                Tunnel::remote(&conn, bind, *port, host, *host_port).await
            }
            ForwardSpec::Dynamic { bind, port } => {
                Tunnel::dynamic_over(link, listen(self, bind, *port)?).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_openssh_forward_syntax() {
        assert_eq!(
            ForwardSpec::parse_local("8888:localhost:8888").unwrap(),
            ForwardSpec::Local {
                bind: "127.0.0.1".into(),
                port: 8888,
                host: "localhost".into(),
                host_port: 8888
            }
        );
        assert_eq!(
            ForwardSpec::parse_local("[::1]:0:10.0.0.5:22").unwrap(),
            ForwardSpec::Local {
                bind: "::1".into(),
                port: 0,
                host: "10.0.0.5".into(),
                host_port: 22
            }
        );
        assert_eq!(
            ForwardSpec::parse_remote("9000:127.0.0.1:3000").unwrap(),
            ForwardSpec::Remote {
                bind: "127.0.0.1".into(),
                port: 9000,
                host: "127.0.0.1".into(),
                host_port: 3000
            }
        );
        assert_eq!(
            ForwardSpec::parse_dynamic("1080").unwrap(),
            ForwardSpec::Dynamic {
                bind: "127.0.0.1".into(),
                port: 1080
            }
        );
        for bad in ["8888", "x:host:1", "1:host:70000", "a:b:c:d:e"] {
            let err = ForwardSpec::parse_local(bad).unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
        assert!(ForwardSpec::parse_dynamic("1:2:3").is_err());
    }
}
