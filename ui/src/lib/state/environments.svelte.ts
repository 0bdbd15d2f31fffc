// The Environment screen's data: the host's Python environments (core's discovery), the one
// chosen, and a JupyterLab install with its output streamed from `install` events.
import { backend, type UnlistenFn } from '../backend';
import type { AppError } from '../bindings/AppError';
import type { EnvironmentView } from '../bindings/EnvironmentView';
import type { InstallEvent } from '../bindings/InstallEvent';

/** Where Tunnelbook installs JupyterLab unless the user names another path (core's DEFAULT_VENV). */
export const DEFAULT_VENV = '~/.tunnelbook/venv';
/** Where core's discovery finds environments by itself (crates/core/src/jupyter/env.rs), in
 * words: one kept anywhere else is added by its path. */
export const DISCOVERED_PLACES =
  'venvs and conda envs in your home, conda’s envs folders, /opt/NAME, /opt/GROUP/NAME, /usr/local and the jupyter on the login PATH';
/** The "Add environment path…" example: a shared environment outside every place discovery
 * looks (a test checks it against core's scan). */
export const ADD_PATH_EXAMPLE = '/srv/jlab';
/** Installer lines kept on screen. */
export const INSTALL_LOG_LINES = 200;

export function usable(env: EnvironmentView): boolean {
  return env.problem === null && (env.jupyterLab || env.notebook);
}

export class EnvironmentsState {
  sessionId = $state<string | null>(null);
  envs = $state<EnvironmentView[]>([]);
  /** The chosen environment's path. */
  selected = $state<string | null>(null);
  loading = $state(false);
  error = $state<AppError | null>(null);
  installing = $state(false);
  installLog = $state<string[]>([]);
  installError = $state<AppError | null>(null);
  /** Whether an added path is being checked on the host. */
  checking = $state(false);
  /** Why the added path cannot be used. */
  checkProblem = $state<string | null>(null);
  #unlisten: UnlistenFn | null = null;

  /** Reads the environments of `sessionId`'s host and preselects one with Jupyter. */
  async load(sessionId: string): Promise<void> {
    if (this.sessionId !== sessionId) {
      this.envs = [];
      this.selected = null;
      this.installLog = [];
      this.installError = null;
    }
    this.sessionId = sessionId;
    this.loading = true;
    try {
      this.apply(await backend.listEnvironments(sessionId));
      this.error = null;
    } catch (e) {
      this.error = e as AppError;
    } finally {
      this.loading = false;
    }
  }

  apply(envs: EnvironmentView[]): void {
    this.envs = envs;
    const still = envs.some((e) => e.path === this.selected && usable(e));
    if (!still) {
      const pick = envs.find((e) => e.configured && usable(e)) ?? envs.find((e) => usable(e) && e.jupyterLab) ?? envs.find(usable);
      this.selected = pick?.path ?? null;
    }
  }

  /**
   * "Add environment path…": checks `path` on the host (e.g. a shared /opt/jlab that discovery
   * does not find). A usable one joins the list and is chosen; otherwise `checkProblem` says why.
   */
  async check(path: string): Promise<boolean> {
    const id = this.sessionId;
    if (!id || !path.trim()) return false;
    this.checking = true;
    this.checkProblem = null;
    try {
      const env = await backend.checkEnvironment(id, path.trim());
      if (!usable(env)) {
        this.checkProblem =
          env.problem ??
          `${env.path} has Python ${env.pythonVersion ?? '?'} but no JupyterLab: install it there, or use "Install JupyterLab" below.`;
        return false;
      }
      this.envs = [env, ...this.envs.filter((e) => e.path !== env.path)];
      this.selected = env.path;
      return true;
    } catch (e) {
      this.checkProblem = (e as AppError).message;
      return false;
    } finally {
      this.checking = false;
    }
  }

  choose(path: string): void {
    this.selected = path;
  }

  /** Installs JupyterLab into a venv at `path` on the host, then selects it. */
  async install(path: string): Promise<void> {
    const id = this.sessionId;
    if (!id || this.installing) return;
    this.installing = true;
    this.installError = null;
    this.installLog = [];
    this.#unlisten ??= await backend.onInstall((event) => this.receive(event));
    try {
      const env = await backend.installJupyter(id, path.trim() || null);
      await this.load(id);
      this.selected = env.path;
    } catch (e) {
      this.installError = e as AppError;
    } finally {
      this.installing = false;
      this.#unlisten?.();
      this.#unlisten = null;
    }
  }

  receive(event: InstallEvent): void {
    if (event.sessionId !== this.sessionId) return;
    this.installLog = [...this.installLog, event.line].slice(-INSTALL_LOG_LINES);
  }
}
