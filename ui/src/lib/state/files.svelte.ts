// The Files view of a connected host: its remote folders over SFTP, transfers with progress.
import { filesBackend } from '../backend';
import type { AppError } from '../bindings/AppError';
import type { BroughtBack } from '../bindings/BroughtBack';
import type { Entry } from '../bindings/Entry';
import type { FilesProgress } from '../bindings/FilesProgress';
import type { ProjectEvent } from '../bindings/ProjectEvent';
import type { ProjectSummary } from '../bindings/ProjectSummary';
import type { TransferProgress } from '../bindings/TransferProgress';

/** `1.5 MB`-style sizes. */
export function size(bytes: number): string {
  if (bytes < 1000) return `${Math.round(bytes)} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = bytes / 1000;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i += 1;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

export class FilesState {
  sessionId = $state<string | null>(null);
  path = $state<string | null>(null);
  parent = $state<string | null>(null);
  entries = $state<Entry[]>([]);
  error = $state<AppError | null>(null);
  busy = $state(false);
  /** The latest transfer's progress (kept after it ends, to show how it went). */
  progress = $state<FilesProgress | null>(null);
  /** The entry whose deletion waits for a confirmation. */
  confirmDelete = $state<Entry | null>(null);
  /** What the last action did, in words. */
  notice = $state<string | null>(null);

  async open(sessionId: string, path: string | null = null): Promise<void> {
    this.sessionId = sessionId;
    this.busy = true;
    try {
      const listing = await filesBackend.list(sessionId, path);
      this.path = listing.path;
      this.parent = listing.parent;
      this.entries = listing.entries;
      this.error = null;
    } catch (e) {
      this.error = e as AppError;
    } finally {
      this.busy = false;
    }
  }

  refresh(): Promise<void> {
    return this.sessionId ? this.open(this.sessionId, this.path) : Promise.resolve();
  }

  onProgress(p: FilesProgress): void {
    if (p.sessionId === this.sessionId) this.progress = p;
  }

  private async act(what: () => Promise<string | null>): Promise<void> {
    if (!this.sessionId) return;
    let notice: string | null = null;
    let error: AppError | null = null;
    try {
      notice = await what();
    } catch (e) {
      error = e as AppError;
    }
    // The listing shows what the action did (or did not); its error is the one to show.
    await this.refresh();
    this.notice = notice;
    if (error) this.error = error;
  }

  upload(): Promise<void> {
    return this.act(async () => {
      const n = await filesBackend.uploadPicked(this.sessionId!, this.path ?? '~');
      return n === 0 ? null : `Uploaded ${n} file${n === 1 ? '' : 's'}`;
    });
  }

  /** The local copies dragged out of the window: dropped back on it, they are not uploaded. */
  #draggedOut = new Set<string>();

  /** Files dropped on the window: uploaded into the folder shown, except this view's own
   * dragged-out copies (a drag out that ended back on the window). */
  dropped(paths: string[]): Promise<void> {
    const fresh = paths.filter((p) => !this.#draggedOut.has(p));
    return fresh.length > 0 ? this.uploadPaths(fresh) : Promise.resolve();
  }

  uploadPaths(paths: string[]): Promise<void> {
    return this.act(async () => {
      const n = await filesBackend.uploadPaths(this.sessionId!, this.path ?? '~', paths);
      return `Uploaded ${n} file${n === 1 ? '' : 's'}`;
    });
  }

  download(entry: Entry): Promise<void> {
    return this.act(async () => {
      const to = await filesBackend.download(this.sessionId!, entry.path);
      return to ? `Downloaded ${entry.name} to ${to}` : null;
    });
  }

  /** A row dragged out of the window (to the desktop, a file manager, another app): the backend
   * downloads it (progress: direction `drag`), then starts the native drag under the still-held
   * mouse button. Let go before it was ready: it is ready now, and the next drag starts at once. */
  async dragOut(entry: Entry): Promise<void> {
    if (!this.sessionId) return;
    this.notice = null;
    try {
      const r = await filesBackend.dragOut(this.sessionId, entry.path);
      this.#draggedOut.add(r.local);
      this.error = null;
      // The file is prepared and the drag handed to the system (or it waits for the next drag,
      // which the notice says): "Preparing … ready to drop" has nothing left to say, and must
      // not stay on after the drop.
      if (this.progress?.direction === 'drag' && !this.progress.error) this.progress = null;
      this.notice = r.started ? null : `${r.name} is ready: drag it again and drop it where it should go`;
    } catch (e) {
      this.error = e as AppError;
    }
  }

  rename(entry: Entry, to: string): Promise<void> {
    return this.act(async () => {
      await filesBackend.rename(this.sessionId!, entry.path, to);
      return `Renamed ${entry.name} to ${to}`;
    });
  }

  makeFolder(name: string): Promise<void> {
    return this.act(async () => {
      await filesBackend.makeFolder(this.sessionId!, `${this.path}/${name}`);
      return `Made folder ${name}`;
    });
  }

  async remove(entry: Entry): Promise<void> {
    this.confirmDelete = null;
    await this.act(async () => {
      await filesBackend.remove(this.sessionId!, entry.path);
      return `Deleted ${entry.name}`;
    });
  }
}

/** One brought-back file, in words. */
function logLine(f: BroughtBack): string {
  return f.beside
    ? `${f.rel} changed here since it went up: the host's version is saved beside it as ${f.localPath}`
    : `${f.rel} came back`;
}

/** A local notebook opened on the host ("Open notebook…" or an .ipynb dropped on the window). */
export class ProjectState {
  id = $state<string | null>(null);
  notebook = $state<string | null>(null);
  phase = $state<'idle' | 'uploading' | 'launching' | 'syncing' | 'stopped' | 'failed'>('idle');
  upload = $state<TransferProgress | null>(null);
  leftOut = $state<string[]>([]);
  message = $state<string | null>(null);
  remoteDir = $state<string | null>(null);
  /** What came back, newest first, in words. */
  log = $state<string[]>([]);
  error = $state<AppError | null>(null);
  /** A notebook the desktop asked to open ("Open with Tunnelbook"), waiting for a host. */
  requested = $state<string | null>(null);
  /** Events that came while `openLocalNotebook` was still answering: the backend starts the
   * project before its id reaches us, so a quick upload can finish first. Replayed once the id is known. */
  #early: ProjectEvent[] | null = null;

  /** Opens the requested notebook on the session's host. */
  async openRequested(sessionId: string): Promise<void> {
    const path = this.requested;
    this.requested = null;
    if (path) await this.open(sessionId, path);
  }

  async pickAndOpen(sessionId: string): Promise<void> {
    try {
      const path = await filesBackend.pickNotebook();
      if (path) await this.open(sessionId, path);
    } catch (e) {
      this.error = e as AppError;
    }
  }

  async open(sessionId: string, path: string): Promise<void> {
    this.notebook = path;
    this.phase = 'uploading';
    this.log = [];
    this.upload = null;
    this.leftOut = [];
    this.error = null;
    this.id = null;
    this.#early = [];
    try {
      this.id = await filesBackend.openLocalNotebook(sessionId, path, null, null);
      const early = this.#early;
      this.#early = null;
      for (const e of early) this.onEvent(e);
    } catch (e) {
      this.#early = null;
      this.phase = 'failed';
      this.error = e as AppError;
    }
  }

  /** Shows project `id` (or the newest one) as the backend keeps it: after the page was
   * reloaded, or when the tray opened a notebook. Nothing to show leaves the state as it is. */
  async restore(id?: string): Promise<void> {
    let list: ProjectSummary[];
    try {
      list = await filesBackend.projects();
    } catch {
      return;
    }
    const p = id ? list.find((x) => x.id === id) : list[list.length - 1];
    if (!p) return;
    this.#early = null;
    this.id = p.id;
    this.notebook = p.notebook;
    this.phase = p.phase;
    this.upload = p.upload;
    this.leftOut = p.leftOut;
    this.message = p.message;
    this.remoteDir = p.remoteDir;
    this.log = p.log.map(logLine);
    this.error = p.error ? { code: 'jupyter', message: p.error } : null;
  }

  onEvent(e: ProjectEvent): void {
    if (this.#early) {
      this.#early.push(e);
      return;
    }
    // A project synced when the app last ran resumed on connect: shown unless another one is
    // being opened or synced now.
    if (e.type === 'resumed' && e.projectId !== this.id && !['uploading', 'launching', 'syncing'].includes(this.phase)) {
      this.id = e.projectId;
      this.notebook = e.notebook;
      this.phase = 'syncing';
      this.remoteDir = e.remoteDir;
      this.upload = null;
      this.leftOut = [];
      this.message = null;
      this.log = [];
      this.error = null;
      return;
    }
    if (e.projectId !== this.id) return;
    switch (e.type) {
      case 'uploading':
        this.upload = e.progress;
        this.leftOut = e.leftOut;
        break;
      case 'launching':
        this.phase = 'launching';
        this.message = e.message;
        break;
      case 'syncing':
        this.phase = 'syncing';
        this.remoteDir = e.remoteDir;
        this.message = null;
        break;
      case 'resumed':
        this.phase = 'syncing';
        this.remoteDir = e.remoteDir;
        break;
      case 'broughtBack':
        for (const f of e.files) this.log = [logLine(f), ...this.log].slice(0, 20);
        break;
      case 'stopped':
        this.phase = 'stopped';
        break;
      case 'failed':
        this.phase = 'failed';
        this.error = { code: 'jupyter', message: e.error };
        break;
    }
  }

  async bringBackNow(): Promise<void> {
    try {
      if (this.id) await filesBackend.bringBackNow(this.id);
    } catch (e) {
      this.error = e as AppError;
    }
  }

  async stop(): Promise<void> {
    try {
      if (this.id) await filesBackend.stopSyncing(this.id);
    } catch (e) {
      this.error = e as AppError;
    }
  }
}
