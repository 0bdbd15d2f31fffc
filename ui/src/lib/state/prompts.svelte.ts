// Questions from the backend (host key, password, passphrase, OTP), answered one at a time.
import { backend, type UnlistenFn } from '../backend';
import type { AppError } from '../bindings/AppError';
import type { PromptAnswer } from '../bindings/PromptAnswer';
import type { PromptEvent } from '../bindings/PromptEvent';

export class PromptsState {
  queue = $state<PromptEvent[]>([]);
  error = $state<AppError | null>(null);
  #unlisten: UnlistenFn | null = null;

  get current(): PromptEvent | null {
    return this.queue[0] ?? null;
  }

  async start(): Promise<void> {
    this.#unlisten ??= await backend.onPrompt((event) => {
      this.queue = [...this.queue, event];
    });
  }

  stop(): void {
    this.#unlisten?.();
    this.#unlisten = null;
  }

  async answer(answer: PromptAnswer): Promise<void> {
    const current = this.current;
    if (!current) return;
    this.queue = this.queue.slice(1);
    try {
      await backend.answerPrompt(current.id, answer);
      this.error = null;
    } catch (e) {
      this.error = e as AppError;
    }
  }
}
