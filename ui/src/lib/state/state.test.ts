import { beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('../backend', () => import('../test/mock-backend'));
import { backend, emit, resetBackend } from '../test/mock-backend';
import { ConnectState } from './connect.svelte';
import { CPU_ONLY, GpusState, HISTORY } from './gpus.svelte';
import { blankProfile, HostsState } from './hosts.svelte';
import { PromptsState } from './prompts.svelte';
import { gpu, noGpuReport, proc, report } from '../test/gpu-fixtures';
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

  it('is connected once the GPUs are read, and cancels', async () => {
    const connect = new ConnectState();
    backend.startSession.mockResolvedValueOnce('s1');
    await connect.start('local');
    emit('session', ev('readGpus', 'done'));
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

describe('GpusState', () => {
  it('preselects the recommended GPU and keeps a short history', () => {
    const gpus = new GpusState();
    for (let i = 0; i < HISTORY + 5; i++) {
      gpus.apply(report([gpu(0, 30000, i), gpu(1, 0, 0)], [proc(0, 42, 'bob')]));
    }
    expect(gpus.selected).toBe('GPU-1');
    expect(gpus.history['GPU-0']).toHaveLength(HISTORY);
    expect(gpus.history['GPU-0'].at(-1)).toBe(HISTORY + 4);
    gpus.choose('GPU-0');
    gpus.apply(report([gpu(0, 30000, 1), gpu(1, 0, 0)], [proc(0, 42, 'bob')]));
    expect(gpus.selected).toBe('GPU-0');
  });

  it('falls back to CPU only when nothing is free or there is no GPU', () => {
    const gpus = new GpusState();
    gpus.apply(report([gpu(0, 30000, 90)], [proc(0, 42, 'bob')]));
    expect(gpus.selected).toBe(CPU_ONLY);
    const none = new GpusState();
    none.apply(noGpuReport());
    expect(none.selected).toBe(CPU_ONLY);
    expect(none.cards).toEqual([]);
  });

  it('cards pair each choice with its GPU and processes, in nvidia-smi order', () => {
    const gpus = new GpusState();
    const r = report([gpu(0, 30000, 97), gpu(1, 0, 0), gpu(2, 0, 0), gpu(3, 0, 0)], [proc(0, 42, 'bob'), proc(0, 43, 'tbtest', true)]);
    // The backend ranks best first (here 1, 2, 3, 0): the picker still lists 0, 1, 2, 3.
    expect(r.choices.map((c) => c.gpuIndex)).not.toEqual([0, 1, 2, 3]);
    gpus.apply(r);
    expect(gpus.cards.map((c) => c.label)).toEqual(['GPU 0', 'GPU 1', 'GPU 2', 'GPU 3']);
    expect(gpus.cards[0].processes.map((p) => p.pid)).toEqual([42, 43]);
    expect(gpus.cards[0].gpu?.temperatureC).toBe(40);
    expect(gpus.cards[1].processes).toEqual([]);
  });

  it('watches while open: events of its session apply, errors show, stop unwatches', async () => {
    const gpus = new GpusState();
    await gpus.watch('s1');
    expect(backend.watchGpus).toHaveBeenCalledWith('s1');
    emit('gpus', { sessionId: 's2', report: report([gpu(0, 0, 0)]), error: null });
    expect(gpus.report).toBeNull();
    emit('gpus', { sessionId: 's1', report: report([gpu(0, 0, 5), gpu(1, 100, 0)]), error: null });
    expect(gpus.selected).toBe('GPU-0');
    const driver = { code: 'gpuDriver' as const, message: 'the NVIDIA driver on gpu-box is not working' };
    emit('gpus', { sessionId: 's1', report: null, error: driver });
    expect(gpus.error).toEqual(driver);
    // The last good report stays on screen under the error, and the next refresh clears it.
    expect(gpus.cards).toHaveLength(2);
    emit('gpus', { sessionId: 's1', report: report([gpu(0, 0, 5), gpu(1, 100, 0)]), error: null });
    expect(gpus.error).toBeNull();
    await gpus.stop();
    expect(backend.unwatchGpus).toHaveBeenCalledWith('s1');
    expect(gpus.sessionId).toBeNull();
  });

  it('shows the backend error when the session has no connection', async () => {
    backend.watchGpus.mockRejectedValueOnce({ code: 'unsupported', message: 'this session has no SSH connection (yet)' });
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
