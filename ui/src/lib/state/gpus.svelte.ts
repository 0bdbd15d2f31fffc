// The GPU picker's data, mirrored from `gpus` events while the picker is open: core's latest
// report (snapshot + free ranking), a short utilization history per choice, and the choice.
import { backend, type UnlistenFn } from '../backend';
import type { AppError } from '../bindings/AppError';
import type { Gpu } from '../bindings/Gpu';
import type { GpuChoice } from '../bindings/GpuChoice';
import type { GpuEvent } from '../bindings/GpuEvent';
import type { GpuProcess } from '../bindings/GpuProcess';
import type { GpuReport } from '../bindings/GpuReport';

/** Samples kept per GPU for the sparkline. */
export const HISTORY = 30;
/** The "CPU only" choice. */
export const CPU_ONLY = 'cpu';

/** One card of the picker: a choice of core's ranking with its GPU's readings and processes. */
export interface GpuCard {
  choice: GpuChoice;
  /** The (parent) GPU, for temperature and power. */
  gpu: Gpu | null;
  processes: GpuProcess[];
  /** `GPU 0`, or `GPU 0 MIG 3g.40gb #1` for a MIG instance. */
  label: string;
}

export function choiceLabel(c: GpuChoice): string {
  if (!c.mig) return `GPU ${c.gpuIndex}`;
  const device = c.mig.deviceIndex !== null ? ` #${c.mig.deviceIndex}` : '';
  return `GPU ${c.gpuIndex} MIG ${c.mig.profile ?? '?'}${device}`;
}

export class GpusState {
  report = $state<GpuReport | null>(null);
  /** Utilization samples per choice (`cudaVisibleDevices`). */
  history = $state<Record<string, number[]>>({});
  /** A choice's `cudaVisibleDevices`, `CPU_ONLY`, or null before anything is known. */
  selected = $state<string | null>(null);
  error = $state<AppError | null>(null);
  /** The session being watched; null when the picker is closed. */
  sessionId = $state<string | null>(null);
  /** When the report on screen was read (ms since the epoch); it is stale while `error` is set. */
  readAt = $state<number | null>(null);
  /** The report on screen is the last known state: the latest refresh failed (e.g. a hung
   * nvidia-smi). */
  stale = $derived(this.report !== null && this.error !== null);
  #unlisten: UnlistenFn | null = null;
  /** The session whose report, history and choice are held (kept while the picker is closed). */
  #shownFor: string | null = null;

  /** The cards in nvidia-smi's order (GPU index, then MIG device); core's pick is marked, not
   * moved. */
  cards = $derived<GpuCard[]>(
    [...(this.report?.choices ?? [])]
      .sort((a, b) => a.gpuIndex - b.gpuIndex || (a.mig?.deviceIndex ?? 0) - (b.mig?.deviceIndex ?? 0))
      .map((choice) => {
      const snapshot = this.report?.snapshot;
      const own = (p: GpuProcess) =>
        p.gpuUuid === choice.cudaVisibleDevices || (choice.mig !== null && p.gpuUuid === choice.gpuUuid);
      return {
        choice,
        gpu: snapshot?.gpus.find((g) => g.uuid === choice.gpuUuid) ?? null,
        processes: snapshot?.processes.filter(own) ?? [],
        label: choiceLabel(choice),
      };
      }),
  );

  /** Opens the picker on `sessionId`: the backend polls its host and emits `gpus` events. */
  async watch(sessionId: string): Promise<void> {
    if (this.sessionId !== sessionId) await this.stop();
    // The picker opened again on the same session keeps its report and the user's choice.
    if (this.#shownFor !== sessionId) {
      this.report = null;
      this.history = {};
      this.selected = null;
    }
    this.#shownFor = sessionId;
    this.sessionId = sessionId;
    this.#unlisten ??= await backend.onGpus((event) => this.receive(event));
    try {
      await backend.watchGpus(sessionId);
      this.error = null;
    } catch (e) {
      this.error = e as AppError;
    }
  }

  /** Closes the picker: the backend stops polling. */
  async stop(): Promise<void> {
    const id = this.sessionId;
    this.sessionId = null;
    this.#unlisten?.();
    this.#unlisten = null;
    if (id === null) return;
    try {
      await backend.unwatchGpus(id);
    } catch {
      // The session is gone already, and its polling with it.
    }
  }

  receive(event: GpuEvent): void {
    if (event.sessionId !== this.sessionId) return;
    if (event.report) {
      this.apply(event.report);
      this.error = null;
    } else {
      // Polling goes on; the last good report stays on screen under the error.
      this.error = event.error;
    }
  }

  apply(report: GpuReport): void {
    this.report = report;
    this.readAt = Date.now();
    const history: Record<string, number[]> = {};
    for (const c of report.choices) {
      const id = c.cudaVisibleDevices;
      history[id] = [...(this.history[id] ?? []), c.utilizationGpu ?? 0].slice(-HISTORY);
    }
    this.history = history;
    const stillThere =
      this.selected === CPU_ONLY || report.choices.some((c) => c.cudaVisibleDevices === this.selected);
    if (!stillThere) this.selected = report.recommended ?? CPU_ONLY;
  }

  choose(choice: string): void {
    // A GPU nvidia-smi cannot read is never chosen.
    const c = this.report?.choices.find((x) => x.cudaVisibleDevices === choice);
    if (c && !c.usable) return;
    this.selected = choice;
  }
}
