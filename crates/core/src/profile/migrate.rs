//! Schema versions of `hosts.toml` and the migrations between them, on the TOML tree so that
//! an old file never has to deserialize into today's structs.
//!
//! - v0: the prototype's format, with no `version` key: `[[hosts]]` tables with snake_case keys
//!   (`hostname`, `username`, `identity_file`, `proxy_jump`, `keepalive`, `conda_env`,
//!   `notebook_dir`, an integer `gpu`, and `local_forwards = ["[bind:]port:host:hostport"]`).
//! - v1: `version = 1`, `[[host]]` tables in the wire format of [`super::Profile`].

use toml::{Table, Value};

use super::{ForwardRule, ForwardSpec};

/// The schema version this build writes.
pub const CURRENT_VERSION: u32 = 1;

/// The schema version of a parsed file (no `version` key is v0).
pub(super) fn version_of(doc: &Table) -> Result<u32, String> {
    match doc.get("version") {
        Some(Value::Integer(v)) => u32::try_from(*v).map_err(|_| format!("bad schema version {v}")),
        Some(other) => Err(format!("the schema version is not a number: {other}")),
        None => Ok(0),
    }
}

/// Brings a file to [`CURRENT_VERSION`], one step at a time. The error is a message for the
/// corrupt-file report.
pub(super) fn migrate(mut doc: Table) -> Result<Table, String> {
    loop {
        doc = match version_of(&doc)? {
            0 => v0_to_v1(doc)?,
            CURRENT_VERSION => return Ok(doc),
            other => return Err(format!("unknown schema version {other}")),
        };
    }
}

fn v0_to_v1(doc: Table) -> Result<Table, String> {
    let old_hosts = match doc.get("hosts").or_else(|| doc.get("host")) {
        Some(Value::Array(hosts)) => hosts.clone(),
        Some(_) => return Err("`hosts` is not a list of tables".into()),
        None => Vec::new(),
    };
    let mut hosts = Vec::new();
    for (i, old) in old_hosts.into_iter().enumerate() {
        let Value::Table(old) = old else {
            return Err(format!("hosts[{i}] is not a table"));
        };
        hosts.push(Value::Table(
            v0_host(old).map_err(|e| format!("hosts[{i}]: {e}"))?,
        ));
    }
    let mut new = Table::new();
    new.insert("version".into(), Value::Integer(1));
    new.insert("host".into(), Value::Array(hosts));
    Ok(new)
}

fn v0_host(old: Table) -> Result<Table, String> {
    let mut new = Table::new();
    for (key, value) in old {
        let (key, value) = match key.as_str() {
            "hostname" => ("host".to_string(), value),
            "username" => ("user".to_string(), value),
            "identity_file" => ("identityFiles".to_string(), Value::Array(vec![value])),
            "identity_files" => ("identityFiles".to_string(), value),
            "proxy_jump" => ("jump".to_string(), value),
            "keepalive" => ("keepaliveInterval".to_string(), value),
            "keepalive_max" => ("keepaliveMax".to_string(), value),
            "notebook_dir" => ("notebookDir".to_string(), value),
            "conda_env" => ("environment".to_string(), value),
            "pre_launch" => ("preLaunch".to_string(), value),
            "gpu" => match value {
                Value::Integer(i) => ("gpu".to_string(), Value::String(i.to_string())),
                other => ("gpu".to_string(), other),
            },
            "local_forwards" => ("forwards".to_string(), v0_forwards(&value)?),
            _ => (key, value),
        };
        new.insert(key, value);
    }
    Ok(new)
}

/// `["8888:localhost:8888", "127.0.0.1:6006:localhost:6006"]` → v1 forward tables.
fn v0_forwards(value: &Value) -> Result<Value, String> {
    let Value::Array(items) = value else {
        return Err("local_forwards is not a list".into());
    };
    let mut rules = Vec::new();
    for item in items {
        let spec = item.as_str().ok_or("local_forwards holds a non-string")?;
        let parts: Vec<&str> = spec.split(':').collect();
        let (bind, rest) = match parts.as_slice() {
            [port, host, host_port] => ("127.0.0.1", [*port, *host, *host_port]),
            [bind, port, host, host_port] => (*bind, [*port, *host, *host_port]),
            _ => {
                return Err(format!(
                    "local forward \"{spec}\" is not [bind:]port:host:hostport"
                ));
            }
        };
        let port = |s: &str| {
            s.parse::<u16>()
                .map_err(|_| format!("bad port in \"{spec}\""))
        };
        let rule = ForwardRule {
            last_port: None,
            enabled: true,
            spec: ForwardSpec::Local {
                bind: bind.to_string(),
                port: port(rest[0])?,
                host: rest[1].to_string(),
                host_port: port(rest[2])?,
            },
        };
        rules.push(Value::try_from(rule).map_err(|e| e.to_string())?);
    }
    Ok(Value::Array(rules))
}
