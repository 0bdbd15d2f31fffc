//! `tunnelbook envs NAME` and `tunnelbook install-jupyter NAME`: Python environments on a host.

use std::process::ExitCode;

use tunnelbook_core::jupyter::{self, Environment};

use crate::{Global, connect};

/// Arguments of `envs`.
#[derive(Debug, clap::Args)]
pub struct EnvsArgs {
    /// Saved host name, or `local`.
    name: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `install-jupyter`.
#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    /// Saved host name, or `local`.
    name: String,
    /// Where to create the venv on the host.
    #[arg(long, default_value = jupyter::DEFAULT_VENV)]
    venv: String,
}

fn row(e: &Environment) -> String {
    let jupyter = match (&e.problem, e.jupyter_lab, e.notebook) {
        (Some(p), _, _) => format!("broken: {p}"),
        (None, true, _) => "jupyterlab".into(),
        (None, false, true) => "notebook".into(),
        (None, false, false) => "-".into(),
    };
    format!(
        "{}{:<7} {:<20} {:<8} {:<12} {}",
        if e.configured { "*" } else { " " },
        format!("{:?}", e.kind).to_lowercase(),
        e.name,
        e.python_version.as_deref().unwrap_or("?"),
        jupyter,
        e.label()
    )
}

/// Lists the Python environments of a host (`*` marks the profile's), with the profile's saved
/// modules loaded first; kind `module` rows are Lmod / Environment Modules modules (use one with
/// `up --module NAME` or `hosts edit --module NAME`).
pub async fn envs(global: &Global, args: EnvsArgs) -> ExitCode {
    let (host, profile) = match connect::jupyter_host(global, &args.name).await {
        Ok(h) => h,
        Err(e) => return connect::unreachable(e),
    };
    let result =
        jupyter::environments_with_modules(&host, profile.environment.as_deref(), &profile.modules)
            .await;
    if let Some(conn) = host.connection() {
        conn.close().await;
    }
    match result {
        Ok(list) if args.json => {
            println!("{}", serde_json::to_string(&list).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Ok(list) => {
            println!(
                " {:<7} {:<20} {:<8} {:<12} PATH",
                "KIND", "NAME", "PYTHON", "JUPYTER"
            );
            for e in &list {
                println!("{}", row(e));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tunnelbook: {e}");
            ExitCode::from(1)
        }
    }
}

/// Creates a venv with JupyterLab, streaming pip's output to stderr; prints the venv's path.
pub async fn install(global: &Global, args: InstallArgs) -> ExitCode {
    let (host, _) = match connect::jupyter_host(global, &args.name).await {
        Ok(h) => h,
        Err(e) => return connect::unreachable(e),
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let printer = tokio::spawn(async move {
        while let Some(line) = rx.recv().await {
            eprintln!("  {line}");
        }
    });
    let result = jupyter::install(&host, Some(&args.venv), tx).await;
    let _ = printer.await;
    if let Some(conn) = host.connection() {
        conn.close().await;
    }
    match result {
        Ok(env) => {
            println!("{}", env.label());
            eprintln!(
                "JupyterLab is installed in {} (Python {}); use it with `tunnelbook up {} --env {}`",
                env.label(),
                env.python_version.as_deref().unwrap_or("?"),
                args.name,
                env.label()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tunnelbook: {e}");
            ExitCode::from(1)
        }
    }
}
