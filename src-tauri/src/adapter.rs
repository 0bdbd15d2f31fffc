//! ADAPTERS: stand-ins for core modules that are not there yet. Everything in this file is
//! meant to shrink to a call into core when the module lands; nothing else in the app decides
//! or loops.
//!
//! - [`drive_session`]: the session's first phase, before anything is chosen: opens the SSH
//!   connection with `Connection::open_with_events` (its `ConnectionState`s become the connect /
//!   host key / authenticate steps, which core's session reports as one step) and reads the GPUs
//!   for the picker. That connection then serves the picker, the environments and commands; the
//!   notebook itself is launched through core's session ([`crate::launch`]) with the choices.

use tauri::{AppHandle, Emitter, Manager, Runtime};
use tokio::sync::broadcast;
use tunnelbook_core::{
    profile::Profile,
    ssh::{Connection, ConnectionState},
};

use crate::{
    commands::gpus,
    error::{AppError, ErrorCode},
    state::{AppState, GpuHost},
    wire::{GpuReport, SessionEvent, SessionStatus, SessionStep, StepState},
};

/// Name of the event that carries a [`SessionEvent`].
pub const SESSION_EVENT: &str = "session";

/// Runs session `id` to its end, emitting `session` events. `chain` is `None` for this computer.
pub async fn drive_session<R: Runtime>(app: AppHandle<R>, id: String, chain: Option<Vec<Profile>>) {
    let emit = |step, state, message: String, error: Option<AppError>| {
        let event = SessionEvent {
            session_id: id.clone(),
            step,
            state,
            message,
            error,
        };
        if let Err(e) = app.emit(SESSION_EVENT, event) {
            tracing::warn!(error = %e, "cannot deliver a session event");
        }
    };
    let state = app.state::<AppState>();
    let Some(chain) = chain else {
        for step in [
            SessionStep::Connect,
            SessionStep::HostKey,
            SessionStep::Authenticate,
        ] {
            emit(
                step,
                StepState::Skipped,
                "this computer: no SSH needed".into(),
                None,
            );
        }
        state.set_status(&id, SessionStatus::Connected);
        read_gpus(&state, &id, GpuHost::Local, &emit).await;
        return;
    };
    let ctx = crate::launch::connect_context(&app, &state);
    let (tx, mut rx) = broadcast::channel(64);
    let open = Connection::open_with_events(&chain, &ctx, tx);
    tokio::pin!(open);
    let mut current = SessionStep::Connect;
    let result = loop {
        tokio::select! {
            result = &mut open => break result,
            Ok(event) = rx.recv() => {
                for (step, st, message) in steps_of(&event) {
                    current = step;
                    emit(step, st, message, None);
                }
            }
        }
    };
    while let Ok(event) = rx.try_recv() {
        for (step, st, message) in steps_of(&event) {
            emit(step, st, message, None);
        }
    }
    match result {
        Ok(conn) => {
            emit(
                SessionStep::Authenticate,
                StepState::Done,
                format!("connected to {}", conn.destination()),
                None,
            );
            if let Some(entry) = state.sessions().get_mut(&id) {
                entry.connection = Some(conn.clone());
                entry.summary.status = SessionStatus::Connected;
            }
            read_gpus(&state, &id, GpuHost::Remote(conn), &emit).await;
        }
        Err(e) => {
            let error = AppError::from(e);
            let step = match error.code {
                ErrorCode::Unreachable | ErrorCode::Timeout => SessionStep::Connect,
                ErrorCode::HostKeyChanged | ErrorCode::HostKeyNotTrusted => SessionStep::HostKey,
                ErrorCode::AuthFailed => SessionStep::Authenticate,
                _ => current,
            };
            // Status first: a UI reacting to the event must already see the session as failed.
            state.set_status(&id, SessionStatus::Failed);
            emit(step, StepState::Failed, error.message.clone(), Some(error));
        }
    }
}

/// The "reading GPUs" step. A host without NVIDIA GPUs is done, with the reason as its message;
/// a broken driver or a failed query fails the session.
async fn read_gpus(
    state: &AppState,
    id: &str,
    host: GpuHost,
    emit: &impl Fn(SessionStep, StepState, String, Option<AppError>),
) {
    emit(
        SessionStep::ReadGpus,
        StepState::Running,
        "reading GPUs".into(),
        None,
    );
    match gpus::read(host).await {
        Ok(snapshot) => {
            let message = gpu_summary(&GpuReport::from(snapshot));
            emit(SessionStep::ReadGpus, StepState::Done, message, None);
        }
        Err(e) => {
            let error = AppError::from(e);
            state.set_status(id, SessionStatus::Failed);
            emit(
                SessionStep::ReadGpus,
                StepState::Failed,
                error.message.clone(),
                Some(error),
            );
        }
    }
}

/// One line for the details log: "2 GPUs, 1 free (best: GPU 1)" (", 1 unreadable" when
/// nvidia-smi cannot read one) or why there are none.
fn gpu_summary(report: &GpuReport) -> String {
    if let Some(reason) = &report.snapshot.no_gpu_reason {
        return reason.clone();
    }
    let gpus = report.snapshot.gpus.len();
    let free = report.choices.iter().filter(|c| c.free).count();
    let plural = if gpus == 1 { "" } else { "s" };
    let best = report
        .choices
        .iter()
        .find(|c| Some(&c.cuda_visible_devices) == report.recommended.as_ref())
        .map(|c| format!(" (best: {})", c.label()))
        .unwrap_or_default();
    let unreadable = match report.snapshot.unreadable.len() {
        0 => String::new(),
        n => format!(", {n} unreadable"),
    };
    format!("{gpus} GPU{plural}, {free} free{best}{unreadable}")
}

/// The step updates one connection event stands for.
fn steps_of(event: &ConnectionState) -> Vec<(SessionStep, StepState, String)> {
    match event {
        ConnectionState::Connecting { hop } => {
            vec![(
                SessionStep::Connect,
                StepState::Running,
                format!("connecting to {hop}"),
            )]
        }
        ConnectionState::Authenticating {
            destination,
            method,
        } => vec![
            (
                SessionStep::Connect,
                StepState::Done,
                "SSH handshake done".into(),
            ),
            (
                SessionStep::HostKey,
                StepState::Done,
                "host key verified".into(),
            ),
            (
                SessionStep::Authenticate,
                StepState::Running,
                format!("trying {method} as {destination}"),
            ),
        ],
        ConnectionState::Authenticated { destination } => {
            vec![(
                SessionStep::Authenticate,
                StepState::Done,
                format!("authenticated as {destination}"),
            )]
        }
        ConnectionState::Disconnected { reason } => {
            vec![(
                SessionStep::Connect,
                StepState::Failed,
                format!("disconnected: {reason}"),
            )]
        }
    }
}
