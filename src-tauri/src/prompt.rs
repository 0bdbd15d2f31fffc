//! The app's [`Prompter`]: core's questions become `prompt` events, answers come back through
//! the `answer_prompt` command.
//!
//! Each question gets an id and a oneshot channel; [`PromptBroker`] keeps the pending senders.
//! The human may take as long as they like; closing the dialog (or the window) answers
//! [`PromptAnswer::Cancel`], which core reads as "declined". Answers are never logged.

use std::{
    collections::HashMap,
    sync::{
        Mutex,
        atomic::{AtomicU32, Ordering},
    },
};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Emitter, Runtime};
use tokio::sync::oneshot;
use ts_rs::TS;
use tunnelbook_core::{
    secret::Sensitive,
    ssh::{HostKeyQuestion, KbdRound, Prompter, SecretAnswer, SecretQuestion},
};

use crate::error::{AppError, ErrorCode};

/// Name of the event that carries a [`PromptEvent`].
pub const PROMPT_EVENT: &str = "prompt";

/// A question for the human, as the UI receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct PromptEvent {
    /// Pass back to `answer_prompt`.
    pub id: u32,
    /// The question.
    pub question: PromptQuestion,
}

/// What is asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
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
#[derive(Clone, PartialEq, Eq, Deserialize, TS)]
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

/// Pending questions, keyed by id. Shared by every connection of the app.
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
    pub fn answer(&self, id: u32, answer: PromptAnswer) -> Result<(), AppError> {
        let sender = self.lock().remove(&id).ok_or_else(|| {
            AppError::new(
                ErrorCode::NotFound,
                format!("no open question with id {id} (it may have timed out or been cancelled)"),
            )
        })?;
        // The asking side may have gone away (connection cancelled); nothing to do then.
        let _ = sender.send(answer);
        Ok(())
    }

    /// Drops a question nobody will answer (its event could not be delivered).
    fn forget(&self, id: u32) {
        self.lock().remove(&id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, oneshot::Sender<PromptAnswer>>> {
        // A poisoned map only means another thread panicked mid-insert; the map is still usable.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The [`Prompter`] handed to core for connections started from the app.
pub struct AppPrompter<R: Runtime> {
    app: AppHandle<R>,
    broker: std::sync::Arc<PromptBroker>,
}

impl<R: Runtime> AppPrompter<R> {
    /// A prompter that asks through `app`'s windows.
    pub fn new(app: AppHandle<R>, broker: std::sync::Arc<PromptBroker>) -> Self {
        Self { app, broker }
    }

    async fn ask(&self, question: PromptQuestion) -> PromptAnswer {
        let (id, rx) = self.broker.register();
        if let Err(e) = self.app.emit(PROMPT_EVENT, PromptEvent { id, question }) {
            tracing::warn!(error = %e, "cannot deliver a prompt to the UI");
            self.broker.forget(id);
            return PromptAnswer::Cancel;
        }
        rx.await.unwrap_or(PromptAnswer::Cancel)
    }
}

#[async_trait]
impl<R: Runtime> Prompter for AppPrompter<R> {
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
