//! The user's preferences: `settings.toml` next to `hosts.toml` in Tunnelbook's home.
//!
//! Owns what a preference is, its defaults and limits, and where it is kept (atomic writes: a
//! temporary file in the same directory, fsync, rename). Leaves out applying them (start at
//! login, theme, notifications are the front end's) and secrets (see [`crate::secret`]).

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::{gpu::FreeRule, ssh::HostKeyPolicy};

/// Shortest GPU/tray refresh interval accepted, in seconds.
pub const MIN_REFRESH_SECS: u32 = 1;
/// Longest GPU/tray refresh interval accepted, in seconds.
pub const MAX_REFRESH_SECS: u32 = 3600;

/// The app's colour scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum Theme {
    /// Follow the operating system.
    #[default]
    System,
    /// Always light.
    Light,
    /// Always dark.
    Dark,
}

/// Every preference. Missing keys in the file take their defaults, so older files keep working.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase", default)]
pub struct Settings {
    /// Seconds between GPU refreshes (picker, tray summary, free-GPU notifications).
    pub refresh_interval_secs: u32,
    /// What to do with unknown host keys when a host does not say.
    #[cfg_attr(feature = "ts", ts(type = r#""ask" | "accept-new" | "strict""#))]
    pub host_key_policy: HostKeyPolicy,
    /// Start Tunnelbook (in the tray) when the user logs in.
    pub start_at_login: bool,
    /// Colour scheme.
    pub theme: Theme,
    /// Saved hosts (profile names) whose busy GPUs are watched: a notification says when one
    /// becomes free.
    pub notify_gpu_free: Vec<String>,
    /// Whether the "still running in the tray" notice was shown once already.
    pub tray_notice_shown: bool,
    /// When a GPU counts as free (utilization, memory in use, free memory thresholds after
    /// nvisel's); used by the picker's recommendation and `up --gpu auto`.
    pub gpu_free: FreeRule,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            refresh_interval_secs: 5,
            host_key_policy: HostKeyPolicy::Ask,
            start_at_login: false,
            theme: Theme::System,
            notify_gpu_free: Vec::new(),
            tray_notice_shown: false,
            gpu_free: FreeRule::default(),
        }
    }
}

impl Settings {
    /// Problems that keep these settings from being saved, as `(field, message)` pairs with the
    /// camelCase field name.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if !(MIN_REFRESH_SECS..=MAX_REFRESH_SECS).contains(&self.refresh_interval_secs) {
            out.push((
                "refreshIntervalSecs".to_string(),
                format!(
                    "The refresh interval must be between {MIN_REFRESH_SECS} and \
                     {MAX_REFRESH_SECS} seconds."
                ),
            ));
        }
        out.extend(
            self.gpu_free
                .problems()
                .into_iter()
                .map(|m| ("gpuFree".to_string(), m)),
        );
        out
    }

    /// The refresh interval as a duration.
    pub fn refresh_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(
            self.refresh_interval_secs
                .clamp(MIN_REFRESH_SECS, MAX_REFRESH_SECS),
        ))
    }
}

/// Errors reading or writing the settings.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file could not be read or written.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file does not parse; it is left as it is and the defaults apply until the next save.
    #[error("{path} could not be read ({message}); the defaults apply until settings are saved")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A value is out of range; nothing was written.
    #[error("{}", .0.iter().map(|(_, m)| m.as_str()).collect::<Vec<_>>().join(" "))]
    Invalid(Vec<(String, String)>),
}

/// `settings.toml` in Tunnelbook's home.
#[derive(Debug, Clone)]
pub struct SettingsStore {
    path: PathBuf,
}

impl SettingsStore {
    /// The store in `home` (the file is `home/settings.toml`).
    pub fn in_home(home: &Path) -> Self {
        Self {
            path: home.join("settings.toml"),
        }
    }

    /// The settings file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved settings; the defaults when there is no file yet.
    pub fn load(&self) -> Result<Settings, SettingsError> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Settings::default()),
            Err(source) => {
                return Err(SettingsError::Io {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        toml::from_str(&text).map_err(|e| SettingsError::Corrupt {
            path: self.path.clone(),
            message: e.message().to_string(),
        })
    }

    /// The saved settings, or the defaults when the file is unreadable (logged).
    pub fn load_or_default(&self) -> Settings {
        self.load().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "using default settings");
            Settings::default()
        })
    }

    /// Validates and writes `settings` atomically (a reader sees the old file or the new one,
    /// never half of one).
    pub fn save(&self, settings: &Settings) -> Result<(), SettingsError> {
        let problems = settings.problems();
        if !problems.is_empty() {
            return Err(SettingsError::Invalid(problems));
        }
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SettingsError::Io {
                path: path.clone(),
                source,
            }
        };
        let dir = self.path.parent().unwrap_or_else(|| Path::new("."));
        fs::create_dir_all(dir).map_err(io(dir))?;
        let text = toml::to_string_pretty(settings).map_err(|e| SettingsError::Io {
            path: self.path.clone(),
            source: std::io::Error::other(e),
        })?;
        let tmp = dir.join(format!(".settings.toml.{}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut file = fs::File::create(&tmp)?;
            file.write_all(b"# Tunnelbook settings (written by the app; safe to edit)\n")?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            fs::rename(&tmp, &self.path)?;
            // The rename is durable once the directory is.
            if let Ok(d) = fs::File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(())
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            SettingsError::Io {
                path: self.path.clone(),
                source: e,
            }
        })
    }
}

/// Where the app writes its log files (`home/logs`).
pub fn logs_dir(home: &Path) -> PathBuf {
    home.join("logs")
}

/// Where the app keeps its files, for the Settings screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct AppPaths {
    /// Tunnelbook's home (hosts.toml, settings.toml, known_hosts).
    pub home: String,
    /// The settings file.
    pub settings: String,
    /// The folder of the log files.
    pub logs: String,
}

impl AppPaths {
    /// The files of the app whose home is `home`.
    pub fn of(home: &Path) -> Self {
        AppPaths {
            home: home.display().to_string(),
            settings: SettingsStore::in_home(home).path().display().to_string(),
            logs: logs_dir(home).display().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_when_missing_and_round_trip() {
        let home = tempfile::tempdir().unwrap();
        let store = SettingsStore::in_home(home.path());
        assert_eq!(store.load().unwrap(), Settings::default());
        let s = Settings {
            refresh_interval_secs: 10,
            host_key_policy: HostKeyPolicy::AcceptNew,
            start_at_login: true,
            theme: Theme::Dark,
            notify_gpu_free: vec!["gpu-box".into()],
            tray_notice_shown: true,
            gpu_free: FreeRule {
                max_utilization_percent: 5,
                max_memory_percent: 20,
                min_free_memory_mib: 8192,
                own_as_free: false,
            },
        };
        store.save(&s).unwrap();
        assert_eq!(store.load().unwrap(), s);
        assert!(
            fs::read_to_string(store.path())
                .unwrap()
                .contains("[gpuFree]\nmaxUtilizationPercent = 5"),
            "the thresholds are plain settings"
        );
        let text = fs::read_to_string(store.path()).unwrap();
        assert!(text.contains("hostKeyPolicy = \"accept-new\""), "{text}");
        assert!(text.contains("theme = \"dark\""), "{text}");
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(home.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["settings.toml"]);
    }

    #[test]
    fn missing_keys_take_defaults_and_bad_files_are_reported() {
        let home = tempfile::tempdir().unwrap();
        let store = SettingsStore::in_home(home.path());
        fs::write(store.path(), "theme = \"light\"\n").unwrap();
        let s = store.load().unwrap();
        assert_eq!(s.theme, Theme::Light);
        assert_eq!(s.refresh_interval_secs, 5);
        fs::write(store.path(), "theme = \"purple\"\n").unwrap();
        assert!(matches!(store.load(), Err(SettingsError::Corrupt { .. })));
        assert_eq!(store.load_or_default(), Settings::default());
    }

    #[test]
    fn out_of_range_interval_is_refused_and_nothing_written() {
        let home = tempfile::tempdir().unwrap();
        let store = SettingsStore::in_home(home.path());
        let bad = Settings {
            refresh_interval_secs: 0,
            ..Settings::default()
        };
        let err = store.save(&bad).unwrap_err();
        assert!(matches!(&err, SettingsError::Invalid(p) if p[0].0 == "refreshIntervalSecs"));
        assert!(!store.path().exists());
    }

    /// The Settings screen shows the home, the settings file in it and the logs folder.
    #[test]
    fn the_app_paths_are_in_its_home() {
        let home = Path::new("/h/.tunnelbook");
        let paths = AppPaths::of(home);
        assert_eq!(paths.home, "/h/.tunnelbook");
        assert_eq!(
            Path::new(&paths.settings),
            SettingsStore::in_home(home).path()
        );
        assert_eq!(Path::new(&paths.logs), home.join("logs"));
    }
}
