// The GPU step on a SLURM login node (issue 20): the cluster view (a hint), the request form
// checked before it is sent, and the launch's steps from `slurm` events: Checking → Queued
// (reason, expected start, position, Cancel) → Starting → Ready; then time left, warnings, and
// the job's end ("time limit reached").
import { backend, type UnlistenFn } from '../backend';
import type { AppError } from '../bindings/AppError';
import type { SlurmEvent } from '../bindings/SlurmEvent';
import type { SlurmLaunchStep } from '../bindings/SlurmLaunchStep';
import type { SlurmRequestForm } from '../bindings/SlurmRequestForm';
import type { SlurmView } from '../bindings/SlurmView';

/** Where the launch is. */
export type SlurmPhase = 'form' | 'checking' | 'queued' | 'starting' | 'ready' | 'failed' | 'ended' | 'stopped';

/** The form as edited: strings as typed, the count as a number. */
export interface SlurmForm {
  partition: string;
  gpuType: string;
  gpuCount: number;
  time: string;
  account: string;
}

/** Seconds as `H:MM:SS`. */
export function clock(secs: number): string {
  const h = Math.floor(secs / 3600);
  const m = Math.floor((secs % 3600) / 60);
  const s = secs % 60;
  return `${h}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}`;
}

/** The form from the host's saved defaults (`gpus` is `[TYPE:]N`). */
export function formFromDefaults(view: SlurmView): SlurmForm {
  const d = view.defaults;
  let gpuType = '';
  let gpuCount = 1;
  if (d.gpus) {
    const [a, b] = d.gpus.includes(':') ? d.gpus.split(':', 2) : /^\d+$/.test(d.gpus) ? ['', d.gpus] : [d.gpus, '1'];
    gpuType = a;
    gpuCount = Number(b) || 1;
  }
  const partition = d.partition ?? view.partitions.find((p) => p.default)?.name ?? view.partitions[0]?.name ?? '';
  return { partition, gpuType, gpuCount, time: d.time ?? '', account: d.account ?? '' };
}

export class SlurmState {
  /** The cluster; null: not a SLURM host (or not read yet). */
  view = $state<SlurmView | null>(null);
  sessionId = $state<string | null>(null);
  form = $state<SlurmForm>({ partition: '', gpuType: '', gpuCount: 1, time: '', account: '' });
  /** Messages at the form's fields (`partition`, `time`, `gpuType`, `gpuCount`). */
  fieldErrors = $state<Record<string, string>>({});
  /** A failure that is not about one field. */
  error = $state<AppError | null>(null);
  /** "expected start ≈ …" from the last check. */
  expectedStart = $state<string | null>(null);
  busy = $state(false);
  phase = $state<SlurmPhase>('form');
  /** The latest launch step. */
  step = $state<SlurmLaunchStep | null>(null);
  jobId = $state<string | null>(null);
  timeLeftSecs = $state<number | null>(null);
  warning = $state<string | null>(null);
  /** Why the job ended by itself. */
  ended = $state<string | null>(null);
  /** The request last sent, for "Relaunch with the same settings". */
  lastRequest = $state<SlurmForm | null>(null);
  #unlisten: UnlistenFn | null = null;

  /** GPU types of the chosen partition. */
  types = $derived(this.view?.pools.filter((p) => p.partition === this.form.partition) ?? []);

  /** Reads session `sessionId`'s cluster; returns whether its host is a SLURM login node. */
  async load(sessionId: string): Promise<boolean> {
    this.#unlisten ??= await backend.onSlurm((e) => this.receive(e));
    const fresh = this.sessionId !== sessionId;
    this.sessionId = sessionId;
    try {
      const view = await backend.slurmCluster(sessionId);
      this.view = view;
      if (view && (fresh || !this.form.partition)) this.form = formFromDefaults(view);
      this.error = null;
      return view !== null;
    } catch (e) {
      this.error = e as AppError;
      return false;
    }
  }

  /** Reads the cluster view again, keeping the form. */
  async refresh(): Promise<void> {
    if (!this.sessionId) return;
    try {
      this.view = (await backend.slurmCluster(this.sessionId)) ?? this.view;
    } catch {
      // The last view stays; the launch's steps say what matters.
    }
  }

  #request(form: SlurmForm = this.form): SlurmRequestForm {
    const opt = (s: string) => (s.trim() === '' ? null : s.trim());
    return {
      partition: opt(form.partition),
      gpuType: opt(form.gpuType),
      gpuCount: form.gpuCount,
      time: opt(form.time),
      account: opt(form.account),
    };
  }

  #failed(e: AppError) {
    if (e.code === 'validation' && e.fields?.length) {
      this.fieldErrors = Object.fromEntries(e.fields.map((f) => [f.field, f.message]));
      this.error = null;
    } else {
      this.fieldErrors = {};
      this.error = e;
    }
  }

  /** Checks the form with the cluster before anything is queued. */
  async check(): Promise<boolean> {
    if (!this.sessionId) return false;
    this.busy = true;
    this.fieldErrors = {};
    this.error = null;
    try {
      this.expectedStart = await backend.checkSlurmRequest(this.sessionId, this.#request());
      return true;
    } catch (e) {
      this.expectedStart = null;
      this.#failed(e as AppError);
      return false;
    } finally {
      this.busy = false;
    }
  }

  /** Sends the request (checked again by the backend); progress arrives as events. */
  async launch(form: SlurmForm = this.form): Promise<void> {
    if (!this.sessionId) return;
    this.form = { ...form };
    this.fieldErrors = {};
    this.error = null;
    this.ended = null;
    this.warning = null;
    this.timeLeftSecs = null;
    this.jobId = null;
    this.step = null;
    this.phase = 'checking';
    this.lastRequest = { ...form };
    try {
      await backend.launchSlurmNotebook(this.sessionId, this.#request(form), null);
    } catch (e) {
      this.phase = 'form';
      this.#failed(e as AppError);
    }
  }

  /** "Relaunch with the same settings". */
  relaunch(): Promise<void> {
    return this.launch(this.lastRequest ?? this.form);
  }

  /** Cancel (queued) or Stop (ready): the job ends, confirmed. Returns its final state. */
  async stop(): Promise<string | null> {
    if (!this.sessionId) return null;
    this.busy = true;
    try {
      const state = await backend.stopSlurmNotebook(this.sessionId);
      this.phase = 'stopped';
      void this.refresh();
      this.ended = state ? `Job ${this.jobId ?? ''} ended: ${state}` : 'Cancelled before anything was queued';
      return state;
    } catch (e) {
      this.error = e as AppError;
      return null;
    } finally {
      this.busy = false;
    }
  }

  receive(e: SlurmEvent): void {
    if (e.sessionId !== this.sessionId) return;
    if (e.step) {
      this.step = e.step;
      switch (e.step.step) {
        case 'checking':
          this.phase = 'checking';
          break;
        case 'checked':
          this.expectedStart = e.step.expectedStart;
          break;
        case 'submitted':
          this.jobId = e.step.jobId;
          this.phase = 'queued';
          // Your jobs now list this one.
          void this.refresh();
          break;
        case 'queued':
          this.jobId = e.step.jobId;
          this.phase = 'queued';
          if (e.step.expectedStart) this.expectedStart = e.step.expectedStart;
          break;
        case 'starting':
          this.phase = 'starting';
          break;
        case 'ready':
          this.phase = 'ready';
          this.timeLeftSecs = e.step.timeLeftSecs;
          break;
      }
    }
    if (e.timeLeftSecs !== null) this.timeLeftSecs = e.timeLeftSecs;
    if (e.warning) this.warning = e.warning;
    if (e.ended) {
      this.ended = e.ended;
      this.phase = 'ended';
    }
    if (e.error) {
      this.phase = e.error.code === 'validation' ? 'form' : 'failed';
      this.#failed(e.error);
    }
  }

  close(): void {
    this.#unlisten?.();
    this.#unlisten = null;
  }
}
