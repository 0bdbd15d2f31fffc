//! A server that predates rsa-sha2 (OpenSSH before 7.2): it lists no RSA signature algorithm
//! in `server-sig-algs` and accepts RSA keys only signed with legacy `ssh-rsa` (SHA-1). An
//! in-process russh server plays it, since no such OpenSSH can be installed here.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    borrow::Cow,
    sync::{Arc, Mutex},
};

use russh::{
    MethodKind, MethodSet,
    keys::Algorithm,
    server::{self, Auth, VerifiedPublicKey},
};
use tunnelbook_core::ssh::{Connection, HostKeyPolicy, NoPrompter};
use tunnelbook_testbed::{Client, key_only, make_key};

#[derive(Clone, Default)]
struct OldServer {
    signed_with: Arc<Mutex<Vec<String>>>,
}

impl server::Handler for OldServer {
    type Error = russh::Error;

    async fn auth_publickey(
        &mut self,
        _user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        self.signed_with
            .lock()
            .unwrap()
            .push(key.algorithm.to_string());
        Ok(if *key.algorithm == (Algorithm::Rsa { hash: None }) {
            Auth::Accept
        } else {
            Auth::reject()
        })
    }
}

#[tokio::test]
async fn rsa_key_works_with_a_server_without_rsa_sha2() {
    let keys = tempfile::tempdir().unwrap();
    let host_key = make_key(keys.path(), "host", "ed25519", None);
    let user_key = make_key(keys.path(), "id_rsa", "rsa", None);
    let config = Arc::new(server::Config {
        keys: vec![russh::keys::load_secret_key(&host_key.path, None).unwrap()],
        methods: MethodSet::from(&[MethodKind::PublicKey][..]),
        // server-sig-algs is this list: no RSA algorithm in it.
        preferred: russh::Preferred {
            key: Cow::Borrowed(&[Algorithm::Ed25519]),
            ..Default::default()
        },
        ..Default::default()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = OldServer::default();
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
    let profile = key_only(
        tunnelbook_core::profile::Profile::from_destination(&format!("old@127.0.0.1:{port}")),
        &user_key,
    );
    let ctx = client.context(Arc::new(NoPrompter), HostKeyPolicy::Strict, None);
    Connection::open(&[profile], &ctx)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // SHA-256 first (modern servers without the extension take it), then legacy ssh-rsa.
    assert_eq!(
        *server.signed_with.lock().unwrap(),
        vec!["rsa-sha2-256".to_string(), "ssh-rsa".to_string()]
    );
}
