// The sessions this app started, and the Jupyter servers running on their hosts (this app's
// notebooks, ones the CLI or an earlier run started, ones started by hand).
import { backend } from '../backend';
import type { AppError } from '../bindings/AppError';
import type { ServerView } from '../bindings/ServerView';
import type { SessionSummary } from '../bindings/SessionSummary';
import type { SlurmJobView } from '../bindings/SlurmJobView';

/** Statuses with a live connection, whose host's servers can be listed. */
const CONNECTED = ['connected', 'launching', 'ready', 'failed', 'disconnected'];

export function hostLabel(hostId: string): string {
  return hostId === 'local' ? 'This computer' : hostId;
}

export class SessionsState {
  sessions = $state<SessionSummary[]>([]);
  /** Servers per session id. */
  servers = $state<Record<string, ServerView[]>>({});
  error = $state<AppError | null>(null);
  /** The server id whose URL was just copied (for a short "Copied" label). */
  copied = $state<string | null>(null);
  /** Tunnelbook's SLURM jobs per session id, on sessions whose host is a SLURM login node
   * (started here, by the CLI or on another computer). */
  slurmJobs = $state<Record<string, SlurmJobView[]>>({});
  /** The job being opened or stopped (its buttons wait). */
  busyJob = $state<string | null>(null);

  async refresh(): Promise<void> {
    try {
      this.sessions = await backend.listSessions();
      this.error = null;
    } catch (e) {
      this.error = e as AppError;
      return;
    }
    const servers: Record<string, ServerView[]> = {};
    const jobs: Record<string, SlurmJobView[]> = {};
    const live = this.sessions.filter((s) => CONNECTED.includes(s.status) && s.hostId !== 'local');
    const slurm = Promise.all(
      live.map(async (s) => {
        try {
          const found = await backend.listSlurmJobs(s.id);
          if (found) jobs[s.id] = found;
        } catch (e) {
          this.error = e as AppError;
        }
      }),
    );
    await Promise.all(
      this.sessions
        .filter((s) => CONNECTED.includes(s.status))
        .map(async (s) => {
          try {
            servers[s.id] = await backend.listServers(s.id);
          } catch (e) {
            // A session whose connection went away lists nothing; the others still show.
            servers[s.id] = [];
            if ((e as AppError).code !== 'unsupported') this.error = e as AppError;
          }
        }),
    );
    this.servers = servers;
    await slurm;
    this.slurmJobs = jobs;
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

  async close(id: string): Promise<void> {
    try {
      await backend.closeSession(id);
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
