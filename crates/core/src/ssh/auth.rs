//! The authentication chain: agent, key files, password, keyboard-interactive.
//!
//! Each method is tried at most once per connection (a password up to three times, as OpenSSH
//! does), only when the server still accepts it, and partial success moves on to the next method.
//! PAM's keyboard-interactive `Password:` prompt is answered as the password (see
//! `is_password_round`).

use std::{path::PathBuf, sync::Arc};

use russh::{
    MethodKind,
    client::{AuthResult, Handle, KeyboardInteractiveAuthResponse},
    keys::{self, PrivateKeyWithHashAlg, agent::AgentIdentity},
};
use tokio::sync::broadcast;
use tracing::{debug, warn};

use super::{
    ConnectContext, ConnectionState, KbdPrompt, KbdRound, SecretQuestion, SshError,
    handler::ClientHandler, login_user,
};
use crate::{
    profile::{AuthMethod, Profile},
    secret::{SecretKey, Sensitive},
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
                let sources = Sources {
                    agent: order_has(&order, AuthMethod::Agent),
                    files: order_has(&order, AuthMethod::KeyFile),
                };
                publickey(handle, &user, hop, ctx, &mut progress, sources).await?
            }
            AuthMethod::Password => password(handle, &user, hop, ctx, &mut progress).await?,
            AuthMethod::KeyboardInteractive => {
                keyboard_interactive(handle, &user, hop, &destination, ctx, &mut progress).await?
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

/// Where public keys may come from in a publickey pass.
#[derive(Clone, Copy)]
struct Sources {
    /// The ssh-agent's keys.
    agent: bool,
    /// Key files (the profile's, else the default `~/.ssh/id_*`).
    files: bool,
}

type Agent =
    keys::agent::client::AgentClient<Box<dyn keys::agent::client::AgentStream + Send + Unpin>>;

/// One publickey pass, identities in this order (so an agent holding many keys does not use up
/// the server's `MaxAuthTries` before the configured key):
/// 1. the profile's `IdentityFile`s, signed by the agent when it holds them, else loaded from
///    the file (passphrase asked);
/// 2. the agent's other keys — unless `IdentitiesOnly`;
/// 3. without configured files, the default `~/.ssh/id_*` files the agent does not hold.
async fn publickey(
    handle: &mut Handle<ClientHandler>,
    user: &str,
    hop: &Profile,
    ctx: &ConnectContext,
    progress: &mut Progress,
    sources: Sources,
) -> Result<Outcome, SshError> {
    let mut agent = if sources.agent {
        connect_agent().await
    } else {
        None
    };
    let agent_keys: Vec<keys::PublicKey> = match agent.as_mut() {
        Some(a) => match a.request_identities().await {
            Ok(ids) => ids
                .into_iter()
                .filter_map(|id| match id {
                    AgentIdentity::PublicKey { key, .. } => Some(key),
                    _ => None,
                })
                .collect(),
            Err(e) => {
                debug!(error = %e, "ssh-agent did not list identities");
                Vec::new()
            }
        },
        None => Vec::new(),
    };
    let mut agent_used = vec![false; agent_keys.len()];
    let accepted = Accepted::of(hop);
    let explicit = !hop.identity_files.is_empty();
    let configured: Vec<PathBuf> = hop
        .identity_files
        .iter()
        .map(|p| crate::profile::expand_home(p))
        .collect();
    let defaults = if explicit {
        Vec::new()
    } else {
        default_identity_files()
    };

    // 1. Configured files.
    for path in &configured {
        if let Some(i) = file_public_key(path).and_then(|public| {
            agent_keys
                .iter()
                .position(|k| k.key_data() == public.key_data())
        }) && let Some(agent) = agent.as_mut()
        {
            agent_used[i] = true;
            if let Some(outcome) =
                agent_attempt(handle, user, &agent_keys[i], agent, progress, &accepted).await?
            {
                return Ok(outcome);
            }
            continue;
        }
        if sources.files
            && let Some(outcome) =
                file_attempt(handle, user, path, hop, ctx, progress, true).await?
        {
            return Ok(outcome);
        }
    }
    // 2. The agent's other keys.
    if !hop.identities_only
        && let Some(agent) = agent.as_mut()
    {
        for (i, key) in agent_keys.iter().enumerate() {
            if agent_used[i] {
                continue;
            }
            agent_used[i] = true;
            if let Some(outcome) =
                agent_attempt(handle, user, key, agent, progress, &accepted).await?
            {
                return Ok(outcome);
            }
        }
    }
    // 3. Default files not already offered through the agent.
    if sources.files {
        for path in &defaults {
            let held = file_public_key(path).is_some_and(|public| {
                agent_keys
                    .iter()
                    .zip(&agent_used)
                    .any(|(k, used)| *used && k.key_data() == public.key_data())
            });
            if held {
                continue;
            }
            if let Some(outcome) =
                file_attempt(handle, user, path, hop, ctx, progress, false).await?
            {
                return Ok(outcome);
            }
        }
    }
    Ok(Outcome::Next)
}

/// The public half of a key file without its passphrase: `FILE.pub`, else the public key an
/// OpenSSH-format private key carries in the clear.
fn file_public_key(path: &std::path::Path) -> Option<keys::PublicKey> {
    let mut pub_path = path.as_os_str().to_owned();
    pub_path.push(".pub");
    if let Ok(text) = std::fs::read_to_string(PathBuf::from(pub_path))
        && let Ok(key) = keys::PublicKey::from_openssh(text.trim())
    {
        return Some(key);
    }
    let text = std::fs::read_to_string(path).ok()?;
    keys::ssh_key::PrivateKey::from_openssh(text.trim())
        .ok()
        .map(|k| k.public_key().clone())
}

/// Offers one agent key; `Some` ends the pass (success, or partial success moving on).
async fn agent_attempt(
    handle: &mut Handle<ClientHandler>,
    user: &str,
    key: &keys::PublicKey,
    agent: &mut Agent,
    progress: &mut Progress,
    accepted: &Accepted,
) -> Result<Option<Outcome>, SshError> {
    if !progress.allows(MethodKind::PublicKey) {
        return Ok(Some(Outcome::Next));
    }
    let Some((mut hash, mut legacy)) = rsa_hash(handle, &key.algorithm(), accepted).await? else {
        debug!(algorithm = %key.algorithm(), "agent key not offered: not in PubkeyAcceptedAlgorithms");
        return Ok(None);
    };
    progress.tried.push("agent");
    loop {
        match handle
            .authenticate_publickey_with(user, key.clone(), hash, agent)
            .await
        {
            Ok(r) => {
                if let AuthResult::Failure {
                    remaining_methods, ..
                } = &r
                {
                    progress.remaining = Some(remaining_methods.to_vec());
                }
                if legacy_rsa_retry(legacy, &r, progress) {
                    (hash, legacy) = (None, false);
                    continue;
                }
                return Ok(result(progress, r));
            }
            Err(e) => {
                debug!(error = ?e, "agent signature failed");
                return Ok(None);
            }
        }
    }
}

/// Offers one key file (asking for its passphrase when needed); `Some` ends the pass.
async fn file_attempt(
    handle: &mut Handle<ClientHandler>,
    user: &str,
    path: &std::path::Path,
    hop: &Profile,
    ctx: &ConnectContext,
    progress: &mut Progress,
    explicit: bool,
) -> Result<Option<Outcome>, SshError> {
    if !progress.allows(MethodKind::PublicKey) {
        return Ok(Some(Outcome::Next));
    }
    // Keys of a type PubkeyAcceptedAlgorithms leaves out are not offered (nor unlocked).
    let accepted = Accepted::of(hop);
    let offered = |algorithm: &keys::Algorithm| {
        let yes = accepted.key(algorithm);
        if !yes {
            debug!(path = %path.display(), %algorithm, "key not offered: not in PubkeyAcceptedAlgorithms");
        }
        yes
    };
    if file_public_key(path).is_some_and(|public| !offered(&public.algorithm())) {
        return Ok(None);
    }
    let Some((key, remember)) = load_key(path, hop, ctx, explicit).await? else {
        return Ok(None);
    };
    if !offered(&key.algorithm()) {
        return Ok(None);
    }
    let key = Arc::new(key);
    let remember = |success: bool| {
        if let (true, Some(passphrase)) = (success, &remember) {
            store(ctx, &SecretKey::passphrase(&hop.name, path), passphrase);
        }
    };
    // Like OpenSSH, a certificate of the key (`FILE-cert.pub`, or a `CertificateFile`) is
    // offered before the plain key.
    for cert in certificates_for(path, hop, key.public_key())
        .into_iter()
        .filter(|c| accepted.certificate(&c.algorithm()))
    {
        progress.tried.push("publickey");
        let r = handle
            .authenticate_openssh_cert(user, key.clone(), cert)
            .await?;
        remember(r.success());
        if let Some(outcome) = result(progress, r) {
            return Ok(Some(outcome));
        }
        if !progress.allows(MethodKind::PublicKey) {
            return Ok(Some(Outcome::Next));
        }
    }
    let Some((hash, legacy)) = rsa_hash(handle, &key.algorithm(), &accepted).await? else {
        return Ok(None);
    };
    progress.tried.push("publickey");
    let mut r = handle
        .authenticate_publickey(user, PrivateKeyWithHashAlg::new(key.clone(), hash))
        .await?;
    if let AuthResult::Failure {
        remaining_methods, ..
    } = &r
    {
        progress.remaining = Some(remaining_methods.to_vec());
    }
    if legacy_rsa_retry(legacy, &r, progress) {
        r = handle
            .authenticate_publickey(user, PrivateKeyWithHashAlg::new(key, None))
            .await?;
    }
    remember(r.success());
    Ok(result(progress, r))
}

/// The certificates for `key`: `FILE-cert.pub` beside its file, then the profile's
/// `certificate_files` that certify it (unreadable or other keys' certificates skipped).
fn certificates_for(
    path: &std::path::Path,
    hop: &Profile,
    key: &keys::PublicKey,
) -> Vec<keys::Certificate> {
    let mut beside = path.as_os_str().to_owned();
    beside.push("-cert.pub");
    std::iter::once(PathBuf::from(beside))
        .chain(
            hop.certificate_files
                .iter()
                .map(|p| crate::profile::expand_home(p)),
        )
        .filter_map(|p| std::fs::read_to_string(&p).ok())
        .filter_map(|text| keys::Certificate::from_openssh(text.trim()).ok())
        .filter(|cert| cert.public_key() == key.key_data())
        .collect()
}

/// The platform's ssh-agent: `SSH_AUTH_SOCK` on Unix; on Windows the OpenSSH named pipe, then
/// Pageant.
async fn connect_agent() -> Option<Agent> {
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

/// The hop's `PubkeyAcceptedAlgorithms`: the signature algorithms a key may be offered with.
/// Not set: every algorithm Tunnelbook implements (legacy `ssh-rsa` included, for old servers).
struct Accepted(Option<Vec<String>>);

impl Accepted {
    fn of(hop: &Profile) -> Self {
        Self(
            hop.pubkey_accepted_algorithms
                .as_deref()
                .and_then(|spec| crate::profile::assemble_key_algorithms(spec).ok()),
        )
    }

    fn allows(&self, name: &str) -> bool {
        self.0
            .as_ref()
            .is_none_or(|list| list.iter().any(|a| a == name))
    }

    /// Whether a plain key of this type may be offered with some signature algorithm.
    fn key(&self, algorithm: &keys::Algorithm) -> bool {
        if matches!(algorithm, keys::Algorithm::Rsa { .. }) {
            RSA_SIGNATURES.iter().any(|(name, _)| self.allows(name))
        } else {
            self.allows(algorithm.as_str())
        }
    }

    /// Whether a certificate of this key type may be offered.
    fn certificate(&self, algorithm: &keys::Algorithm) -> bool {
        if matches!(algorithm, keys::Algorithm::Rsa { .. }) {
            RSA_SIGNATURES
                .iter()
                .any(|(name, _)| self.allows(&format!("{name}-cert-v01@openssh.com")))
        } else {
            self.allows(&algorithm.to_certificate_type())
        }
    }
}

/// RSA signature algorithms, best first, with the hash each signs with.
const RSA_SIGNATURES: [(&str, Option<keys::HashAlg>); 3] = [
    ("rsa-sha2-512", Some(keys::HashAlg::Sha512)),
    ("rsa-sha2-256", Some(keys::HashAlg::Sha256)),
    ("ssh-rsa", None),
];

/// The signature hash for a key, `None` when `accepted` allows none the server may take (the
/// key is then not offered). `Some((None, _))` for non-RSA keys and for servers that accept
/// only `ssh-rsa`; for RSA the best SHA-2 the server lists in `server-sig-algs` (or the next
/// one `accepted` allows). The flag says the server listed no RSA algorithm at all (OpenSSH
/// before 7.2 sends no `server-sig-algs`): SHA-256 is tried, and legacy `ssh-rsa` after it if
/// refused.
async fn rsa_hash(
    handle: &Handle<ClientHandler>,
    algorithm: &keys::Algorithm,
    accepted: &Accepted,
) -> Result<Option<(Option<keys::HashAlg>, bool)>, SshError> {
    if !accepted.key(algorithm) {
        return Ok(None);
    }
    // Only RSA needs this, and it can wait up to 1 s for the server's EXT_INFO.
    if !matches!(algorithm, keys::Algorithm::Rsa { .. }) {
        return Ok(Some((None, false)));
    }
    let allowed = |hash: Option<keys::HashAlg>| {
        RSA_SIGNATURES
            .iter()
            .any(|(name, h)| *h == hash && accepted.allows(name))
    };
    Ok(match handle.best_supported_rsa_hash().await? {
        // The server's best, else a weaker one it also takes (OpenSSH servers list all).
        Some(Some(best)) => RSA_SIGNATURES
            .iter()
            .map(|(_, h)| *h)
            .skip_while(|h| *h != Some(best))
            .find(|h| allowed(*h))
            .map(|h| (h, false)),
        Some(None) if allowed(None) => {
            warn!(
                "the server accepts only legacy ssh-rsa (SHA-1) signatures: it is old, ask its \
                 administrators to update OpenSSH"
            );
            Some((None, false))
        }
        Some(None) => None,
        None if allowed(Some(keys::HashAlg::Sha256)) => {
            Some((Some(keys::HashAlg::Sha256), allowed(None)))
        }
        None => allowed(None).then_some((None, false)),
    })
}

/// After a refused SHA-256 RSA signature to a server that listed no signature algorithms:
/// whether to retry with legacy `ssh-rsa`, saying why.
fn legacy_rsa_retry(legacy: bool, r: &AuthResult, progress: &Progress) -> bool {
    let retry = legacy && !r.success() && progress.allows(MethodKind::PublicKey);
    if retry {
        warn!(
            "the server sent no server-sig-algs and refused the RSA key signed with SHA-256: it is \
             old (OpenSSH before 7.2?); retrying with legacy ssh-rsa (SHA-1). Ask its \
             administrators to update OpenSSH"
        );
    }
    retry
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
    let secret_key = SecretKey::passphrase(&hop.name, path);
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
    // Tied to this user@host:port: a password remembered for another server under the same
    // name is never sent here.
    let secret_key = hop.password_key();
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
            store(ctx, &secret_key, &answer.value);
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

/// Keyboard-interactive, up to three times when the password was wrong (OpenSSH's
/// `NumberOfPasswordPrompts`).
///
/// A round that is PAM's single hidden `Password:` prompt is the login password to the user (as
/// PuTTY, Bitvise and OpenSSH with an askpass helper treat it): it is answered like the
/// `password` method — the remembered password first, then [`SecretQuestion::Password`] (which
/// the CLI answers from `TUNNELBOOK_PASSWORD` and the app with its password dialog and
/// "Remember"). Every other round (OTP, Duo, …) is asked as it comes.
async fn keyboard_interactive(
    handle: &mut Handle<ClientHandler>,
    user: &str,
    hop: &Profile,
    destination: &str,
    ctx: &ConnectContext,
    progress: &mut Progress,
) -> Result<Outcome, SshError> {
    let mut password = KbdPassword {
        stored: retrieve(ctx, &hop.password_key()),
        rejected: progress.tried.contains(&"password"),
    };
    for _ in 0..PASSWORD_ATTEMPTS {
        progress.tried.push("keyboard-interactive");
        match kbd_attempt(handle, user, hop, destination, ctx, progress, &mut password).await? {
            KbdEnd::Success => return Ok(Outcome::Success),
            KbdEnd::PasswordRejected if progress.allows(MethodKind::KeyboardInteractive) => {
                password.rejected = true;
            }
            KbdEnd::PasswordRejected | KbdEnd::Failed => return Ok(Outcome::Next),
        }
    }
    Ok(Outcome::Next)
}

/// Where the password for a keyboard-interactive `Password:` prompt comes from.
struct KbdPassword {
    /// The remembered password, until it has been used once.
    stored: Option<Sensitive<String>>,
    /// Whether a password given earlier in this connection was wrong.
    rejected: bool,
}

enum KbdEnd {
    Success,
    /// The server refused right after the answer to a password prompt.
    PasswordRejected,
    /// Refused after any other round, or the human declined.
    Failed,
}

/// Whether a round is the login password and nothing else: one hidden prompt that names the
/// password and is not a one-time code or a password change.
fn is_password_round(round: &KbdRound) -> bool {
    let [prompt] = round.prompts.as_slice() else {
        return false;
    };
    let text = prompt.prompt.to_lowercase();
    !prompt.echo
        && text.contains("password")
        && ![
            "one-time", "one time", "otp", "oath", "token", "code", "passcode", "pin", "new ",
            "retype", "again", "verif",
        ]
        .iter()
        .any(|word| text.contains(word))
}

#[allow(clippy::too_many_arguments)]
async fn kbd_attempt(
    handle: &mut Handle<ClientHandler>,
    user: &str,
    hop: &Profile,
    destination: &str,
    ctx: &ConnectContext,
    progress: &mut Progress,
    password: &mut KbdPassword,
) -> Result<KbdEnd, SshError> {
    let mut response = handle
        .authenticate_keyboard_interactive_start(user, None::<String>)
        .await?;
    // The password answered in the last round, and whether to remember it on success.
    let mut answered: Option<(Sensitive<String>, bool)> = None;
    let mut last_was_password = false;
    for _ in 0..MAX_KBD_ROUNDS {
        match response {
            KeyboardInteractiveAuthResponse::Success => {
                if let Some((value, true)) = &answered {
                    store(ctx, &hop.password_key(), value);
                }
                return Ok(KbdEnd::Success);
            }
            KeyboardInteractiveAuthResponse::Failure {
                remaining_methods,
                partial_success,
            } => {
                progress.failed(&remaining_methods, partial_success);
                return Ok(if last_was_password {
                    KbdEnd::PasswordRejected
                } else {
                    KbdEnd::Failed
                });
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
                last_was_password = false;
                let answers: Vec<String> = if round.prompts.is_empty() {
                    Vec::new()
                } else if is_password_round(&round) {
                    let Some((value, remember)) = kbd_password(user, hop, ctx, password).await
                    else {
                        return Ok(KbdEnd::Failed);
                    };
                    last_was_password = true;
                    let answer = vec![value.expose().clone()];
                    answered = Some((value, remember));
                    answer
                } else {
                    match ctx.prompter.keyboard_interactive(&round).await {
                        Some(a) if a.len() == round.prompts.len() => {
                            a.iter().map(|a| a.expose().clone()).collect()
                        }
                        _ => return Ok(KbdEnd::Failed),
                    }
                };
                response = handle
                    .authenticate_keyboard_interactive_respond(answers)
                    .await?;
            }
        }
    }
    Ok(KbdEnd::Failed)
}

/// The password for a `Password:` round: the remembered one once, then the human's (or
/// `TUNNELBOOK_PASSWORD`). Returns it with whether to remember it.
async fn kbd_password(
    user: &str,
    hop: &Profile,
    ctx: &ConnectContext,
    password: &mut KbdPassword,
) -> Option<(Sensitive<String>, bool)> {
    if let Some(stored) = password.stored.take() {
        return Some((stored, false));
    }
    let question = SecretQuestion::Password {
        user: user.to_string(),
        host: hop.host.clone(),
        retry: password.rejected,
    };
    let answer = ctx.prompter.secret(&question).await?;
    Some((answer.value, answer.remember))
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

fn store(ctx: &ConnectContext, key: &SecretKey, value: &Sensitive<String>) {
    if let Some(store) = &ctx.secrets
        && let Err(e) = store.persist(key, value)
    {
        tracing::warn!(error = %e, "could not remember the secret in the keychain");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(prompts: &[(&str, bool)]) -> KbdRound {
        KbdRound {
            destination: "u@h".into(),
            name: String::new(),
            instructions: String::new(),
            prompts: prompts
                .iter()
                .map(|(p, echo)| KbdPrompt {
                    prompt: (*p).to_string(),
                    echo: *echo,
                })
                .collect(),
        }
    }

    #[test]
    fn pam_password_prompts_are_the_password() {
        for p in [
            "Password: ",
            "password:",
            "LDAP Password: ",
            "tbuser@gpu's password: ",
        ] {
            assert!(is_password_round(&round(&[(p, false)])), "{p}");
        }
    }

    #[test]
    fn otp_changes_echoed_and_multi_prompt_rounds_are_asked() {
        for p in [
            "One-time password (OATH) for `tbuser': ",
            "Verification code: ",
            "OTP password: ",
            "New password: ",
            "Retype new password: ",
            "Passcode or option (1-3): ",
            "Duo token: ",
        ] {
            assert!(!is_password_round(&round(&[(p, false)])), "{p}");
        }
        assert!(!is_password_round(&round(&[("Password: ", true)])));
        assert!(!is_password_round(&round(&[
            ("Password: ", false),
            ("Password: ", false)
        ])));
        assert!(!is_password_round(&round(&[])));
    }
}
