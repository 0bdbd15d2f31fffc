//! Keyboard-interactive sequences OpenSSH's sshd cannot produce, from an in-process russh server:
//! a zero-prompt round, then a round mixing echoed and hidden prompts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    borrow::Cow,
    sync::{Arc, Mutex},
};

use russh::{
    MethodKind, MethodSet,
    server::{self, Auth, Response},
};
use tunnelbook_core::{
    profile::AuthMethod,
    ssh::{Connection, HostKeyPolicy},
};
use tunnelbook_testbed::{Client, make_key, prompter::ScriptedPrompter};

#[derive(Clone, Default)]
struct OddServer {
    round: Arc<Mutex<u32>>,
    answers: Arc<Mutex<Vec<Vec<String>>>>,
}

impl server::Handler for OddServer {
    type Error = russh::Error;

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        _user: &str,
        _submethods: &str,
        response: Option<Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        let answers: Vec<String> = response
            .map(|r| {
                r.map(|b| String::from_utf8_lossy(&b).into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let mut round = self.round.lock().unwrap();
        *round += 1;
        self.answers.lock().unwrap().push(answers.clone());
        Ok(match *round {
            // An empty round: some PAM stacks send one before the real prompts.
            1 => Auth::Partial {
                name: "".into(),
                instructions: "Welcome".into(),
                prompts: Cow::Owned(vec![]),
            },
            2 => Auth::Partial {
                name: "Duo two-factor".into(),
                instructions: "".into(),
                prompts: Cow::Owned(vec![
                    ("Username: ".into(), true),
                    ("Passcode: ".into(), false),
                ]),
            },
            3 if answers == ["alice", "123456"] => Auth::Accept,
            _ => Auth::Reject {
                proceed_with_methods: None,
                partial_success: false,
            },
        })
    }
}

#[tokio::test]
async fn zero_prompt_round_then_mixed_echo_prompts() {
    let keys = tempfile::tempdir().unwrap();
    let host_key = make_key(keys.path(), "host", "ed25519", None);
    let config = Arc::new(server::Config {
        keys: vec![russh::keys::load_secret_key(&host_key.path, None).unwrap()],
        methods: MethodSet::from(&[MethodKind::KeyboardInteractive][..]),
        ..Default::default()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = OddServer::default();
    let handler = server.clone();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let session = server::run_stream(config, tcp, handler).await.unwrap();
        let _ = session.await;
    });

    let client = Client::new();
    std::fs::create_dir_all(client.home()).unwrap();
    std::fs::write(
        client.home().join("known_hosts"),
        format!("[127.0.0.1]:{port} {}\n", host_key.public),
    )
    .unwrap();
    let prompter = Arc::new(ScriptedPrompter {
        kbd: Some(Box::new(|round| {
            let echoes: Vec<bool> = round.prompts.iter().map(|p| p.echo).collect();
            assert_eq!(echoes, vec![true, false], "echo flags reach the prompter");
            vec!["alice".into(), "123456".into()]
        })),
        ..Default::default()
    });
    let mut profile =
        tunnelbook_core::profile::Profile::from_destination(&format!("alice@127.0.0.1:{port}"));
    profile.auth = vec![AuthMethod::KeyboardInteractive];
    let ctx = client.context(prompter.clone(), HostKeyPolicy::Strict, None);
    Connection::open(&[profile], &ctx).await.unwrap();
    // The empty round was answered without bothering the human.
    assert_eq!(
        prompter.asked(),
        vec!["kbd [Username: |Passcode: ]".to_string()]
    );
    assert_eq!(
        *server.answers.lock().unwrap(),
        vec![
            vec![],
            vec![],
            vec!["alice".to_string(), "123456".to_string()]
        ]
    );
}
