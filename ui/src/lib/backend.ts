// The only module that talks to Tauri. Components and state classes import this, never
// @tauri-apps/api, so tests mock one module. Every call rejects with an `AppError`
// ({ code, message, fields? }); switch on `code`, never on the message.
import { invoke } from '@tauri-apps/api/core';
import { listen, type UnlistenFn } from '@tauri-apps/api/event';
import { getCurrentWebview } from '@tauri-apps/api/webview';
import { Command } from '@tauri-apps/plugin-shell';

import type { AppError } from './bindings/AppError';
import type { Profile } from './bindings/Profile';
import { ERROR_CODES, commands, type Events } from './bindings/ipc';

export type { UnlistenFn };

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

/** Listens to event `name` of the app (names and payloads generated from Rust). */
function on<K extends keyof Events>(name: K, handler: (payload: Events[K]) => void): Promise<UnlistenFn> {
  return listen<Events[K]>(name, (e) => handler(e.payload));
}

// Every command, its arguments and result types are generated from the Rust commands
// (bindings/ipc.ts); only argument order is adapted here where the UI reads better.
const api = commands(call);

export const backend = {
  ...api,
  saveHost: (profile: Profile, previousName: string | null) => api.saveHost(previousName, profile),

  /** The tray asks whether to stop remote notebooks before quitting; the payload names the SLURM
   * jobs that keep running if left, with their end time. */
  onQuitRequested: (handler: (e: Events['quit-requested']) => void): Promise<UnlistenFn> => on('quit-requested', handler),
  /** The tray started a session (its id and host). */
  onTraySession: (handler: (e: Events['tray-session']) => void): Promise<UnlistenFn> => on('tray-session', handler),
  /** The tray's one-click launch found a Tunnelbook notebook running on the host and started
   * none: the UI offers Reopen (its session and host). */
  onTrayRunning: (handler: (e: Events['tray-running']) => void): Promise<UnlistenFn> => on('tray-running', handler),
  /** A Jupyter server was stopped from the app (Sessions' or Connect's Stop): its windows are
   * closed; views showing it drop it. */
  onNotebookStopped: (handler: (e: Events['notebook-stopped']) => void): Promise<UnlistenFn> => on('notebook-stopped', handler),
  onPrompt: (handler: (event: Events['prompt']) => void): Promise<UnlistenFn> => on('prompt', handler),
  onSession: (handler: (event: Events['session']) => void): Promise<UnlistenFn> => on('session', handler),
  onGpus: (handler: (event: Events['gpus']) => void): Promise<UnlistenFn> => on('gpus', handler),
  onInstall: (handler: (event: Events['install']) => void): Promise<UnlistenFn> => on('install', handler),
  onTerminal: (handler: (event: Events['terminal']) => void): Promise<UnlistenFn> => on('terminal', handler),
  /** A SLURM launch's steps, time left, warnings and end (issue 20). */
  onSlurm: (handler: (event: Events['slurm']) => void): Promise<UnlistenFn> => on('slurm', handler),
  /** Starts the system terminal on `tunnelbook shell HOST` (Linux: x-terminal-emulator; Windows:
   * Windows Terminal; macOS: Terminal), through the shell plugin's scope in
   * src-tauri/capabilities/main.json, which allows exactly these programs and arguments. */
  openInMyTerminal: async (hostName: string): Promise<void> => {
    const ua = navigator.userAgent;
    const [scope, args] = /Windows/.test(ua)
      ? ['terminal-windows', ['new-tab', 'tunnelbook', 'shell', hostName]]
      : /Mac OS X|Macintosh/.test(ua)
        ? ['terminal-macos', ['-e', `tell application "Terminal" to do script "tunnelbook shell ${hostName}"`, '-e', 'tell application "Terminal" to activate']]
        : ['terminal-linux', ['-e', 'tunnelbook', 'shell', hostName]];
    try {
      await Command.create(scope, args).spawn();
    } catch (e) {
      throw toAppError(e);
    }
  },
};

export type Backend = typeof backend;

// The Files view: SFTP over a connected host's session (commands/files.rs).

export const filesBackend = {
  /** The folder `path` (null: the home folder) on the session's host. */
  list: api.listFiles,
  makeFolder: api.makeFolder,
  /** `to`: a new name in the same folder, or a full path. */
  rename: api.renameFile,
  /** Deletes a file, or a folder with everything in it. Ask first. */
  remove: api.deleteFile,
  /** Asks for files in a picker and uploads them into `dir`; resolves to how many went up. */
  uploadPicked: api.uploadFiles,
  /** Uploads local files (dropped on the window) into `dir`. */
  uploadPaths: api.uploadPaths,
  /** Asks where to save, then downloads; resolves to the local path (null: cancelled). */
  download: api.downloadFile,
  /** A row dragged out of the window: downloads it into the app's cache, then starts the native
   * drag of that copy while the mouse button is held (`started: false`: it was let go first). */
  dragOut: api.dragOut,
  onProgress: (handler: (event: Events['files-progress']) => void): Promise<UnlistenFn> => on('files-progress', handler),
  /** "Open notebook…": asks for an .ipynb; resolves to its path (null: cancelled). */
  pickNotebook: api.pickNotebook,
  /** Runs the local notebook on the session's host; resolves to the project id (events follow). */
  openLocalNotebook: api.openLocalNotebook,
  bringBackNow: api.bringBackNow,
  stopSyncing: api.stopSyncing,
  /** Every project opened since the app started, oldest first (they outlive this page). */
  projects: api.projects,
  /** The tray's "Open notebook on GPU…" opened a local notebook on a host. */
  onTrayProject: (handler: (e: Events['tray-project']) => void): Promise<UnlistenFn> => on('tray-project', handler),
  /** The notebook the app was started with ("Open with Tunnelbook"), once. */
  takeRequestedNotebook: api.takeRequestedNotebook,
  /** A notebook handed to the running app ("Open with Tunnelbook" again). */
  onNotebookRequested: (handler: (path: string) => void): Promise<UnlistenFn> => on('notebook-requested', handler),
  onProject: (handler: (event: Events['project']) => void): Promise<UnlistenFn> => on('project', handler),
  /** Files dropped on the window from the desktop (their local paths). */
  onDrop: (handler: (paths: string[]) => void): Promise<UnlistenFn> =>
    getCurrentWebview().onDragDropEvent((e) => {
      if (e.payload.type === 'drop') handler(e.payload.paths);
    }),
};
