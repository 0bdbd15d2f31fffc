// The user's settings and where the app keeps its files.
import { backend } from '../backend';
import type { AppError } from '../bindings/AppError';
import type { AppPaths } from '../bindings/AppPaths';
import type { Settings } from '../bindings/Settings';
import type { Theme } from '../bindings/Theme';

/** Applies a theme to the document (`system` follows the OS through CSS). */
export function applyTheme(theme: Theme): void {
  if (typeof document === 'undefined') return;
  if (theme === 'system') delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = theme;
}

export class SettingsState {
  settings = $state<Settings | null>(null);
  paths = $state<AppPaths | null>(null);
  error = $state<AppError | null>(null);
  saved = $state(false);
  forgotten = $state<number | null>(null);

  async load(): Promise<void> {
    try {
      const [settings, paths] = await Promise.all([backend.getSettings(), backend.appPaths()]);
      this.settings = settings;
      this.paths = paths;
      this.error = null;
      applyTheme(settings.theme);
    } catch (e) {
      this.error = e as AppError;
    }
  }

  async save(settings: Settings): Promise<boolean> {
    this.saved = false;
    try {
      this.settings = await backend.saveSettings(settings);
      this.error = null;
      this.saved = true;
      applyTheme(this.settings.theme);
      return true;
    } catch (e) {
      this.error = e as AppError;
      return false;
    }
  }

  async openLogs(): Promise<void> {
    try {
      await backend.openLogsFolder();
    } catch (e) {
      this.error = e as AppError;
    }
  }

  async forgetSecrets(): Promise<void> {
    try {
      this.forgotten = await backend.forgetAllSecrets();
      this.error = null;
    } catch (e) {
      this.error = e as AppError;
    }
  }
}
