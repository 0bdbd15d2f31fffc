// The only module that talks to Tauri. Components and state classes import this, never
// @tauri-apps/api, so tests mock one module. Every call rejects with an `AppError`
// ({ code, message, fields? }); switch on `code`, never on the message.
import { invoke } from '@tauri-apps/api/core';
import { listen, type UnlistenFn } from '@tauri-apps/api/event';

import type { AppError } from './bindings/AppError';
import type { EnvironmentView } from './bindings/EnvironmentView';
import type { ErrorCode } from './bindings/ErrorCode';
import type { ExecOutput } from './bindings/ExecOutput';
import type { GpuEvent } from './bindings/GpuEvent';
import type { GpuReport } from './bindings/GpuReport';
import type { HostEntry } from './bindings/HostEntry';
import type { ImportPreview } from './bindings/ImportPreview';
import type { InstallEvent } from './bindings/InstallEvent';
import type { Profile } from './bindings/Profile';
import type { PromptAnswer } from './bindings/PromptAnswer';
import type { PromptEvent } from './bindings/PromptEvent';
import type { ServerView } from './bindings/ServerView';
import type { SessionEvent } from './bindings/SessionEvent';
import type { SessionSummary } from './bindings/SessionSummary';
import type { AppPaths } from './bindings/AppPaths';
import type { ForwardRule } from './bindings/ForwardRule';
import type { ForwardSpec } from './bindings/ForwardSpec';
import type { Settings } from './bindings/Settings';
import type { TrayMenu } from './bindings/TrayMenu';
import type { TunnelsView } from './bindings/TunnelsView';

export type { UnlistenFn };

const ERROR_CODES: readonly ErrorCode[] = [
  'hostKeyChanged',
  'hostKeyNotTrusted',
  'authFailed',
  'unreachable',
  'timeout',
  'notFound',
  'validation',
  'gpuDriver',
  'noFreeGpu',
  'jupyter',
  'serverGone',
  'cancelled',
  'unsupported',
  'internal',
];

/** Whatever a command rejected with, as an AppError. */
export function toAppError(e: unknown): AppError {
  if (e && typeof e === 'object' && 'code' in e && 'message' in e) {
    const { code, message, fields } = e as AppError;
    if (ERROR_CODES.includes(code)) return fields ? { code, message, fields } : { code, message };
  }
  return { code: 'internal', message: e instanceof Error ? e.message : String(e) };
}

async function call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(cmd, args);
  } catch (e) {
    throw toAppError(e);
  }
}

export const backend = {
  listHosts: () => call<HostEntry[]>('list_hosts'),
  saveHost: (profile: Profile, previousName: string | null) =>
    call<HostEntry[]>('save_host', { profile, previousName }),
  /** Removes the host and forgets its secrets in the keychain. */
  deleteHost: (name: string) => call<HostEntry[]>('delete_host', { name }),
  /** Keeps `environment` for every later launch on the host (null: the first with JupyterLab). */
  rememberEnvironment: (hostId: string, environment: string | null) =>
    call<HostEntry[]>('remember_environment', { hostId, environment }),
  /** What importing from ~/.ssh/config (and PuTTY on Windows) would add; nothing is saved. */
  previewImport: () => call<ImportPreview[]>('preview_import'),
  /** Saves the chosen imported hosts, all or none. */
  importHosts: (profiles: Profile[]) => call<HostEntry[]>('import_hosts', { profiles }),

  startSession: (hostId: string) => call<string>('start_session', { hostId }),
  cancelSession: (sessionId: string) => call<void>('cancel_session', { sessionId }),
  answerPrompt: (id: number, answer: PromptAnswer) => call<void>('answer_prompt', { id, answer }),
  runCommand: (sessionId: string, command: string) =>
    call<ExecOutput>('run_command', { sessionId, command }),

  gpuSnapshot: (sessionId: string) => call<GpuReport>('gpu_snapshot', { sessionId }),
  /** Starts `gpus` events for the session (first one right away, then every 2 s). */
  watchGpus: (sessionId: string) => call<void>('watch_gpus', { sessionId }),
  /** Stops them; call when the picker closes. */
  unwatchGpus: (sessionId: string) => call<void>('unwatch_gpus', { sessionId }),

  listSessions: () => call<SessionSummary[]>('list_sessions'),
  closeSession: (sessionId: string) => call<void>('close_session', { sessionId }),
  openNotebook: (url: string, title: string) => call<string>('open_notebook', { url, title }),
  openInBrowser: (url: string) => call<void>('open_in_browser', { url }),

  // Tunnels view: saved forwarding rules of a host, running forwards, one-offs.
  listForwards: (hostId: string) => call<TunnelsView>('list_forwards', { hostId }),
  saveForward: (hostId: string, index: number | null, rule: ForwardRule) =>
    call<TunnelsView>('save_forward', { hostId, index, rule }),
  deleteForward: (hostId: string, index: number) => call<TunnelsView>('delete_forward', { hostId, index }),
  setForwardEnabled: (hostId: string, index: number, enabled: boolean) =>
    call<TunnelsView>('set_forward_enabled', { hostId, index, enabled }),
  startForwards: (hostId: string) => call<TunnelsView>('start_forwards', { hostId }),
  startOneOff: (hostId: string, spec: ForwardSpec) => call<TunnelsView>('start_one_off', { hostId, spec }),
  stopForward: (id: string) => call<TunnelsView>('stop_forward', { id }),

  // Settings, tray, quitting.
  getSettings: () => call<Settings>('get_settings'),
  saveSettings: (settings: Settings) => call<Settings>('save_settings', { settings }),
  trayMenu: () => call<TrayMenu>('tray_menu'),
  /** Does what clicking tray menu item `id` does. */
  trayAction: (id: string) => call<void>('tray_action', { id }),
  appPaths: () => call<AppPaths>('app_paths'),
  openLogsFolder: () => call<void>('open_logs_folder'),
  forgetAllSecrets: () => call<number>('forget_all_secrets'),
  quitApp: (stopNotebooks: boolean) => call<void>('quit_app', { stopNotebooks }),
  /** The tray asks whether to stop remote notebooks before quitting. */
  onQuitRequested: (handler: () => void): Promise<UnlistenFn> => listen('quit-requested', () => handler()),
  /** The tray started a session (its id and host). */
  onTraySession: (handler: (e: { sessionId: string; hostId: string }) => void): Promise<UnlistenFn> =>
    listen<{ sessionId: string; hostId: string }>('tray-session', (e) => handler(e.payload)),
  listEnvironments: (sessionId: string) => call<EnvironmentView[]>('list_environments', { sessionId }),
  /** Checks the environment at `path` on the host (Python version, JupyterLab present). */
  checkEnvironment: (sessionId: string, path: string) =>
    call<EnvironmentView>('check_environment', { sessionId, path }),
  /** Creates a venv with JupyterLab on the host; each output line arrives as an `install` event. */
  installJupyter: (sessionId: string, path: string | null) =>
    call<EnvironmentView>('install_jupyter', { sessionId, path }),
  /** `gpu`: a choice's cudaVisibleDevices, 'cpu', or null (best free); `env`: an environment's path. */
  launchNotebook: (sessionId: string, gpu: string | null, env: string | null) =>
    call<void>('launch_notebook', { sessionId, gpu, env }),
  /** Starts the notebook's server again after it stopped (`serverGone`), behind the same port. */
  restartNotebook: (sessionId: string) => call<void>('restart_notebook', { sessionId }),
  /** Checks the notebook's connection now and reconnects at once if it does not answer. */
  reconnectNotebook: (sessionId: string) => call<void>('reconnect_notebook', { sessionId }),
  listServers: (sessionId: string) => call<ServerView[]>('list_servers', { sessionId }),
  /** A tunnel to a server on the session's host; returns its URL. */
  attachServer: (sessionId: string, serverId: string) => call<string>('attach_server', { sessionId, serverId }),
  stopServer: (sessionId: string, serverId: string) => call<void>('stop_server', { sessionId, serverId }),

  onPrompt: (handler: (event: PromptEvent) => void): Promise<UnlistenFn> =>
    listen<PromptEvent>('prompt', (e) => handler(e.payload)),
  onSession: (handler: (event: SessionEvent) => void): Promise<UnlistenFn> =>
    listen<SessionEvent>('session', (e) => handler(e.payload)),
  onGpus: (handler: (event: GpuEvent) => void): Promise<UnlistenFn> =>
    listen<GpuEvent>('gpus', (e) => handler(e.payload)),
  onInstall: (handler: (event: InstallEvent) => void): Promise<UnlistenFn> =>
    listen<InstallEvent>('install', (e) => handler(e.payload)),
};

export type Backend = typeof backend;

// The Files view: SFTP over a connected host's session (commands/files.rs).
import type { FilesListing } from './bindings/FilesListing';
import type { FilesProgress } from './bindings/FilesProgress';
import type { ProjectEvent } from './bindings/ProjectEvent';
import { getCurrentWebview } from '@tauri-apps/api/webview';

export const filesBackend = {
  /** The folder `path` (null: the home folder) on the session's host. */
  list: (sessionId: string, path: string | null) => call<FilesListing>('list_files', { sessionId, path }),
  makeFolder: (sessionId: string, path: string) => call<void>('make_folder', { sessionId, path }),
  /** `to`: a new name in the same folder, or a full path. */
  rename: (sessionId: string, from: string, to: string) => call<void>('rename_file', { sessionId, from, to }),
  /** Deletes a file, or a folder with everything in it. Ask first. */
  remove: (sessionId: string, path: string) => call<void>('delete_file', { sessionId, path }),
  /** Asks for files in a picker and uploads them into `dir`; resolves to how many went up. */
  uploadPicked: (sessionId: string, dir: string) => call<number>('upload_files', { sessionId, dir }),
  /** Uploads local files (dropped on the window) into `dir`. */
  uploadPaths: (sessionId: string, dir: string, paths: string[]) => call<number>('upload_paths', { sessionId, dir, paths }),
  /** Asks where to save, then downloads; resolves to the local path (null: cancelled). */
  download: (sessionId: string, path: string) => call<string | null>('download_file', { sessionId, path }),
  onProgress: (handler: (event: FilesProgress) => void): Promise<UnlistenFn> =>
    listen<FilesProgress>('files-progress', (e) => handler(e.payload)),
  /** "Open notebook…": asks for an .ipynb; resolves to its path (null: cancelled). */
  pickNotebook: () => call<string | null>('pick_notebook'),
  /** Runs the local notebook on the session's host; resolves to the project id (events follow). */
  openLocalNotebook: (sessionId: string, path: string, gpu: string | null, env: string | null) =>
    call<string>('open_local_notebook', { sessionId, path, gpu, env }),
  bringBackNow: (projectId: string) => call<void>('bring_back_now', { projectId }),
  stopSyncing: (projectId: string) => call<void>('stop_syncing', { projectId }),
  /** The notebook the app was started with ("Open with Tunnelbook"), once. */
  takeRequestedNotebook: () => call<string | null>('take_requested_notebook'),
  /** A notebook handed to the running app ("Open with Tunnelbook" again). */
  onNotebookRequested: (handler: (path: string) => void): Promise<UnlistenFn> =>
    listen<string>('notebook-requested', (e) => handler(e.payload)),
  onProject: (handler: (event: ProjectEvent) => void): Promise<UnlistenFn> =>
    listen<ProjectEvent>('project', (e) => handler(e.payload)),
  /** Files dropped on the window from the desktop (their local paths). */
  onDrop: (handler: (paths: string[]) => void): Promise<UnlistenFn> =>
    getCurrentWebview().onDragDropEvent((e) => {
      if (e.payload.type === 'drop') handler(e.payload.paths);
    }),
};
