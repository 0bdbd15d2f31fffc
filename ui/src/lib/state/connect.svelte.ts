// One session's progress, mirrored from `session` events.
import { backend, type UnlistenFn } from '../backend';
import type { AppError } from '../bindings/AppError';
import type { ExecOutput } from '../bindings/ExecOutput';
import type { SessionEvent } from '../bindings/SessionEvent';
import type { SessionStep } from '../bindings/SessionStep';
import type { StepState } from '../bindings/StepState';

export const STEP_LABELS: Record<SessionStep, string> = {
  connect: 'Connecting',
  hostKey: 'Checking the host key',
  authenticate: 'Authenticating',
  readGpus: 'Reading GPUs',
  findEnvironments: 'Finding environments',
  startJupyter: 'Starting JupyterLab',
  openTunnel: 'Opening the tunnel',
  ready: 'Ready',
};

export const STEPS = Object.keys(STEP_LABELS) as SessionStep[];

export interface StepView {
  step: SessionStep;
  label: string;
  state: StepState | 'pending';
  message: string;
  error: AppError | null;
}

export type Phase = 'idle' | 'running' | 'connected' | 'ready' | 'failed' | 'cancelled';

function freshSteps(): StepView[] {
  return STEPS.map((step) => ({ step, label: STEP_LABELS[step], state: 'pending', message: '', error: null }));
}

export class ConnectState {
  hostId = $state<string | null>(null);
  sessionId = $state<string | null>(null);
  steps = $state<StepView[]>(freshSteps());
  log = $state<string[]>([]);
  phase = $state<Phase>('idle');
  error = $state<AppError | null>(null);
  output = $state<ExecOutput | null>(null);
  running = $state(false);
  // Events that arrive before start_session has returned the id.
  #early: SessionEvent[] = [];
  #unlisten: UnlistenFn | null = null;

  async listen(): Promise<void> {
    this.#unlisten ??= await backend.onSession((event) => this.#receive(event));
  }

  stop(): void {
    this.#unlisten?.();
    this.#unlisten = null;
  }

  async start(hostId: string): Promise<void> {
    await this.listen();
    this.hostId = hostId;
    this.sessionId = null;
    this.steps = freshSteps();
    this.log = [];
    this.error = null;
    this.output = null;
    this.phase = 'running';
    this.#early = [];
    try {
      this.sessionId = await backend.startSession(hostId);
      const early = this.#early;
      this.#early = [];
      for (const event of early) this.#receive(event);
    } catch (e) {
      this.#fail(e as AppError, 'connect');
    }
  }

  async cancel(): Promise<void> {
    const id = this.sessionId;
    this.phase = 'cancelled';
    this.log = [...this.log, 'cancelled'];
    if (id) {
      try {
        await backend.cancelSession(id);
      } catch (e) {
        this.error = e as AppError;
      }
    }
  }

  async run(command: string): Promise<void> {
    if (!this.sessionId) return;
    this.running = true;
    try {
      this.output = await backend.runCommand(this.sessionId, command);
      this.error = null;
    } catch (e) {
      this.error = e as AppError;
    } finally {
      this.running = false;
    }
  }

  #receive(event: SessionEvent): void {
    if (this.sessionId === null) {
      if (this.phase === 'running') this.#early.push(event);
      return;
    }
    if (event.sessionId !== this.sessionId || this.phase === 'cancelled') return;
    this.steps = this.steps.map((s) =>
      s.step === event.step ? { ...s, state: event.state, message: event.message, error: event.error } : s,
    );
    this.log = [...this.log, `${STEP_LABELS[event.step]}: ${event.message}`];
    if (event.state === 'failed') {
      this.phase = 'failed';
      this.error = event.error;
    } else if (event.step === 'ready' && event.state === 'done') {
      this.phase = 'ready';
    } else if (event.step === 'openTunnel' && event.state !== 'running' && this.phase === 'running') {
      // Without core's session module the flow ends after SSH; see src-tauri/src/adapter.rs.
      this.phase = 'connected';
    }
  }

  #fail(error: AppError, step: SessionStep): void {
    this.phase = 'failed';
    this.error = error;
    this.steps = this.steps.map((s) => (s.step === step ? { ...s, state: 'failed', message: error.message, error } : s));
    this.log = [...this.log, `${STEP_LABELS[step]}: ${error.message}`];
  }
}
