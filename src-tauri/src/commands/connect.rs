//! Starting and cancelling sessions, answering the questions they ask, running commands.

use tauri::{AppHandle, Runtime, State};

use crate::{
    adapter,
    error::AppError,
    prompt::PromptAnswer,
    state::{AppState, SessionEntry},
    wire::{ExecOutput, LOCAL_HOST_ID, SessionStatus, SessionSummary},
};

/// Starts a session on host `host_id`; progress arrives as `session` events. Returns its id.
#[tauri::command]
pub async fn start_session<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    host_id: String,
) -> Result<String, AppError> {
    let chain = match host_id.as_str() {
        LOCAL_HOST_ID => None,
        name => Some(state.profiles.chain(name)?),
    };
    let id = state.new_session_id();
    let summary = SessionSummary {
        id: id.clone(),
        host_id,
        status: SessionStatus::Starting,
        url: None,
        gpu: None,
        env: None,
        server_id: None,
        window: None,
    };
    // Register before spawning so the task always finds its entry.
    state
        .sessions()
        .insert(id.clone(), SessionEntry::new(summary, chain.clone()));
    let task = tauri::async_runtime::spawn(adapter::drive_session(app, id.clone(), chain));
    if let Some(entry) = state.sessions().get_mut(&id) {
        entry.task = Some(task);
    }
    Ok(id)
}

/// Stops session `session_id` wherever it is (connecting, waiting for a prompt, running).
#[tauri::command]
pub async fn cancel_session<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    session_id: String,
) -> Result<(), AppError> {
    super::sessions::close(&app, &state, &session_id).await
}

/// Completes question `id` (from a `prompt` event).
#[tauri::command]
pub async fn answer_prompt(
    state: State<'_, AppState>,
    id: u32,
    answer: PromptAnswer,
) -> Result<(), AppError> {
    state.prompts.answer(id, answer)
}

/// Runs `command` on session `session_id`'s host through its login shell.
#[tauri::command]
pub async fn run_command(
    state: State<'_, AppState>,
    session_id: String,
    command: String,
) -> Result<ExecOutput, AppError> {
    let output = state.connection(&session_id)?.exec(&command).await?;
    Ok(ExecOutput {
        status: output.status,
        stdout: output.stdout_text(),
        stderr: output.stderr_text(),
    })
}
