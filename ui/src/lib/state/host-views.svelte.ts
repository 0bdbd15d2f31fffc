// One view per host: connecting a second host, or one that fails, does not take over the first
// host's steps, GPU picker, environments or notebook. `connect`, `gpus` and `environments` are the
// shown host's.
import { backend } from '../backend';
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

/** What a host card says about the host's session now: in words, and how it reads (busy: on
 * its way; ok: usable; bad: needs the person). */
export interface HostLiveState {
  words: string;
  tone: 'busy' | 'ok' | 'bad';
}

/** The live state of the session `view` shows, for its host's card (null: nothing to say). */
export function hostLiveState(view: ConnectState): HostLiveState | null {
  switch (view.phase) {
    case 'running':
      return { words: 'Connecting…', tone: 'busy' };
    case 'connected': {
      // A notebook reopened here is open: the card says so (and offers no Reopen for it).
      if (view.reopened) {
        const gpu = view.runningServers.find((r) => r.server.id === view.reopened?.serverId)?.gpu;
        return { words: `Notebook reopened on ${gpu ?? 'the host'}`, tone: 'ok' };
      }
      // The notebooks found running there have a line each on the card ("Notebook running on
      // GPU 1 — Reopen"): not said twice.
      return { words: 'Connected', tone: 'ok' };
    }
    case 'launching':
      return { words: 'Connected — starting JupyterLab…', tone: 'busy' };
    case 'ready':
      if (view.reconnecting) return { words: 'Connection lost — reconnecting; the notebook carries on when it is back', tone: 'bad' };
      return { words: `Notebook ready on ${view.summary ? (view.summary.gpu ?? 'CPU only') : '…'}`, tone: 'ok' };
    case 'failed':
      if (view.serverGone) return { words: 'Connected — the notebook server stopped (Restart it on Connect)', tone: 'bad' };
      if (view.launchFailed) return { words: 'Connected — the launch failed (see Connect)', tone: 'bad' };
      return { words: 'Not connected — the connection failed (see Connect)', tone: 'bad' };
    default:
      return null;
  }
}

/** What the host card's main button does for the session `view` shows (null: none yet):
 * "Connect" only when pressing it dials; otherwise what the Connect screen it opens offers. */
export function hostAction(view: ConnectState | undefined): string {
  switch (view?.phase) {
    case 'running':
    case 'launching':
      return 'Show progress';
    case 'connected':
      return view.runningServers.length > 0 ? 'Start another notebook…' : 'Start a notebook…';
    case 'ready':
      return view.reconnecting ? 'Show the connection' : 'Show notebook';
    case 'failed':
      return view.launchFailed || view.serverGone ? 'Show what failed' : 'Connect';
    default:
      return 'Connect';
  }
}

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
   * picker and environments); the other hosts' views stay as they are. One connection per host:
   * when the host has a live session (connected, connecting, reconnecting — this view's, or one
   * the tray started) it is shown, with its GPU picker and notebook, and nothing is dialed. */
  async start(hostId: string): Promise<void> {
    let live: string | null = null;
    try {
      live = (await backend.liveSession(hostId)) ?? null;
    } catch {
      // Not knowing: connect as before.
    }
    if (live !== null) {
      const view = this.byHost[hostId];
      if (view?.sessionId === live && view.phase !== 'cancelled') {
        this.current = hostId;
        if (view.phase === 'connected') await view.findRunning();
        // "Show notebook": its window comes back (or to the front), not only the Connect screen.
        if (view.phase === 'ready' && !view.reconnecting) await view.openNotebook();
        return;
      }
      await this.adopt(hostId, live);
      return;
    }
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

  /** Follows session `sessionId` on `hostId` (started by the tray) in that host's view, for its
   * host card, without changing the host shown; a view already following it stays as it is. */
  async follow(hostId: string, sessionId: string): Promise<void> {
    if (this.byHost[hostId]?.sessionId === sessionId) return;
    const shown = this.current;
    await this.adopt(hostId, sessionId);
    if (shown !== null && this.byHost[shown]) this.current = shown;
  }

  /** Shows `hostId`'s view. */
  show(hostId: string): void {
    if (this.byHost[hostId]) this.current = hostId;
  }

  /** The view whose session is `sessionId`. */
  forSession(sessionId: string): ConnectState | undefined {
    return Object.values(this.byHost).find((v) => v.sessionId === sessionId);
  }

  /** Each host's live state, by host id, for the host cards (hosts with nothing to say left out). */
  get states(): Record<string, HostLiveState> {
    const out: Record<string, HostLiveState> = {};
    for (const [hostId, view] of Object.entries(this.byHost)) {
      const state = hostLiveState(view);
      if (state) out[hostId] = state;
    }
    return out;
  }

  /** Each host's main button words, by host id (hosts without a view: "Connect"). */
  get actions(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [hostId, view] of Object.entries(this.byHost)) out[hostId] = hostAction(view);
    return out;
  }

  /** Notebooks found running and not open here (each offers Reopen), by host, for the host
   * cards. */
  get running(): Record<string, RunningServer[]> {
    const out: Record<string, RunningServer[]> = {};
    for (const [hostId, view] of Object.entries(this.byHost)) {
      const closed = view.runningServers.filter((r) => r.server.id !== view.reopened?.serverId);
      if (view.phase === 'connected' && closed.length > 0) out[hostId] = closed;
    }
    return out;
  }

  /** Session `sessionId` was closed (Sessions ▸ Close): its host's view goes with it, so the
   * host card says nothing of it any more and offers Connect. */
  closed(sessionId: string): void {
    for (const [hostId, view] of Object.entries(this.byHost)) {
      if (view.sessionId !== sessionId) continue;
      view.stop();
      void this.gpusByHost[hostId]?.stop();
      const without = <T>(m: Record<string, T>): Record<string, T> =>
        Object.fromEntries(Object.entries(m).filter(([h]) => h !== hostId));
      this.byHost = without(this.byHost);
      this.gpusByHost = without(this.gpusByHost);
      this.envsByHost = without(this.envsByHost);
      if (this.current === hostId) this.current = null;
    }
  }

  stop(): void {
    for (const view of Object.values(this.byHost)) view.stop();
    for (const gpus of Object.values(this.gpusByHost)) void gpus.stop();
  }
}
