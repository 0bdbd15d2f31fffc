// The GPU picker's data: the latest snapshot, a short utilization history per GPU, the choice.
import { backend, type UnlistenFn } from '../backend';
import type { AppError } from '../bindings/AppError';
import type { GpuSnapshotView } from '../bindings/GpuSnapshotView';

/** Samples kept per GPU for the sparkline. */
export const HISTORY = 30;
/** The "CPU only" choice. */
export const CPU_ONLY = 'cpu';

export class GpusState {
  snapshot = $state<GpuSnapshotView | null>(null);
  history = $state<Record<string, number[]>>({});
  /** A GPU/MIG UUID, `CPU_ONLY`, or null before anything is known. */
  selected = $state<string | null>(null);
  error = $state<AppError | null>(null);
  #unlisten: UnlistenFn | null = null;

  async watch(sessionId: string): Promise<void> {
    this.#unlisten ??= await backend.onGpus((snapshot) => {
      if (snapshot.sessionId === sessionId) this.apply(snapshot);
    });
    try {
      this.apply(await backend.gpuSnapshot(sessionId));
      this.error = null;
    } catch (e) {
      this.error = e as AppError;
    }
  }

  stop(): void {
    this.#unlisten?.();
    this.#unlisten = null;
  }

  apply(snapshot: GpuSnapshotView): void {
    this.snapshot = snapshot;
    const history: Record<string, number[]> = {};
    for (const gpu of snapshot.gpus) {
      history[gpu.uuid] = [...(this.history[gpu.uuid] ?? []), gpu.utilizationPct].slice(-HISTORY);
    }
    this.history = history;
    const stillThere = this.selected === CPU_ONLY || snapshot.gpus.some((g) => g.uuid === this.selected);
    if (!stillThere) this.selected = snapshot.recommended ?? CPU_ONLY;
  }

  choose(choice: string): void {
    this.selected = choice;
  }
}
