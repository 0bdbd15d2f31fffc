//! How core asks the human: host keys, passphrases, passwords, keyboard-interactive prompts.

use async_trait::async_trait;
use serde::Serialize;

use crate::secret::Sensitive;

/// What to do with a host key that no known_hosts file lists (OpenSSH's `StrictHostKeyChecking`).
/// A *changed* key is refused under every policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeyPolicy {
    /// Ask the [`Prompter`]; remember the key if the human accepts.
    #[default]
    Ask,
    /// Remember new keys without asking (changed keys are still refused).
    AcceptNew,
    /// Refuse unknown keys.
    Strict,
}

impl From<crate::profile::StrictHostKeyChecking> for HostKeyPolicy {
    /// OpenSSH's `no` accepts and remembers a new key, as `accept-new` does (a changed key is
    /// refused all the same).
    fn from(value: crate::profile::StrictHostKeyChecking) -> Self {
        use crate::profile::StrictHostKeyChecking as S;
        match value {
            S::Yes => HostKeyPolicy::Strict,
            S::AcceptNew | S::No => HostKeyPolicy::AcceptNew,
            S::Ask => HostKeyPolicy::Ask,
        }
    }
}

/// An unknown host key, as shown to the human.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostKeyQuestion {
    /// Host as the user named it.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Key algorithm, e.g. `ssh-ed25519`.
    pub algorithm: String,
    /// `SHA256:…` fingerprint, as OpenSSH prints it.
    pub fingerprint: String,
}

/// A secret the connection needs.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum SecretQuestion {
    /// The login password of `user@host`.
    Password {
        /// Login user.
        user: String,
        /// Host.
        host: String,
        /// Whether an earlier answer was wrong.
        retry: bool,
    },
    /// The passphrase of an encrypted key file.
    Passphrase {
        /// The key file.
        path: String,
        /// Whether an earlier answer was wrong.
        retry: bool,
    },
}

/// A human's answer to a [`SecretQuestion`].
#[derive(Debug)]
pub struct SecretAnswer {
    /// The secret.
    pub value: Sensitive<String>,
    /// Whether to keep it in the OS keychain.
    pub remember: bool,
}

/// One prompt of a keyboard-interactive round.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KbdPrompt {
    /// The server's prompt text, e.g. `Verification code: `.
    pub prompt: String,
    /// Whether the answer may be shown while typed.
    pub echo: bool,
}

/// One keyboard-interactive round from the server (OTP, Duo, …).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KbdRound {
    /// `user@host` being authenticated.
    pub destination: String,
    /// The server's name for the round (often empty).
    pub name: String,
    /// The server's instructions (often empty).
    pub instructions: String,
    /// The prompts, possibly none.
    pub prompts: Vec<KbdPrompt>,
}

/// How core asks the human something. The CLI implements it on the terminal, the app as
/// dialogs, tests as scripted answers.
///
/// Contract: every method may take as long as the human needs; returning `None` / `false` means
/// the human declined, and the connection attempt stops with a clear error instead of asking
/// again. Implementations must never log the answers.
#[async_trait]
pub trait Prompter: Send + Sync {
    /// A host key not listed in any known_hosts file: trust it?
    async fn confirm_host_key(&self, question: &HostKeyQuestion) -> bool;
    /// A password or passphrase.
    async fn secret(&self, question: &SecretQuestion) -> Option<SecretAnswer>;
    /// A keyboard-interactive round: one answer per prompt, in order (none for zero prompts).
    async fn keyboard_interactive(&self, round: &KbdRound) -> Option<Vec<Sensitive<String>>>;
}

/// A prompter for non-interactive use: declines everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoPrompter;

#[async_trait]
impl Prompter for NoPrompter {
    async fn confirm_host_key(&self, _question: &HostKeyQuestion) -> bool {
        false
    }

    async fn secret(&self, _question: &SecretQuestion) -> Option<SecretAnswer> {
        None
    }

    async fn keyboard_interactive(&self, round: &KbdRound) -> Option<Vec<Sensitive<String>>> {
        // A round without prompts needs no human.
        round.prompts.is_empty().then(Vec::new)
    }
}
