//! `tunnelbook hosts …`: saved hosts from the command line. Each command calls
//! `tunnelbook_core::profile` / `secret` and prints the result; nothing is decided here.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
};

use clap::{ArgGroup, Subcommand};
use tunnelbook_core::{
    profile::{
        ImportReport, Profile, ProfileError, ProfileStore, StrictHostKeyChecking,
        default_ssh_config_path, expand_home, import_ssh_config,
    },
    secret::{KeychainStore, SecretError, SecretKey, SecretStore},
};

/// `tunnelbook hosts …`
#[derive(Debug, Subcommand)]
pub enum HostsCommand {
    /// Save a new host.
    Add {
        /// Name to save it under.
        name: String,
        /// Host name or address.
        #[arg(long)]
        host: String,
        /// SSH port (default 22).
        #[arg(long)]
        port: Option<u16>,
        /// Login user (default: your local user name).
        #[arg(long)]
        user: Option<String>,
        /// Private key file to offer; repeat for several.
        #[arg(long = "key", value_name = "PATH")]
        keys: Vec<PathBuf>,
        /// Jump host: a saved host's name or [user@]host[:port].
        #[arg(long)]
        jump: Option<String>,
        #[command(flatten)]
        openssh: OpenSshOptions,
    },
    /// List saved hosts.
    List {
        /// Print JSON (never contains secrets).
        #[arg(long)]
        json: bool,
    },
    /// Remove a saved host and forget its secrets.
    Rm {
        /// The host's name.
        name: String,
    },
    /// Show one saved host.
    Show {
        /// The host's name.
        name: String,
        /// Print JSON (never contains secrets).
        #[arg(long)]
        json: bool,
    },
    /// Change a saved host.
    Edit {
        /// The host's name.
        name: String,
        /// Rename the host; its remembered secrets (password, passphrases, Jupyter tokens)
        /// follow it.
        #[arg(long = "name", value_name = "NEW")]
        new_name: Option<String>,
        /// New host name or address.
        #[arg(long)]
        host: Option<String>,
        /// New SSH port.
        #[arg(long)]
        port: Option<u16>,
        /// New login user.
        #[arg(long, conflicts_with = "no_user")]
        user: Option<String>,
        /// Use the local user name.
        #[arg(long)]
        no_user: bool,
        /// Key files to offer (replaces the list); repeat for several.
        #[arg(long = "key", value_name = "PATH", conflicts_with = "no_keys")]
        keys: Vec<PathBuf>,
        /// Offer the default key files.
        #[arg(long)]
        no_keys: bool,
        /// New jump host.
        #[arg(long, conflicts_with = "no_jump")]
        jump: Option<String>,
        /// Connect directly.
        #[arg(long)]
        no_jump: bool,
        /// Seconds between keepalives (0: off).
        #[arg(long, value_name = "SECS")]
        keepalive: Option<u32>,
        #[command(flatten)]
        openssh: OpenSshOptions,
        /// A command that carries the connection, as OpenSSH's ProxyCommand
        /// (e.g. 'ssh -W %h:%p bastion'); tokens %h %p %r %n %% are expanded.
        #[arg(long, value_name = "CMD", conflicts_with = "no_proxy_command")]
        proxy_command: Option<String>,
        /// Connect without a proxy command.
        #[arg(long)]
        no_proxy_command: bool,
        /// Seconds to wait for each hop to connect (OpenSSH's ConnectTimeout).
        #[arg(long, value_name = "SECS")]
        connect_timeout: Option<u32>,
        /// Python environment every launch on this host uses (`up`, the app, the tray): a venv
        /// or conda prefix such as /opt/jlab, an interpreter, or a conda env name.
        #[arg(long, value_name = "PATH", conflicts_with = "no_env")]
        env: Option<String>,
        /// Let each launch take the first environment with JupyterLab.
        #[arg(long)]
        no_env: bool,
        /// Lmod / Environment Modules module loaded before every launch (`module load M`), e.g.
        /// python/3.11 (see `tunnelbook envs`); repeat for several, loaded in order. Replaces the
        /// saved list.
        #[arg(long = "module", value_name = "M", conflicts_with = "no_modules")]
        modules: Vec<String>,
        /// Load no modules before launching.
        #[arg(long)]
        no_modules: bool,
        /// Remote folder JupyterLab opens in on every launch (default: the home directory).
        #[arg(long, value_name = "PATH", conflicts_with = "no_dir")]
        dir: Option<String>,
        /// Open JupyterLab in the home directory.
        #[arg(long)]
        no_dir: bool,
        /// SLURM: scheduler and launch defaults (issue 20).
        #[command(flatten)]
        slurm: Box<crate::slurm::SlurmEditArgs>,
    },
    /// Forget remembered secrets of a host (in the OS keychain).
    #[command(group(ArgGroup::new("what").required(true).args(["password", "passphrase", "all"])))]
    ForgetSecret {
        /// The host's name.
        name: String,
        /// Forget the login password.
        #[arg(long)]
        password: bool,
        /// Forget the passphrase of this key file.
        #[arg(long, value_name = "PATH")]
        passphrase: Option<PathBuf>,
        /// Forget every secret of the host (password, passphrases, Jupyter tokens).
        #[arg(long)]
        all: bool,
    },
    /// Forget every secret Tunnelbook remembered in the OS keychain: every host's password,
    /// passphrases and Jupyter tokens, also those of hosts removed since and of older
    /// versions. The saved hosts stay.
    ForgetAllSecrets,
    /// Import hosts from an OpenSSH config file.
    ImportSshConfig {
        /// The file (default ~/.ssh/config).
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// OpenSSH options of a host, as `ssh_config` names them. On `edit`, each one given replaces
/// the saved value.
#[derive(Debug, Default, clap::Args)]
pub struct OpenSshOptions {
    /// IdentitiesOnly: offer only the host's key files, never the agent's other keys.
    #[arg(long, value_name = "yes|no", value_parser = clap::builder::BoolishValueParser::new())]
    identities_only: Option<bool>,
    /// CertificateFile: a certificate to offer with the key it certifies; repeat for several.
    #[arg(long = "certificate", value_name = "PATH")]
    certificates: Vec<PathBuf>,
    /// HostKeyAlias: the name the host key is listed under in known_hosts ("" removes it).
    #[arg(long, value_name = "NAME")]
    host_key_alias: Option<String>,
    /// UserKnownHostsFile: read instead of ~/.ssh/known_hosts; repeat for several.
    #[arg(long = "known-hosts-file", value_name = "PATH")]
    known_hosts_files: Vec<PathBuf>,
    /// GlobalKnownHostsFile: read instead of /etc/ssh/ssh_known_hosts; repeat for several.
    #[arg(long = "global-known-hosts-file", value_name = "PATH")]
    global_known_hosts_files: Vec<PathBuf>,
    /// StrictHostKeyChecking: what to do with this host's key when no known_hosts lists it
    /// (yes, accept-new, no, ask; "" follows the Settings default). --host-key-policy wins.
    #[arg(long, value_name = "yes|accept-new|no|ask", value_parser = parse_strict)]
    strict_host_key_checking: Option<StrictArg>,
    /// HostKeyAlgorithms: host key types to ask for, as ssh_config writes them (e.g.
    /// "+ssh-rsa", "ssh-ed25519,rsa-sha2-512"; "" restores OpenSSH's default).
    #[arg(long, value_name = "LIST")]
    host_key_algorithms: Option<String>,
    /// PubkeyAcceptedAlgorithms: signature algorithms keys may be offered with, as ssh_config
    /// writes them (e.g. "+ssh-rsa", "-ssh-ed25519"; "" restores OpenSSH's default).
    #[arg(long, value_name = "LIST")]
    pubkey_accepted_algorithms: Option<String>,
}

/// A `--strict-host-key-checking` value; `None` for "" (follow Settings).
#[derive(Debug, Clone)]
struct StrictArg(Option<StrictHostKeyChecking>);

fn parse_strict(value: &str) -> Result<StrictArg, String> {
    if value.is_empty() {
        return Ok(StrictArg(None));
    }
    StrictHostKeyChecking::parse(value)
        .map(|s| StrictArg(Some(s)))
        .ok_or_else(|| format!("\"{value}\" is not yes, accept-new, no or ask"))
}

impl OpenSshOptions {
    fn apply(self, p: &mut Profile) {
        if let Some(only) = self.identities_only {
            p.identities_only = only;
        }
        if !self.certificates.is_empty() {
            p.certificate_files = self.certificates;
        }
        if let Some(alias) = self.host_key_alias {
            p.host_key_alias = (!alias.is_empty()).then_some(alias);
        }
        if !self.known_hosts_files.is_empty() {
            p.user_known_hosts_files = self.known_hosts_files;
        }
        if let Some(strict) = self.strict_host_key_checking {
            p.strict_host_key_checking = strict.0;
        }
        if let Some(list) = self.host_key_algorithms {
            p.host_key_algorithms = (!list.is_empty()).then_some(list);
        }
        if let Some(list) = self.pubkey_accepted_algorithms {
            p.pubkey_accepted_algorithms = (!list.is_empty()).then_some(list);
        }
        if !self.global_known_hosts_files.is_empty() {
            p.global_known_hosts_files = self.global_known_hosts_files;
        }
    }
}

/// Why a `hosts` command failed. `Display` is the message for the terminal, field errors one
/// per line.
#[derive(Debug, thiserror::Error)]
pub enum HostsError {
    /// From the profiles store (including every field error of an invalid host).
    #[error("{0}")]
    Profile(#[from] ProfileError),
    /// From the keychain.
    #[error("{0}")]
    Secret(#[from] SecretError),
    /// Writing the output failed.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    /// Serialising JSON failed.
    #[error("cannot print JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// An option's value cannot be used (the message names it).
    #[error("{0}")]
    Invalid(String),
}

/// Runs a `hosts` command and prints its error (`tunnelbook: …`, field errors one per line).
pub fn main(home: &Path, cmd: HostsCommand) -> ExitCode {
    match run(cmd, home, &mut std::io::stdout()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tunnelbook: {e}");
            ExitCode::from(1)
        }
    }
}

/// Runs a `hosts` command against the profiles in `home`, opening the OS keychain only for the
/// commands that touch secrets.
pub fn run(cmd: HostsCommand, home: &Path, out: &mut dyn Write) -> Result<(), HostsError> {
    run_with(cmd, home, &system_keychain, out)
}

/// The OS keychain, or `Err` saying why there is none.
pub fn system_keychain() -> Result<Arc<dyn SecretStore>, SecretError> {
    Ok(Arc::new(KeychainStore::open()?))
}

/// [`run`] with the keychain supplied (tests use an in-memory store).
pub fn run_with(
    cmd: HostsCommand,
    home: &Path,
    secrets: &dyn Fn() -> Result<Arc<dyn SecretStore>, SecretError>,
    out: &mut dyn Write,
) -> Result<(), HostsError> {
    let store = ProfileStore::in_home(home);
    match cmd {
        HostsCommand::Add {
            name,
            host,
            port,
            user,
            keys,
            jump,
            openssh,
        } => {
            let mut profile = Profile {
                name: name.clone(),
                host,
                port: port.unwrap_or(22),
                user,
                identity_files: keys,
                jump,
                ..Profile::default()
            };
            openssh.apply(&mut profile);
            store.add(profile)?;
            writeln!(out, "saved {name}")?;
        }
        HostsCommand::List { json } => {
            let hosts = store.load()?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&hosts)?)?;
            } else if hosts.is_empty() {
                writeln!(out, "no saved hosts (add one with `tunnelbook hosts add`)")?;
            } else {
                for p in &hosts {
                    let jump = p
                        .jump
                        .as_deref()
                        .map(|j| format!(" via {j}"))
                        .unwrap_or_default();
                    writeln!(out, "{}\t{}{jump}", p.name, destination(p))?;
                }
            }
        }
        HostsCommand::Rm { name } => {
            let keychain = secrets();
            if let Err(e) = &keychain {
                eprintln!("note: {e}; no secrets are remembered to forget");
            }
            store.remove(&name, keychain.as_deref().ok())?;
            let secrets = if keychain.is_ok() {
                " and its remembered secrets"
            } else {
                ""
            };
            writeln!(out, "removed {name}{secrets}")?;
        }
        HostsCommand::Show { name, json } => {
            let p = store.get(&name)?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&p)?)?;
            } else {
                show(&p, secrets().ok().as_deref(), out)?;
            }
        }
        HostsCommand::Edit {
            name,
            new_name,
            host,
            port,
            user,
            no_user,
            keys,
            no_keys,
            jump,
            no_jump,
            keepalive,
            openssh,
            proxy_command,
            no_proxy_command,
            connect_timeout,
            env,
            no_env,
            modules,
            no_modules,
            dir,
            no_dir,
            slurm,
        } => {
            slurm.check().map_err(HostsError::Invalid)?;
            // The keychain is needed when the secrets must follow (a new name) or a password
            // for the old user@host:port is to go; without one only the file changes.
            let keychain = secrets();
            if let (Err(e), Some(_)) = (&keychain, &new_name) {
                eprintln!("note: {e}; no remembered secrets to move");
            }
            let saved = new_name.clone().unwrap_or_else(|| name.clone());
            let change = |p: &mut Profile| {
                if let Some(new_name) = new_name {
                    p.name = new_name;
                }
                (*slurm).apply(p);
                openssh.apply(p);
                if let Some(host) = host {
                    p.host = host;
                }
                if let Some(port) = port {
                    p.port = port;
                }
                if user.is_some() || no_user {
                    p.user = user;
                }
                if !keys.is_empty() || no_keys {
                    p.identity_files = keys;
                }
                if jump.is_some() || no_jump {
                    p.jump = jump;
                }
                if let Some(k) = keepalive {
                    p.keepalive_interval = k;
                }
                if proxy_command.is_some() || no_proxy_command {
                    p.proxy_command = proxy_command;
                }
                if let Some(secs) = connect_timeout {
                    p.connect_timeout = Some(secs);
                }
                if env.is_some() || no_env {
                    p.environment = env;
                }
                if !modules.is_empty() || no_modules {
                    p.modules = modules;
                }
                if dir.is_some() || no_dir {
                    p.notebook_dir = dir;
                }
            };
            store.edit_host(&name, change, keychain.as_deref().ok())?;
            writeln!(out, "saved {saved}")?;
        }
        HostsCommand::ForgetSecret {
            name,
            password,
            passphrase,
            all,
        } => {
            let profile = store.get(&name)?;
            let keychain = secrets()?;
            if all {
                keychain.forget_profile(&name, &profile.secret_keys())?;
            }
            if password {
                keychain.delete(&profile.password_key())?;
                keychain.delete(&SecretKey::password(&name, ""))?;
            }
            if let Some(path) = passphrase {
                keychain.delete(&SecretKey::passphrase(&name, &path))?;
                keychain.delete(&SecretKey::passphrase(&name, &expand_home(&path)))?;
            }
            writeln!(out, "forgotten")?;
        }
        HostsCommand::ForgetAllSecrets => {
            let removed = store.forget_all_secrets(secrets()?.as_ref())?;
            writeln!(out, "forgot {removed} remembered secrets")?;
        }
        HostsCommand::ImportSshConfig { file, json } => {
            let path = file
                .or_else(default_ssh_config_path)
                .ok_or(ProfileError::NoHome)?;
            let report = import_ssh_config(&store, &path)?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
            } else {
                print_report(&report, out)?;
            }
        }
    }
    Ok(())
}

fn destination(p: &Profile) -> String {
    let user = p
        .user
        .as_deref()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let port = if p.port == 22 {
        String::new()
    } else {
        format!(":{}", p.port)
    };
    format!("{user}{}{port}", p.host)
}

fn show(
    p: &Profile,
    secrets: Option<&dyn SecretStore>,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    writeln!(out, "name:      {}", p.name)?;
    writeln!(out, "host:      {}", p.host)?;
    writeln!(out, "port:      {}", p.port)?;
    writeln!(
        out,
        "user:      {}",
        p.user.as_deref().unwrap_or("(local user name)")
    )?;
    for key in &p.identity_files {
        writeln!(out, "key:       {}", key.display())?;
    }
    writeln!(
        out,
        "jump:      {}",
        p.jump.as_deref().unwrap_or("(direct)")
    )?;
    if let Some(command) = &p.proxy_command {
        writeln!(out, "proxy:     {command}")?;
    }
    if let Some(secs) = p.connect_timeout {
        writeln!(out, "timeout:   {secs}s to connect")?;
    }
    writeln!(
        out,
        "keepalive: every {}s, {} missed",
        p.keepalive_interval, p.keepalive_max
    )?;
    writeln!(
        out,
        "env:       {}",
        p.environment
            .as_deref()
            .unwrap_or("(the first with JupyterLab)")
    )?;
    if !p.modules.is_empty() {
        writeln!(out, "modules:   {}", p.modules.join(" "))?;
    }
    writeln!(
        out,
        "dir:       {}",
        p.notebook_dir.as_deref().unwrap_or("(home directory)")
    )?;
    crate::slurm::show(p, out)?;
    // The OpenSSH options that are set, under ssh_config's names.
    if p.identities_only {
        writeln!(out, "IdentitiesOnly yes")?;
    }
    for file in &p.certificate_files {
        writeln!(out, "CertificateFile {}", file.display())?;
    }
    if let Some(alias) = &p.host_key_alias {
        writeln!(out, "HostKeyAlias {alias}")?;
    }
    for (name, files) in [
        ("UserKnownHostsFile", &p.user_known_hosts_files),
        ("GlobalKnownHostsFile", &p.global_known_hosts_files),
    ] {
        if !files.is_empty() {
            let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
            writeln!(out, "{name} {}", files.join(" "))?;
        }
    }
    if let Some(strict) = p.strict_host_key_checking {
        writeln!(out, "StrictHostKeyChecking {}", strict.openssh())?;
    }
    if let Some(list) = &p.host_key_algorithms {
        writeln!(out, "HostKeyAlgorithms {list}")?;
    }
    if let Some(list) = &p.pubkey_accepted_algorithms {
        writeln!(out, "PubkeyAcceptedAlgorithms {list}")?;
    }
    let remembered = match secrets.map(|s| s.list(&p.name)) {
        Some(Ok(keys)) if keys.is_empty() => "nothing".to_string(),
        Some(Ok(keys)) => {
            let names: Vec<String> = keys
                .iter()
                .map(|k| {
                    k.account()
                        .trim_start_matches(&format!("{}:", p.name))
                        .to_string()
                })
                .collect();
            names.join(", ")
        }
        Some(Err(e)) => format!("unknown ({e})"),
        None => "nothing (no keychain available)".to_string(),
    };
    writeln!(out, "remembered: {remembered}")
}

fn print_report(report: &ImportReport, out: &mut dyn Write) -> std::io::Result<()> {
    let names: Vec<&str> = report.imported.iter().map(|p| p.name.as_str()).collect();
    writeln!(out, "imported {}: {}", names.len(), names.join(", "))?;
    for s in &report.skipped {
        writeln!(out, "skipped {}: {}", s.name, s.reason)?;
    }
    for note in &report.notes {
        writeln!(out, "note: {note}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
