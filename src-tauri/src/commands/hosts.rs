//! The host list: "This computer" plus the saved profiles; saving (core validates), deleting,
//! the environment kept per host, and importing from `~/.ssh/config` / PuTTY.

use tauri::{AppHandle, Runtime, State};
use tauri_plugin_dialog::DialogExt;
use tunnelbook_core::profile::{self, ImportPreview, Profile, ProfileError};

use crate::{
    error::{AppError, ErrorCode},
    state::AppState,
    wire::{HostEntry, LOCAL_HOST_ID},
};

/// "This computer" first, then the saved hosts in their saved order.
#[tauri::command]
pub async fn list_hosts(state: State<'_, AppState>) -> Result<Vec<HostEntry>, AppError> {
    Ok(HostEntry::list(state.profiles.load()?))
}

/// Adds `profile`, or replaces the host called `previous_name`; returns the new list. Core's
/// validator decides: its per-field messages come back as a `validation` error. A renamed host's
/// keychain entries follow it, and a password remembered for the old `user@host:port` is
/// forgotten when the address changes (core's `ProfileStore::save_host`).
#[tauri::command]
pub async fn save_host(
    state: State<'_, AppState>,
    previous_name: Option<String>,
    profile: Profile,
) -> Result<Vec<HostEntry>, AppError> {
    let secrets = state.secrets();
    let all = state
        .profiles
        .save_host(previous_name.as_deref(), profile, secrets.as_deref())?;
    Ok(HostEntry::list(all))
}

/// Title of the host form's key file picker (tests find its window by it).
pub const KEY_FILE_TITLE: &str = "Choose a private key file";

/// The host form's "Browse…": asks for a private key file in a picker opened in `~/.ssh`; the
/// chosen path, or `None` when the picker was cancelled. Check it with [`check_key_file`].
#[tauri::command]
pub async fn pick_key_file<R: Runtime>(app: AppHandle<R>) -> Result<Option<String>, AppError> {
    let mut dialog = app.dialog().file().set_title(KEY_FILE_TITLE);
    let ssh = profile::expand_home(std::path::Path::new("~/.ssh"));
    if ssh.is_dir() {
        dialog = dialog.set_directory(ssh);
    }
    Ok(dialog
        .blocking_pick_file()
        .and_then(|f| f.into_path().ok())
        .map(|p| p.display().to_string()))
}

/// What core's validator says about `path` as a key file (missing, a folder, a public key
/// instead of the private one), in words; `None` when it can be used.
#[tauri::command]
pub async fn check_key_file(path: String) -> Result<Option<String>, AppError> {
    Ok(profile::key_file_problem(std::path::Path::new(&path)))
}

/// What core's validator says about `text` typed in the host form's port field (`5O609`: not a
/// number), in words; `None` for a port from 1 to 65535.
#[tauri::command]
pub async fn check_port(text: String) -> Result<Option<String>, AppError> {
    Ok(profile::port_problem(&text))
}

/// Removes the host called `name` and forgets its secrets in the keychain (password,
/// passphrases, Jupyter tokens); returns the new list.
#[tauri::command]
pub async fn delete_host(
    state: State<'_, AppState>,
    name: String,
) -> Result<Vec<HostEntry>, AppError> {
    let secrets = state.secrets();
    state.profiles.remove(&name, secrets.as_deref())?;
    Ok(HostEntry::list(state.profiles.load()?))
}

/// Keeps `environment` (a path or conda env name; `null`: the first with JupyterLab) as the one
/// every later launch on saved host `host_id` uses — the app's, the tray's, `tunnelbook up`'s —
/// and, when `modules` is given, the Lmod / Environment Modules modules loaded before it (an
/// environment of kind `module`: `["python/3.11"]`; `[]` loads none; `null` keeps the saved
/// ones). This computer has no profile: nothing is kept.
#[tauri::command]
pub async fn remember_environment(
    state: State<'_, AppState>,
    host_id: String,
    environment: Option<String>,
    modules: Option<Vec<String>>,
) -> Result<Vec<HostEntry>, AppError> {
    if host_id != LOCAL_HOST_ID {
        state.profiles.edit(&host_id, |p| {
            p.environment = environment;
            if let Some(modules) = modules {
                p.modules = modules;
            }
        })?;
    }
    Ok(HostEntry::list(state.profiles.load()?))
}

/// What importing would add from `~/.ssh/config` (and, on Windows, PuTTY's saved sessions),
/// compared with the saved hosts; nothing is saved. A source that is not there has no
/// candidates and a note saying so.
#[tauri::command]
pub async fn preview_import(state: State<'_, AppState>) -> Result<Vec<ImportPreview>, AppError> {
    let path = profile::default_ssh_config_path().unwrap_or_default();
    Ok(profile::previews(&path, &state.profiles.load()?)?)
}

/// Saves the chosen imported hosts (renamed where the user gave another name), all or none;
/// returns the new list. A refusal names each host and field (`NAME: field: message`).
#[tauri::command]
pub async fn import_hosts(
    state: State<'_, AppState>,
    profiles: Vec<Profile>,
) -> Result<Vec<HostEntry>, AppError> {
    match profile::import_profiles(&state.profiles, profiles) {
        Ok(all) => Ok(HostEntry::list(all)),
        Err(ProfileError::Invalid(errors)) => Err(AppError::new(
            ErrorCode::Validation,
            profile::FieldError::summary(&errors),
        )),
        Err(e) => Err(e.into()),
    }
}
