// Mirrors the backend's host list. The backend validates; this class only shows its answers.
import { backend } from '../backend';
import type { AppError } from '../bindings/AppError';
import type { HostEntry } from '../bindings/HostEntry';
import type { Profile } from '../bindings/Profile';
import type { EnvironmentView } from '../bindings/EnvironmentView';

/** A profile with every field at the backend's default, for the "Add host" form. */
export function blankProfile(): Profile {
  return {
    name: '',
    host: '',
    port: 22,
    user: null,
    auth: [],
    identityFiles: [],
    jump: null,
    proxyCommand: null,
    connectTimeout: null,
    keepaliveInterval: 10,
    keepaliveMax: 2,
    notebookDir: null,
    environment: null,
    gpu: null,
    modules: [],
    preLaunch: [],
    forwards: [],
    tags: [],
    color: null,
    identitiesOnly: false,
    certificateFiles: [],
    hostKeyAlias: null,
    userKnownHostsFiles: [],
    globalKnownHostsFiles: [],
    strictHostKeyChecking: null,
    hostKeyAlgorithms: null,
    pubkeyAcceptedAlgorithms: null,
  };
}

export type FieldMessages = Record<string, string>;

export class HostsState {
  hosts = $state<HostEntry[]>([]);
  error = $state<AppError | null>(null);
  loading = $state(false);
  /** Whether the list was read at least once. */
  loaded = $state(false);
  /** A host whose form should open when the Hosts screen shows next ("Edit host" on an error). */
  requestEdit = $state<string | null>(null);

  async load(): Promise<void> {
    this.loading = true;
    try {
      this.hosts = await backend.listHosts();
      this.loaded = true;
      this.error = null;
    } catch (e) {
      this.error = e as AppError;
    } finally {
      this.loading = false;
    }
  }

  /** Saves; on a validation error returns the per-field messages instead of throwing. */
  async save(profile: Profile, previousName: string | null): Promise<FieldMessages | null> {
    try {
      this.hosts = await backend.saveHost(profile, previousName);
      this.error = null;
      return null;
    } catch (e) {
      const error = e as AppError;
      if (error.code === 'validation' && error.fields?.length) {
        return Object.fromEntries(error.fields.map((f) => [f.field, f.message]));
      }
      this.error = error;
      return { '': error.message };
    }
  }

  /** What core's validator says about `text` typed as a port (`5O609`: "not a number"); null
   * when it is a port (or the check could not run: saving then says what core says). */
  async checkPort(text: string): Promise<string | null> {
    try {
      return (await backend.checkPort(text)) ?? null;
    } catch {
      return null;
    }
  }

  /**
   * The host form's "Browse…": a key file chosen in the system's picker, with what core's
   * validator says about it (`problem`: e.g. a public key chosen instead of the private one);
   * null when the picker was cancelled.
   */
  async pickKeyFile(): Promise<{ path: string; problem: string | null } | null> {
    try {
      const path = await backend.pickKeyFile();
      if (path === null) return null;
      return { path, problem: await backend.checkKeyFile(path) };
    } catch (e) {
      this.error = e as AppError;
      return null;
    }
  }

  /**
   * Keeps the environment a launch on `profile`'s host used, when it changed, for every later
   * launch; an Lmod / Environment Modules environment (kind `module`, chosen from `envs`) keeps
   * its module too, loaded before every launch.
   */
  async rememberLaunch(profile: Profile, env: string, envs: EnvironmentView[]): Promise<void> {
    const chosen = envs.find((e) => e.path === env);
    const modules = chosen?.kind === 'module' ? [chosen.name] : null;
    const newModules = modules !== null && modules.join('\n') !== profile.modules.join('\n');
    if (env !== profile.environment || newModules) await this.rememberEnvironment(profile.name, env, modules);
  }

  /** Keeps `environment` in host `name`'s profile for every later launch. */
  async rememberEnvironment(name: string, environment: string | null, modules: string[] | null = null): Promise<void> {
    try {
      this.hosts = await backend.rememberEnvironment(name, environment, modules);
      this.error = null;
    } catch (e) {
      this.error = e as AppError;
    }
  }

  /** Replaces the list (after an import). */
  set(hosts: HostEntry[]): void {
    this.hosts = hosts;
    this.error = null;
  }

  /** Whether any host is saved besides this computer. */
  get hasSaved(): boolean {
    return this.hosts.some((h) => h.profile !== null);
  }

  async remove(name: string): Promise<void> {
    try {
      this.hosts = await backend.deleteHost(name);
      this.error = null;
    } catch (e) {
      this.error = e as AppError;
    }
  }
}
