import { beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('../backend', () => import('../test/mock-backend'));
import { backend, emit, resetBackend } from '../test/mock-backend';
import { ConnectState } from './connect.svelte';
import { CPU_ONLY, GpusState, HISTORY } from './gpus.svelte';
import { blankProfile, HostsState } from './hosts.svelte';
import { PromptsState } from './prompts.svelte';
import type { GpuView } from '../bindings/GpuView';
import type { SessionEvent } from '../bindings/SessionEvent';

beforeEach(() => resetBackend());

describe('HostsState', () => {
  it('turns a validation error into per-field messages', async () => {
    backend.saveHost.mockRejectedValueOnce({
      code: 'validation',
      message: '2 fields need attention',
      fields: [
        { field: 'name', message: 'Give the host a name.' },
        { field: 'host', message: 'Enter a host name or address.' },
      ],
    });
    const hosts = new HostsState();
    const errors = await hosts.save(blankProfile(), null);
    expect(errors).toEqual({ name: 'Give the host a name.', host: 'Enter a host name or address.' });
    expect(hosts.error).toBeNull();
  });

  it('keeps the list the backend returns', async () => {
    const list = [{ id: 'local', kind: 'local', label: 'This computer', profile: null }];
    backend.saveHost.mockResolvedValueOnce(list);
    const hosts = new HostsState();
    expect(await hosts.save({ ...blankProfile(), name: 'a', host: 'b' }, null)).toBeNull();
    expect(hosts.hosts).toEqual(list);
  });
});

const ev = (step: SessionEvent['step'], state: SessionEvent['state'], extra: Partial<SessionEvent> = {}): SessionEvent => ({
  sessionId: 's1',
  step,
  state,
  message: `${step} ${state}`,
  error: null,
  ...extra,
});

describe('ConnectState', () => {
  it('replays events that arrive before the session id', async () => {
    const connect = new ConnectState();
    backend.startSession.mockImplementationOnce(async () => {
      emit('session', ev('connect', 'running'));
      return 's1';
    });
    await connect.start('gpu-box');
    expect(connect.steps[0]).toMatchObject({ step: 'connect', state: 'running' });
    emit('session', ev('connect', 'done'));
    expect(connect.steps[0].state).toBe('done');
    expect(connect.log).toHaveLength(2);
  });

  it('shows an error at its step', async () => {
    const connect = new ConnectState();
    backend.startSession.mockResolvedValueOnce('s1');
    await connect.start('gpu-box');
    const error = { code: 'hostKeyChanged' as const, message: 'HOST KEY CHANGED' };
    emit('session', ev('hostKey', 'failed', { error }));
    expect(connect.phase).toBe('failed');
    expect(connect.steps.find((s) => s.step === 'hostKey')).toMatchObject({ state: 'failed', error });
    emit('session', ev('connect', 'running', { sessionId: 'other' }));
    expect(connect.steps[0].state).toBe('pending');
  });

  it('is connected once the SSH-only flow ends, and cancels', async () => {
    const connect = new ConnectState();
    backend.startSession.mockResolvedValueOnce('s1');
    await connect.start('local');
    emit('session', ev('openTunnel', 'skipped'));
    expect(connect.phase).toBe('connected');
    await connect.cancel();
    expect(backend.cancelSession).toHaveBeenCalledWith('s1');
    expect(connect.phase).toBe('cancelled');
  });

  it('reports a failed start at the connect step', async () => {
    const connect = new ConnectState();
    backend.startSession.mockRejectedValueOnce({ code: 'notFound', message: 'no saved host named "x"' });
    await connect.start('x');
    expect(connect.phase).toBe('failed');
    expect(connect.steps[0]).toMatchObject({ state: 'failed', message: 'no saved host named "x"' });
  });
});

const gpu = (index: number, free: boolean, util: number): GpuView => ({
  index,
  uuid: `GPU-${index}`,
  name: 'NVIDIA A100',
  memoryUsedMib: free ? 0 : 30000,
  memoryTotalMib: 40960,
  utilizationPct: util,
  temperatureC: 40,
  powerW: 60,
  powerLimitW: 400,
  free,
  processes: [],
});

describe('GpusState', () => {
  it('preselects the recommended GPU and keeps a short history', () => {
    const gpus = new GpusState();
    for (let i = 0; i < HISTORY + 5; i++) {
      gpus.apply({ sessionId: 's1', gpus: [gpu(0, false, i), gpu(1, true, 0)], reason: null, recommended: 'GPU-1' });
    }
    expect(gpus.selected).toBe('GPU-1');
    expect(gpus.history['GPU-0']).toHaveLength(HISTORY);
    expect(gpus.history['GPU-0'].at(-1)).toBe(HISTORY + 4);
    gpus.choose('GPU-0');
    gpus.apply({ sessionId: 's1', gpus: [gpu(0, false, 1), gpu(1, true, 0)], reason: null, recommended: 'GPU-1' });
    expect(gpus.selected).toBe('GPU-0');
  });

  it('falls back to CPU only when nothing is free', () => {
    const gpus = new GpusState();
    gpus.apply({ sessionId: 's1', gpus: [gpu(0, false, 90)], reason: null, recommended: null });
    expect(gpus.selected).toBe(CPU_ONLY);
  });

  it('shows the backend error when GPU listing is not available', async () => {
    backend.gpuSnapshot.mockRejectedValueOnce({ code: 'unsupported', message: 'GPU listing is not available' });
    const gpus = new GpusState();
    await gpus.watch('s1');
    expect(gpus.error?.code).toBe('unsupported');
  });
});

describe('PromptsState', () => {
  it('answers questions in order', async () => {
    const prompts = new PromptsState();
    await prompts.start();
    const hostKey = { host: 'h', port: 22, algorithm: 'ssh-ed25519', fingerprint: 'SHA256:x' };
    emit('prompt', { id: 1, question: { kind: 'hostKey', detail: hostKey } });
    emit('prompt', { id: 2, question: { kind: 'secret', detail: { kind: 'password', user: 'u', host: 'h', retry: false } } });
    expect(prompts.current?.id).toBe(1);
    await prompts.answer({ kind: 'hostKey', trust: true });
    expect(backend.answerPrompt).toHaveBeenCalledWith(1, { kind: 'hostKey', trust: true });
    expect(prompts.current?.id).toBe(2);
  });
});
