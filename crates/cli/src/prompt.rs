//! The terminal as core's `Prompter`: questions on stderr, answers from the terminal without
//! echo, or `TUNNELBOOK_PASSWORD` for scripts.

use std::io::{BufRead, Write};

use async_trait::async_trait;
use tunnelbook_core::{
    secret::Sensitive,
    ssh::{HostKeyQuestion, KbdRound, Prompter, SecretAnswer, SecretQuestion},
};

/// Asks on the terminal; with no terminal, answers only what the environment provides.
pub struct TerminalPrompter {
    /// Whether a human is at a terminal.
    pub interactive: bool,
    /// Whether secrets given should be kept in the OS keychain (`--remember`).
    pub remember: bool,
}

fn ask_line(question: &str) -> Option<String> {
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).ok()?;
    Some(line.trim().to_string())
}

fn ask_hidden(question: &str) -> Option<String> {
    rpassword::prompt_password(question).ok()
}

#[async_trait]
impl Prompter for TerminalPrompter {
    async fn confirm_host_key(&self, q: &HostKeyQuestion) -> bool {
        if !self.interactive {
            return false;
        }
        let text = format!(
            "The authenticity of host '{}' (port {}) can't be established.\n{} key fingerprint is {}.\n\
             Are you sure you want to continue connecting (yes/no)? ",
            q.host, q.port, q.algorithm, q.fingerprint
        );
        let answer = tokio::task::spawn_blocking(move || ask_line(&text))
            .await
            .ok()
            .flatten();
        matches!(answer.as_deref(), Some("yes" | "y"))
    }

    async fn secret(&self, q: &SecretQuestion) -> Option<SecretAnswer> {
        if let SecretQuestion::Password { retry: false, .. } = q
            && let Ok(pw) = std::env::var("TUNNELBOOK_PASSWORD")
        {
            return Some(SecretAnswer {
                value: Sensitive::new(pw),
                remember: self.remember,
            });
        }
        if !self.interactive {
            return None;
        }
        let text = match q {
            SecretQuestion::Password { user, host, retry } => {
                format!(
                    "{}{user}@{host}'s password: ",
                    if *retry {
                        "Permission denied, try again. "
                    } else {
                        ""
                    }
                )
            }
            SecretQuestion::Passphrase { path, retry } => {
                format!(
                    "{}Enter passphrase for key '{path}': ",
                    if *retry { "Wrong passphrase. " } else { "" }
                )
            }
        };
        let value = tokio::task::spawn_blocking(move || ask_hidden(&text))
            .await
            .ok()
            .flatten()?;
        Some(SecretAnswer {
            value: Sensitive::new(value),
            remember: self.remember,
        })
    }

    async fn keyboard_interactive(&self, round: &KbdRound) -> Option<Vec<Sensitive<String>>> {
        if round.prompts.is_empty() {
            return Some(Vec::new());
        }
        if !self.interactive {
            return None;
        }
        let round = round.clone();
        tokio::task::spawn_blocking(move || {
            for text in [&round.name, &round.instructions] {
                if !text.is_empty() {
                    eprintln!("{text}");
                }
            }
            round
                .prompts
                .iter()
                .map(|p| {
                    let answer = if p.echo {
                        ask_line(&p.prompt)
                    } else {
                        ask_hidden(&p.prompt)
                    };
                    answer.map(Sensitive::new)
                })
                .collect::<Option<Vec<_>>>()
        })
        .await
        .ok()
        .flatten()
    }
}
