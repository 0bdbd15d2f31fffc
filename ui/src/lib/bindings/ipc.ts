// Generated from the Rust source by src-tauri/tests/contract (scripts/check-bindings.sh). Do not edit.

import type { AppPaths } from './AppPaths';
import type { DragOut } from './DragOut';
import type { EnvironmentView } from './EnvironmentView';
import type { ErrorCode } from './ErrorCode';
import type { ExecOutput } from './ExecOutput';
import type { FilesListing } from './FilesListing';
import type { FilesProgress } from './FilesProgress';
import type { ForwardRule } from './ForwardRule';
import type { ForwardSpec } from './ForwardSpec';
import type { GpuEvent } from './GpuEvent';
import type { GpuReport } from './GpuReport';
import type { HostEntry } from './HostEntry';
import type { ImportPreview } from './ImportPreview';
import type { InstallEvent } from './InstallEvent';
import type { Profile } from './Profile';
import type { ProjectEvent } from './ProjectEvent';
import type { ProjectSummary } from './ProjectSummary';
import type { PromptAnswer } from './PromptAnswer';
import type { PromptEvent } from './PromptEvent';
import type { QuitQuestion } from './QuitQuestion';
import type { ServerView } from './ServerView';
import type { SessionEvent } from './SessionEvent';
import type { SessionSummary } from './SessionSummary';
import type { Settings } from './Settings';
import type { SlurmEvent } from './SlurmEvent';
import type { SlurmJobView } from './SlurmJobView';
import type { SlurmRequestForm } from './SlurmRequestForm';
import type { SlurmView } from './SlurmView';
import type { TerminalEvent } from './TerminalEvent';
import type { TerminalOpened } from './TerminalOpened';
import type { TrayMenu } from './TrayMenu';
import type { TunnelsView } from './TunnelsView';

/** How a command is sent: `invoke` from `@tauri-apps/api/core`, or a wrapper of it. */
export type Invoke = <T>(cmd: string, args?: Record<string, unknown>) => Promise<T>;

/** Every command of the app, typed, over `invoke`. */
export function commands(invoke: Invoke) {
  return {
    /** "This computer" first, then the saved hosts in their saved order. */
    listHosts: () => invoke<HostEntry[]>('list_hosts'),
    /** Adds `profile`, or replaces the host called `previous_name`; returns the new list. Core's validator decides: its per-field messages come back as a `validation` error. A renamed host's keychain entries follow it, and a password remembered for the old `user@host:port` is forgotten when the address changes (core's `ProfileStore::save_host`). */
    saveHost: (previousName: string | null, profile: Profile) => invoke<HostEntry[]>('save_host', { previousName, profile }),
    /** Removes the host called `name` and forgets its secrets in the keychain (password, passphrases, Jupyter tokens); returns the new list. */
    deleteHost: (name: string) => invoke<HostEntry[]>('delete_host', { name }),
    /** Keeps `environment` (a path or conda env name; `null`: the first with JupyterLab) as the one every later launch on saved host `host_id` uses — the app's, the tray's, `tunnelbook up`'s — and, when `modules` is given, the Lmod / Environment Modules modules loaded before it (an environment of kind `module`: `["python/3.11"]`; `[]` loads none; `null` keeps the saved ones). This computer has no profile: nothing is kept. */
    rememberEnvironment: (hostId: string, environment: string | null, modules: string[] | null) => invoke<HostEntry[]>('remember_environment', { hostId, environment, modules }),
    /** What importing would add from `~/.ssh/config` (and, on Windows, PuTTY's saved sessions), compared with the saved hosts; nothing is saved. A source that is not there has no candidates and a note saying so. */
    previewImport: () => invoke<ImportPreview[]>('preview_import'),
    /** Saves the chosen imported hosts (renamed where the user gave another name), all or none; returns the new list. A refusal names each host and field (`NAME: field: message`). */
    importHosts: (profiles: Profile[]) => invoke<HostEntry[]>('import_hosts', { profiles }),
    /** The host form's "Browse…": asks for a private key file in a picker opened in `~/.ssh`; the chosen path, or `None` when the picker was cancelled. Check it with [`check_key_file`]. */
    pickKeyFile: () => invoke<string | null>('pick_key_file'),
    /** What core's validator says about `path` as a key file (missing, a folder, a public key instead of the private one), in words; `None` when it can be used. */
    checkKeyFile: (path: string) => invoke<string | null>('check_key_file', { path }),
    /** What core's validator says about `text` typed in the host form's port field (`5O609`: not a number), in words; `None` for a port from 1 to 65535. */
    checkPort: (text: string) => invoke<string | null>('check_port', { text }),
    /** Checks the environment at `path` on session `session_id`'s host ("Add environment path…", e.g. a shared `/srv/jlab` outside the places discovery looks): its Python version and whether JupyterLab is installed; `problem` says why it cannot be used. */
    checkEnvironment: (sessionId: string, path: string) => invoke<EnvironmentView>('check_environment', { sessionId, path }),
    /** Carries out the tray menu item `id` (an `action` entry's id from `tray_menu`) exactly as a click on it in the OS tray does. The OS tray cannot be clicked by an automated test (Xvfb has no tray host), so the end-to-end tests click through this. */
    trayAction: (id: string) => invoke<void>('tray_action', { id }),
    /** Starts a session on host `host_id`; progress arrives as `session` events. Returns its id. One connection per host: when the host has a live session ([`live_session`]) that one's id is returned and nothing is dialed (its earlier events are not sent again). */
    startSession: (hostId: string) => invoke<string>('start_session', { hostId }),
    /** The session whose connection to host `host_id` is open, being dialed or re-established (`null`: none, or only closed and failed ones): Connect on that host shows it rather than opening a second SSH connection. */
    liveSession: (hostId: string) => invoke<string | null>('live_session', { hostId }),
    /** Stops session `session_id` wherever it is (connecting, waiting for a prompt, running). */
    cancelSession: (sessionId: string) => invoke<void>('cancel_session', { sessionId }),
    /** Completes question `id` (from a `prompt` event). */
    answerPrompt: (id: number, answer: PromptAnswer) => invoke<void>('answer_prompt', { id, answer }),
    /** Runs `command` on session `session_id`'s host through its login shell. */
    runCommand: (sessionId: string, command: string) => invoke<ExecOutput>('run_command', { sessionId, command }),
    /** The GPUs of session `session_id`'s host now, ranked, with the best free one recommended. */
    gpuSnapshot: (sessionId: string) => invoke<GpuReport>('gpu_snapshot', { sessionId }),
    /** Starts emitting `gpus` events for session `session_id` (the first right away, then every [`gpu::DEFAULT_INTERVAL`]) until [`unwatch_gpus`] or the session closes. Replaces an earlier watch of the same session. */
    watchGpus: (sessionId: string) => invoke<void>('watch_gpus', { sessionId }),
    /** Stops the `gpus` events of session `session_id` (the picker closed). Not an error when none run. */
    unwatchGpus: (sessionId: string) => invoke<void>('unwatch_gpus', { sessionId }),
    /** Every session this app started, oldest first. */
    listSessions: () => invoke<SessionSummary[]>('list_sessions'),
    /** Closes session `session_id`: its notebook windows (its own notebook's and those on servers it reopened) save their open documents and close, then it stops its notebook (and the server), its tasks, its tunnels and its connection. Servers it reopened keep running. */
    closeSession: (sessionId: string) => invoke<void>('close_session', { sessionId }),
    /** Opens notebook `url` (as the main window knows it: without the token) in an app window titled `title`; returns the window's label. One window per server: when a notebook window already shows that server (same address, whatever its path), it is brought to the front (unminimized, shown, focused) and its label returned; a second window would open on a fresh JupyterLab workspace (`…/lab/workspaces/auto-X?reset`), not on what the person has open. A new window gets the URL with its token.  Async on purpose: creating a window from a synchronous command deadlocks on Windows. */
    openNotebook: (url: string, title: string) => invoke<string>('open_notebook', { url, title }),
    /** Opens notebook `url` (as the main window knows it: without the token) in the default browser. The browser program is started with a one-time local link, never the token (its command line is readable by every local user); the link redirects the browser once to the notebook with its token (core's `jupyter::handoff`).  Errors: `noBrowser` when the system's browser cannot be started (the message says why in words; the front end offers [`browser_link`] to copy instead), `internal` when the local link cannot be made. */
    openInBrowser: (url: string) => invoke<void>('open_in_browser', { url }),
    /** A one-time local link to notebook `url` (as the main window knows it: without the token) to copy into a browser by hand, when "Open in browser" cannot start one: it holds no token, works once, for [`COPIED_LINK_TTL`] (ten minutes).  Errors: `internal` when the local link cannot be made; `validation` for a non-web URL. */
    browserLink: (url: string) => invoke<string>('browser_link', { url }),
    /** The Python environments on session `session_id`'s host, the profile's first. */
    listEnvironments: (sessionId: string) => invoke<EnvironmentView[]>('list_environments', { sessionId }),
    /** Creates a venv with JupyterLab on the host (`path`, default `~/.tunnelbook/venv`), emitting each installer line as an `install` event; returns the new environment. */
    installJupyter: (sessionId: string, path: string | null) => invoke<EnvironmentView>('install_jupyter', { sessionId, path }),
    /** Starts JupyterLab in session `session_id` through core's session: on `gpu` (a `cudaVisibleDevices` from the picker, `cpu` for CPU only, `null` for the best free one) from `env` (an environment's `path`; `null`: the profile's, else the first with JupyterLab). Progress arrives as `session` events; on ready the notebook window opens. */
    launchNotebook: (sessionId: string, gpu: string | null, env: string | null) => invoke<void>('launch_notebook', { sessionId, gpu, env }),
    /** Starts session `session_id`'s notebook server again after it stopped (`serverGone`), behind the same local port; the notebook window follows. Progress arrives as `session` events. */
    restartNotebook: (sessionId: string) => invoke<void>('restart_notebook', { sessionId }),
    /** Checks session `session_id`'s notebook connection now and reconnects at once when it does not answer, instead of waiting for the next try. Progress arrives as `session` events. */
    reconnectNotebook: (sessionId: string) => invoke<void>('reconnect_notebook', { sessionId }),
    /** The Jupyter servers running on session `session_id`'s host: this app's notebook, servers the CLI or an earlier run started, and ones started by hand. */
    listServers: (sessionId: string) => invoke<ServerView[]>('list_servers', { sessionId }),
    /** Makes server `server_id` on session `session_id`'s host reachable here (a tunnel over the host session's link, so it keeps working across reconnects; kept until the session closes); returns its URL. */
    attachServer: (sessionId: string, serverId: string) => invoke<string>('attach_server', { sessionId, serverId }),
    /** Stops server `server_id` on session `session_id`'s host: its notebook windows (every app window showing that server's address: this session's own notebook, or one reopened after a restart) save their open documents and close first, then the server stops. For this session's own notebook it also ends core's session; the connection stays. Emits [`NOTEBOOK_STOPPED_EVENT`] once the server is stopped. */
    stopServer: (sessionId: string, serverId: string) => invoke<void>('stop_server', { sessionId, serverId }),
    /** The Tunnels view of `host_id`. */
    listForwards: (hostId: string) => invoke<TunnelsView>('list_forwards', { hostId }),
    /** Adds a saved rule (`index` null) or replaces rule `index` of host `host_id`. A running rule restarts with its new settings; an enabled one starts when the host is connected. */
    saveForward: (hostId: string, index: number | null, rule: ForwardRule) => invoke<TunnelsView>('save_forward', { hostId, index, rule }),
    /** Removes saved rule `index` of host `host_id` (stopping it when running). */
    deleteForward: (hostId: string, index: number) => invoke<TunnelsView>('delete_forward', { hostId, index }),
    /** Turns saved rule `index` on or off (saved in the profile); when the host is connected the forward starts or stops at once. */
    setForwardEnabled: (hostId: string, index: number, enabled: boolean) => invoke<TunnelsView>('set_forward_enabled', { hostId, index, enabled }),
    /** Starts every enabled saved rule of `host_id` that is not running (the host must be connected). Rules that cannot start say why in their `error`. */
    startForwards: (hostId: string) => invoke<TunnelsView>('start_forwards', { hostId }),
    /** Starts a forward that is not saved (e.g. TensorBoard's remote port 6006 to a free local port). */
    startOneOff: (hostId: string, spec: ForwardSpec) => invoke<TunnelsView>('start_one_off', { hostId, spec }),
    /** Stops running forward `id` (a saved rule stays saved and enabled). */
    stopForward: (id: string) => invoke<TunnelsView>('stop_forward', { id }),
    /** The saved settings (the defaults when none were saved). */
    getSettings: () => invoke<Settings>('get_settings'),
    /** Validates and saves `settings`; applies "start at login" when it changed. Returns what was saved. */
    saveSettings: (settings: Settings) => invoke<Settings>('save_settings', { settings }),
    /** The tray menu as a plain model (what the tray shows now). */
    trayMenu: () => invoke<TrayMenu>('tray_menu'),
    /** Where the app's files and logs are. */
    appPaths: () => invoke<AppPaths>('app_paths'),
    /** Opens the logs folder in the file manager. */
    openLogsFolder: () => invoke<void>('open_logs_folder'),
    /** Removes every secret Tunnelbook remembered in the OS keychain (passwords, key passphrases, Jupyter tokens): of every saved host, of hosts deleted since, and entries of older versions (core's `ProfileStore::forget_all_secrets`). Returns how many entries went. */
    forgetAllSecrets: () => invoke<number>('forget_all_secrets'),
    /** Quits: stops every tunnel and session; `stop_notebooks` says whether the remote notebooks stop too (otherwise they keep running and can be reattached later). */
    quitApp: (stopNotebooks: boolean) => invoke<void>('quit_app', { stopNotebooks }),
    /** Opens a login shell on a `cols` × `rows` pty (`xterm-256color`) over session `session_id`'s connection; its output arrives as `terminal` events. */
    openTerminal: (sessionId: string, cols: number, rows: number) => invoke<TerminalOpened>('open_terminal', { sessionId, cols, rows }),
    /** Sends what the user typed or pasted to terminal `terminal_id`. */
    terminalInput: (terminalId: string, data: string) => invoke<void>('terminal_input', { terminalId, data }),
    /** Tells the host terminal `terminal_id` is now `cols` × `rows` cells. */
    resizeTerminal: (terminalId: string, cols: number, rows: number) => invoke<void>('resize_terminal', { terminalId, cols, rows }),
    /** Closes terminal `terminal_id` (the host hangs up its shell). */
    closeTerminal: (terminalId: string) => invoke<void>('close_terminal', { terminalId }),
    /** Checks, before "Open in my terminal" starts anything, that the system terminal program and the `tunnelbook` command it runs are on this computer's PATH (looked up as the shell does). Errors: `unsupported`, saying which program is missing and what to do instead. */
    checkMyTerminal: () => invoke<void>('check_my_terminal'),
    /** The folder `path` on session `session_id`'s host (`None` or `~`: the home folder). */
    listFiles: (sessionId: string, path: string | null) => invoke<FilesListing>('list_files', { sessionId, path }),
    /** Makes the folder `path` (and missing parents). */
    makeFolder: (sessionId: string, path: string) => invoke<void>('make_folder', { sessionId, path }),
    /** Renames `from` to `to` (a name without `/` stays in the same folder). */
    renameFile: (sessionId: string, from: string, to: string) => invoke<void>('rename_file', { sessionId, from, to }),
    /** Deletes the file, or the folder with everything in it, at `path` (the UI asks first). */
    deleteFile: (sessionId: string, path: string) => invoke<void>('delete_file', { sessionId, path }),
    /** "Upload…": asks for files in a picker, then uploads them into `dir`; returns how many went up (0 when the picker was cancelled). */
    uploadFiles: (sessionId: string, dir: string) => invoke<number>('upload_files', { sessionId, dir }),
    /** Uploads the local files `paths` into the remote folder `dir` (files dropped on the window, or chosen in the picker); returns how many went up. Folders among them go up whole. */
    uploadPaths: (sessionId: string, dir: string, paths: string[]) => invoke<number>('upload_paths', { sessionId, dir, paths }),
    /** "Download": asks where to save the remote file `path` (its name suggested), then downloads it there; returns the local path (`None` when the dialog was cancelled). */
    downloadFile: (sessionId: string, path: string) => invoke<string | null>('download_file', { sessionId, path }),
    /** A row dragged out of the Files view: downloads the remote file or folder `path` (with [`FILES_PROGRESS_EVENT`]s, direction `drag`) into a private folder of the app's cache, then starts the native drag of that copy from `window` while the mouse button is still held, so the desktop, a file manager or another app gets the file where it is dropped. An unchanged file prepared before is not downloaded again.  Errors: `NotFound` (no such remote path), `Validation` (over [`tunnelbook_core::sftp::staging::DRAG_LIMIT`] bytes: the message says to use Download), the SFTP errors of a download, `Internal` (no drag possible). */
    dragOut: (sessionId: string, path: string) => invoke<DragOut>('drag_out', { sessionId, path }),
    /** Asks for a notebook (`.ipynb`) in a file picker; `None` when cancelled. */
    pickNotebook: () => invoke<string | null>('pick_notebook'),
    /** Opens the local notebook `path` on session `session_id`'s host (GPU and environment as for a launch: `None` takes the host's saved choices); returns the project's id at once. Progress comes as [`PROJECT_EVENT`]s. */
    openLocalNotebook: (sessionId: string, path: string, gpu: string | null, env: string | null) => invoke<string>('open_local_notebook', { sessionId, path, gpu, env }),
    /** "Bring back now": checks the host for saves at once. */
    bringBackNow: (projectId: string) => invoke<void>('bring_back_now', { projectId }),
    /** "Stop syncing": one last check, then no more (the notebook window and server stay). */
    stopSyncing: (projectId: string) => invoke<void>('stop_syncing', { projectId }),
    /** Every project opened since the app started, oldest first: what a (re)loaded main window shows. */
    projects: () => invoke<ProjectSummary[]>('projects'),
    /** The notebook the app was asked to open on its command line, once (`None` when none). */
    takeRequestedNotebook: () => invoke<string | null>('take_requested_notebook'),
    /** The cluster view of session `session_id`'s host when it is a SLURM login node (detected when the session connected and saved as `scheduler: slurm`); `null` for other hosts (the GPU cards apply). */
    slurmCluster: (sessionId: string) => invoke<SlurmView | null>('slurm_cluster', { sessionId }),
    /** Checks `request` on session `session_id`'s SLURM host before anything is queued (partition, time against its MaxTime, GPU type and count against its nodes, then `sbatch --test-only`); returns when SLURM expects it to start. Refusals are `validation` errors whose `fields` name the form's field (`partition`, `time`, `gpuType`, `gpuCount`) with what to change. */
    checkSlurmRequest: (sessionId: string, request: SlurmRequestForm) => invoke<string>('check_slurm_request', { sessionId, request }),
    /** Launches JupyterLab as a SLURM job for session `session_id` from `request` (checked first; `env`: a Python environment prefix on the cluster, `null`: the host's, else `python3`). Progress arrives as `slurm` events (Checking → Queued → Starting → Ready); on ready the notebook window opens through the login node. [`stop_slurm_notebook`] cancels or stops it. */
    launchSlurmNotebook: (sessionId: string, request: SlurmRequestForm, env: string | null) => invoke<void>('launch_slurm_notebook', { sessionId, request, env }),
    /** Stops session `session_id`'s SLURM notebook: while queued, Cancel (`scancel`); once ready, JupyterLab's shutdown, then `scancel`, then the job's end confirmed; the notebook window closes. Returns the job's final state (`CANCELLED`), `""` when no job was queued yet. */
    stopSlurmNotebook: (sessionId: string) => invoke<string>('stop_slurm_notebook', { sessionId }),
    /** The user's Tunnelbook SLURM jobs on session `session_id`'s host — started here, by the CLI or on another computer — joined with their connection files (core's [`job::list`], what `tunnelbook ls` prints); `null` when the host is not a SLURM login node. */
    listSlurmJobs: (sessionId: string) => invoke<SlurmJobView[] | null>('list_slurm_jobs', { sessionId }),
    /** Opens job `job_id` on session `session_id`'s SLURM host here — a job started anywhere (the CLI, another computer): a local port forwarded through the login node to the job's `node:port` (core's [`launch::find_attachable`] finds it and reads its token from the job's 0600 file), kept until the session closes. Returns the notebook URL (without its token) for `open_notebook` — the same notebook window as a launch's. */
    openSlurmJob: (sessionId: string, jobId: string) => invoke<string>('open_slurm_job', { sessionId, jobId }),
    /** Stops job `job_id` on session `session_id`'s SLURM host, wherever it was started: this session's own launch as [`stop_slurm_notebook`] does; any other Tunnelbook job by JupyterLab's shutdown (through a forward, with the token from the job's file), then `scancel`, then its end confirmed. Returns the final state (`CANCELLED`). */
    stopSlurmJob: (sessionId: string, jobId: string) => invoke<string>('stop_slurm_job', { sessionId, jobId }),
  };
}

/** The events the app emits, by name, with their payloads. */
export type Events = {
  'session': SessionEvent;
  'gpus': GpuEvent;
  'prompt': PromptEvent;
  'install': InstallEvent;
  'tray-session': { sessionId: string; hostId: string };
  'tray-running': { sessionId: string; hostId: string };
  'tray-project': { projectId: string; sessionId: string };
  'quit-requested': QuitQuestion;
  'terminal': TerminalEvent;
  'files-progress': FilesProgress;
  'project': ProjectEvent;
  'notebook-requested': string;
  'notebook-stopped': { sessionId: string; serverId: string };
  'slurm': SlurmEvent;
};

/** Every error code, in the order Rust declares them. */
export const ERROR_CODES: readonly ErrorCode[] = [
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
  'noBrowser',
  'internal',
];
