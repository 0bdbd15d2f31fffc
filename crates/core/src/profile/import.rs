//! Choosing what to import: a preview of an import report (from `~/.ssh/config` or PuTTY's saved
//! sessions) against the hosts already saved, so the user sees per host what maps, what clashes
//! with a saved name and what would not validate, picks some, and saves only those.
//!
//! Reading the sources is [`super::read_ssh_config`] and [`super::report_from_sessions`]; this
//! module only compares and saves.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{ImportReport, Profile, ProfileError, ProfileStore, validate::validate};

/// Where hosts are imported from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum ImportSource {
    /// OpenSSH's `~/.ssh/config` (with its `Include`s).
    SshConfig,
    /// PuTTY's saved sessions (Windows registry).
    Putty,
}

/// One host an import would add.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ImportCandidate {
    /// The profile as the source describes it (name, host, port, user, key files, jump, …).
    pub profile: Profile,
    /// A saved host already has this name: importing it needs another name (or it is skipped).
    pub saved: bool,
    /// Why it would not be saved as it is (`field: message`), checked together with the saved
    /// hosts and every other candidate; empty when it can be imported.
    pub problems: Vec<String>,
}

/// A host or pattern of the source that cannot be imported, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ImportSkip {
    /// The alias, pattern or session name.
    pub name: String,
    /// Why, in words (with the file and line for `~/.ssh/config`).
    pub reason: String,
}

/// What importing from one source would do, before anything is saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ImportPreview {
    /// Where from.
    pub source: ImportSource,
    /// The file or place read, for the human (`/home/ana/.ssh/config`).
    pub origin: String,
    /// The hosts it would add, in the source's order.
    pub candidates: Vec<ImportCandidate>,
    /// What it cannot import.
    pub skipped: Vec<ImportSkip>,
    /// Settings left out and other things worth knowing (ignored options, missing key files,
    /// `Match` blocks, a missing file).
    pub notes: Vec<String>,
}

/// Compares `report` with the `saved` hosts: each importable profile becomes a candidate that
/// says whether its name is taken and what would not validate if every candidate whose name is
/// free were imported at once (so a jump to another candidate counts as saved).
pub fn preview(
    source: ImportSource,
    origin: impl Into<String>,
    report: ImportReport,
    saved: &[Profile],
) -> ImportPreview {
    let taken = |p: &Profile| saved.iter().any(|s| s.name == p.name);
    let mut all = saved.to_vec();
    all.extend(report.imported.iter().filter(|p| !taken(p)).cloned());
    let errors = validate(&all);
    let candidates = report
        .imported
        .into_iter()
        .map(|profile| {
            let saved = taken(&profile);
            let problems = if saved {
                Vec::new()
            } else {
                errors
                    .iter()
                    .filter(|e| e.profile == profile.name)
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .collect()
            };
            ImportCandidate {
                profile,
                saved,
                problems,
            }
        })
        .collect();
    ImportPreview {
        source,
        origin: origin.into(),
        candidates,
        skipped: report
            .skipped
            .into_iter()
            .map(|s| ImportSkip {
                name: s.name,
                reason: s.reason,
            })
            .collect(),
        notes: report.notes,
    }
}

/// Every source's preview against the `saved` hosts: the OpenSSH config at `ssh_config` (a
/// missing file is a preview with no candidates and a note saying so) and, on Windows, PuTTY's
/// saved sessions (a registry that cannot be read is a note too). Nothing is saved.
pub fn previews(ssh_config: &Path, saved: &[Profile]) -> Result<Vec<ImportPreview>, ProfileError> {
    let origin = ssh_config.display().to_string();
    let report = if ssh_config.is_file() {
        super::read_ssh_config(ssh_config)?
    } else {
        ImportReport {
            notes: vec![format!("there is no {origin}")],
            ..ImportReport::default()
        }
    };
    #[cfg_attr(not(windows), allow(unused_mut))]
    let mut out = vec![preview(ImportSource::SshConfig, origin, report, saved)];
    #[cfg(windows)]
    {
        let report = match super::read_putty_sessions() {
            Ok(sessions) => super::report_from_sessions(&sessions),
            Err(e) => ImportReport {
                notes: vec![format!("PuTTY's saved sessions could not be read: {e}")],
                ..ImportReport::default()
            },
        };
        out.push(preview(
            ImportSource::Putty,
            "PuTTY saved sessions",
            report,
            saved,
        ));
    }
    Ok(out)
}

/// Saves the chosen `profiles` (possibly renamed by the user) next to the saved hosts, all or
/// none: every field error of every profile is [`ProfileError::Invalid`] (a taken name included)
/// and nothing is written. Returns the saved hosts afterwards.
pub fn import_profiles(
    store: &ProfileStore,
    profiles: Vec<Profile>,
) -> Result<Vec<Profile>, ProfileError> {
    store.update(|hosts| {
        hosts.extend(profiles);
        Ok(hosts.clone())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Skipped;

    fn host(name: &str, jump: Option<&str>) -> Profile {
        Profile {
            name: name.into(),
            host: format!("{name}.example.edu"),
            jump: jump.map(Into::into),
            ..Profile::default()
        }
    }

    #[test]
    fn preview_marks_taken_names_and_invalid_hosts() {
        let report = ImportReport {
            imported: vec![
                host("bastion", None),
                host("inner", Some("bastion")),
                host("gpu", None),
                Profile {
                    host: "has space".into(),
                    ..host("bad", None)
                },
            ],
            skipped: vec![Skipped {
                name: "*".into(),
                reason: "a pattern".into(),
            }],
            notes: vec!["settings with no Tunnelbook equivalent were ignored: forwardx11".into()],
        };
        let p = preview(ImportSource::SshConfig, "cfg", report, &[host("gpu", None)]);
        let by = |n: &str| p.candidates.iter().find(|c| c.profile.name == n).unwrap();
        assert!(by("bastion").problems.is_empty() && !by("bastion").saved);
        // The jump names another candidate: fine when both are imported.
        assert!(by("inner").problems.is_empty(), "{:?}", by("inner"));
        assert!(by("gpu").saved && by("gpu").problems.is_empty());
        assert!(
            by("bad").problems[0].starts_with("host: "),
            "{:?}",
            by("bad")
        );
        assert_eq!(p.skipped[0].name, "*");
        assert_eq!(p.notes.len(), 1);
    }

    #[test]
    fn previews_read_the_ssh_config_or_say_it_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let missing = previews(&dir.path().join("config"), &[]).unwrap();
        assert!(missing[0].candidates.is_empty());
        assert!(missing[0].notes[0].contains("there is no"), "{missing:?}");
        let cfg = dir.path().join("config");
        std::fs::write(&cfg, "Host a\n  HostName a.example.edu\n").unwrap();
        let found = previews(&cfg, &[host("a", None)]).unwrap();
        assert_eq!(found[0].source, ImportSource::SshConfig);
        assert!(found[0].candidates[0].saved);
    }

    #[test]
    fn import_saves_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = ProfileStore::in_home(dir.path());
        store.add(host("gpu", None)).unwrap();
        let err = import_profiles(&store, vec![host("a", None), host("gpu", None)]).unwrap_err();
        assert!(matches!(err, ProfileError::Invalid(_)), "{err}");
        assert_eq!(store.load().unwrap().len(), 1);
        let all = import_profiles(
            &store,
            vec![host("a", None), host("gpu-2", None), host("b", Some("a"))],
        )
        .unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(store.load().unwrap(), all);
    }
}
