//! The authentication chain: agent, key files, password, keyboard-interactive.
//!
//! Each method is tried at most once per connection (a password up to three times, as OpenSSH
//! does), only when the server still accepts it, and partial success moves on to the next method.

use std::{path::PathBuf, sync::Arc};

use russh::{
    MethodKind,
    client::{AuthResult, Handle, KeyboardInteractiveAuthResponse},
    keys::{self, PrivateKeyWithHashAlg, agent::AgentIdentity},
};
use tokio::sync::broadcast;
use tracing::debug;

use super::{
    ConnectContext, ConnectionState, KbdPrompt, KbdRound, SecretQuestion, SshError,
    handler::ClientHandler, login_user,
};
use crate::{
    profile::{AuthMethod, Profile},
    secret::{SecretKey, SecretKind, Sensitive},
};

const PASSWORD_ATTEMPTS: usize = 3;
const MAX_KBD_ROUNDS: usize = 16;

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
    for method in order {
        let (kind, name) = match method {
            AuthMethod::Agent | AuthMethod::KeyFile => (MethodKind::PublicKey, "publickey"),
            AuthMethod::Password => (MethodKind::Password, "password"),
            AuthMethod::KeyboardInteractive => {
                (MethodKind::KeyboardInteractive, "keyboard-interactive")
            }
        };
        if !progress.allows(kind) {
            continue;
        }
        let _ = events.send(ConnectionState::Authenticating {
            destination: destination.clone(),
            method: name.to_string(),
        });
        let outcome = match method {
            AuthMethod::Agent => agent(handle, &user, &mut progress).await?,
            AuthMethod::KeyFile => key_files(handle, &user, hop, ctx, &mut progress).await?,
            AuthMethod::Password => password(handle, &user, hop, ctx, &mut progress).await?,
            AuthMethod::KeyboardInteractive => {
                keyboard_interactive(handle, &user, &destination, ctx, &mut progress).await?
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

async fn agent(
    handle: &mut Handle<ClientHandler>,
    user: &str,
    progress: &mut Progress,
) -> Result<Outcome, SshError> {
    let Some(mut agent) = connect_agent().await else {
        return Ok(Outcome::Next);
    };
    let identities = match agent.request_identities().await {
        Ok(ids) => ids,
        Err(e) => {
            debug!(error = %e, "ssh-agent did not list identities");
            return Ok(Outcome::Next);
        }
    };
    for identity in identities {
        let AgentIdentity::PublicKey { key, .. } = identity else {
            continue;
        };
        progress.tried.push("agent");
        let hash = rsa_hash(handle, key.algorithm().is_rsa()).await?;
        match handle
            .authenticate_publickey_with(user, key, hash, &mut agent)
            .await
        {
            Ok(r) => {
                if let Some(outcome) = result(progress, r) {
                    return Ok(outcome);
                }
            }
            Err(e) => debug!(error = ?e, "agent signature failed"),
        }
    }
    Ok(Outcome::Next)
}

/// The platform's ssh-agent: `SSH_AUTH_SOCK` on Unix; on Windows the OpenSSH named pipe, then
/// Pageant.
async fn connect_agent() -> Option<
    keys::agent::client::AgentClient<Box<dyn keys::agent::client::AgentStream + Send + Unpin>>,
> {
    #[cfg(unix)]
    {
        keys::agent::client::AgentClient::connect_env()
            .await
            .ok()
            .map(|a| a.dynamic())
    }
    #[cfg(windows)]
    {
        if let Ok(a) =
            keys::agent::client::AgentClient::connect_named_pipe(r"\\.\pipe\openssh-ssh-agent")
                .await
        {
            return Some(a.dynamic());
        }
        keys::agent::client::AgentClient::connect_pageant()
            .await
            .ok()
            .map(|a| a.dynamic())
    }
}

async fn rsa_hash(
    handle: &Handle<ClientHandler>,
    is_rsa: bool,
) -> Result<Option<keys::HashAlg>, SshError> {
    // Only RSA needs this, and it can wait up to 1 s for the server's EXT_INFO.
    if !is_rsa {
        return Ok(None);
    }
    Ok(handle
        .best_supported_rsa_hash()
        .await?
        .flatten()
        .or(Some(keys::HashAlg::Sha256)))
}

fn default_identity_files() -> Vec<PathBuf> {
    let Some(dirs) = directories::BaseDirs::new() else {
        return Vec::new();
    };
    let ssh = dirs.home_dir().join(".ssh");
    ["id_ed25519", "id_ecdsa", "id_rsa"]
        .iter()
        .map(|f| ssh.join(f))
        .filter(|p| p.exists())
        .collect()
}

async fn key_files(
    handle: &mut Handle<ClientHandler>,
    user: &str,
    hop: &Profile,
    ctx: &ConnectContext,
    progress: &mut Progress,
) -> Result<Outcome, SshError> {
    let explicit = !hop.identity_files.is_empty();
    let files: Vec<PathBuf> = if explicit {
        hop.identity_files
            .iter()
            .map(|p| crate::profile::expand_home(p))
            .collect()
    } else {
        default_identity_files()
    };
    for path in files {
        let Some((key, remember)) = load_key(&path, hop, ctx, explicit).await? else {
            continue;
        };
        progress.tried.push("publickey");
        let hash = rsa_hash(handle, key.algorithm().is_rsa()).await?;
        let r = handle
            .authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::new(key), hash))
            .await?;
        let success = r.success();
        if let (true, Some(passphrase)) = (success, remember) {
            store(
                ctx,
                &hop.name,
                SecretKind::Passphrase(path.display().to_string()),
                &passphrase,
            );
        }
        if let Some(outcome) = result(progress, r) {
            return Ok(outcome);
        }
    }
    Ok(Outcome::Next)
}

/// Loads a key file, asking for its passphrase when it is encrypted. Returns the passphrase to
/// remember when the human asked for that. A missing default key is skipped; a missing explicit
/// key is an error.
async fn load_key(
    path: &std::path::Path,
    hop: &Profile,
    ctx: &ConnectContext,
    explicit: bool,
) -> Result<Option<(keys::PrivateKey, Option<Sensitive<String>>)>, SshError> {
    let key_error = |message: String| SshError::KeyFile {
        path: path.display().to_string(),
        message,
    };
    if !path.exists() {
        return if explicit {
            Err(key_error("the file does not exist".into()))
        } else {
            Ok(None)
        };
    }
    match keys::load_secret_key(path, None) {
        Ok(key) => return Ok(Some((key, None))),
        Err(e) if is_encrypted(&e) => {}
        Err(e) => return Err(key_error(e.to_string())),
    }
    let secret_key = SecretKey {
        profile: hop.name.clone(),
        kind: SecretKind::Passphrase(path.display().to_string()),
    };
    if let Some(stored) = retrieve(ctx, &secret_key)
        && let Ok(key) = keys::load_secret_key(path, Some(stored.expose()))
    {
        return Ok(Some((key, None)));
    }
    for attempt in 0..PASSWORD_ATTEMPTS {
        let question = SecretQuestion::Passphrase {
            path: path.display().to_string(),
            retry: attempt > 0,
        };
        let Some(answer) = ctx.prompter.secret(&question).await else {
            return if explicit {
                Err(key_error(
                    "the key is encrypted and no passphrase was given".into(),
                ))
            } else {
                Ok(None)
            };
        };
        match keys::load_secret_key(path, Some(answer.value.expose())) {
            Ok(key) => return Ok(Some((key, answer.remember.then_some(answer.value)))),
            Err(e) => debug!(error = %e, "passphrase rejected"),
        }
    }
    Err(key_error("wrong passphrase".into()))
}

/// Whether loading failed only for want of a passphrase. OpenSSH-format keys say so with
/// `KeyIsEncrypted`; PuTTY keys only through ssh-key's PPK error.
fn is_encrypted(e: &keys::Error) -> bool {
    match e {
        keys::Error::KeyIsEncrypted => true,
        keys::Error::SshKey(inner) => inner.to_string().contains("encrypted"),
        _ => false,
    }
}

async fn password(
    handle: &mut Handle<ClientHandler>,
    user: &str,
    hop: &Profile,
    ctx: &ConnectContext,
    progress: &mut Progress,
) -> Result<Outcome, SshError> {
    let secret_key = SecretKey {
        profile: hop.name.clone(),
        kind: SecretKind::Password,
    };
    if let Some(stored) = retrieve(ctx, &secret_key) {
        progress.tried.push("password");
        let r = handle
            .authenticate_password(user, stored.expose().as_str())
            .await?;
        if let Some(outcome) = result(progress, r) {
            return Ok(outcome);
        }
    }
    for attempt in 0..PASSWORD_ATTEMPTS {
        let question = SecretQuestion::Password {
            user: user.to_string(),
            host: hop.host.clone(),
            retry: attempt > 0 || progress.tried.contains(&"password"),
        };
        let Some(answer) = ctx.prompter.secret(&question).await else {
            break;
        };
        progress.tried.push("password");
        let r = handle
            .authenticate_password(user, answer.value.expose().as_str())
            .await?;
        if r.success() && answer.remember {
            store(ctx, &hop.name, SecretKind::Password, &answer.value);
        }
        if let Some(outcome) = result(progress, r) {
            return Ok(outcome);
        }
        if !progress.allows(MethodKind::Password) {
            break;
        }
    }
    Ok(Outcome::Next)
}

async fn keyboard_interactive(
    handle: &mut Handle<ClientHandler>,
    user: &str,
    destination: &str,
    ctx: &ConnectContext,
    progress: &mut Progress,
) -> Result<Outcome, SshError> {
    progress.tried.push("keyboard-interactive");
    let mut response = handle
        .authenticate_keyboard_interactive_start(user, None::<String>)
        .await?;
    for _ in 0..MAX_KBD_ROUNDS {
        match response {
            KeyboardInteractiveAuthResponse::Success => return Ok(Outcome::Success),
            KeyboardInteractiveAuthResponse::Failure {
                remaining_methods,
                partial_success,
            } => {
                progress.failed(&remaining_methods, partial_success);
                return Ok(Outcome::Next);
            }
            KeyboardInteractiveAuthResponse::InfoRequest {
                name,
                instructions,
                prompts,
            } => {
                let round = KbdRound {
                    destination: destination.to_string(),
                    name,
                    instructions,
                    prompts: prompts
                        .into_iter()
                        .map(|p| KbdPrompt {
                            prompt: p.prompt,
                            echo: p.echo,
                        })
                        .collect(),
                };
                let answers = if round.prompts.is_empty() {
                    Vec::new()
                } else {
                    match ctx.prompter.keyboard_interactive(&round).await {
                        Some(a) if a.len() == round.prompts.len() => a,
                        _ => return Ok(Outcome::Next),
                    }
                };
                let answers = answers.iter().map(|a| a.expose().clone()).collect();
                response = handle
                    .authenticate_keyboard_interactive_respond(answers)
                    .await?;
            }
        }
    }
    Ok(Outcome::Next)
}

fn retrieve(ctx: &ConnectContext, key: &SecretKey) -> Option<Sensitive<String>> {
    let store = ctx.secrets.as_ref()?;
    match store.retrieve(key) {
        Ok(v) => v,
        Err(e) => {
            debug!(error = %e, "keychain read failed");
            None
        }
    }
}

fn store(ctx: &ConnectContext, profile: &str, kind: SecretKind, value: &Sensitive<String>) {
    if let Some(store) = &ctx.secrets {
        let key = SecretKey {
            profile: profile.to_string(),
            kind,
        };
        if let Err(e) = store.persist(&key, value) {
            tracing::warn!(error = %e, "could not remember the secret in the keychain");
        }
    }
}
