//! The one error type that crosses the IPC boundary: `{ code, message, fields? }`.
//!
//! The UI switches on `code`, never on `message` text. Every core error maps here; the mapping
//! is the only place the app knows about core's error variants.

use serde::Serialize;
use ts_rs::TS;
pub use tunnelbook_core::error::{ErrorCode, FieldError};
use tunnelbook_core::{
    error::Problem, gpu::GpuError, jupyter::JupyterError, profile::ProfileError,
    secret::SecretError, settings::SettingsError, ssh::SshError, tunnel::TunnelError,
};

/// The error every command returns: core's [`Problem`] (code and message decided there), as the
/// app's own type so that command modules can add `From` impls for their errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS, thiserror::Error)]
#[serde(rename_all = "camelCase")]
#[error("{message}")]
pub struct AppError {
    /// What the UI switches on.
    pub code: ErrorCode,
    /// For humans; says what to do.
    pub message: String,
    /// Per-field messages when `code` is `validation`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
}

impl AppError {
    /// An error with no field details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            fields: Vec::new(),
        }
    }

    /// The UI named session `id`, which does not exist (any more).
    pub fn no_session(id: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("no session {id}"))
    }

    /// A validation error listing the invalid fields.
    pub fn validation(fields: Vec<FieldError>) -> Self {
        Problem::validation(fields).into()
    }
}

impl From<Problem> for AppError {
    fn from(p: Problem) -> Self {
        Self {
            code: p.code,
            message: p.message,
            fields: p.fields,
        }
    }
}

/// Core's errors reach the UI with the code core gives them ([`tunnelbook_core::error`]).
macro_rules! through_core {
    ($($error:ty),*) => {$(
        impl From<$error> for AppError {
            fn from(e: $error) -> Self {
                Problem::from(e).into()
            }
        }
    )*};
}

through_core!(
    SshError,
    GpuError,
    JupyterError,
    ProfileError,
    TunnelError,
    SettingsError,
    SecretError,
    tunnelbook_core::slurm::SlurmError,
    tunnelbook_core::sessions::SessionsError,
    tunnelbook_core::jupyter::window::UrlError
);

impl From<tauri::Error> for AppError {
    fn from(e: tauri::Error) -> Self {
        Self::new(ErrorCode::Internal, e.to_string())
    }
}
