// The Files view of a connected host: its remote folders over SFTP, transfers with progress.
import { filesBackend } from '../backend';
import type { AppError } from '../bindings/AppError';
import type { Entry } from '../bindings/Entry';
import type { FilesProgress } from '../bindings/FilesProgress';

/** `1.5 MB`-style sizes. */
export function size(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
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
    try {
      this.notice = await what();
      this.error = null;
    } catch (e) {
      this.error = e as AppError;
    }
    await this.refresh();
  }

  upload(): Promise<void> {
    return this.act(async () => {
      const n = await filesBackend.uploadPicked(this.sessionId!, this.path ?? '~');
      return n === 0 ? null : `Uploaded ${n} file${n === 1 ? '' : 's'}`;
    });
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
