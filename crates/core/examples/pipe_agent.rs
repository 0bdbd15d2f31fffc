//! A stand-in for Windows' OpenSSH agent, for tests: serves `\\.\pipe\openssh-ssh-agent` (the
//! pipe Windows' `ssh-agent` service listens on) with russh's agent server, loads the private key
//! file named by its argument into itself through that pipe, prints `ready`, and serves until it
//! is killed. `tests/tests/windows_cli.rs` runs it under Wine to check that the Windows CLI logs
//! in through the agent (core's `#[cfg(windows)]` agent path).
//!
//!   pipe_agent.exe KEY_FILE        (Windows only; the key without a passphrase)

#[cfg(windows)]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    use futures::StreamExt;
    use russh::keys::agent::client::AgentClient;
    use tokio::net::windows::named_pipe::ServerOptions;

    const PIPE: &str = r"\\.\pipe\openssh-ssh-agent";
    let key_file = std::env::args_os()
        .nth(1)
        .ok_or("usage: pipe_agent KEY_FILE")?;
    let key = russh::keys::load_secret_key(&key_file, None)?;

    // One pipe instance per client: each accepted instance is handed to the server and a new
    // one takes its place, as Windows' agent does.
    let first = ServerOptions::new()
        .first_pipe_instance(true)
        .create(PIPE)?;
    let connections = futures::stream::unfold(Some(first), |server| async move {
        let server = server?;
        if let Err(e) = server.connect().await {
            return Some((Err(e), None));
        }
        match ServerOptions::new().create(PIPE) {
            Ok(next) => Some((Ok(server), Some(next))),
            Err(e) => Some((Err(e), None)),
        }
    })
    .boxed();
    tokio::spawn(russh::keys::agent::server::serve(connections, ()));

    let mut client = AgentClient::connect_named_pipe(PIPE).await?;
    client.add_identity(&key, &[]).await?;
    println!("ready");
    futures::future::pending::<()>().await;
    Ok(())
}

#[cfg(not(windows))]
fn main() {
    eprintln!("pipe_agent serves a Windows named pipe: build it for Windows");
    std::process::exit(2);
}
