//! Whether the desktop shows the app's tray icon, and so what closing the main window does.
//!
//! On Linux the tray icon is a StatusNotifierItem (libayatana-appindicator): a panel shows it only
//! where a StatusNotifierWatcher runs on the session bus (KDE, XFCE, Cinnamon, GNOME with the
//! AppIndicator extension). Plain GNOME, a bare X server (Xvfb) or a session without D-Bus have
//! none: tauri creates the icon without error, but nobody can see it, so hiding the main window
//! there would leave the person no way back and no Quit. Windows and macOS always show it.

/// The D-Bus name of the StatusNotifierWatcher (the service panels own to show tray icons).
pub const WATCHER: &str = "org.kde.StatusNotifierWatcher";

/// What closing the main window does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MainClose {
    /// Hide it: the app keeps running in the tray, which brings it back (Show) or quits.
    HideToTray,
    /// Quit as the tray's Quit does: asks first about running notebooks, else quits at once.
    Quit,
}

/// What closing the main window does when the tray icon is (`true`) or is not shown.
pub fn on_main_close(tray_shown: bool) -> MainClose {
    if tray_shown {
        MainClose::HideToTray
    } else {
        MainClose::Quit
    }
}

/// Whether the desktop shows the app's tray icon now (see the module docs). Blocking: it asks
/// the session bus (a few milliseconds); call it off the UI thread.
#[cfg(target_os = "linux")]
pub fn tray_shown() -> bool {
    match watcher_running() {
        Ok(running) => running,
        Err(e) => {
            tracing::info!(error = %e, "no session bus to ask for a tray: closing the window quits");
            false
        }
    }
}

/// Whether the desktop shows the app's tray icon now: always, outside Linux.
#[cfg(not(target_os = "linux"))]
pub fn tray_shown() -> bool {
    true
}

/// Whether [`WATCHER`] has an owner on the session bus. Errors: no session bus, or it does not
/// answer.
#[cfg(target_os = "linux")]
fn watcher_running() -> Result<bool, zbus::Error> {
    let connection = zbus::blocking::Connection::session()?;
    let bus = zbus::blocking::fdo::DBusProxy::new(&connection)?;
    let name = zbus::names::BusName::try_from(WATCHER)?;
    Ok(bus.name_has_owner(name)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closing_hides_to_the_tray_only_where_one_is_shown() {
        assert_eq!(on_main_close(true), MainClose::HideToTray);
        assert_eq!(on_main_close(false), MainClose::Quit);
    }

    /// On the real session bus (the suites run inside `dbus-run-session`): no watcher, no tray;
    /// once a panel owns the watcher's name, the tray is shown; when it goes, not any more.
    #[cfg(target_os = "linux")]
    #[test]
    fn tray_shown_follows_the_status_notifier_watcher_on_the_session_bus() {
        let Ok(panel) = zbus::blocking::Connection::session() else {
            // No session bus at all: nothing can show a tray.
            assert!(!tray_shown());
            eprintln!("no session bus: checked the no-bus case only");
            return;
        };
        let had_one = tray_shown();
        if !had_one {
            assert!(!tray_shown());
        }
        panel.request_name(WATCHER).unwrap();
        assert!(
            tray_shown(),
            "a watcher owns {WATCHER} but no tray was seen"
        );
        panel.release_name(WATCHER).unwrap();
        if !had_one {
            assert!(!tray_shown(), "the watcher left but a tray was still seen");
        }
    }
}
