use super::*;

#[test]
fn events_serialize_as_the_ui_reads_them() {
    let ev = HostEvent::failed(
        Step::ReadGpus,
        Problem::new(ErrorCode::NoFreeGpu, "every GPU is busy"),
    );
    assert_eq!(
        serde_json::to_value(&ev).unwrap(),
        serde_json::json!({
            "step": "readGpus", "state": "failed", "message": "every GPU is busy",
            "error": { "code": "noFreeGpu", "message": "every GPU is busy" }
        })
    );
}

#[test]
fn host_key_and_auth_failures_belong_to_their_steps() {
    let changed = SshError::HostKeyChanged {
        host: "h".into(),
        port: 22,
        expected: "a".into(),
        presented: "b".into(),
        file: "kh".into(),
        line: 1,
    };
    assert_eq!(failed_step(&changed), Step::HostKey);
    assert!(!changed.is_transient());
    let closed = SshError::Closed("x".into());
    assert_eq!(failed_step(&closed), Step::Connect);
}

/// Trial of issue 14, finding 11: while a host that was connected is dialed again, the
/// connect step says what Tunnelbook does (reconnecting, attempt N), never the first
/// connect's "Check the host name and port".
#[test]
fn reconnecting_says_what_it_does_without_first_connect_advice() {
    let refused = SshError::Unreachable {
        host: "127.0.0.1".into(),
        port: 38479,
        source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
    };
    // The first connect's message advises checking the name and port…
    assert!(
        Problem::from(&refused)
            .message
            .contains("Check the host name")
    );
    // …a retry's does not.
    let cause = Problem::new(
        crate::error::ssh_code(&refused),
        crate::error::retry_words(&refused),
    );
    let ev = reconnecting(3, Duration::from_millis(3500), &cause);
    assert_eq!((ev.step, ev.state), (Step::Connect, StepState::Running));
    assert!(
        ev.message
            .starts_with("Connection lost — reconnecting (attempt 3, next try in 4 s)"),
        "{}",
        ev.message
    );
    assert!(ev.message.contains("cannot reach 127.0.0.1:38479"));
    let error = ev.error.expect("the cause");
    assert_eq!(error.code, ErrorCode::Unreachable);
    assert!(
        error
            .message
            .starts_with("Connection lost — reconnecting (attempt 3")
    );
    assert!(error.message.contains("Tunnelbook keeps trying"));
    for text in [&ev.message, &error.message] {
        assert!(!text.contains("Check the host name"), "{text}");
        assert!(!text.contains("os error"), "{text}");
    }
    assert!(
        reconnecting(1, Duration::ZERO, &cause)
            .message
            .contains("(attempt 1, trying now)")
    );
}

#[tokio::test]
async fn this_computer_skips_ssh_and_has_no_connection() {
    let (host, mut events) = HostSession::start(HostSpec {
        host: SessionHost::Local,
        reconnect: ReconnectPolicy::default(),
        free_rule: FreeRule::default(),
        profiles: None,
        probe: true,
    });
    let first = events.recv().await.unwrap();
    assert_eq!(
        (first.step, first.state),
        (Step::Connect, StepState::Skipped)
    );
    assert!(host.is_local());
    assert!(host.connection().is_none());
    assert!(matches!(host.jupyter_host(), Ok(jupyter::Host::Local)));
    host.close().await;
}
