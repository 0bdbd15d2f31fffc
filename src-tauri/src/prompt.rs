//! The app's [`Prompter`](tunnelbook_core::ssh::Prompter): core's questions ([`PromptBroker`]) become `prompt` events, answers
//! come back through the `answer_prompt` command. What an answer means is core's
//! ([`BrokerPrompter`]); the app only delivers.

use std::sync::Arc;

use tauri::{AppHandle, Emitter, Runtime};
pub use tunnelbook_core::prompt::{
    BrokerPrompter, PromptAnswer, PromptBroker, PromptEvent, PromptQuestion,
};

/// Name of the event that carries a [`PromptEvent`].
pub const PROMPT_EVENT: &str = "prompt";

/// The [`Prompter`](tunnelbook_core::ssh::Prompter) handed to core for connections started from the app.
pub struct AppPrompter;

impl AppPrompter {
    /// A prompter that asks through `app`'s windows (a `prompt` event) and waits on `broker`.
    #[expect(
        clippy::new_ret_no_self,
        reason = "core's prompter; the app only says how a question is delivered"
    )]
    pub fn new<R: Runtime>(app: AppHandle<R>, broker: Arc<PromptBroker>) -> BrokerPrompter {
        BrokerPrompter::new(broker, move |event| {
            app.emit(PROMPT_EVENT, event).map_err(|e| e.to_string())
        })
    }
}
