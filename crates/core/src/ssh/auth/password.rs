//! Password and keyboard-interactive authentication (PAM's `Password:` round answered as the
//! password), and the keychain for both.

use russh::{
    MethodKind,
    client::{Handle, KeyboardInteractiveAuthResponse},
};
use tracing::debug;

use crate::ssh::{
    ConnectContext, KbdPrompt, KbdRound, SecretQuestion, SshError, handler::ClientHandler,
};
use crate::{
    profile::Profile,
    secret::{SecretKey, Sensitive},
};

pub(super) async fn password(
    handle: &mut Handle<ClientHandler>,
    user: &str,
    hop: &Profile,
    ctx: &ConnectContext,
    progress: &mut Progress,
) -> Result<Outcome, SshError> {
    // Tied to this user@host:port: a password remembered for another server under the same
    // name is never sent here.
    let secret_key = hop.password_key();
    if let Some(stored) = retrieve(ctx, &secret_key) {
        progress.tried.push("password");
        let r = handle
            .authenticate_password(user, stored.expose().as_str())
            .await?;
        if let Some(outcome) = result(progress, r) {
            return Ok(outcome);
        }
    }
    for attempt in 0..PASSWORD_ATTEMPTS {
        let question = SecretQuestion::Password {
            user: user.to_string(),
            host: hop.host.clone(),
            retry: attempt > 0 || progress.tried.contains(&"password"),
        };
        let Some(answer) = ctx.prompter.secret(&question).await else {
            break;
        };
        progress.tried.push("password");
        let r = handle
            .authenticate_password(user, answer.value.expose().as_str())
            .await?;
        if r.success() && answer.remember {
            store(ctx, &secret_key, &answer.value);
        }
        if let Some(outcome) = result(progress, r) {
            return Ok(outcome);
        }
        if !progress.allows(MethodKind::Password) {
            break;
        }
    }
    Ok(Outcome::Next)
}

use super::{Outcome, PASSWORD_ATTEMPTS, Progress, result};

/// Keyboard-interactive rounds answered before giving up (a server that never stops asking).
const MAX_KBD_ROUNDS: usize = 16;

/// Keyboard-interactive, up to three times when the password was wrong (OpenSSH's
/// `NumberOfPasswordPrompts`).
///
/// A round that is PAM's single hidden `Password:` prompt is the login password to the user (as
/// PuTTY, Bitvise and OpenSSH with an askpass helper treat it): it is answered like the
/// `password` method — the remembered password first, then [`SecretQuestion::Password`] (which
/// the CLI answers from `TUNNELBOOK_PASSWORD` and the app with its password dialog and
/// "Remember"). Every other round (OTP, Duo, …) is asked as it comes.
pub(super) async fn keyboard_interactive(
    handle: &mut Handle<ClientHandler>,
    user: &str,
    hop: &Profile,
    destination: &str,
    ctx: &ConnectContext,
    progress: &mut Progress,
) -> Result<Outcome, SshError> {
    let mut password = KbdPassword {
        stored: retrieve(ctx, &hop.password_key()),
        rejected: progress.tried.contains(&"password"),
    };
    for _ in 0..PASSWORD_ATTEMPTS {
        progress.tried.push("keyboard-interactive");
        match kbd_attempt(handle, user, hop, destination, ctx, progress, &mut password).await? {
            KbdEnd::Success => return Ok(Outcome::Success),
            KbdEnd::PasswordRejected if progress.allows(MethodKind::KeyboardInteractive) => {
                password.rejected = true;
            }
            KbdEnd::PasswordRejected | KbdEnd::Failed => return Ok(Outcome::Next),
        }
    }
    Ok(Outcome::Next)
}

/// Where the password for a keyboard-interactive `Password:` prompt comes from.
pub(super) struct KbdPassword {
    /// The remembered password, until it has been used once.
    stored: Option<Sensitive<String>>,
    /// Whether a password given earlier in this connection was wrong.
    rejected: bool,
}

pub(super) enum KbdEnd {
    Success,
    /// The server refused right after the answer to a password prompt.
    PasswordRejected,
    /// Refused after any other round, or the human declined.
    Failed,
}

/// Whether a round is the login password and nothing else: one hidden prompt that names the
/// password and is not a one-time code or a password change.
pub(super) fn is_password_round(round: &KbdRound) -> bool {
    let [prompt] = round.prompts.as_slice() else {
        return false;
    };
    let text = prompt.prompt.to_lowercase();
    !prompt.echo
        && text.contains("password")
        && ![
            "one-time", "one time", "otp", "oath", "token", "code", "passcode", "pin", "new ",
            "retype", "again", "verif",
        ]
        .iter()
        .any(|word| text.contains(word))
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn kbd_attempt(
    handle: &mut Handle<ClientHandler>,
    user: &str,
    hop: &Profile,
    destination: &str,
    ctx: &ConnectContext,
    progress: &mut Progress,
    password: &mut KbdPassword,
) -> Result<KbdEnd, SshError> {
    let mut response = handle
        .authenticate_keyboard_interactive_start(user, None::<String>)
        .await?;
    // The password answered in the last round, and whether to remember it on success.
    let mut answered: Option<(Sensitive<String>, bool)> = None;
    let mut last_was_password = false;
    for _ in 0..MAX_KBD_ROUNDS {
        match response {
            KeyboardInteractiveAuthResponse::Success => {
                if let Some((value, true)) = &answered {
                    store(ctx, &hop.password_key(), value);
                }
                return Ok(KbdEnd::Success);
            }
            KeyboardInteractiveAuthResponse::Failure {
                remaining_methods,
                partial_success,
            } => {
                progress.failed(&remaining_methods, partial_success);
                return Ok(if last_was_password {
                    KbdEnd::PasswordRejected
                } else {
                    KbdEnd::Failed
                });
            }
            KeyboardInteractiveAuthResponse::InfoRequest {
                name,
                instructions,
                prompts,
            } => {
                let round = KbdRound {
                    destination: destination.to_string(),
                    name,
                    instructions,
                    prompts: prompts
                        .into_iter()
                        .map(|p| KbdPrompt {
                            prompt: p.prompt,
                            echo: p.echo,
                        })
                        .collect(),
                };
                last_was_password = false;
                let answers: Vec<String> = if round.prompts.is_empty() {
                    Vec::new()
                } else if is_password_round(&round) {
                    let Some((value, remember)) = kbd_password(user, hop, ctx, password).await
                    else {
                        return Ok(KbdEnd::Failed);
                    };
                    last_was_password = true;
                    let answer = vec![value.expose().clone()];
                    answered = Some((value, remember));
                    answer
                } else {
                    match ctx.prompter.keyboard_interactive(&round).await {
                        Some(a) if a.len() == round.prompts.len() => {
                            a.iter().map(|a| a.expose().clone()).collect()
                        }
                        _ => return Ok(KbdEnd::Failed),
                    }
                };
                response = handle
                    .authenticate_keyboard_interactive_respond(answers)
                    .await?;
            }
        }
    }
    Ok(KbdEnd::Failed)
}

/// The password for a `Password:` round: the remembered one once, then the human's (or
/// `TUNNELBOOK_PASSWORD`). Returns it with whether to remember it.
pub(super) async fn kbd_password(
    user: &str,
    hop: &Profile,
    ctx: &ConnectContext,
    password: &mut KbdPassword,
) -> Option<(Sensitive<String>, bool)> {
    if let Some(stored) = password.stored.take() {
        return Some((stored, false));
    }
    let question = SecretQuestion::Password {
        user: user.to_string(),
        host: hop.host.clone(),
        retry: password.rejected,
    };
    let answer = ctx.prompter.secret(&question).await?;
    Some((answer.value, answer.remember))
}

pub(super) fn retrieve(ctx: &ConnectContext, key: &SecretKey) -> Option<Sensitive<String>> {
    let store = ctx.secrets.as_ref()?;
    match store.retrieve(key) {
        Ok(v) => v,
        Err(e) => {
            debug!(error = %e, "keychain read failed");
            None
        }
    }
}

pub(super) fn store(ctx: &ConnectContext, key: &SecretKey, value: &Sensitive<String>) {
    if let Some(store) = &ctx.secrets
        && let Err(e) = store.persist(key, value)
    {
        tracing::warn!(error = %e, "could not remember the secret in the keychain");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(prompts: &[(&str, bool)]) -> KbdRound {
        KbdRound {
            destination: "u@h".into(),
            name: String::new(),
            instructions: String::new(),
            prompts: prompts
                .iter()
                .map(|(p, echo)| KbdPrompt {
                    prompt: (*p).to_string(),
                    echo: *echo,
                })
                .collect(),
        }
    }

    #[test]
    fn pam_password_prompts_are_the_password() {
        for p in [
            "Password: ",
            "password:",
            "LDAP Password: ",
            "tbuser@gpu's password: ",
        ] {
            assert!(is_password_round(&round(&[(p, false)])), "{p}");
        }
    }

    #[test]
    fn otp_changes_echoed_and_multi_prompt_rounds_are_asked() {
        for p in [
            "One-time password (OATH) for `tbuser': ",
            "Verification code: ",
            "OTP password: ",
            "New password: ",
            "Retype new password: ",
            "Passcode or option (1-3): ",
            "Duo token: ",
        ] {
            assert!(!is_password_round(&round(&[(p, false)])), "{p}");
        }
        assert!(!is_password_round(&round(&[("Password: ", true)])));
        assert!(!is_password_round(&round(&[
            ("Password: ", false),
            ("Password: ", false)
        ])));
        assert!(!is_password_round(&round(&[])));
    }
}
