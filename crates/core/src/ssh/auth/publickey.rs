//! Public-key authentication: the agent's keys and key files (with certificates), in
//! OpenSSH's order, and RSA signatures a server accepts.

use std::{path::PathBuf, sync::Arc};

use russh::{
    MethodKind,
    client::{AuthResult, Handle},
    keys::{self, PrivateKeyWithHashAlg, agent::AgentIdentity},
};
use tracing::{debug, warn};

use crate::ssh::{ConnectContext, SecretQuestion, SshError, handler::ClientHandler};
use crate::{
    profile::Profile,
    secret::{SecretKey, Sensitive},
};

use super::{
    Outcome, PASSWORD_ATTEMPTS, Progress,
    password::{retrieve, store},
    result,
};

/// Where public keys may come from in a publickey pass.
#[derive(Clone, Copy)]
pub(super) struct Sources {
    /// The ssh-agent's keys.
    pub(super) agent: bool,
    /// Key files (the profile's, else the default `~/.ssh/id_*`).
    pub(super) files: bool,
}

type Agent =
    keys::agent::client::AgentClient<Box<dyn keys::agent::client::AgentStream + Send + Unpin>>;

/// One publickey pass, identities in this order (so an agent holding many keys does not use up
/// the server's `MaxAuthTries` before the configured key):
/// 1. the profile's `IdentityFile`s, signed by the agent when it holds them, else loaded from
///    the file (passphrase asked);
/// 2. the agent's other keys — unless `IdentitiesOnly`;
/// 3. without configured files, the default `~/.ssh/id_*` files the agent does not hold.
pub(super) async fn publickey(
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
pub(super) fn file_public_key(path: &std::path::Path) -> Option<keys::PublicKey> {
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
pub(super) async fn agent_attempt(
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
pub(super) async fn file_attempt(
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
pub(super) fn certificates_for(
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
pub(super) async fn connect_agent() -> Option<Agent> {
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
pub(super) struct Accepted(Option<Vec<String>>);

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
pub(super) const RSA_SIGNATURES: [(&str, Option<keys::HashAlg>); 3] = [
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
pub(super) async fn rsa_hash(
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
pub(super) fn legacy_rsa_retry(legacy: bool, r: &AuthResult, progress: &Progress) -> bool {
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

pub(super) fn default_identity_files() -> Vec<PathBuf> {
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
pub(super) async fn load_key(
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
pub(super) fn is_encrypted(e: &keys::Error) -> bool {
    match e {
        keys::Error::KeyIsEncrypted => true,
        keys::Error::SshKey(inner) => inner.to_string().contains("encrypted"),
        _ => false,
    }
}
