// One view per host: connecting a second host, or one that fails, does not take over the first
// host's steps, GPU picker, environments or notebook. `connect`, `gpus` and `environments` are the
// shown host's.
import { ConnectState, type Phase, type RunningServer } from './connect.svelte';
import { EnvironmentsState } from './environments.svelte';
import { GpusState } from './gpus.svelte';

/** The phase of a host's view in a few words, for the host switcher. */
export const PHASE_WORDS: Record<Phase, string> = {
  idle: '',
  running: 'connecting',
  connected: 'connected',
  launching: 'starting JupyterLab',
  ready: 'notebook ready',
  failed: 'failed',
  cancelled: 'cancelled',
};

/** Phases whose session is connected: its GPUs and environments can be read. */
const LIVE: Phase[] = ['connected', 'launching', 'ready'];

export class HostViews {
  /** Each host's Connect view, by host id, in the order they were connected. */
  byHost = $state<Record<string, ConnectState>>({});
  /** Each host's GPU picker (its report, history and choice), by host id. */
  gpusByHost = $state<Record<string, GpusState>>({});
  /** Each host's environments (the list and the one chosen), by host id. */
  envsByHost = $state<Record<string, EnvironmentsState>>({});
  /** The host shown on the Connect, GPU and Environment screens. */
  current = $state<string | null>(null);
  readonly #idle = new ConnectState();
  readonly #idleGpus = new GpusState();
  readonly #idleEnvs = new EnvironmentsState();

  /** The view shown now (an idle one before any host is connected). */
  get connect(): ConnectState {
    return (this.current !== null ? this.byHost[this.current] : undefined) ?? this.#idle;
  }

  /** The shown host's GPU picker (an empty one before any host is connected). */
  get gpus(): GpusState {
    return (this.current !== null ? this.gpusByHost[this.current] : undefined) ?? this.#idleGpus;
  }

  /** The shown host's environments (an empty list before any host is connected). */
  get environments(): EnvironmentsState {
    return (this.current !== null ? this.envsByHost[this.current] : undefined) ?? this.#idleEnvs;
  }

  /** The shown host's session while its connection is up (null while connecting, after a failed
   * connect, or cancelled): the one whose GPUs and environments may be read. */
  get liveSession(): string | null {
    const view = this.connect;
    const up = LIVE.includes(view.phase) || (view.phase === 'failed' && (view.launchFailed || view.serverGone));
    return up ? view.sessionId : null;
  }

  /** The hosts with a view, in connect order. */
  get hostIds(): string[] {
    return Object.keys(this.byHost);
  }

  /** Connects `hostId` in a fresh view of its own (replacing only that host's earlier view, GPU
   * picker and environments); the other hosts' views stay as they are. */
  async start(hostId: string): Promise<void> {
    this.byHost[hostId]?.stop();
    void this.gpusByHost[hostId]?.stop();
    const view = new ConnectState();
    this.byHost = { ...this.byHost, [hostId]: view };
    this.gpusByHost = { ...this.gpusByHost, [hostId]: new GpusState() };
    this.envsByHost = { ...this.envsByHost, [hostId]: new EnvironmentsState() };
    this.current = hostId;
    await view.start(hostId);
  }

  /** Follows session `sessionId` on `hostId`, connected elsewhere (the tray), in a fresh view of
   * that host's own, shown now; it offers Reopen for the servers already running there. */
  async adopt(hostId: string, sessionId: string): Promise<void> {
    if (this.byHost[hostId]?.sessionId === sessionId) {
      this.current = hostId;
      await this.byHost[hostId].findRunning();
      return;
    }
    this.byHost[hostId]?.stop();
    void this.gpusByHost[hostId]?.stop();
    const view = new ConnectState();
    this.byHost = { ...this.byHost, [hostId]: view };
    this.gpusByHost = { ...this.gpusByHost, [hostId]: new GpusState() };
    this.envsByHost = { ...this.envsByHost, [hostId]: new EnvironmentsState() };
    this.current = hostId;
    await view.adopt(hostId, sessionId);
  }

  /** Shows `hostId`'s view. */
  show(hostId: string): void {
    if (this.byHost[hostId]) this.current = hostId;
  }

  /** The view whose session is `sessionId`. */
  forSession(sessionId: string): ConnectState | undefined {
    return Object.values(this.byHost).find((v) => v.sessionId === sessionId);
  }

  /** Notebooks found running, by host, for the host cards. */
  get running(): Record<string, RunningServer[]> {
    const out: Record<string, RunningServer[]> = {};
    for (const [hostId, view] of Object.entries(this.byHost)) {
      if (view.phase === 'connected' && view.runningServers.length > 0) out[hostId] = view.runningServers;
    }
    return out;
  }

  stop(): void {
    for (const view of Object.values(this.byHost)) view.stop();
    for (const gpus of Object.values(this.gpusByHost)) void gpus.stop();
  }
}
