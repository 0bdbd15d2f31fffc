//! The one error type that crosses the IPC boundary: `{ code, message, fields? }`.
//!
//! The UI switches on `code`, never on `message` text. Every core error maps here; the mapping
//! is the only place the app knows about core's error variants.

use serde::Serialize;
use ts_rs::TS;
use tunnelbook_core::{gpu::GpuError, jupyter::JupyterError, profile::ProfileError, ssh::SshError};

/// What went wrong, as the UI needs to tell it apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum ErrorCode {
    /// The server's host key differs from the remembered one; nothing was sent.
    HostKeyChanged,
    /// An unknown host key was declined.
    HostKeyNotTrusted,
    /// Every authentication method failed.
    AuthFailed,
    /// TCP connect failed.
    Unreachable,
    /// Connect or handshake took too long.
    Timeout,
    /// A host, session or prompt named by the UI does not exist.
    NotFound,
    /// The input is invalid; `fields` says where.
    Validation,
    /// The NVIDIA driver (nvidia-smi or NVML) on the host is broken; `message` quotes it and says
    /// what usually helps. Not used for "no GPU", which is a valid empty snapshot.
    GpuDriver,
    /// Every GPU is in use and the choice was "auto".
    NoFreeGpu,
    /// Finding an environment, installing, starting or reaching JupyterLab failed; `message`
    /// quotes the host's answer and says what to do (install JupyterLab, pick another
    /// environment, …).
    Jupyter,
    /// A ready notebook's Jupyter server stopped (crashed, killed, out of memory) while the
    /// connection works; `restart_notebook` starts it again behind the same local port.
    ServerGone,
    /// The user cancelled (declined a prompt or pressed Cancel).
    Cancelled,
    /// The feature is not available yet (core module not landed) or not on this platform.
    Unsupported,
    /// Anything else: a bug or an environment problem; `message` says what.
    Internal,
}

/// One invalid form field, with the message to show next to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct FieldError {
    /// The field's wire name (camelCase, as in the TypeScript type), e.g. `host`.
    pub field: String,
    /// What is wrong, for humans.
    pub message: String,
}

/// The error every command returns.
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
        let message = match fields.as_slice() {
            [one] => one.message.clone(),
            _ => format!("{} fields need attention", fields.len()),
        };
        Self {
            code: ErrorCode::Validation,
            message,
            fields,
        }
    }

    /// An error for something that core does not provide yet.
    pub fn unsupported(what: &str) -> Self {
        Self::new(
            ErrorCode::Unsupported,
            format!("{what} is not available in this build yet"),
        )
    }
}

impl From<SshError> for AppError {
    fn from(e: SshError) -> Self {
        Self::new(ssh_code(&e), e.to_string())
    }
}

fn ssh_code(e: &SshError) -> ErrorCode {
    match e {
        SshError::Unreachable { .. } => ErrorCode::Unreachable,
        SshError::Timeout { .. } | SshError::CommandTimedOut { .. } => ErrorCode::Timeout,
        SshError::HostKeyChanged { .. } => ErrorCode::HostKeyChanged,
        SshError::HostKeyNotTrusted { .. } => ErrorCode::HostKeyNotTrusted,
        SshError::AuthFailed { .. } => ErrorCode::AuthFailed,
        SshError::KeyFile { .. }
        | SshError::KnownHosts { .. }
        | SshError::Closed(_)
        | SshError::ChannelRefused { .. }
        | SshError::Protocol(_)
        | SshError::NotRun { .. }
        | SshError::OutputTooLarge { .. } => ErrorCode::Internal,
    }
}

impl From<GpuError> for AppError {
    fn from(e: GpuError) -> Self {
        let code = match &e {
            GpuError::Ssh(ssh) => ssh_code(ssh),
            GpuError::Driver { .. } | GpuError::Nvml(_) => ErrorCode::GpuDriver,
            GpuError::NoFreeGpu { .. } => ErrorCode::NoFreeGpu,
            GpuError::UnknownGpu { .. } => ErrorCode::NotFound,
            GpuError::InvalidSelector { .. } => ErrorCode::Validation,
            GpuError::Unreadable { .. } => ErrorCode::Internal,
        };
        Self::new(code, e.to_string())
    }
}

impl From<JupyterError> for AppError {
    fn from(e: JupyterError) -> Self {
        let code = match &e {
            JupyterError::Ssh(ssh) => ssh_code(ssh),
            JupyterError::NotFound { .. } => ErrorCode::NotFound,
            _ => ErrorCode::Jupyter,
        };
        Self::new(code, e.to_string())
    }
}

impl From<ProfileError> for AppError {
    fn from(e: ProfileError) -> Self {
        let code = match &e {
            ProfileError::NotFound(_) => ErrorCode::NotFound,
            ProfileError::JumpCycle(_) | ProfileError::Invalid(_) => ErrorCode::Validation,
            ProfileError::Io { .. }
            | ProfileError::Corrupt { .. }
            | ProfileError::TooNew { .. }
            | ProfileError::NoHome
            | ProfileError::Secrets { .. } => ErrorCode::Internal,
        };
        Self::new(code, e.to_string())
    }
}

impl From<tauri::Error> for AppError {
    fn from(e: tauri::Error) -> Self {
        Self::new(ErrorCode::Internal, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_code_and_message() {
        let e = AppError::new(ErrorCode::AuthFailed, "nope");
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(
            json,
            serde_json::json!({ "code": "authFailed", "message": "nope" })
        );
    }

    #[test]
    fn gpu_errors_get_their_codes() {
        let driver = GpuError::Driver {
            host: "h".into(),
            message: "Failed to initialize NVML: Driver/library version mismatch".into(),
        };
        let app: AppError = driver.into();
        assert_eq!(app.code, ErrorCode::GpuDriver);
        assert!(app.message.contains("version mismatch"), "{}", app.message);
        let busy: AppError = GpuError::NoFreeGpu {
            host: "h".into(),
            valid: vec!["0".into()],
        }
        .into();
        assert_eq!(busy.code, ErrorCode::NoFreeGpu);
        let unreachable: AppError = GpuError::Ssh(SshError::Unreachable {
            host: "h".into(),
            port: 22,
            source: std::io::Error::other("refused"),
        })
        .into();
        assert_eq!(unreachable.code, ErrorCode::Unreachable);
    }

    #[test]
    fn host_key_changed_keeps_its_code() {
        let e = SshError::HostKeyChanged {
            host: "h".into(),
            port: 22,
            expected: "SHA256:a".into(),
            presented: "SHA256:b".into(),
            file: "kh".into(),
            line: 3,
        };
        let app: AppError = e.into();
        assert_eq!(app.code, ErrorCode::HostKeyChanged);
        assert!(app.message.contains("SHA256:b"));
    }
}
