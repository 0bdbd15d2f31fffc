// One session's progress, mirrored from `session` events.
import { backend, type UnlistenFn } from '../backend';
import type { AppError } from '../bindings/AppError';
import type { ExecOutput } from '../bindings/ExecOutput';
import type { GpuReport } from '../bindings/GpuReport';
import type { ServerView } from '../bindings/ServerView';
import { choiceLabel } from './gpus.svelte';
import type { SessionEvent } from '../bindings/SessionEvent';
import type { SessionStep } from '../bindings/SessionStep';
import type { SessionSummary } from '../bindings/SessionSummary';
import type { StepState } from '../bindings/StepState';
import type { PromptQuestion } from '../bindings/PromptQuestion';

export const STEP_LABELS: Record<SessionStep, string> = {
  connect: 'Connecting',
  hostKey: 'Checking the host key',
  authenticate: 'Authenticating',
  readGpus: 'Reading GPUs',
  findEnvironments: 'Finding environments',
  startJupyter: 'Starting JupyterLab',
  openTunnel: 'Opening the tunnel',
  ready: 'Ready',
};

export const STEPS = Object.keys(STEP_LABELS) as SessionStep[];

export interface StepView {
  step: SessionStep;
  label: string;
  state: StepState | 'pending';
  message: string;
  error: AppError | null;
}

/**
 * running: connecting and reading GPUs; connected: choose a GPU and an environment; launching:
 * core's session starts JupyterLab; ready: the notebook is open.
 */
export type Phase = 'idle' | 'running' | 'connected' | 'launching' | 'ready' | 'failed' | 'cancelled';

/** The steps core's session runs for a launch (the ones before stay as the connection left them). */
const LAUNCH_STEPS: SessionStep[] = ['findEnvironments', 'startJupyter', 'openTunnel', 'ready'];

/**
 * What to do next when a step failed, by error code, where the message itself does not say it.
 * Connection errors (unreachable, timeout, host key, authentication) carry their advice in the
 * message and get Retry / Edit host buttons instead, so nothing is said twice.
 */
export const NEXT_STEP_HINTS: Partial<Record<string, string>> = {
  hostKeyChanged:
    'The host shows another key than the one Tunnelbook remembers, so nothing was sent. If the server was reinstalled, check its new fingerprint with its administrator before trusting it.',
  authFailed: 'The host refused the login: check the user, key file or password with Edit host, then Retry.',
  gpuDriver: 'The NVIDIA driver on the host is broken; choose "CPU only" or ask the admin.',
  noFreeGpu: 'Every GPU is busy: pick one anyway, or choose "CPU only".',
  jupyter: 'Pick another environment, or install JupyterLab on the Environment screen, then start again.',
  serverGone: 'It may have run out of memory or been stopped on the host. Restart server starts it again at the same address.',
};

/** What Stop asks before stopping a notebook server (Connect and Sessions say the same): what it
 * ends, and what it does first. */
export const STOP_QUESTION =
  'Stop JupyterLab? Its running kernels end and what they hold in memory is lost. Open notebooks are saved first, then their windows close.';

/** What Sessions ▸ Close asks before closing a session, as Stop asks: closing ends the
 * JupyterLab it started (its own notebook's, and those "Open notebook…" started on it). */
export const CLOSE_QUESTION =
  'Close this session? Its connection and tunnels close, and the JupyterLab servers it started stop: their running kernels end and what they hold in memory is lost. Open notebooks are saved first (and their saves brought back), then their windows close.';

/** The step a question belongs to, and what it waits for, in words. */
function waitingFor(question: PromptQuestion): { step: SessionStep; words: string } {
  switch (question.kind) {
    case 'hostKey':
      return { step: 'hostKey', words: 'Waiting for you to check the host key' };
    case 'secret':
      return {
        step: 'authenticate',
        words: question.detail.kind === 'passphrase' ? "Waiting for the key file's passphrase" : 'Waiting for your password',
      };
    default:
      return { step: 'authenticate', words: 'Waiting for your answer' };
  }
}

/**
 * The steps as shown while `question` waits for the person: its step runs and says what it waits
 * for ("Waiting for you to check the host key"), the steps before it are done (the host
 * answered), none says "Connecting … waiting for your answer…".
 */
export function waitingSteps(steps: StepView[], question: PromptQuestion | null): StepView[] {
  if (!question) return steps;
  const { step, words } = waitingFor(question);
  const at = STEPS.indexOf(step);
  return steps.map((s) => {
    const i = STEPS.indexOf(s.step);
    if (i < at && s.state === 'running') return { ...s, state: 'done', message: '' };
    if (i === at && s.state !== 'failed') return { ...s, state: 'running', message: words, error: null };
    return s;
  });
}

const KNOWN_STATES: StepState[] = ['running', 'done', 'skipped', 'failed'];

/** A Jupyter server already running on the host (this app's earlier run, the CLI's, by hand). */
export interface RunningServer {
  server: ServerView;
  /** "GPU 3", "CPU only", or null when unknown (a server Tunnelbook did not start). */
  gpu: string | null;
}

/** The GPU a server runs on, as the user knows it. */
export function serverGpuLabel(server: ServerView, report: GpuReport | null): string | null {
  if (server.gpu === null) return server.managed ? 'CPU only' : null;
  const choice = report?.choices.find((c) => c.cudaVisibleDevices === server.gpu);
  return choice ? choiceLabel(choice) : server.gpu;
}

function freshSteps(): StepView[] {
  return STEPS.map((step) => ({ step, label: STEP_LABELS[step], state: 'pending', message: '', error: null }));
}

export class ConnectState {
  hostId = $state<string | null>(null);
  sessionId = $state<string | null>(null);
  steps = $state<StepView[]>(freshSteps());
  log = $state<string[]>([]);
  phase = $state<Phase>('idle');
  error = $state<AppError | null>(null);
  output = $state<ExecOutput | null>(null);
  running = $state(false);
  /** Whether a failure happened while launching (the connection is still up: choose again). */
  launchFailed = $state(false);
  /** Whether the ready notebook's server stopped (it can be restarted behind the same port). */
  serverGone = $state(false);
  /** Whether the ready notebook's connection is lost and being re-established. */
  reconnecting = $state(false);
  /** The session as the Sessions list shows it, once the notebook is ready (URL, GPU, server). */
  summary = $state<SessionSummary | null>(null);
  /** Servers found running on the host when it connected (Reopen instead of starting another). */
  runningServers = $state<RunningServer[]>([]);
  /** The server reopened from `running`, with its URL. */
  reopened = $state<{ serverId: string; url: string } | null>(null);
  // Events that arrive before start_session has returned the id.
  #early: SessionEvent[] = [];
  #unlisten: UnlistenFn | null = null;
  #unlistenStopped: UnlistenFn | null = null;

  async listen(): Promise<void> {
    this.#unlisten ??= await backend.onSession((event) => this.#receive(event));
    this.#unlistenStopped ??= await backend.onNotebookStopped((e) => this.serverStopped(e.sessionId, e.serverId));
  }

  stop(): void {
    this.#unlisten?.();
    this.#unlisten = null;
    this.#unlistenStopped?.();
    this.#unlistenStopped = null;
  }

  /**
   * Server `serverId` on session `sessionId`'s host was stopped (here, from Sessions, or after a
   * restart's Reopen): this view no longer offers it. Its own notebook goes back to choosing (the
   * connection stays); a reopened or found server leaves the Reopen offer.
   */
  serverStopped(sessionId: string, serverId: string): void {
    if (sessionId !== this.sessionId) return;
    this.runningServers = this.runningServers.filter((r) => r.server.id !== serverId);
    if (this.reopened?.serverId === serverId) this.reopened = null;
    const own = this.summary?.serverId === serverId;
    if (own && (this.phase === 'ready' || this.phase === 'failed' || this.phase === 'launching')) {
      this.phase = 'connected';
      this.summary = null;
      this.serverGone = false;
      this.launchFailed = false;
      this.reconnecting = false;
      this.error = null;
      this.steps = this.steps.map((s) =>
        LAUNCH_STEPS.includes(s.step) ? { ...s, state: 'pending', message: '', error: null } : s,
      );
      this.log = [...this.log, 'notebook stopped'];
    }
  }

  async start(hostId: string): Promise<void> {
    await this.listen();
    this.hostId = hostId;
    this.sessionId = null;
    this.steps = freshSteps();
    this.log = [];
    this.error = null;
    this.output = null;
    this.launchFailed = false;
    this.runningServers = [];
    this.reopened = null;
    this.phase = 'running';
    this.#early = [];
    try {
      this.sessionId = await backend.startSession(hostId);
      const early = this.#early;
      this.#early = [];
      for (const event of early) this.#receive(event);
    } catch (e) {
      this.#fail(e as AppError, 'connect');
    }
  }

  /**
   * Follows session `sessionId` on `hostId`, started already elsewhere (the tray, or an earlier
   * Connect whose view was replaced), as it stands now: still connecting, connected (with the
   * servers running there: the Reopen offer), launching, or with its notebook ready.
   */
  async adopt(hostId: string, sessionId: string): Promise<void> {
    await this.listen();
    this.hostId = hostId;
    this.sessionId = sessionId;
    this.error = null;
    this.output = null;
    this.launchFailed = false;
    this.serverGone = false;
    this.reconnecting = false;
    this.runningServers = [];
    this.reopened = null;
    this.summary = null;
    this.#early = [];
    // Connecting until the list says otherwise: a readGpus event arriving meanwhile moves it on.
    this.steps = freshSteps();
    this.log = ['connecting (started elsewhere)'];
    this.phase = 'running';
    let summary: SessionSummary | null = null;
    try {
      summary = (await backend.listSessions())?.find((s) => s.id === sessionId) ?? null;
    } catch {
      // Taken as connected: what the session does next arrives as events.
    }
    if (this.sessionId !== sessionId || this.phase !== 'running') return;
    if (summary?.status === 'starting') return;
    const connected: SessionStep[] = ['connect', 'hostKey', 'authenticate', 'readGpus'];
    const ready = summary !== null && summary.url !== null && (summary.status === 'ready' || summary.status === 'disconnected');
    const done = ready ? [...connected, ...LAUNCH_STEPS] : connected;
    this.steps = freshSteps().map((s) => (done.includes(s.step) ? { ...s, state: 'done' } : s));
    this.log = ['connected already: no second connection'];
    if (ready) {
      this.summary = summary;
      this.phase = 'ready';
      // Found while its connection is down: Ready is not shown as done.
      if (summary?.status === 'disconnected') this.#markDown(true);
    } else if (summary?.status === 'launching') {
      this.phase = 'launching';
    } else {
      this.phase = 'connected';
      await this.findRunning();
    }
  }

  /** Starts JupyterLab through core's session with the picker's GPU and the chosen environment. */
  async launch(gpu: string | null, env: string | null): Promise<void> {
    const id = this.sessionId;
    if (!id) return;
    this.steps = this.steps.map((s) =>
      LAUNCH_STEPS.includes(s.step) ? { ...s, state: 'pending', message: '', error: null } : s,
    );
    this.error = null;
    this.launchFailed = false;
    this.summary = null;
    this.phase = 'launching';
    this.log = [...this.log, `launching JupyterLab (${gpu === 'cpu' ? 'CPU only' : (gpu ?? 'best free GPU')}, ${env ?? 'default environment'})`];
    try {
      await backend.launchNotebook(id, gpu, env);
    } catch (e) {
      this.launchFailed = true;
      this.#fail(e as AppError, 'startJupyter');
    }
  }

  /** Starts the gone server again; the notebook window follows it once it is ready. */
  async restartServer(): Promise<void> {
    const id = this.sessionId;
    if (!id) return;
    this.serverGone = false;
    this.error = null;
    this.steps = this.steps.map((s) =>
      s.step === 'startJupyter' || s.step === 'ready' ? { ...s, state: 'pending', message: '', error: null } : s,
    );
    this.phase = 'launching';
    this.log = [...this.log, 'restarting JupyterLab'];
    try {
      await backend.restartNotebook(id);
    } catch (e) {
      this.#fail(e as AppError, 'startJupyter');
    }
  }

  /** Cuts the wait before the next reconnect attempt short. */
  async reconnectNow(): Promise<void> {
    const id = this.sessionId;
    if (!id) return;
    this.log = [...this.log, 'reconnecting now'];
    try {
      await backend.reconnectNotebook(id);
    } catch (e) {
      this.error = e as AppError;
    }
  }

  /** Opens the ready notebook in an app window again (e.g. after closing it). */
  async openNotebook(): Promise<void> {
    const url = this.summary?.url;
    if (!url) return;
    const host = this.hostId === 'local' ? 'This computer' : this.hostId;
    try {
      await backend.openNotebook(url, `JupyterLab — ${host} — ${this.summary?.gpu ?? 'CPU only'}`);
    } catch (e) {
      this.error = e as AppError;
    }
  }

  /**
   * "Open in browser" could not start the browser (code `noBrowser`): said at the button, with
   * a link to copy instead ([`copyBrowserLink`]); other failures go to `error`.
   */
  browserProblem = $state<AppError | null>(null);
  /** The one-time link made for the browser after `noBrowser` (no token; works once). */
  browserLink = $state<string | null>(null);
  /** Whether `browserLink` reached the clipboard (else it is shown to copy by hand). */
  browserLinkCopied = $state(false);

  async openInBrowser(): Promise<void> {
    const url = this.summary?.url;
    if (!url) return;
    this.browserProblem = null;
    this.browserLink = null;
    try {
      await backend.openInBrowser(url);
    } catch (e) {
      const error = e as AppError;
      if (error.code === 'noBrowser') this.browserProblem = error;
      else this.error = error;
    }
  }

  /**
   * Makes a one-time local link to the notebook (no token in it, good for ten minutes) and copies
   * it with `copy` (the clipboard); when copying fails the link stays shown to copy by hand.
   */
  async copyBrowserLink(copy: (text: string) => Promise<void> = (t) => navigator.clipboard.writeText(t)): Promise<void> {
    const url = this.summary?.url;
    if (!url) return;
    try {
      this.browserLink = await backend.browserLink(url);
    } catch (e) {
      this.error = e as AppError;
      return;
    }
    try {
      await copy(this.browserLink);
      this.browserLinkCopied = true;
    } catch {
      this.browserLinkCopied = false;
    }
  }

  async refreshSummary(): Promise<void> {
    try {
      const all = await backend.listSessions();
      this.summary = all.find((s) => s.id === this.sessionId) ?? null;
    } catch (e) {
      this.error = e as AppError;
    }
  }

  /** Stops this session's notebook server; the connection stays, ready for another launch. */
  async stopNotebook(serverId: string): Promise<void> {
    if (!this.sessionId) return;
    try {
      await backend.stopServer(this.sessionId, serverId);
      // The backend's notebook-stopped event may have come first: the same change, once.
      this.serverStopped(this.sessionId, serverId);
    } catch (e) {
      this.error = e as AppError;
    }
  }

  async cancel(): Promise<void> {
    const id = this.sessionId;
    this.phase = 'cancelled';
    this.log = [...this.log, 'cancelled'];
    if (id) {
      try {
        await backend.cancelSession(id);
      } catch (e) {
        this.error = e as AppError;
      }
    }
  }

  async run(command: string): Promise<void> {
    if (!this.sessionId) return;
    this.running = true;
    try {
      this.output = await backend.runCommand(this.sessionId, command);
      this.error = null;
    } catch (e) {
      this.error = e as AppError;
    } finally {
      this.running = false;
    }
  }

  #receive(event: SessionEvent): void {
    if (this.sessionId === null) {
      if (this.phase === 'running') this.#early.push(event);
      return;
    }
    if (event.sessionId !== this.sessionId || this.phase === 'cancelled') return;
    // Newer backends may report steps or states this UI does not know: log them, change nothing.
    const label = STEP_LABELS[event.step as SessionStep] as string | undefined;
    this.log = [...this.log, `${label ?? String(event.step)}: ${event.message}`];
    if (!label || !KNOWN_STATES.includes(event.state)) return;
    this.steps = this.steps.map((s) =>
      s.step === event.step ? { ...s, state: event.state, message: event.message, error: event.error } : s,
    );
    if ((event.step === 'openTunnel' || event.step === 'connect') && this.phase === 'ready') {
      // A ready notebook's tunnel, or its host's connection, runs again only while the connection
      // is being re-established; either one done again means it is back.
      const down = event.state === 'running';
      if (down || this.reconnecting) this.#markDown(down);
    }
    if (event.state === 'failed') {
      this.serverGone = event.error?.code === 'serverGone';
      this.launchFailed = !this.serverGone && (this.phase === 'launching' || this.phase === 'ready');
      this.reconnecting = false;
      this.phase = 'failed';
      this.error = event.error;
    } else if (event.step === 'ready' && event.state === 'done') {
      this.phase = 'ready';
      // Ready again (a restart from the notebook window's banner, too): what went wrong before
      // is over, not a red line under the new server (trial of #14 in s28, finding 4).
      this.serverGone = false;
      this.launchFailed = false;
      this.error = null;
      void this.refreshSummary();
    } else if (event.step === 'readGpus' && event.state !== 'running' && this.phase === 'running') {
      // The connection is up and the GPUs are read: the user chooses next.
      this.phase = 'connected';
      void this.findRunning();
    }
  }

  /** While the connection is down the step list does not say "Ready ✓": Ready waits for it,
   * and is done again once it is back. */
  #markDown(down: boolean): void {
    this.reconnecting = down;
    this.steps = this.steps.map((s) =>
      s.step === 'ready'
        ? down
          ? { ...s, state: 'running', message: 'waiting for the connection to come back', error: null }
          : { ...s, state: 'done', message: 'the connection is back', error: null }
        : s,
    );
  }

  /** Looks for Jupyter servers already running on the host, named by their GPU. */
  async findRunning(): Promise<void> {
    const id = this.sessionId;
    if (!id) return;
    try {
      const [servers, report] = await Promise.all([
        backend.listServers(id),
        backend.gpuSnapshot(id).catch(() => null),
      ]);
      if (id !== this.sessionId) return;
      this.runningServers = servers
        .filter((server) => server.id !== this.summary?.serverId)
        .map((server) => ({ server, gpu: serverGpuLabel(server, report) }));
    } catch {
      // Not knowing is not an error worth a message: the Sessions screen lists servers too.
      this.runningServers = [];
    }
  }

  /** Reopens a running server: a tunnel on its earlier local port when free, in a notebook window. */
  async reopen(running: RunningServer): Promise<void> {
    const id = this.sessionId;
    if (!id) return;
    try {
      const url = await backend.attachServer(id, running.server.id);
      // Once reopened, Reopen only brings its window to the front: Details says it once.
      const again = this.reopened?.serverId === running.server.id;
      this.reopened = { serverId: running.server.id, url };
      const host = this.hostId === 'local' ? 'This computer' : this.hostId;
      const gpu = running.gpu ? ` — ${running.gpu}` : '';
      await backend.openNotebook(url, `JupyterLab — ${host}${gpu}`);
      if (!again) this.log = [...this.log, `reopened the notebook running on ${running.gpu ?? 'the host'}`];
    } catch (e) {
      this.error = e as AppError;
    }
  }

  #fail(error: AppError, step: SessionStep): void {
    this.phase = 'failed';
    this.error = error;
    this.steps = this.steps.map((s) => (s.step === step ? { ...s, state: 'failed', message: error.message, error } : s));
    this.log = [...this.log, `${STEP_LABELS[step]}: ${error.message}`];
  }
}
