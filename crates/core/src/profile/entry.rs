//! The app's host list: "This computer" and the saved hosts, as wire types.

use serde::Serialize;

use super::{LOCAL_NAME, Profile};

/// One entry of the host list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct HostEntry {
    /// `local` for this computer, otherwise the profile name.
    pub id: String,
    /// Which kind of entry.
    pub kind: HostKind,
    /// What the list shows.
    pub label: String,
    /// The saved profile (`null` for this computer).
    pub profile: Option<Profile>,
}

impl HostEntry {
    /// The host list: "This computer" first, then `profiles` (the saved hosts) in their order.
    pub fn list(profiles: Vec<Profile>) -> Vec<HostEntry> {
        let local = HostEntry {
            id: LOCAL_NAME.into(),
            kind: HostKind::Local,
            label: host_label(LOCAL_NAME),
            profile: None,
        };
        let saved = profiles.into_iter().map(|p| HostEntry {
            id: p.name.clone(),
            kind: HostKind::Saved,
            label: p.name.clone(),
            profile: Some(p),
        });
        std::iter::once(local).chain(saved).collect()
    }
}

/// Kinds of host list entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum HostKind {
    /// This computer: no SSH, local GPUs.
    Local,
    /// A saved profile.
    Saved,
}

/// What the host list and the tray call host `id`: "This computer" for
/// [`LOCAL_NAME`], else the saved host's name.
pub fn host_label(id: &str) -> String {
    if id == LOCAL_NAME {
        "This computer".into()
    } else {
        id.to_string()
    }
}

/// `profile` (as connected) with the launch defaults of the host of the same name in `saved`
/// (environment, notebook folder, GPU, modules, pre-launch lines): an environment kept by an
/// earlier launch on the same connection, or set with `tunnelbook hosts edit`, counts for the
/// next launch. The connection's own fields stay as connected; `profile` is returned as it is
/// when `saved` has no such host (this computer, a host deleted meanwhile).
pub fn with_saved_launch_defaults(profile: Profile, saved: &[Profile]) -> Profile {
    match saved.iter().find(|p| p.name == profile.name) {
        Some(now) => Profile {
            environment: now.environment.clone(),
            notebook_dir: now.notebook_dir.clone(),
            gpu: now.gpu.clone(),
            modules: now.modules.clone(),
            pre_launch: now.pre_launch.clone(),
            ..profile
        },
        None => profile,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the e2e first hour (trial of #14, finding 19's shared venv outside the scanned
    /// places): the environment kept by the first launch counts for the second launch on the
    /// same connection, not the first environment with JupyterLab.
    #[test]
    fn a_launch_takes_the_environment_saved_after_connecting() {
        let connected = Profile {
            name: "gpu-box".into(),
            host: "127.0.0.1".into(),
            port: 2222,
            ..Profile::default()
        };
        let saved = vec![Profile {
            name: "gpu-box".into(),
            host: "elsewhere".into(),
            environment: Some("/srv/jlab".into()),
            notebook_dir: Some("~/work".into()),
            ..Profile::default()
        }];
        let now = with_saved_launch_defaults(connected.clone(), &saved);
        assert_eq!(now.environment.as_deref(), Some("/srv/jlab"));
        assert_eq!(now.notebook_dir.as_deref(), Some("~/work"));
        // The connection's own fields stay as connected.
        assert_eq!((now.host.as_str(), now.port), ("127.0.0.1", 2222));
        assert_eq!(
            with_saved_launch_defaults(connected.clone(), &[]),
            connected
        );
        assert_eq!(host_label(LOCAL_NAME), "This computer");
        assert_eq!(host_label("gpu-box"), "gpu-box");
    }
}
