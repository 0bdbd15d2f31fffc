// One Connect view per host: connecting a second host, or one that fails, does not take over the
// first host's steps, GPU picker, environments or notebook. `connect` is the host shown now.
import { ConnectState, type Phase, type RunningServer } from './connect.svelte';

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

export class HostViews {
  /** Each host's view, by host id, in the order they were connected. */
  byHost = $state<Record<string, ConnectState>>({});
  /** The host shown on the Connect, GPU and Environment screens. */
  current = $state<string | null>(null);
  readonly #idle = new ConnectState();

  /** The view shown now (an idle one before any host is connected). */
  get connect(): ConnectState {
    return (this.current !== null ? this.byHost[this.current] : undefined) ?? this.#idle;
  }

  /** The hosts with a view, in connect order. */
  get hostIds(): string[] {
    return Object.keys(this.byHost);
  }

  /** Connects `hostId` in a fresh view of its own (replacing only that host's earlier view). */
  async start(hostId: string): Promise<void> {
    this.byHost[hostId]?.stop();
    const view = new ConnectState();
    this.byHost = { ...this.byHost, [hostId]: view };
    this.current = hostId;
    await view.start(hostId);
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
  }
}
