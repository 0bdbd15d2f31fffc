//! A scripted [`Prompter`] that answers from a list and records every question.

use std::sync::Mutex;

use tunnelbook_core::{
    secret::Sensitive,
    ssh::{HostKeyQuestion, KbdRound, Prompter, SecretAnswer, SecretQuestion},
};

/// Answers questions as scripted; every question asked is recorded for assertions.
#[derive(Default)]
pub struct ScriptedPrompter {
    /// Whether to accept unknown host keys.
    pub accept_host_key: bool,
    /// Answers to password/passphrase questions, used in order.
    pub secrets: Mutex<Vec<String>>,
    /// Whether to ask the keychain to remember secrets.
    pub remember: bool,
    /// Answers to keyboard-interactive rounds: a function of the round.
    #[allow(clippy::type_complexity)]
    pub kbd: Option<Box<dyn Fn(&KbdRound) -> Vec<String> + Send + Sync>>,
    /// Everything asked, in order, as text.
    pub asked: Mutex<Vec<String>>,
}

impl ScriptedPrompter {
    /// The questions asked so far.
    pub fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl Prompter for ScriptedPrompter {
    async fn confirm_host_key(&self, q: &HostKeyQuestion) -> bool {
        self.asked
            .lock()
            .unwrap()
            .push(format!("host-key {} {}", q.algorithm, q.fingerprint));
        self.accept_host_key
    }

    async fn secret(&self, q: &SecretQuestion) -> Option<SecretAnswer> {
        self.asked.lock().unwrap().push(format!("{q:?}"));
        let mut secrets = self.secrets.lock().unwrap();
        if secrets.is_empty() {
            return None;
        }
        Some(SecretAnswer {
            value: Sensitive::new(secrets.remove(0)),
            remember: self.remember,
        })
    }

    async fn keyboard_interactive(&self, round: &KbdRound) -> Option<Vec<Sensitive<String>>> {
        self.asked.lock().unwrap().push(format!(
            "kbd [{}]",
            round
                .prompts
                .iter()
                .map(|p| p.prompt.as_str())
                .collect::<Vec<_>>()
                .join("|")
        ));
        let kbd = self.kbd.as_ref()?;
        Some(kbd(round).into_iter().map(Sensitive::new).collect())
    }
}
