import { beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('../backend', () => import('../test/mock-backend'));
import { backend, emit, resetBackend } from '../test/mock-backend';
import { ConnectState } from './connect.svelte';
import { EnvironmentsState } from './environments.svelte';
import { SessionsState } from './sessions.svelte';
import type { EnvironmentView } from '../bindings/EnvironmentView';
import { env } from '../test/env-fixtures';
import type { ServerView } from '../bindings/ServerView';
import type { SessionEvent } from '../bindings/SessionEvent';
import type { SessionSummary } from '../bindings/SessionSummary';

beforeEach(() => resetBackend());

const ev = (step: SessionEvent['step'], state: SessionEvent['state'], extra: Partial<SessionEvent> = {}): SessionEvent => ({
  sessionId: 's1',
  step,
  state,
  message: `${step} ${state}`,
  error: null,
  ...extra,
});


const summary = (extra: Partial<SessionSummary> = {}): SessionSummary => ({
  id: 's1',
  hostId: 'gpu-box',
  status: 'ready',
  url: 'http://127.0.0.1:4000/lab?token=t',
  gpu: 'GPU 1',
  env: '/home/u/jlab',
  serverId: 'tb-1',
  window: 'jupyter-1',
  ...extra,
});

async function connected(): Promise<ConnectState> {
  const connect = new ConnectState();
  backend.startSession.mockResolvedValueOnce('s1');
  await connect.start('gpu-box');
  emit('session', ev('readGpus', 'done'));
  return connect;
}

describe('ConnectState launch', () => {
  it('passes the picked GPU and environment and follows core steps to ready', async () => {
    const connect = await connected();
    backend.launchNotebook.mockResolvedValueOnce(undefined);
    backend.listSessions.mockResolvedValueOnce([summary()]);
    await connect.launch('GPU-1', '/home/u/jlab');
    expect(backend.launchNotebook).toHaveBeenCalledWith('s1', 'GPU-1', '/home/u/jlab');
    expect(connect.phase).toBe('launching');
    for (const step of ['findEnvironments', 'startJupyter', 'openTunnel'] as const) {
      emit('session', ev(step, 'running'));
      emit('session', ev(step, 'done'));
    }
    expect(connect.phase).toBe('launching');
    emit('session', ev('ready', 'done'));
    expect(connect.phase).toBe('ready');
    await vi.waitFor(() => expect(connect.summary?.url).toContain('127.0.0.1:4000'));
    expect(connect.steps.filter((s) => s.state === 'done').map((s) => s.step)).toEqual([
      'readGpus',
      'findEnvironments',
      'startJupyter',
      'openTunnel',
      'ready',
    ]);

    backend.stopServer.mockResolvedValueOnce(undefined);
    await connect.stopNotebook('tb-1');
    expect(backend.stopServer).toHaveBeenCalledWith('s1', 'tb-1');
    expect(connect.phase).toBe('connected');
    expect(connect.steps.find((s) => s.step === 'ready')?.state).toBe('pending');
  });

  it('shows a launch failure at its step and lets the user choose again', async () => {
    const connect = await connected();
    backend.launchNotebook.mockResolvedValueOnce(undefined);
    await connect.launch('cpu', null);
    const error = { code: 'jupyter' as const, message: 'JupyterLab is not installed in /usr/bin/python3' };
    emit('session', ev('findEnvironments', 'failed', { error }));
    expect(connect.phase).toBe('failed');
    expect(connect.launchFailed).toBe(true);
    expect(connect.steps.find((s) => s.step === 'findEnvironments')).toMatchObject({ state: 'failed', error });
  });

  it('logs events of steps and states it does not know, changing nothing', async () => {
    const connect = await connected();
    const before = connect.steps.map((s) => s.state);
    emit('session', { ...ev('openTunnel', 'done'), step: 'reconnecting' } as unknown as SessionEvent);
    emit('session', { ...ev('openTunnel', 'done'), state: 'retrying' } as unknown as SessionEvent);
    expect(connect.steps.map((s) => s.state)).toEqual(before);
    expect(connect.phase).toBe('connected');
    expect(connect.log.at(-2)).toContain('reconnecting');
  });

  it('a rejected launch fails at the JupyterLab step', async () => {
    const connect = await connected();
    backend.launchNotebook.mockRejectedValueOnce({ code: 'validation', message: 'a notebook already runs' });
    await connect.launch(null, null);
    expect(connect.phase).toBe('failed');
    expect(connect.steps.find((s) => s.step === 'startJupyter')?.state).toBe('failed');
  });
});

describe('EnvironmentsState', () => {
  it('preselects the profile environment, else the first with JupyterLab', async () => {
    const model = new EnvironmentsState();
    backend.listEnvironments.mockResolvedValueOnce([env('sys', { jupyterLab: false, kind: 'system' }), env('jlab'), env('mine', { configured: true })]);
    await model.load('s1');
    expect(model.selected).toBe('/home/u/mine');
    model.apply([env('broken', { problem: 'missing' }), env('jlab')]);
    expect(model.selected).toBe('/home/u/jlab');
    model.apply([env('sys', { jupyterLab: false })]);
    expect(model.selected).toBeNull();
  });

  it('installs JupyterLab with streamed output, then selects the new venv', async () => {
    const model = new EnvironmentsState();
    backend.listEnvironments.mockResolvedValueOnce([env('sys', { jupyterLab: false })]);
    await model.load('s1');
    let finish: (v: EnvironmentView) => void = () => {};
    backend.installJupyter.mockImplementationOnce(() => new Promise((r) => (finish = r)));
    const installing = model.install('~/.tunnelbook/venv');
    await vi.waitFor(() => expect(backend.installJupyter).toHaveBeenCalledWith('s1', '~/.tunnelbook/venv'));
    expect(model.installing).toBe(true);
    emit('install', { sessionId: 's1', line: 'creating venv' });
    emit('install', { sessionId: 'other', line: 'not ours' });
    emit('install', { sessionId: 's1', line: 'Successfully installed jupyterlab' });
    expect(model.installLog).toEqual(['creating venv', 'Successfully installed jupyterlab']);
    const venv = env('venv', { path: '/home/u/.tunnelbook/venv' });
    backend.listEnvironments.mockResolvedValueOnce([env('sys', { jupyterLab: false }), venv]);
    finish(venv);
    await installing;
    expect(model.installing).toBe(false);
    expect(model.selected).toBe('/home/u/.tunnelbook/venv');
  });

  it('keeps an install error for the screen', async () => {
    const model = new EnvironmentsState();
    backend.listEnvironments.mockResolvedValueOnce([]);
    await model.load('s1');
    backend.installJupyter.mockRejectedValueOnce({ code: 'jupyter', message: 'installing JupyterLab failed: no network' });
    await model.install('');
    expect(backend.installJupyter).toHaveBeenCalledWith('s1', null);
    expect(model.installError?.code).toBe('jupyter');
  });
});

describe('SessionsState', () => {
  const server = (id: string, extra: Partial<ServerView> = {}): ServerView => ({
    sessionId: 's1',
    id,
    pid: 42,
    endpoint: '127.0.0.1:8890',
    env: null,
    gpu: null,
    started: null,
    managed: false,
    url: null,
    ...extra,
  });

  it('lists the servers of connected sessions and attaches before opening', async () => {
    backend.listSessions.mockResolvedValue([summary(), summary({ id: 's2', status: 'closed' })]);
    backend.listServers.mockResolvedValue([server('tb-1', { managed: true, url: 'http://127.0.0.1:4000/lab?token=t' }), server('pid-7')]);
    const model = new SessionsState();
    await model.refresh();
    expect(backend.listServers).toHaveBeenCalledTimes(1);
    expect(model.servers.s1.map((s) => s.id)).toEqual(['tb-1', 'pid-7']);

    backend.attachServer.mockResolvedValueOnce('http://127.0.0.1:5000/lab?token=x');
    await model.openServer(model.servers.s1[1], 'browser');
    expect(backend.attachServer).toHaveBeenCalledWith('s1', 'pid-7');
    expect(backend.openInBrowser).toHaveBeenCalledWith('http://127.0.0.1:5000/lab?token=x');
    await model.openServer(model.servers.s1[1], 'window');
    expect(backend.attachServer).toHaveBeenCalledTimes(1);
    expect(backend.openNotebook).toHaveBeenCalledWith('http://127.0.0.1:5000/lab?token=x', 'JupyterLab — gpu-box');

    await model.stopServer(model.servers.s1[0]);
    expect(backend.stopServer).toHaveBeenCalledWith('s1', 'tb-1');
  });
});
