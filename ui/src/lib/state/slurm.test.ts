import { beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('../backend', () => import('../test/mock-backend'));
import { backend, emit, resetBackend } from '../test/mock-backend';
import { clock, formFromDefaults, SlurmState } from './slurm.svelte';
import type { SlurmView } from '../bindings/SlurmView';
import type { SlurmEvent } from '../bindings/SlurmEvent';

beforeEach(() => resetBackend());

const view = (over: Partial<SlurmView['defaults']> = {}): SlurmView => ({
  partitions: [
    { name: 'gpu', default: true, state: 'UP', maxTimeSecs: 7200, defaultTimeSecs: 3600 },
    { name: 'debug', default: false, state: 'UP', maxTimeSecs: 1800, defaultTimeSecs: null },
  ],
  pools: [
    { partition: 'gpu', gpuType: 'a100', total: 2, idle: 2, perNodeMax: 2 },
    { partition: 'gpu', gpuType: 'v100', total: 2, idle: 1, perNodeMax: 2 },
  ],
  jobs: [],
  defaults: { partition: null, account: null, time: null, gpus: null, gpuFlag: 'gres', sbatchLines: [], setup: [], ...over },
});

const ev = (over: Partial<SlurmEvent>): SlurmEvent => ({
  sessionId: 's1',
  step: null,
  timeLeftSecs: null,
  warning: null,
  ended: null,
  error: null,
  ...over,
});

describe('SlurmState', () => {
  it('fills the form from the host saved defaults, else the default partition', () => {
    expect(formFromDefaults(view())).toEqual({ partition: 'gpu', gpuType: '', gpuCount: 1, time: '', account: '' });
    expect(formFromDefaults(view({ partition: 'debug', gpus: 'v100:2', time: '30', account: 'lab' }))).toEqual({
      partition: 'debug',
      gpuType: 'v100',
      gpuCount: 2,
      time: '30',
      account: 'lab',
    });
    expect(clock(3725)).toBe('1:02:05');
  });

  it('is not a SLURM host when the backend has no cluster view', async () => {
    backend.slurmCluster.mockResolvedValueOnce(null);
    const m = new SlurmState();
    expect(await m.load('s1')).toBe(false);
    expect(m.view).toBeNull();
  });

  it('shows a refusal at the field to change, and the expected start of an accepted check', async () => {
    backend.slurmCluster.mockResolvedValueOnce(view());
    const m = new SlurmState();
    await m.load('s1');
    m.form.time = '5:00:00';
    backend.checkSlurmRequest.mockRejectedValueOnce({
      code: 'validation',
      message: 'time 5:00:00 is over',
      fields: [{ field: 'time', message: "time 5:00:00 is over partition gpu's limit of 2:00:00" }],
    });
    expect(await m.check()).toBe(false);
    expect(m.fieldErrors.time).toContain('limit of 2:00:00');
    expect(backend.checkSlurmRequest).toHaveBeenCalledWith('s1', { partition: 'gpu', gpuType: null, gpuCount: 1, time: '5:00:00', account: null });
    backend.checkSlurmRequest.mockResolvedValueOnce('2026-11-30T10:00:00');
    m.form.time = '30';
    expect(await m.check()).toBe(true);
    expect(m.fieldErrors).toEqual({});
    expect(m.expectedStart).toBe('2026-11-30T10:00:00');
  });

  it('follows the launch: queued with its reason, starting, ready, time warnings, time limit reached', async () => {
    backend.slurmCluster.mockResolvedValueOnce(view());
    const m = new SlurmState();
    await m.load('s1');
    // Events can come before the command answers.
    backend.launchSlurmNotebook.mockImplementationOnce(async () => {
      emit('slurm', ev({ step: { step: 'checking', request: '--partition=gpu' } }));
    });
    await m.launch();
    expect(m.phase).toBe('checking');
    emit('slurm', ev({ step: { step: 'submitted', jobId: '7' } }));
    emit(
      'slurm',
      ev({ step: { step: 'queued', jobId: '7', reason: 'Resources', words: 'waiting for resources', expectedStart: '2026-11-30T11:00:00', position: 1 } }),
    );
    expect(m.phase).toBe('queued');
    expect(m.jobId).toBe('7');
    expect(m.expectedStart).toBe('2026-11-30T11:00:00');
    // Another session's events are not this one's.
    emit('slurm', ev({ sessionId: 's2', step: { step: 'starting', jobId: '9', node: 'n' } }));
    expect(m.phase).toBe('queued');
    emit('slurm', ev({ step: { step: 'starting', jobId: '7', node: 'node1' } }));
    expect(m.phase).toBe('starting');
    emit(
      'slurm',
      ev({ step: { step: 'ready', jobId: '7', node: 'node1', host: 'node1', port: 4000, cudaVisibleDevices: '2', timeLeftSecs: 1200 } }),
    );
    expect(m.phase).toBe('ready');
    expect(m.timeLeftSecs).toBe(1200);
    emit('slurm', ev({ timeLeftSecs: 800, warning: 'Job 7 reaches its time limit in 0:13:20 (15 minutes or less left)' }));
    expect(m.timeLeftSecs).toBe(800);
    expect(m.warning).toContain('15 minutes');
    emit('slurm', ev({ ended: 'Time limit reached: SLURM ended job 7. Relaunch with the same settings to go on.' }));
    expect(m.phase).toBe('ended');
    expect(m.ended).toContain('Time limit reached');
    backend.launchSlurmNotebook.mockResolvedValueOnce(undefined);
    await m.relaunch();
    expect(backend.launchSlurmNotebook).toHaveBeenLastCalledWith('s1', { partition: 'gpu', gpuType: null, gpuCount: 1, time: null, account: null }, null);
  });

  it('cancel while queued ends the job, confirmed by the backend', async () => {
    backend.slurmCluster.mockResolvedValueOnce(view());
    const m = new SlurmState();
    await m.load('s1');
    backend.launchSlurmNotebook.mockResolvedValueOnce(undefined);
    await m.launch();
    emit('slurm', ev({ step: { step: 'submitted', jobId: '8' } }));
    backend.stopSlurmNotebook.mockResolvedValueOnce('CANCELLED');
    expect(await m.stop()).toBe('CANCELLED');
    expect(m.phase).toBe('stopped');
    expect(m.ended).toBe('Job 8 ended: CANCELLED');
  });
});
