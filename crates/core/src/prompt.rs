//! Questions for a human who answers elsewhere (the desktop app's dialogs): each question gets an
//! id and goes out as a [`PromptEvent`]; the answer comes back by id ([`PromptBroker::answer`])
//! and [`BrokerPrompter`] turns it into what the connection needs.
//!
//! The human may take as long as they like; a dismissed dialog answers [`PromptAnswer::Cancel`],
//! which reads as "declined", as does a question that could not be delivered. Answers are never
//! logged (`Debug` redacts them).

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::{
    error::{ErrorCode, Problem},
    secret::Sensitive,
    ssh::{HostKeyQuestion, KbdRound, Prompter, SecretAnswer, SecretQuestion},
};

/// A question for the human, as the UI receives it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PromptEvent {
    /// Pass back to `answer_prompt`.
    pub id: u32,
    /// The question.
    pub question: PromptQuestion,
}

/// What is asked.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "detail")]
pub enum PromptQuestion {
    /// An unknown host key: trust it?
    HostKey(HostKeyQuestion),
    /// A password or key passphrase.
    Secret(SecretQuestion),
    /// A keyboard-interactive round (OTP, Duo, …).
    KeyboardInteractive(KbdRound),
}

/// The human's answer, as the UI sends it. `Debug` redacts the secrets.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum PromptAnswer {
    /// Answer to [`PromptQuestion::HostKey`].
    HostKey {
        /// Whether to trust (and remember) the key.
        trust: bool,
    },
    /// Answer to [`PromptQuestion::Secret`].
    Secret {
        /// The password or passphrase.
        value: String,
        /// Keep it in the OS keychain.
        remember: bool,
    },
    /// Answer to [`PromptQuestion::KeyboardInteractive`]: one per prompt, in order.
    KeyboardInteractive {
        /// The answers.
        answers: Vec<String>,
    },
    /// The dialog was dismissed.
    Cancel,
}

impl std::fmt::Debug for PromptAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::HostKey { trust } => write!(f, "HostKey {{ trust: {trust} }}"),
            Self::Secret { remember, .. } => {
                write!(f, "Secret {{ value: <redacted>, remember: {remember} }}")
            }
            Self::KeyboardInteractive { answers } => {
                write!(
                    f,
                    "KeyboardInteractive {{ {} answers: <redacted> }}",
                    answers.len()
                )
            }
            Self::Cancel => write!(f, "Cancel"),
        }
    }
}

/// Pending questions, keyed by id; shared by every connection of the front end.
#[derive(Debug, Default)]
pub struct PromptBroker {
    next: AtomicU32,
    pending: Mutex<HashMap<u32, oneshot::Sender<PromptAnswer>>>,
}

impl PromptBroker {
    /// Registers a question; the receiver yields the answer.
    pub fn register(&self) -> (u32, oneshot::Receiver<PromptAnswer>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = oneshot::channel();
        self.lock().insert(id, tx);
        (id, rx)
    }

    /// Completes question `id`.
    ///
    /// # Errors
    /// Code `notFound` when no question `id` is open (answered, timed out or cancelled).
    pub fn answer(&self, id: u32, answer: PromptAnswer) -> Result<(), Problem> {
        let sender = self.lock().remove(&id).ok_or_else(|| {
            Problem::new(
                ErrorCode::NotFound,
                format!("no open question with id {id} (it may have timed out or been cancelled)"),
            )
        })?;
        // The asking side may have gone away (connection cancelled); nothing to do then.
        let _ = sender.send(answer);
        Ok(())
    }

    /// Asks `question`: registers it, hands the event to `deliver` and waits for the answer
    /// ([`PromptAnswer::Cancel`] when it could not be delivered or nobody will answer).
    pub async fn ask(
        &self,
        question: PromptQuestion,
        deliver: impl FnOnce(PromptEvent) -> Result<(), String>,
    ) -> PromptAnswer {
        let (id, rx) = self.register();
        if let Err(e) = deliver(PromptEvent { id, question }) {
            tracing::warn!(error = %e, "cannot deliver a prompt to the front end");
            self.lock().remove(&id);
            return PromptAnswer::Cancel;
        }
        rx.await.unwrap_or(PromptAnswer::Cancel)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, oneshot::Sender<PromptAnswer>>> {
        // A poisoned map only means another thread panicked mid-insert; the map is still usable.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How a [`BrokerPrompter`] hands a question to the front end (the app: a `prompt` event);
/// an error says why it could not.
pub type Deliver = Box<dyn Fn(PromptEvent) -> Result<(), String> + Send + Sync>;

/// The [`Prompter`] whose questions go through a [`PromptBroker`]: the answers read as the
/// connection needs them (only `HostKey { trust: true }` trusts; any other answer declines).
pub struct BrokerPrompter {
    broker: Arc<PromptBroker>,
    deliver: Deliver,
}

impl BrokerPrompter {
    /// A prompter that delivers its questions with `deliver` and waits on `broker`.
    pub fn new(
        broker: Arc<PromptBroker>,
        deliver: impl Fn(PromptEvent) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        Self {
            broker,
            deliver: Box::new(deliver),
        }
    }

    async fn ask(&self, question: PromptQuestion) -> PromptAnswer {
        self.broker.ask(question, &self.deliver).await
    }
}

#[async_trait]
impl Prompter for BrokerPrompter {
    async fn confirm_host_key(&self, question: &HostKeyQuestion) -> bool {
        matches!(
            self.ask(PromptQuestion::HostKey(question.clone())).await,
            PromptAnswer::HostKey { trust: true }
        )
    }

    async fn secret(&self, question: &SecretQuestion) -> Option<SecretAnswer> {
        match self.ask(PromptQuestion::Secret(question.clone())).await {
            PromptAnswer::Secret { value, remember } => Some(SecretAnswer {
                value: Sensitive::new(value),
                remember,
            }),
            _ => None,
        }
    }

    async fn keyboard_interactive(&self, round: &KbdRound) -> Option<Vec<Sensitive<String>>> {
        if round.prompts.is_empty() {
            return Some(Vec::new());
        }
        match self
            .ask(PromptQuestion::KeyboardInteractive(round.clone()))
            .await
        {
            PromptAnswer::KeyboardInteractive { answers } => {
                Some(answers.into_iter().map(Sensitive::new).collect())
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn question() -> SecretQuestion {
        SecretQuestion::Password {
            user: "me".into(),
            host: "box".into(),
            retry: false,
        }
    }

    /// Answers what the broker delivers with `answer`, from another task.
    fn answering(broker: &Arc<PromptBroker>, answer: PromptAnswer) -> BrokerPrompter {
        let b = broker.clone();
        BrokerPrompter::new(broker.clone(), move |event| {
            let (b, answer) = (b.clone(), answer.clone());
            tokio::spawn(async move { b.answer(event.id, answer) });
            Ok(())
        })
    }

    #[tokio::test]
    async fn a_secret_answer_comes_back_and_other_answers_decline() {
        let broker = Arc::new(PromptBroker::default());
        let p = answering(
            &broker,
            PromptAnswer::Secret {
                value: "hunter2".into(),
                remember: true,
            },
        );
        let got = p.secret(&question()).await.expect("answered");
        assert_eq!(got.value.expose(), "hunter2");
        assert!(got.remember);
        let p = answering(&broker, PromptAnswer::Cancel);
        assert!(p.secret(&question()).await.is_none());
        let p = answering(&broker, PromptAnswer::HostKey { trust: true });
        assert!(
            p.secret(&question()).await.is_none(),
            "a host-key answer is no secret"
        );
    }

    #[tokio::test]
    async fn an_undelivered_question_declines_and_is_not_left_open() {
        let broker = Arc::new(PromptBroker::default());
        let p = BrokerPrompter::new(broker.clone(), |_| Err("no window".into()));
        assert!(p.secret(&question()).await.is_none());
        let e = broker.answer(1, PromptAnswer::Cancel).unwrap_err();
        assert_eq!(e.code, ErrorCode::NotFound);
        assert!(
            e.message.contains("no open question with id 1"),
            "{}",
            e.message
        );
    }

    #[test]
    fn debug_never_shows_the_answers() {
        let a = PromptAnswer::Secret {
            value: "hunter2".into(),
            remember: false,
        };
        let k = PromptAnswer::KeyboardInteractive {
            answers: vec!["123456".into()],
        };
        for text in [format!("{a:?}"), format!("{k:?}")] {
            assert!(
                !text.contains("hunter2") && !text.contains("123456"),
                "{text}"
            );
        }
    }
}
