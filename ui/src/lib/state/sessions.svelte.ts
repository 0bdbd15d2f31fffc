// The sessions this app started, and the Jupyter servers running on their hosts (this app's
// notebooks, ones the CLI or an earlier run started, ones started by hand).
import { backend, type UnlistenFn } from '../backend';
import type { AppError } from '../bindings/AppError';
import type { GpuReport } from '../bindings/GpuReport';
import { serverGpuLabel } from './connect.svelte';
import type { ServerView } from '../bindings/ServerView';
import type { SessionEvent } from '../bindings/SessionEvent';
import type { SessionStatus } from '../bindings/SessionStatus';
import type { SessionSummary } from '../bindings/SessionSummary';
import type { SlurmJobView } from '../bindings/SlurmJobView';

/** Statuses with a live connection, whose host's servers can be listed. */
const CONNECTED = ['connected', 'launching', 'ready', 'failed', 'disconnected'];

export function hostLabel(hostId: string): string {
  return hostId === 'local' ? 'This computer' : hostId;
}

/** A session's status in words, for its row. */
export const STATUS_WORDS: Record<SessionStatus, string> = {
  starting: 'connecting…',
  connected: 'connected',
  launching: 'starting JupyterLab…',
  ready: 'notebook ready',
  disconnected: 'connection lost — reconnecting',
  failed: 'failed',
  closed: 'closed',
};

/** Statuses of an attempt that worked (its connection came up): a failed attempt on the same
 * host before it is over. */
const WORKED: SessionStatus[] = ['connected', 'launching', 'ready', 'disconnected'];

/** Live first (a ready notebook at the top), then the ones on their way, then failed attempts. */
const ORDER: SessionStatus[] = ['ready', 'disconnected', 'launching', 'connected', 'starting', 'failed', 'closed'];

/** The number in a session id (`s12` → 12), for "later attempt" and newest-first. */
const seq = (id: string): number => Number.parseInt(id.replace(/^s/, ''), 10) || 0;

export class SessionsState {
  sessions = $state<SessionSummary[]>([]);
  /** Servers per session id. */
  servers = $state<Record<string, ServerView[]>>({});
  /** Each session host's GPUs when its servers were listed (null: not read), for naming a
   * server's GPU as the person knows it ("GPU 3", not its UUID). */
  gpuReports = $state<Record<string, GpuReport | null>>({});

  /** The GPU server `server` runs on, as the person knows it ("GPU 3", "CPU only"); `null`
   * when unknown. Its `CUDA_VISIBLE_DEVICES` (a UUID) is for a tooltip. */
  gpuOf(server: ServerView): string | null {
    const label = serverGpuLabel(server, this.gpuReports[server.sessionId] ?? null);
    // A UUID the host's GPUs no longer list: not a name a person knows.
    return label !== null && /^(GPU|MIG)-/i.test(label) ? 'a GPU no longer listed' : label;
  }
  /** What went wrong with an action here or with listing the sessions (Dismiss clears it). */
  error = $state<AppError | null>(null);
  /** What went wrong with one session (its attempt): listing its servers or jobs, by session id.
   * Shown on its row, never at the top: it goes with the row when a later attempt on the host
   * works, or when dismissed. */
  rowErrors = $state<Record<string, AppError>>({});
  /** Failed sessions the person dismissed (listed under Ended). */
  dismissed = $state<string[]>([]);
  /** The server id whose URL was just copied (for a short "Copied" label). */
  copied = $state<string | null>(null);
  /** Tunnelbook's SLURM jobs per session id, on sessions whose host is a SLURM login node
   * (started here, by the CLI or on another computer). */
  slurmJobs = $state<Record<string, SlurmJobView[]>>({});
  /** The job being opened or stopped (its buttons wait). */
  busyJob = $state<string | null>(null);

  /** Whether the Sessions screen shows this now (it sets it): events then list the changed
   * sessions' servers again; otherwise only the sessions list is read (no SSH round trip), and
   * showing the screen refreshes everything. */
  shown = false;
  #unlisten: UnlistenFn[] = [];
  #listening = false;
  // An update running, and whether another was asked for meanwhile (events come in bursts).
  #updating: Promise<void> | null = null;
  #again = false;
  #againAll = false;

  /** The sessions worth looking at now: live ones first (a ready notebook at the top), then
   * those on their way, then failed attempts no later attempt on their host has replaced. */
  get current(): SessionSummary[] {
    return this.sessions.filter((s) => !this.#ended(s)).sort((a, b) => ORDER.indexOf(a.status) - ORDER.indexOf(b.status) || seq(b.id) - seq(a.id));
  }

  /** Closed sessions, failed attempts a later one on the same host replaced by working, and
   * failed ones dismissed: newest first, for the collapsed "Ended" part. */
  get ended(): SessionSummary[] {
    return this.sessions.filter((s) => this.#ended(s)).sort((a, b) => seq(b.id) - seq(a.id));
  }

  #ended(s: SessionSummary): boolean {
    if (s.status === 'closed') return true;
    if (s.status !== 'failed') return false;
    return this.dismissed.includes(s.id) || this.sessions.some((t) => t.hostId === s.hostId && seq(t.id) > seq(s.id) && WORKED.includes(t.status));
  }

  /** Puts failed session `id` (and its error) under Ended. */
  dismiss(id: string): void {
    if (!this.dismissed.includes(id)) this.dismissed = [...this.dismissed, id];
  }

  /**
   * Follows every session's events — this screen's, the tray's, a reconnect's — so the list
   * shows each session as it is now without Refresh (a tray launch's "connecting…" becomes
   * "notebook ready" when it is).
   */
  async listen(): Promise<void> {
    if (this.#listening) return;
    this.#listening = true;
    this.#unlisten.push(await backend.onSession((e) => this.#onEvent(e)));
    this.#unlisten.push(await backend.onNotebookStopped(() => void this.update(true)));
  }

  stop(): void {
    for (const u of this.#unlisten) u();
    this.#unlisten = [];
    this.#listening = false;
  }

  #onEvent(event: SessionEvent): void {
    // A step that ends or a connection being dialed again changes what a row says; progress in
    // between does not.
    if (event.state === 'running' && event.step !== 'connect' && event.step !== 'openTunnel') return;
    void this.update(false);
  }

  /**
   * Reads the sessions again (local, cheap); the servers and jobs of the sessions whose status,
   * notebook or window changed are listed again (over their connections), or every session's
   * when `all`. Calls coming while one runs make one more after it.
   */
  async update(all: boolean): Promise<void> {
    if (this.#updating) {
      this.#again = true;
      if (all) this.#againAll = true;
      return this.#updating;
    }
    this.#updating = (async () => {
      let wholeList = all;
      do {
        this.#again = false;
        await this.#read(wholeList);
        wholeList = this.#againAll;
        this.#againAll = false;
      } while (this.#again);
    })();
    try {
      await this.#updating;
    } finally {
      this.#updating = null;
    }
  }

  async refresh(): Promise<void> {
    await this.update(true);
  }

  async #read(all: boolean): Promise<void> {
    const before = new Map(this.sessions.map((s) => [s.id, `${s.status}|${s.serverId}|${s.url}|${s.window}`]));
    try {
      this.sessions = await backend.listSessions();
      if (all) this.error = null;
    } catch (e) {
      this.error = e as AppError;
      return;
    }
    if (!all && !this.shown) return;
    const changed = (s: SessionSummary) => all || before.get(s.id) !== `${s.status}|${s.serverId}|${s.url}|${s.window}`;
    const servers: Record<string, ServerView[]> = {};
    const jobs: Record<string, SlurmJobView[]> = {};
    const rowErrors: Record<string, AppError> = {};
    const reports: Record<string, GpuReport | null> = {};
    for (const s of this.sessions) {
      if (!changed(s) && CONNECTED.includes(s.status)) {
        if (this.gpuReports[s.id] !== undefined) reports[s.id] = this.gpuReports[s.id];
        if (this.servers[s.id]) servers[s.id] = this.servers[s.id];
        if (this.slurmJobs[s.id]) jobs[s.id] = this.slurmJobs[s.id];
        if (this.rowErrors[s.id]) rowErrors[s.id] = this.rowErrors[s.id];
      }
    }
    const relist = this.sessions.filter((s) => CONNECTED.includes(s.status) && changed(s));
    const slurm = Promise.all(
      relist
        .filter((s) => s.hostId !== 'local')
        .map(async (s) => {
          try {
            const found = await backend.listSlurmJobs(s.id);
            if (found) jobs[s.id] = found;
          } catch (e) {
            rowErrors[s.id] = e as AppError;
          }
        }),
    );
    await Promise.all(
      relist.map(async (s) => {
        try {
          servers[s.id] = await backend.listServers(s.id);
          // Servers record their GPU by UUID: the host's GPUs name it ("GPU 3").
          if (servers[s.id].some((v) => v.gpu !== null && /^(GPU|MIG)-/i.test(v.gpu))) {
            try {
              reports[s.id] = (await backend.gpuSnapshot(s.id)) ?? null;
            } catch {
              // Unnamed then: the tooltip keeps the UUID.
              reports[s.id] = null;
            }
          }
        } catch (e) {
          // A session whose connection went away lists nothing; the others still show.
          servers[s.id] = [];
          if ((e as AppError).code !== 'unsupported') rowErrors[s.id] = e as AppError;
        }
      }),
    );
    this.gpuReports = reports;
    this.servers = servers;
    await slurm;
    this.slurmJobs = jobs;
    this.rowErrors = rowErrors;
  }

  /** Opens a SLURM job's JupyterLab here (forwarded through the login node) in a notebook
   * window or the browser. */
  async openJob(job: SlurmJobView, where: 'window' | 'browser'): Promise<void> {
    this.busyJob = job.jobId;
    try {
      const url = job.url ?? (await backend.openSlurmJob(job.sessionId, job.jobId));
      this.slurmJobs = {
        ...this.slurmJobs,
        [job.sessionId]: (this.slurmJobs[job.sessionId] ?? []).map((j) => (j.jobId === job.jobId ? { ...j, url } : j)),
      };
      const session = this.sessions.find((s) => s.id === job.sessionId);
      const title = `JupyterLab — ${hostLabel(session?.hostId ?? '')} — job ${job.jobId} on ${job.node ?? 'a compute node'}`;
      if (where === 'window') await backend.openNotebook(url, title);
      else await backend.openInBrowser(url);
      this.error = null;
    } catch (e) {
      this.error = e as AppError;
    } finally {
      this.busyJob = null;
    }
  }

  /** Stops a SLURM job (JupyterLab shut down, then scancel, its end confirmed). */
  async stopJob(job: SlurmJobView): Promise<string | null> {
    this.busyJob = job.jobId;
    try {
      const state = await backend.stopSlurmJob(job.sessionId, job.jobId);
      this.stopped = { ...this.stopped, [job.jobId]: state };
      return state;
    } catch (e) {
      this.error = e as AppError;
      return null;
    } finally {
      this.busyJob = null;
      await this.refresh();
    }
  }

  /** Final states of jobs stopped here, by job id ("Job 12 ended: CANCELLED"). */
  stopped = $state<Record<string, string>>({});

  /** Told when a session was closed here (the app's host views drop it). */
  onClosed: ((id: string) => void) | null = null;

  async close(id: string): Promise<void> {
    try {
      await backend.closeSession(id);
      this.onClosed?.(id);
    } catch (e) {
      this.error = e as AppError;
    }
    await this.refresh();
  }

  async open(session: SessionSummary): Promise<void> {
    if (!session.url) return;
    try {
      await backend.openNotebook(session.url, `JupyterLab — ${hostLabel(session.hostId)} — ${session.gpu ?? 'CPU only'}`);
    } catch (e) {
      this.error = e as AppError;
    }
  }

  async openInBrowser(session: SessionSummary): Promise<void> {
    if (!session.url) return;
    try {
      await backend.openInBrowser(session.url);
    } catch (e) {
      this.error = e as AppError;
    }
  }

  /** The URL of a server, opening a tunnel to it first when this app has none. */
  async urlOf(server: ServerView): Promise<string | null> {
    if (server.url) return server.url;
    try {
      const url = await backend.attachServer(server.sessionId, server.id);
      this.servers = {
        ...this.servers,
        [server.sessionId]: (this.servers[server.sessionId] ?? []).map((s) => (s.id === server.id ? { ...s, url } : s)),
      };
      return url;
    } catch (e) {
      this.error = e as AppError;
      return null;
    }
  }

  async openServer(server: ServerView, where: 'window' | 'browser'): Promise<void> {
    const url = await this.urlOf(server);
    if (!url) return;
    const session = this.sessions.find((s) => s.id === server.sessionId);
    try {
      if (where === 'window') await backend.openNotebook(url, `JupyterLab — ${hostLabel(session?.hostId ?? '')}`);
      else await backend.openInBrowser(url);
    } catch (e) {
      this.error = e as AppError;
    }
  }

  async copyUrl(server: ServerView): Promise<void> {
    const url = await this.urlOf(server);
    if (!url) return;
    try {
      await navigator.clipboard.writeText(url);
      this.copied = server.id;
    } catch {
      this.error = { code: 'internal', message: 'The clipboard is not available here.' };
    }
  }

  async stopServer(server: ServerView): Promise<void> {
    try {
      await backend.stopServer(server.sessionId, server.id);
    } catch (e) {
      this.error = e as AppError;
    }
    await this.refresh();
  }
}
