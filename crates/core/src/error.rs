//! What a front end shows when something fails: a stable [`ErrorCode`] and a message that says
//! what is wrong and what to do ([`Problem`]).
//!
//! Each module keeps its own error enum (`SshError`, `GpuError`, …); this is the one place that
//! maps them to codes, so events that carry a failure (a host session's, a notebook session's)
//! carry a code the UI can switch on instead of text to guess from. What it leaves out: how a
//! front end shows the code (the UI's texts, the CLI's exit codes).

use serde::Serialize;

use crate::{
    gpu::GpuError, jupyter::JupyterError, profile::ProfileError, secret::SecretError,
    settings::SettingsError, ssh::SshError, tunnel::TunnelError,
};

/// What went wrong, as a front end needs to tell it apart. Stable: the UI switches on these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
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
    /// quotes the host's answer and says what to do.
    Jupyter,
    /// A ready notebook's Jupyter server stopped (crashed, killed, out of memory) while the
    /// connection works; restarting it starts it again behind the same local port.
    ServerGone,
    /// The user cancelled (declined a prompt or pressed Cancel).
    Cancelled,
    /// Not available on this platform or for this kind of host.
    Unsupported,
    /// The system's web browser could not be started ("Open in browser"); `message` says why.
    /// The front end offers the address to copy instead.
    NoBrowser,
    /// Anything else: a bug or an environment problem; `message` says what.
    Internal,
}

impl ErrorCode {
    /// Every code, in declaration order (for generated front-end lists).
    pub const ALL: [ErrorCode; 15] = [
        ErrorCode::HostKeyChanged,
        ErrorCode::HostKeyNotTrusted,
        ErrorCode::AuthFailed,
        ErrorCode::Unreachable,
        ErrorCode::Timeout,
        ErrorCode::NotFound,
        ErrorCode::Validation,
        ErrorCode::GpuDriver,
        ErrorCode::NoFreeGpu,
        ErrorCode::Jupyter,
        ErrorCode::ServerGone,
        ErrorCode::Cancelled,
        ErrorCode::Unsupported,
        ErrorCode::NoBrowser,
        ErrorCode::Internal,
    ];

    /// Its position in [`ErrorCode::ALL`]; the match makes a new code a compile error here
    /// until it is listed.
    #[cfg(test)]
    const fn index(self) -> usize {
        match self {
            ErrorCode::HostKeyChanged => 0,
            ErrorCode::HostKeyNotTrusted => 1,
            ErrorCode::AuthFailed => 2,
            ErrorCode::Unreachable => 3,
            ErrorCode::Timeout => 4,
            ErrorCode::NotFound => 5,
            ErrorCode::Validation => 6,
            ErrorCode::GpuDriver => 7,
            ErrorCode::NoFreeGpu => 8,
            ErrorCode::Jupyter => 9,
            ErrorCode::ServerGone => 10,
            ErrorCode::Cancelled => 11,
            ErrorCode::Unsupported => 12,
            ErrorCode::NoBrowser => 13,
            ErrorCode::Internal => 14,
        }
    }
}

/// One invalid form field, with the message to show next to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct FieldError {
    /// The field's wire name (camelCase, as in the TypeScript type), e.g. `host`.
    pub field: String,
    /// What is wrong, for humans.
    pub message: String,
}

/// A failure as a front end shows it: `{ code, message, fields? }` on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
#[error("{message}")]
pub struct Problem {
    /// What the UI switches on.
    pub code: ErrorCode,
    /// For humans; says what to do.
    pub message: String,
    /// Per-field messages when `code` is `validation`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
}

impl Problem {
    /// A problem with no field details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            fields: Vec::new(),
        }
    }

    /// A validation problem listing the invalid fields.
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
}

impl From<SshError> for Problem {
    fn from(e: SshError) -> Self {
        Self::new(ssh_code(&e), ssh_message(&e))
    }
}

impl From<&SshError> for Problem {
    fn from(e: &SshError) -> Self {
        Self::new(ssh_code(e), ssh_message(e))
    }
}

/// Core's message, except where it speaks to a terminal user (command-line flags) or quotes the
/// OS (`os error 111`): said in words, for a screen with buttons that act on it.
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

/// Why a dial made while reconnecting a host that was connected failed, in words, without the
/// first connect's advice to check the host name and port (they worked: the host is down or
/// unreachable for now), e.g. `cannot reach 10.0.0.5:22: nothing accepts connections on that
/// port (connection refused)`.
pub fn retry_words(e: &SshError) -> String {
    match e {
        SshError::Unreachable { host, port, source } => {
            format!("cannot reach {host}:{port}: {}", io_words(source))
        }
        other => ssh_message(other),
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
            // Windows' messages end in a full stop; the sentence around it adds its own.
            let text = e.to_string();
            let words = match text.find(" (os error") {
                Some(i) => &text[..i],
                None => &text,
            };
            words.trim_end_matches('.').to_string()
        }
    }
}

/// The code of an SSH failure.
pub fn ssh_code(e: &SshError) -> ErrorCode {
    match e {
        SshError::Unreachable { .. }
        | SshError::ProxyCommand { .. }
        | SshError::HandshakeFailed { .. } => ErrorCode::Unreachable,
        SshError::Timeout { .. } | SshError::CommandTimedOut { .. } => ErrorCode::Timeout,
        // Revoked keys and refused host certificates are, to the user, a changed key: refused
        // with no way to accept it from the dialog.
        SshError::HostKeyChanged { .. }
        | SshError::HostKeyRevoked { .. }
        | SshError::HostCertificateInvalid { .. } => ErrorCode::HostKeyChanged,
        SshError::HostKeyNotTrusted { .. } => ErrorCode::HostKeyNotTrusted,
        SshError::AuthFailed { .. } => ErrorCode::AuthFailed,
        // A lost connection is, to the user, a host that cannot be reached now.
        SshError::Closed(_) => ErrorCode::Unreachable,
        SshError::KeyFile { .. }
        | SshError::KnownHosts { .. }
        | SshError::ChannelRefused { .. }
        | SshError::Protocol(_)
        | SshError::NotRun { .. }
        | SshError::OutputTooLarge { .. }
        // A host setting (HostKeyAlgorithms) to change; the message says which and how.
        | SshError::NoCommonHostKeyAlgorithm { .. } => ErrorCode::Internal,
    }
}

impl From<GpuError> for Problem {
    fn from(e: GpuError) -> Self {
        let code = match &e {
            GpuError::Ssh(ssh) => return ssh.into(),
            GpuError::Driver { .. } | GpuError::Nvml(_) => ErrorCode::GpuDriver,
            GpuError::NoFreeGpu { .. } => ErrorCode::NoFreeGpu,
            GpuError::UnknownGpu { .. } => ErrorCode::NotFound,
            GpuError::InvalidSelector { .. } | GpuError::UnusableGpu { .. } => {
                ErrorCode::Validation
            }
            GpuError::Unreadable { .. } => ErrorCode::Internal,
            GpuError::TimedOut { .. } => ErrorCode::Timeout,
        };
        Self::new(code, e.to_string())
    }
}

impl From<JupyterError> for Problem {
    fn from(e: JupyterError) -> Self {
        let code = match &e {
            JupyterError::Ssh(ssh) => return ssh.into(),
            JupyterError::NotFound { .. } => ErrorCode::NotFound,
            _ => ErrorCode::Jupyter,
        };
        // Said for both fronts: the app has a button where the CLI has a subcommand.
        let message = match &e {
            JupyterError::JupyterMissing { env, host } => format!(
                "JupyterLab is not installed in {env} on {host}. Choose another environment, or \
                 let Tunnelbook install JupyterLab into a venv (\"Install JupyterLab\" on the \
                 Environment screen, or `tunnelbook install-jupyter`)."
            ),
            JupyterError::NoJupyterAnywhere { host, .. } => format!(
                "No Python environment found on {host} has JupyterLab. Add the path of one that \
                 has it (\"Add environment path…\", or `--env`), or let Tunnelbook install \
                 JupyterLab into a venv (\"Install JupyterLab\" on the Environment screen, or \
                 `tunnelbook install-jupyter`)."
            ),
            _ => e.to_string(),
        };
        Self::new(code, message)
    }
}

/// A URL a notebook window does not show: the caller gave a wrong one.
impl From<crate::jupyter::window::UrlError> for Problem {
    fn from(e: crate::jupyter::window::UrlError) -> Self {
        Self::new(ErrorCode::Validation, e.to_string())
    }
}

impl From<crate::jupyter::window::BrowserError> for Problem {
    fn from(e: crate::jupyter::window::BrowserError) -> Self {
        use crate::jupyter::window::BrowserError as B;
        let code = match &e {
            B::NoBrowser(_) => ErrorCode::NoBrowser,
            B::LocalLink(_) => ErrorCode::Internal,
        };
        Self::new(code, e.to_string())
    }
}

impl From<ProfileError> for Problem {
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

impl From<TunnelError> for Problem {
    fn from(e: TunnelError) -> Self {
        let code = match &e {
            TunnelError::PortInUse { .. } | TunnelError::Spec { .. } => ErrorCode::Validation,
            TunnelError::Ssh(ssh) => return ssh.into(),
            TunnelError::Listen { .. } | TunnelError::RemoteRefused { .. } => ErrorCode::Internal,
        };
        Self::new(code, e.to_string())
    }
}

impl From<SettingsError> for Problem {
    fn from(e: SettingsError) -> Self {
        match e {
            SettingsError::Invalid(problems) => Self::validation(
                problems
                    .into_iter()
                    .map(|(field, message)| FieldError { field, message })
                    .collect(),
            ),
            other => Self::new(ErrorCode::Internal, other.to_string()),
        }
    }
}

// SLURM launches (issue 20).
impl From<crate::slurm::SlurmError> for Problem {
    fn from(e: crate::slurm::SlurmError) -> Self {
        use crate::slurm::SlurmError as S;
        let e = match e {
            S::Tunnel(t) => return t.into(),
            e => e,
        };
        let code = match &e {
            S::Ssh(ssh) => return ssh.into(),
            // The request form shows it at the field to change.
            S::Refused { field, message } => {
                return Self::validation(vec![FieldError {
                    field: (*field).to_string(),
                    message: message.clone(),
                }]);
            }
            S::Form(fields) => {
                return Self::validation(
                    fields
                        .iter()
                        .map(|(field, message)| FieldError {
                            field: (*field).to_string(),
                            message: message.clone(),
                        })
                        .collect(),
                );
            }
            S::Parse(_) | S::NeverStarts { .. } => ErrorCode::Validation,
            S::Command { command, .. } if command == "sbatch --test-only" => ErrorCode::Validation,
            S::Cancelled { .. } => ErrorCode::Cancelled,
            S::Timeout(_) => ErrorCode::Timeout,
            S::NotSlurm(_) | S::LoginNode => ErrorCode::Unsupported,
            S::NoJob(_) => ErrorCode::NotFound,
            S::NotConnected => ErrorCode::Unreachable,
            S::JobEnded { .. } | S::Command { .. } | S::NotAnswering(_) | S::Tunnel(_) => {
                ErrorCode::Jupyter
            }
        };
        Self::new(code, e.to_string())
    }
}

impl From<SecretError> for Problem {
    fn from(e: SecretError) -> Self {
        let code = match e {
            SecretError::Unavailable(_) => ErrorCode::Unsupported,
            _ => ErrorCode::Internal,
        };
        Self::new(code, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slurm_refusals_are_field_errors_and_a_cancel_is_cancelled() {
        use crate::slurm::SlurmError;
        let p = Problem::from(SlurmError::Refused {
            field: "gpus",
            message: "no GPU type h100 in partition gpu".into(),
        });
        assert_eq!(p.code, ErrorCode::Validation);
        assert_eq!(p.fields[0].field, "gpus");
        assert!(p.fields[0].message.contains("h100"), "{p:?}");
        let form = Problem::from(SlurmError::Form(vec![
            ("time", "cannot read the time".into()),
            ("gpuCount", "ask for at least 1 GPU".into()),
        ]));
        assert_eq!(form.code, ErrorCode::Validation);
        let fields: Vec<_> = form.fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, vec!["time", "gpuCount"]);
        let cancelled = Problem::from(SlurmError::Cancelled {
            job_id: Some("7".into()),
            state: Some("CANCELLED".into()),
        });
        assert_eq!(cancelled.code, ErrorCode::Cancelled);
        assert_eq!(cancelled.message, "job 7 cancelled (CANCELLED)");
    }

    /// "Open in browser": no browser is `noBrowser` (the front end offers the link to copy), no
    /// local link is `internal`; a plain launch on a SLURM login node is `unsupported`.
    #[test]
    fn browser_and_login_node_refusals_get_their_codes() {
        use crate::jupyter::window::{BrowserError, browser_failure};
        let no_browser = Problem::from(browser_failure(None));
        assert_eq!(no_browser.code, ErrorCode::NoBrowser);
        assert!(no_browser.message.ends_with("copy the address instead."));
        let no_link = Problem::from(BrowserError::LocalLink(
            std::io::ErrorKind::AddrInUse.into(),
        ));
        assert_eq!(no_link.code, ErrorCode::Internal);
        let login = Problem::from(crate::slurm::SlurmError::LoginNode);
        assert_eq!(login.code, ErrorCode::Unsupported);
        assert!(login.message.contains("SLURM login node"), "{login:?}");
    }

    #[test]
    fn serializes_as_code_and_message() {
        let e = Problem::new(ErrorCode::AuthFailed, "nope");
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({ "code": "authFailed", "message": "nope" })
        );
        let e = Problem::new(ErrorCode::ServerGone, "gone");
        assert_eq!(serde_json::to_value(&e).unwrap()["code"], "serverGone");
    }

    #[test]
    fn all_lists_every_code_once_in_order() {
        for (i, code) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(code.index(), i, "{code:?}");
        }
    }

    #[test]
    fn gpu_errors_get_their_codes() {
        let driver: Problem = GpuError::Driver {
            host: "h".into(),
            message: "Failed to initialize NVML: Driver/library version mismatch".into(),
        }
        .into();
        assert_eq!(driver.code, ErrorCode::GpuDriver);
        assert!(
            driver.message.contains("version mismatch"),
            "{}",
            driver.message
        );
        let busy: Problem = GpuError::NoFreeGpu {
            host: "h".into(),
            valid: vec!["0".into()],
        }
        .into();
        assert_eq!(busy.code, ErrorCode::NoFreeGpu);
        let unreachable: Problem = GpuError::Ssh(SshError::Unreachable {
            host: "h".into(),
            port: 22,
            source: std::io::Error::other("refused"),
        })
        .into();
        assert_eq!(unreachable.code, ErrorCode::Unreachable);
    }

    /// The OS's number for "connection refused".
    #[cfg(windows)]
    const CONNECTION_REFUSED: i32 = 10061; // WSAECONNREFUSED
    #[cfg(target_os = "macos")]
    const CONNECTION_REFUSED: i32 = 61;
    #[cfg(not(any(windows, target_os = "macos")))]
    const CONNECTION_REFUSED: i32 = 111;

    #[test]
    fn messages_have_no_os_error_numbers_and_name_the_app_button() {
        let refused: Problem = SshError::Unreachable {
            host: "gpu".into(),
            port: 22,
            source: std::io::Error::from_raw_os_error(CONNECTION_REFUSED),
        }
        .into();
        assert_eq!(refused.code, ErrorCode::Unreachable);
        assert!(
            refused.message.contains("connection refused") && !refused.message.contains("os error"),
            "{}",
            refused.message
        );
        let declined: Problem = SshError::HostKeyNotTrusted {
            host: "gpu".into(),
            port: 22,
            fingerprint: "SHA256:x".into(),
        }
        .into();
        assert!(!declined.message.contains("--"), "{}", declined.message);
        assert!(declined.message.contains("SHA256:x"));
        let missing: Problem = JupyterError::JupyterMissing {
            env: "/opt/jlab".into(),
            host: "gpu".into(),
        }
        .into();
        assert!(
            missing.message.contains("\"Install JupyterLab\"")
                && missing.message.contains("/opt/jlab"),
            "{}",
            missing.message
        );
    }

    #[test]
    fn host_key_changed_keeps_its_code() {
        let e: Problem = SshError::HostKeyChanged {
            host: "h".into(),
            port: 22,
            expected: "SHA256:a".into(),
            presented: "SHA256:b".into(),
            file: "kh".into(),
            line: 3,
        }
        .into();
        assert_eq!(e.code, ErrorCode::HostKeyChanged);
        assert!(e.message.contains("SHA256:b"));
    }
}
