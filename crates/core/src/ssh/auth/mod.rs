//! The authentication chain: agent, key files, password, keyboard-interactive.
//!
//! Each method is tried at most once per connection (a password up to three times, as OpenSSH
//! does), only when the server still accepts it, and partial success moves on to the next method.
//! PAM's keyboard-interactive `Password:` prompt is answered as the password (see
//! `is_password_round`).

mod password;
mod publickey;

use russh::{
    MethodKind,
    client::{AuthResult, Handle},
};
use tokio::sync::broadcast;
use tracing::debug;

use super::{ConnectContext, ConnectionState, SshError, handler::ClientHandler, login_user};
use crate::profile::{AuthMethod, Profile};

/// Tries of a password or a key's passphrase, as OpenSSH's `NumberOfPasswordPrompts`.
const PASSWORD_ATTEMPTS: usize = 3;

/// What the server told us after a failed attempt.
struct Progress {
    /// Methods the server still accepts (`None` until the first failure tells us).
    remaining: Option<Vec<MethodKind>>,
    tried: Vec<&'static str>,
}

impl Progress {
    fn allows(&self, kind: MethodKind) -> bool {
        self.remaining.as_ref().is_none_or(|r| r.contains(&kind))
    }

    /// Records a failure; returns true when the server reported partial success.
    fn failed(&mut self, remaining_methods: &[MethodKind], partial_success: bool) -> bool {
        self.remaining = Some(remaining_methods.to_vec());
        partial_success
    }
}

enum Outcome {
    Success,
    /// Move on to the next method.
    Next,
}

/// Authenticates `handle` as the hop's user, or fails with a message naming what was tried.
pub(super) async fn authenticate(
    handle: &mut Handle<ClientHandler>,
    hop: &Profile,
    ctx: &ConnectContext,
    events: &broadcast::Sender<ConnectionState>,
) -> Result<(), SshError> {
    let user = login_user(hop);
    let destination = format!("{user}@{}", hop.host);
    let order: Vec<AuthMethod> = if hop.auth.is_empty() {
        AuthMethod::DEFAULT_ORDER.to_vec()
    } else {
        hop.auth.clone()
    };
    let mut progress = Progress {
        remaining: None,
        tried: Vec::new(),
    };
    // Like OpenSSH, ask with "none" first: the server answers with the methods it accepts, so a
    // password is never offered to a server that only asks through keyboard-interactive.
    let none = handle.authenticate_none(user.clone()).await?;
    if let Some(Outcome::Success) = result(&mut progress, none) {
        return Ok(());
    }
    let mut publickey_done = false;
    for method in order.iter().copied() {
        let (kind, name) = match method {
            AuthMethod::Agent | AuthMethod::KeyFile => (MethodKind::PublicKey, "publickey"),
            AuthMethod::Password => (MethodKind::Password, "password"),
            AuthMethod::KeyboardInteractive => {
                (MethodKind::KeyboardInteractive, "keyboard-interactive")
            }
        };
        if !progress.allows(kind) || (kind == MethodKind::PublicKey && publickey_done) {
            continue;
        }
        let _ = events.send(ConnectionState::Authenticating {
            destination: destination.clone(),
            method: name.to_string(),
        });
        let outcome = match method {
            AuthMethod::Agent | AuthMethod::KeyFile => {
                // Agent and key files are one publickey pass, in OpenSSH's identity order.
                publickey_done = true;
                let sources = publickey::Sources {
                    agent: order_has(&order, AuthMethod::Agent),
                    files: order_has(&order, AuthMethod::KeyFile),
                };
                publickey::publickey(handle, &user, hop, ctx, &mut progress, sources).await?
            }
            AuthMethod::Password => {
                password::password(handle, &user, hop, ctx, &mut progress).await?
            }
            AuthMethod::KeyboardInteractive => {
                password::keyboard_interactive(handle, &user, hop, &destination, ctx, &mut progress)
                    .await?
            }
        };
        if let Outcome::Success = outcome {
            debug!(%destination, method = name, "authenticated");
            return Ok(());
        }
    }
    let _ = handle
        .disconnect(russh::Disconnect::ByApplication, "", "en")
        .await;
    let accepted = match &progress.remaining {
        Some(r) if !r.is_empty() => r.iter().map(<&str>::from).collect::<Vec<_>>().join(", "),
        Some(_) => "none".to_string(),
        None => "unknown".to_string(),
    };
    let mut tried = progress.tried.clone();
    tried.dedup();
    Err(SshError::AuthFailed {
        user,
        host: hop.host.clone(),
        tried: if tried.is_empty() {
            "nothing usable".into()
        } else {
            tried.join(", ")
        },
        accepted,
    })
}

fn result(progress: &mut Progress, result: AuthResult) -> Option<Outcome> {
    match result {
        AuthResult::Success => Some(Outcome::Success),
        AuthResult::Failure {
            remaining_methods,
            partial_success,
        } => progress
            .failed(&remaining_methods, partial_success)
            .then_some(Outcome::Next),
    }
}

fn order_has(order: &[AuthMethod], method: AuthMethod) -> bool {
    order.contains(&method)
}
