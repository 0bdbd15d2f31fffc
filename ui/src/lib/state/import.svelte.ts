// The import of hosts from ~/.ssh/config (and PuTTY on Windows): the backend's preview (what
// maps, what is skipped and why, which names are taken), the user's picks and new names, and the
// save. The backend (core) validates; this class only keeps the choices.
import { backend } from '../backend';
import type { AppError } from '../bindings/AppError';
import type { HostEntry } from '../bindings/HostEntry';
import type { ImportCandidate } from '../bindings/ImportCandidate';
import type { ImportPreview } from '../bindings/ImportPreview';
import type { Profile } from '../bindings/Profile';

export interface ImportRow {
  /** Which preview (source) it came from. */
  source: number;
  candidate: ImportCandidate;
  /** Whether it is to be imported. */
  chosen: boolean;
  /** The name to save it under (the source's, or a new one for a taken name). */
  name: string;
}

/** `user@host:port via jump`, what a candidate maps to. */
export function destination(p: Profile): string {
  const user = p.user ? `${p.user}@` : '';
  const port = p.port !== 22 ? `:${p.port}` : '';
  return `${user}${p.host}${port}`;
}

export class ImportState {
  previews = $state<ImportPreview[]>([]);
  rows = $state<ImportRow[]>([]);
  loading = $state(false);
  saving = $state(false);
  error = $state<AppError | null>(null);
  /** Whether the preview was read at least once. */
  loaded = $state(false);

  /** Reads what could be imported; free names without problems are chosen. */
  async load(): Promise<void> {
    this.loading = true;
    try {
      this.previews = await backend.previewImport();
      this.rows = this.previews.flatMap((p, source) =>
        p.candidates.map((candidate) => ({
          source,
          candidate,
          chosen: !candidate.saved && candidate.problems.length === 0,
          name: candidate.profile.name,
        })),
      );
      this.error = null;
      this.loaded = true;
    } catch (e) {
      this.error = e as AppError;
    } finally {
      this.loading = false;
    }
  }

  /** Hosts there are to import at all. */
  get available(): number {
    return this.rows.length;
  }

  get chosen(): ImportRow[] {
    return this.rows.filter((r) => r.chosen);
  }

  /** Saves the chosen hosts under their names; returns the new host list, or null on refusal. */
  async save(): Promise<HostEntry[] | null> {
    const renamed = new Map(this.chosen.map((r) => [r.candidate.profile.name, r.name.trim()]));
    const profiles = this.chosen.map((r) => {
      const p = r.candidate.profile;
      // A jump to a host imported under another name follows it.
      const jump = p.jump !== null && renamed.has(p.jump) ? (renamed.get(p.jump) ?? p.jump) : p.jump;
      return { ...p, name: r.name.trim(), jump };
    });
    this.saving = true;
    try {
      const hosts = await backend.importHosts(profiles);
      this.error = null;
      this.rows = [];
      this.previews = [];
      return hosts;
    } catch (e) {
      this.error = e as AppError;
      return null;
    } finally {
      this.saving = false;
    }
  }
}
