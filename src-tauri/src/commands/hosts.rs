//! The host list: "This computer" plus the saved profiles.

use tauri::State;
use tunnelbook_core::profile::Profile;

use crate::{
    adapter,
    error::AppError,
    state::AppState,
    wire::{HostEntry, HostKind, LOCAL_HOST_ID},
};

/// "This computer" first, then the saved hosts in their saved order.
#[tauri::command]
pub async fn list_hosts(state: State<'_, AppState>) -> Result<Vec<HostEntry>, AppError> {
    Ok(entries(state.profiles.load()?))
}

/// Adds `profile`, or replaces the host called `previous_name`; returns the new list.
#[tauri::command]
pub async fn save_host(
    state: State<'_, AppState>,
    previous_name: Option<String>,
    profile: Profile,
) -> Result<Vec<HostEntry>, AppError> {
    let mut all = state.profiles.load()?;
    let slot = all
        .iter()
        .position(|p| Some(&p.name) == previous_name.as_ref());
    let others: Vec<Profile> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != slot)
        .map(|(_, p)| p.clone())
        .collect();
    let errors = adapter::validate_profile(&profile, &others);
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    match slot {
        Some(i) => all[i] = profile,
        None => all.push(profile),
    }
    state.profiles.save(&all)?;
    Ok(entries(all))
}

/// Removes the host called `name`; returns the new list.
#[tauri::command]
pub async fn delete_host(
    state: State<'_, AppState>,
    name: String,
) -> Result<Vec<HostEntry>, AppError> {
    state.profiles.get(&name)?;
    let all: Vec<Profile> = state
        .profiles
        .load()?
        .into_iter()
        .filter(|p| p.name != name)
        .collect();
    state.profiles.save(&all)?;
    Ok(entries(all))
}

fn entries(profiles: Vec<Profile>) -> Vec<HostEntry> {
    let local = HostEntry {
        id: LOCAL_HOST_ID.into(),
        kind: HostKind::Local,
        label: "This computer".into(),
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
