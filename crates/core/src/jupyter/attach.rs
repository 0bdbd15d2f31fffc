//! Server tokens (kept per server, found on the host or asked of Jupyter) and attaching a
//! tunnel to a running server.

use std::{fmt, net::SocketAddr, sync::Arc};

use super::{
    Host, JupyterError, JupyterServer, http,
    listing::{Listing, find, list_with_tokens},
};
use crate::{
    secret::{SecretKey, SecretKind, SecretStore, Sensitive},
    tunnel::{Link, Listen, Target, Tunnel},
};

/// `SecretKind::JupyterToken(server id)` of one profile, when a keychain is available.
#[derive(Clone)]
pub struct TokenStore {
    /// The keychain, if any.
    pub store: Option<Arc<dyn SecretStore>>,
    /// The profile the servers belong to.
    pub profile: String,
}

impl fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenStore")
            .field("keychain", &self.store.is_some())
            .field("profile", &self.profile)
            .finish()
    }
}

impl TokenStore {
    fn key(&self, id: &str) -> SecretKey {
        SecretKey {
            profile: self.profile.clone(),
            kind: SecretKind::JupyterToken(id.to_string()),
        }
    }

    /// Keeps a server's token (a no-op without a keychain; failures are logged, not fatal:
    /// `jupyter server list` can still give it back).
    pub fn remember(&self, id: &str, token: &Sensitive<String>) {
        if let Some(store) = &self.store
            && let Err(e) = store.persist(&self.key(id), token)
        {
            tracing::warn!(error = %e, server = id, "cannot keep the Jupyter token in the keychain");
        }
    }

    /// The remembered token of a server.
    pub fn retrieve(&self, id: &str) -> Option<Sensitive<String>> {
        self.store
            .as_ref()
            .and_then(|s| s.retrieve(&self.key(id)).ok().flatten())
    }

    /// Forgets a server's token.
    pub fn forget(&self, id: &str) {
        if let Some(store) = &self.store {
            let _ = store.delete(&self.key(id));
        }
    }
}

/// The token of `server`: from the keychain, else read on the host as the same user (the
/// server's own environment or Jupyter's server file, one round trip), else from
/// `jupyter server list --json` (starts Python). Never from a log.
pub async fn token_for(
    host: &Host,
    server: &JupyterServer,
    tokens: &TokenStore,
    configured_env: Option<&str>,
) -> Result<Sensitive<String>, JupyterError> {
    if let Some(t) = tokens.retrieve(&server.id) {
        return Ok(t);
    }
    for ask_jupyter in [false, true] {
        let how = Listing {
            tokens: true,
            ask_jupyter,
        };
        if let Some(t) = list_with_tokens(host, configured_env, how)
            .await?
            .into_iter()
            .find(|(s, _)| s.pid == server.pid)
            .and_then(|(_, t)| t)
        {
            return Ok(t);
        }
    }
    Err(JupyterError::NoToken {
        id: server.id.clone(),
    })
}

/// One running server (see [`find`] for `id`) and its token, in one round trip when the host
/// can tell the token (Tunnelbook's servers on Linux, and any server whose Jupyter server file
/// holds it); else from the keychain, else by asking Jupyter ([`token_for`]). What `attach` and
/// the app's Reopen need.
///
/// # Errors
/// [`JupyterError::NotFound`] when no running server matches, [`JupyterError::NoToken`] when
/// no token is known, and the connection's errors.
pub async fn find_with_token(
    host: &Host,
    id: Option<&str>,
    tokens: &TokenStore,
    configured_env: Option<&str>,
) -> Result<(JupyterServer, Sensitive<String>), JupyterError> {
    let how = Listing {
        tokens: true,
        ask_jupyter: false,
    };
    let listed = list_with_tokens(host, configured_env, how).await?;
    let servers: Vec<JupyterServer> = listed.iter().map(|(s, _)| s.clone()).collect();
    let server = find(&host.name(), &servers, id)?.clone();
    let token = listed
        .into_iter()
        .find(|(s, _)| s.pid == server.pid)
        .and_then(|(_, t)| t);
    match token {
        Some(t) => Ok((server, t)),
        None => {
            let t = token_for(host, &server, tokens, configured_env).await?;
            Ok((server, t))
        }
    }
}

/// Reattaches to a running server: finds server `id` (see [`find`]) and its token in one round
/// trip ([`find_with_token`]), forwards it on `listen(server)` ([`attach`]) and hands it out only
/// once it answers through the tunnel ([`check_answers`]); else the tunnel is closed again.
/// `attach`, the app's Reopen and the tray's reopen all go through here.
///
/// # Errors
/// Those of [`find_with_token`], [`attach`] and [`check_answers`].
pub async fn reattach(
    host: &Host,
    id: Option<&str>,
    tokens: &TokenStore,
    configured_env: Option<&str>,
    listen: impl FnOnce(&JupyterServer) -> Listen,
) -> Result<(JupyterServer, Attached), JupyterError> {
    reattach_over(host, None, id, tokens, configured_env, listen).await
}

/// Like [`reattach`], forwarding over whatever connection `link` holds (when given: a host
/// session's [`crate::host::HostSession::link`]), so the local port keeps working after the
/// host session reconnects. The app's Reopen goes through here.
///
/// # Errors
/// Those of [`reattach`].
pub async fn reattach_over(
    host: &Host,
    link: Option<&Link>,
    id: Option<&str>,
    tokens: &TokenStore,
    configured_env: Option<&str>,
    listen: impl FnOnce(&JupyterServer) -> Listen,
) -> Result<(JupyterServer, Attached), JupyterError> {
    let (server, token) = find_with_token(host, id, tokens, configured_env).await?;
    let attached = attach_over(host, link, &server, &token, listen(&server)).await?;
    if let Err(e) = check_answers(&server, attached.local_addr, &token).await {
        if let Some(t) = attached.tunnel {
            t.close().await;
        }
        return Err(e);
    }
    Ok((server, attached))
}

/// [`reattach_over`] on the local port `book` remembers for the server (the same as last time
/// when it is free: bookmarks and open tabs keep working), remembered again once it answers.
///
/// # Errors
/// Those of [`reattach`].
pub async fn reopen(
    host: &Host,
    link: Option<&Link>,
    id: Option<&str>,
    tokens: &TokenStore,
    configured_env: Option<&str>,
    book: &super::PortBook,
) -> Result<(JupyterServer, Attached), JupyterError> {
    let listen = |s: &JupyterServer| book.listen(&tokens.profile, &s.id);
    let (server, attached) = reattach_over(host, link, id, tokens, configured_env, listen).await?;
    if let Err(e) = book.remember(&tokens.profile, &server.id, attached.local_addr.port()) {
        tracing::debug!(error = %e, "cannot remember the notebook's local port");
    }
    Ok((server, attached))
}

/// Checks that the server behind `addr` (an [`Attached::local_addr`]) answers
/// `GET /api/status` with `token`: one request through the tunnel, so the URL handed out works.
///
/// # Errors
/// [`JupyterError::TokenRejected`] on 401/403, [`JupyterError::Unreachable`] when it does not
/// answer (within 10 s) or answers something else.
pub async fn check_answers(
    server: &JupyterServer,
    addr: SocketAddr,
    token: &Sensitive<String>,
) -> Result<(), JupyterError> {
    let path = format!("{}api/status", server.base_url);
    match http::request(addr, "GET", &path, Some(token)).await {
        Ok(r) if r.status == 200 => Ok(()),
        Ok(r) if r.status == 401 || r.status == 403 => {
            Err(JupyterError::TokenRejected { status: r.status })
        }
        Ok(r) => Err(JupyterError::Unreachable {
            id: server.id.clone(),
            detail: format!("it answered HTTP {} to {path}", r.status),
        }),
        Err(e) => Err(JupyterError::Unreachable {
            id: server.id.clone(),
            detail: format!("it does not answer through the tunnel ({e}); see `tunnelbook ls`"),
        }),
    }
}

/// A server made reachable from this computer.
pub struct Attached {
    /// The forward (`None` on this computer, where the server's own port is used).
    pub tunnel: Option<Tunnel>,
    /// Where the browser connects.
    pub local_addr: SocketAddr,
    /// `http://127.0.0.1:PORT/lab?token=…` — holds the token: show it to the user, never log it.
    pub url: String,
}

impl fmt::Debug for Attached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attached")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

/// Opens a local listener on `listen` forwarding to `server` (or, on this computer, uses its own
/// port) and builds the browser URL.
pub async fn attach(
    host: &Host,
    server: &JupyterServer,
    token: &Sensitive<String>,
    listen: Listen,
) -> Result<Attached, JupyterError> {
    attach_over(host, None, server, token, listen).await
}

/// Like [`attach`], forwarding over whatever connection `link` holds (when given), so the local
/// port outlives the connection (see [`Link`]).
pub async fn attach_over(
    host: &Host,
    link: Option<&Link>,
    server: &JupyterServer,
    token: &Sensitive<String>,
    listen: Listen,
) -> Result<Attached, JupyterError> {
    let (tunnel, local_addr) = match (host, &server.endpoint) {
        (Host::Ssh(conn), target) => {
            let link = link.cloned().unwrap_or_else(|| Link::fixed(conn));
            let t = Tunnel::local_over(&link, listen, target.clone()).await?;
            let addr = t.local_addr().ok_or_else(|| JupyterError::Unreachable {
                id: server.id.clone(),
                detail: "the tunnel has no local address".into(),
            })?;
            (Some(t), addr)
        }
        (Host::Local, Target::Tcp { host, port }) => {
            let ip = host.parse().unwrap_or(std::net::Ipv4Addr::LOCALHOST.into());
            (None, SocketAddr::new(ip, *port))
        }
        (Host::Local, Target::UnixSocket { path }) => {
            return Err(JupyterError::Unreachable {
                id: server.id.clone(),
                detail: format!(
                    "it listens on the Unix socket {path}, which a browser cannot open"
                ),
            });
        }
    };
    Ok(Attached {
        tunnel,
        local_addr,
        url: server.url(local_addr.port(), token),
    })
}
