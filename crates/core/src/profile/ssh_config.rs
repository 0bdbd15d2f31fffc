//! Importing OpenSSH's `~/.ssh/config`: every concrete `Host` alias becomes a profile with the
//! settings OpenSSH would use for it (first value wins, across all matching blocks, wildcard
//! blocks included). Wildcard patterns, `Match` blocks and settings Tunnelbook has no field for
//! are reported, never silently dropped.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Profile, ProfileError, ProfileStore, expand_home, validate::validate};

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    /// The profiles imported (or, from [`read_ssh_config`], importable).
    pub imported: Vec<Profile>,
    /// Hosts or patterns not imported, with the reason.
    pub skipped: Vec<Skipped>,
    /// Other things the user should know: ignored settings, missing includes, approximations.
    pub notes: Vec<String>,
}

/// A host or pattern that was not imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    /// The `Host` alias or pattern.
    pub name: String,
    /// Why it was not imported.
    pub reason: String,
}

/// `~/.ssh/config`, when there is a home directory.
pub fn default_ssh_config_path() -> Option<PathBuf> {
    directories::BaseDirs::new().map(|d| d.home_dir().join(".ssh").join("config"))
}

/// Reads an ssh config (following `Include`) into profiles without saving anything.
/// Relative `Include` paths are resolved against the directory of `path`, as OpenSSH resolves
/// them against `~/.ssh`.
pub fn read_ssh_config(path: &Path) -> Result<ImportReport, ProfileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let base = path
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .to_path_buf();
    let mut report = ImportReport::default();
    let mut lines = Vec::new();
    flatten(&text, path, &base, 0, &mut lines, &mut report.notes);
    let blocks = blocks(&lines, &mut report);
    for alias in concrete_aliases(&blocks) {
        match profile_for(&alias, &blocks, &mut report.notes) {
            Ok(profile) => report.imported.push(profile),
            Err(reason) => report.skipped.push(Skipped {
                name: alias,
                reason,
            }),
        }
    }
    Ok(report)
}

/// Imports an ssh config into `store`: names already saved are skipped (the saved host is kept
/// as it is), and so are hosts that do not validate, each with its reason.
pub fn import_ssh_config(store: &ProfileStore, path: &Path) -> Result<ImportReport, ProfileError> {
    let mut report = read_ssh_config(path)?;
    let candidates = std::mem::take(&mut report.imported);
    store.update(|hosts| {
        let mut fresh = Vec::new();
        for profile in candidates {
            if hosts.iter().any(|h| h.name == profile.name) {
                report.skipped.push(Skipped {
                    name: profile.name,
                    reason: "a saved host with this name exists; it was left unchanged".into(),
                });
            } else {
                fresh.push(profile);
            }
        }
        // Dropping one host can break another's jump, so repeat until all that remain pass.
        loop {
            let mut all = hosts.clone();
            all.extend(fresh.iter().cloned());
            let errors = validate(&all);
            let failing: Vec<String> = fresh
                .iter()
                .filter(|p| errors.iter().any(|e| e.profile == p.name))
                .map(|p| p.name.clone())
                .collect();
            if failing.is_empty() {
                break;
            }
            for name in failing {
                let reason: Vec<String> = errors
                    .iter()
                    .filter(|e| e.profile == name)
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .collect();
                report.skipped.push(Skipped {
                    name: name.clone(),
                    reason: reason.join("; "),
                });
                fresh.retain(|p| p.name != name);
            }
        }
        report.imported = fresh.clone();
        hosts.extend(fresh);
        Ok(())
    })?;
    Ok(report)
}

/// One meaningful line: keyword (lower case), arguments, and where it came from.
struct Line {
    keyword: String,
    args: Vec<String>,
    at: String,
}

/// Parses `text`, splicing `Include`d files in place (as OpenSSH reads them).
fn flatten(
    text: &str,
    file: &Path,
    base: &Path,
    depth: u32,
    out: &mut Vec<Line>,
    notes: &mut Vec<String>,
) {
    for (n, raw) in text.lines().enumerate() {
        let at = format!("{}:{}", file.display(), n + 1);
        let Some((keyword, args)) = split_line(raw) else {
            continue;
        };
        if keyword != "include" {
            out.push(Line { keyword, args, at });
            continue;
        }
        if depth >= 16 {
            notes.push(format!("{at}: Include nested too deeply; not followed"));
            continue;
        }
        for pattern in args {
            let pattern = expand_home(Path::new(&pattern));
            let pattern = if pattern.is_absolute() {
                pattern
            } else {
                base.join(pattern)
            };
            let files = glob(&pattern);
            if files.is_empty() {
                notes.push(format!(
                    "{at}: Include {} matches no file",
                    pattern.display()
                ));
            }
            for path in files {
                match std::fs::read_to_string(&path) {
                    Ok(text) => flatten(&text, &path, base, depth + 1, out, notes),
                    Err(e) => notes.push(format!(
                        "{at}: cannot read included {}: {e}",
                        path.display()
                    )),
                }
            }
        }
    }
}

/// `Keyword args…` or `Keyword=args…`, comments and blank lines dropped, quotes honoured.
fn split_line(raw: &str) -> Option<(String, Vec<String>)> {
    let line = raw.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let end = line
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(line.len());
    let keyword = line[..end].to_ascii_lowercase();
    let rest = line[end..].trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest);
    let mut args = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut in_arg = false;
    for c in rest.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                in_arg = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_arg {
                    args.push(std::mem::take(&mut current));
                    in_arg = false;
                }
            }
            '#' if !quoted && !in_arg => break,
            c => {
                current.push(c);
                in_arg = true;
            }
        }
    }
    if in_arg {
        args.push(current);
    }
    Some((keyword, args))
}

/// The files matching a path whose last component may hold `*` and `?`, sorted.
fn glob(pattern: &Path) -> Vec<PathBuf> {
    let name = pattern
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains(['*', '?']) {
        return if pattern.is_file() {
            vec![pattern.to_path_buf()]
        } else {
            Vec::new()
        };
    }
    let dir = pattern.parent().unwrap_or_else(|| Path::new("."));
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| wildcard(&name, &e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found
}

/// OpenSSH's pattern match: `*` any run, `?` one character.
fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// A `Host` block (the lines before the first `Host` form a block matching every host).
struct Block {
    /// `(pattern, negated)`; `None` for a `Match` block, which is not evaluated.
    patterns: Option<Vec<(String, bool)>>,
    settings: Vec<Line>,
}

impl Block {
    fn matches(&self, alias: &str) -> bool {
        let Some(patterns) = &self.patterns else {
            return false;
        };
        let alias = alias.to_ascii_lowercase();
        let hit = |p: &str| wildcard(&p.to_ascii_lowercase(), &alias);
        !patterns.iter().any(|(p, neg)| *neg && hit(p))
            && patterns.iter().any(|(p, neg)| !*neg && hit(p))
    }
}

fn blocks(lines: &[Line], report: &mut ImportReport) -> Vec<Block> {
    let mut blocks = vec![Block {
        patterns: Some(vec![("*".into(), false)]),
        settings: Vec::new(),
    }];
    let mut ignored: Vec<String> = Vec::new();
    for line in lines {
        match line.keyword.as_str() {
            "host" => {
                let patterns: Vec<(String, bool)> = line
                    .args
                    .iter()
                    .map(|a| match a.strip_prefix('!') {
                        Some(p) => (p.to_string(), true),
                        None => (a.clone(), false),
                    })
                    .collect();
                for (p, neg) in &patterns {
                    if *neg || p.contains(['*', '?']) {
                        report.skipped.push(Skipped {
                            name: if *neg { format!("!{p}") } else { p.clone() },
                            reason: format!(
                                "{}: a pattern, not a host; its settings apply to the matching hosts",
                                line.at
                            ),
                        });
                    }
                }
                blocks.push(Block {
                    patterns: Some(patterns),
                    settings: Vec::new(),
                });
            }
            "match" => {
                report.notes.push(format!(
                    "{}: Match blocks are not evaluated; their settings were not imported",
                    line.at
                ));
                blocks.push(Block {
                    patterns: None,
                    settings: Vec::new(),
                });
            }
            "hostname"
            | "user"
            | "port"
            | "identityfile"
            | "proxyjump"
            | "serveraliveinterval"
            | "serveralivecountmax" => {
                if let Some(block) = blocks.last_mut() {
                    block.settings.push(Line {
                        keyword: line.keyword.clone(),
                        args: line.args.clone(),
                        at: line.at.clone(),
                    });
                }
            }
            "proxycommand" => report.notes.push(format!(
                "{}: ProxyCommand is not supported; hosts using it were imported without it",
                line.at
            )),
            other => {
                if !ignored.iter().any(|k| k == other) {
                    ignored.push(other.to_string());
                }
            }
        }
    }
    if !ignored.is_empty() {
        report.notes.push(format!(
            "settings with no Tunnelbook equivalent were ignored: {}",
            ignored.join(", ")
        ));
    }
    blocks
}

/// Concrete aliases (no wildcard, not negated), in order of first appearance.
fn concrete_aliases(blocks: &[Block]) -> Vec<String> {
    let mut aliases: Vec<String> = Vec::new();
    for block in blocks.iter().skip(1) {
        for (p, neg) in block.patterns.iter().flatten() {
            if !*neg && !p.contains(['*', '?']) && !aliases.contains(p) {
                aliases.push(p.clone());
            }
        }
    }
    aliases
}

/// The profile OpenSSH's settings make of `alias`: first value wins, identity files add up.
fn profile_for(alias: &str, blocks: &[Block], notes: &mut Vec<String>) -> Result<Profile, String> {
    let mut profile = Profile {
        name: alias.to_string(),
        host: alias.to_string(),
        ..Profile::default()
    };
    let mut seen: Vec<&str> = Vec::new();
    for block in blocks.iter().filter(|b| b.matches(alias)) {
        for line in &block.settings {
            let keyword = line.keyword.as_str();
            let Some(value) = line.args.first() else {
                continue;
            };
            if keyword == "identityfile" {
                if value.eq_ignore_ascii_case("none") {
                    continue;
                }
                let path = PathBuf::from(value.replace("%d", "~").replace("%h", alias));
                if expand_home(&path).is_file() {
                    if !profile.identity_files.contains(&path) {
                        profile.identity_files.push(path);
                    }
                } else {
                    notes.push(format!(
                        "{}: {alias}: key file {value} does not exist; left out",
                        line.at
                    ));
                }
                continue;
            }
            if seen.contains(&keyword) {
                continue;
            }
            seen.push(keyword);
            let number = |what: &str| -> Result<u32, String> {
                value
                    .parse()
                    .map_err(|_| format!("{}: {what} \"{value}\" is not a number", line.at))
            };
            match keyword {
                "hostname" => {
                    profile.host = value.replace("%h", alias).replace("%%", "%");
                    if profile.host.contains('%') {
                        notes.push(format!(
                            "{}: {alias}: HostName tokens other than %h are kept as written",
                            line.at
                        ));
                    }
                }
                "user" => profile.user = Some(value.clone()),
                "port" => {
                    profile.port = value.parse().map_err(|_| {
                        format!("{}: Port \"{value}\" is not a port number", line.at)
                    })?;
                }
                "proxyjump" => {
                    if value.eq_ignore_ascii_case("none") {
                        continue;
                    }
                    let hops: Vec<&str> = value.split(',').collect();
                    let last = hops.last().copied().unwrap_or(value.as_str());
                    let last = last.strip_prefix("ssh://").unwrap_or(last);
                    if hops.len() > 1 {
                        notes.push(format!(
                            "{}: {alias}: ProxyJump {value} has several hops; only the last ({last}) \
                             was kept — give that host its own jump",
                            line.at
                        ));
                    }
                    profile.jump = Some(last.to_string());
                }
                "serveraliveinterval" => {
                    profile.keepalive_interval = number("ServerAliveInterval")?
                }
                "serveralivecountmax" => profile.keepalive_max = number("ServerAliveCountMax")?,
                _ => {}
            }
        }
    }
    Ok(profile)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_matches_like_openssh() {
        assert!(wildcard("*.corp", "gpu1.corp"));
        assert!(wildcard("gpu?", "gpu7"));
        assert!(!wildcard("gpu?", "gpu10"));
        assert!(wildcard("*", ""));
        assert!(!wildcard("a*b", "ac"));
    }

    #[test]
    fn split_line_handles_equals_quotes_and_comments() {
        let (k, a) = split_line("  IdentityFile=\"/a b/key\"  # mine").unwrap();
        assert_eq!(
            (k.as_str(), a),
            ("identityfile", vec!["/a b/key".to_string()])
        );
        assert!(split_line("# only a comment").is_none());
        let (k, a) = split_line("Host a b").unwrap();
        assert_eq!((k.as_str(), a.len()), ("host", 2));
    }
}
