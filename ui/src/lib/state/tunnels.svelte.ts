// One host's forwards, mirrored from the backend (which owns the rules and the running tunnels).
import { backend } from '../backend';
import type { AppError } from '../bindings/AppError';
import type { ForwardRule } from '../bindings/ForwardRule';
import type { ForwardSpec } from '../bindings/ForwardSpec';
import type { TunnelsView } from '../bindings/TunnelsView';

export type ForwardKind = ForwardSpec['kind'];

export const KIND_LABELS: Record<ForwardKind, string> = {
  local: 'Local (C2S)',
  remote: 'Remote (S2C)',
  dynamic: 'SOCKS',
};

/** What the "Add rule" form edits. */
export interface RuleDraft {
  kind: ForwardKind;
  bind: string;
  port: number;
  host: string;
  hostPort: number;
}

export function blankDraft(): RuleDraft {
  return { kind: 'local', bind: '127.0.0.1', port: 0, host: '127.0.0.1', hostPort: 8080 };
}

export function specOf(d: RuleDraft): ForwardSpec {
  if (d.kind === 'dynamic') return { kind: 'dynamic', bind: d.bind, port: d.port };
  return { kind: d.kind, bind: d.bind, port: d.port, host: d.host, host_port: d.hostPort };
}

/** `127.0.0.1:8888 → localhost:8888` style summary of a spec. */
export function describe(spec: ForwardSpec): { listen: string; target: string } {
  const listen = `${spec.kind === 'remote' ? 'server ' : ''}${spec.bind}:${spec.port === 0 ? 'auto' : spec.port}`;
  if (spec.kind === 'dynamic') return { listen, target: 'SOCKS5 via the server' };
  return { listen, target: `${spec.kind === 'remote' ? 'here ' : ''}${spec.host}:${spec.host_port}` };
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export class TunnelsState {
  hostId = $state<string | null>(null);
  view = $state<TunnelsView | null>(null);
  error = $state<AppError | null>(null);
  #timer: ReturnType<typeof setInterval> | null = null;

  async #run(action: () => Promise<TunnelsView>): Promise<boolean> {
    try {
      this.view = await action();
      this.error = null;
      return true;
    } catch (e) {
      this.error = e as AppError;
      return false;
    }
  }

  async load(hostId: string): Promise<void> {
    this.hostId = hostId;
    await this.#run(() => backend.listForwards(hostId));
  }

  async refresh(): Promise<void> {
    if (this.hostId) await this.#run(() => backend.listForwards(this.hostId as string));
  }

  /** Refreshes the live counters every `ms` until `stopPolling`. */
  poll(ms = 2000): void {
    this.stopPolling();
    this.#timer = setInterval(() => void this.refresh(), ms);
  }

  stopPolling(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  async add(draft: RuleDraft): Promise<boolean> {
    const host = this.hostId;
    if (!host) return false;
    const rule: ForwardRule = { enabled: true, ...specOf(draft) };
    const ok = await this.#run(() => backend.saveForward(host, null, rule));
    // A rule that was saved but could not start: show the saved list with the error.
    if (!ok) await this.#keepError(() => backend.listForwards(host));
    return ok;
  }

  async toggle(index: number, enabled: boolean): Promise<void> {
    const host = this.hostId;
    if (!host) return;
    if (!(await this.#run(() => backend.setForwardEnabled(host, index, enabled)))) {
      await this.#keepError(() => backend.listForwards(host));
    }
  }

  async remove(index: number): Promise<void> {
    const host = this.hostId;
    if (host) await this.#run(() => backend.deleteForward(host, index));
  }

  async startAll(): Promise<void> {
    const host = this.hostId;
    if (host) await this.#run(() => backend.startForwards(host));
  }

  async startOneOff(spec: ForwardSpec): Promise<boolean> {
    const host = this.hostId;
    return host ? this.#run(() => backend.startOneOff(host, spec)) : false;
  }

  async stop(id: string): Promise<void> {
    await this.#run(() => backend.stopForward(id));
  }

  async open(url: string): Promise<void> {
    try {
      await backend.openInBrowser(url);
    } catch (e) {
      this.error = e as AppError;
    }
  }

  async #keepError(reload: () => Promise<TunnelsView>): Promise<void> {
    const error = this.error;
    await this.#run(reload);
    this.error = error;
  }
}
