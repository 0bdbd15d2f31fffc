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
        Self::new(ssh_code(&e), ssh_message(&e))
    }
}

/// Core's message, except where it speaks to a terminal user (command-line flags) or quotes the
/// OS (`os error 111`): the app says it in words, next to the buttons that act on it.
fn ssh_message(e: &SshError) -> String {
    match e {
        SshError::Unreachable { host, port, source } => format!(
            "Cannot reach {host}:{port}: {}. Check the host name and port, and that the SSH \
             server runs there.",
            io_words(source)
        ),
        SshError::HostKeyNotTrusted {
            host,
            port,
            fingerprint,
        } => format!(
            "The host key of {host}:{port} ({fingerprint}) was not trusted, so nothing was sent. \
             Check the fingerprint with the server's administrator, then connect again and \
             trust it."
        ),
        other => other.to_string(),
    }
}

/// An OS error in words, without its number.
fn io_words(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::ConnectionRefused => {
            "nothing accepts connections on that port (connection refused)".into()
        }
        ErrorKind::TimedOut => "it did not answer (timed out)".into(),
        ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => {
            "this computer has no route to it (is the VPN on?)".into()
        }
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => {
            "the connection was closed at once (a firewall?)".into()
        }
        _ => {
            let text = e.to_string();
            match text.find(" (os error") {
                Some(i) => text[..i].to_string(),
                None => text,
            }
        }
    }
}

fn ssh_code(e: &SshError) -> ErrorCode {
    match e {
        SshError::Unreachable { .. } | SshError::ProxyCommand { .. } => ErrorCode::Unreachable,
        SshError::Timeout { .. } | SshError::CommandTimedOut { .. } => ErrorCode::Timeout,
        // Revoked keys and refused host certificates are, to the user, a changed key: refused
        // with no way to accept it from the dialog.
        SshError::HostKeyChanged { .. }
        | SshError::HostKeyRevoked { .. }
        | SshError::HostCertificateInvalid { .. } => ErrorCode::HostKeyChanged,
        SshError::HostKeyNotTrusted { .. } => ErrorCode::HostKeyNotTrusted,
        SshError::AuthFailed { .. } => ErrorCode::AuthFailed,
        SshError::KeyFile { .. }
        | SshError::KnownHosts { .. }
        | SshError::Closed(_)
        | SshError::ChannelRefused { .. }
        | SshError::Protocol(_)
        | SshError::NotRun { .. }
        | SshError::OutputTooLarge { .. }
        // A host setting (HostKeyAlgorithms) to change; the message says which and how.
        | SshError::NoCommonHostKeyAlgorithm { .. } => ErrorCode::Internal,
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
            GpuError::TimedOut { .. } => ErrorCode::Timeout,
            GpuError::UnusableGpu { .. } => ErrorCode::Validation,
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
        // Core's advice names `tunnelbook install-jupyter`; in the app it is a button.
        let message = match &e {
            JupyterError::Ssh(ssh) => ssh_message(ssh),
            JupyterError::JupyterMissing { env, host } => format!(
                "JupyterLab is not installed in {env} on {host}. Choose another environment, or \
                 install JupyterLab with \"Install JupyterLab\" on the Environment screen."
            ),
            JupyterError::NoJupyterAnywhere { host, .. } => format!(
                "No Python environment found on {host} has JupyterLab. Add the path of one that \
                 has it (\"Add environment path…\"), or install JupyterLab with \"Install \
                 JupyterLab\" on the Environment screen."
            ),
            _ => e.to_string(),
        };
        Self::new(code, message)
    }
}

impl From<ProfileError> for AppError {
    fn from(e: ProfileError) -> Self {
        // Core's validator is the only one: its field errors go to the form as they are.
        if let ProfileError::Invalid(errors) = &e {
            return Self::validation(
                errors
                    .iter()
                    .map(|f| FieldError {
                        field: f.field.clone(),
                        message: f.message.clone(),
                    })
                    .collect(),
            );
        }
        let code = match &e {
            ProfileError::NotFound(_) => ErrorCode::NotFound,
            ProfileError::JumpCycle(_) | ProfileError::Invalid(_) | ProfileError::SshConfig(_) => {
                ErrorCode::Validation
            }
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
    fn app_messages_have_no_os_error_numbers_or_cli_flags() {
        let refused: AppError = SshError::Unreachable {
            host: "gpu".into(),
            port: 22,
            source: std::io::Error::from_raw_os_error(111),
        }
        .into();
        assert_eq!(refused.code, ErrorCode::Unreachable);
        assert!(
            refused.message.contains("connection refused") && !refused.message.contains("os error"),
            "{}",
            refused.message
        );
        let declined: AppError = SshError::HostKeyNotTrusted {
            host: "gpu".into(),
            port: 22,
            fingerprint: "SHA256:x".into(),
        }
        .into();
        assert!(!declined.message.contains("--"), "{}", declined.message);
        assert!(declined.message.contains("SHA256:x"));
        let missing: AppError = JupyterError::JupyterMissing {
            env: "/opt/jlab".into(),
            host: "gpu".into(),
        }
        .into();
        assert!(
            !missing.message.contains("tunnelbook ") && missing.message.contains("/opt/jlab"),
            "{}",
            missing.message
        );
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
