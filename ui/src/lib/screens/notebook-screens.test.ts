import { fireEvent, render, screen } from '@testing-library/svelte';
import { beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('../backend', () => import('../test/mock-backend'));
import { backend, emit, resetBackend } from '../test/mock-backend';
import Environment from './Environment.svelte';
import Connect from './Connect.svelte';
import Sessions from './Sessions.svelte';
import { EnvironmentsState } from '../state/environments.svelte';
import { ConnectState } from '../state/connect.svelte';
import { SessionsState } from '../state/sessions.svelte';
import { env } from '../test/env-fixtures';

beforeEach(() => resetBackend());

describe('Environment screen', () => {
  it('lists environments, disables those without Jupyter, and launches the chosen one', async () => {
    const model = new EnvironmentsState();
    backend.listEnvironments.mockResolvedValueOnce([env('python3', { kind: 'system', jupyterLab: false, path: '/usr/bin/python3' }), env('jlab')]);
    await model.load('s1');
    const onLaunch = vi.fn();
    render(Environment, { model, gpuLabel: 'GPU 1', onLaunch, canLaunch: true });
    const radios = screen.getAllByRole('radio');
    expect(radios[0]).toBeDisabled();
    expect(radios[1]).toBeChecked();
    expect(screen.getByText('no Jupyter')).toBeInTheDocument();
    expect(screen.getByText('✓ JupyterLab')).toBeInTheDocument();
    expect(screen.getByTestId('env-gpu')).toHaveTextContent('GPU 1');
    await fireEvent.click(screen.getByRole('button', { name: 'Start JupyterLab' }));
    expect(onLaunch).toHaveBeenCalledWith('/home/u/jlab', false);
  });

  it('installs JupyterLab into the path typed, showing the output', async () => {
    const model = new EnvironmentsState();
    backend.listEnvironments.mockResolvedValue([]);
    await model.load('s1');
    backend.installJupyter.mockImplementationOnce(async () => {
      emit('install', { sessionId: 's1', line: 'installing jupyterlab ipykernel into /home/u/v' });
      return env('v');
    });
    render(Environment, { model, gpuLabel: 'CPU only', onLaunch: vi.fn(), canLaunch: true });
    expect(screen.getByRole('button', { name: 'Start JupyterLab' })).toBeDisabled();
    await fireEvent.input(screen.getByLabelText(/Install JupyterLab into/), { target: { value: '~/v' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Install JupyterLab' }));
    expect(await screen.findByText(/installing jupyterlab ipykernel/)).toBeInTheDocument();
    expect(backend.installJupyter).toHaveBeenCalledWith('s1', '~/v');
  });
});

/** A session connected to gpu-box whose launch (GPU-1, /x) has been asked for. */
async function launched(): Promise<ConnectState> {
  const model = new ConnectState();
  backend.startSession.mockResolvedValueOnce('s1');
  await model.start('gpu-box');
  emit('session', { sessionId: 's1', step: 'readGpus', state: 'done', message: '2 GPUs', error: null });
  backend.launchNotebook.mockResolvedValue(undefined);
  await model.launch('GPU-1', '/x');
  return model;
}

describe('Connect screen', () => {
  it('shows a failed step with what to do next, and the ready actions', async () => {
    const model = await launched();
    render(Connect, { model, onPickGpu: vi.fn(), onPickEnvironment: vi.fn() });
    const error = { code: 'jupyter' as const, message: 'Jupyter exited before it was ready' };
    emit('session', { sessionId: 's1', step: 'startJupyter', state: 'failed', message: error.message, error });
    expect(await screen.findByText(/Pick another environment/)).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Choose the environment again' })).toBeInTheDocument();

    await model.launch('GPU-1', '/x');
    backend.listSessions.mockResolvedValueOnce([
      { id: 's1', hostId: 'gpu-box', status: 'ready', url: 'http://127.0.0.1:4000/lab?token=t', gpu: 'GPU 1', env: '/x', serverId: 'tb-1', window: 'jupyter-1' },
    ]);
    emit('session', { sessionId: 's1', step: 'ready', state: 'done', message: 'ready', error: null });
    expect(await screen.findByRole('button', { name: 'Open notebook' })).toBeInTheDocument();
    await fireEvent.click(screen.getByRole('button', { name: 'Open in browser' }));
    expect(backend.openInBrowser).toHaveBeenCalledWith('http://127.0.0.1:4000/lab?token=t');
    await fireEvent.click(screen.getByRole('button', { name: 'Stop' }));
    // Kernels end with the server: it asks first.
    expect(backend.stopServer).not.toHaveBeenCalled();
    expect(screen.getByText(/running kernels end/)).toBeInTheDocument();
    await fireEvent.click(screen.getByRole('button', { name: 'Stop server' }));
    expect(backend.stopServer).toHaveBeenCalledWith('s1', 'tb-1');
  });
});

describe('Connect screen, a ready notebook in trouble', () => {
  async function ready(): Promise<ConnectState> {
    const model = await launched();
    backend.listSessions.mockResolvedValue([
      { id: 's1', hostId: 'gpu-box', status: 'ready', url: 'http://127.0.0.1:4000/lab?token=t', gpu: 'GPU 1', env: '/x', serverId: 'tb-1', window: 'jupyter-1' },
    ]);
    emit('session', { sessionId: 's1', step: 'ready', state: 'done', message: 'ready', error: null });
    return model;
  }

  it('offers Restart server when the server is gone, and follows the restart back to ready', async () => {
    const model = await ready();
    render(Connect, { model, onPickGpu: vi.fn(), onPickEnvironment: vi.fn() });
    expect(await screen.findByRole('button', { name: 'Open notebook' })).toBeInTheDocument();
    const error = { code: 'serverGone' as const, message: 'the JupyterLab server is gone: killed' };
    emit('session', { sessionId: 's1', step: 'ready', state: 'failed', message: error.message, error });
    expect(await screen.findByText(/Restart server starts it again/)).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Choose the environment again' })).not.toBeInTheDocument();
    backend.restartNotebook.mockResolvedValueOnce(undefined);
    await fireEvent.click(screen.getByRole('button', { name: 'Restart server' }));
    expect(backend.restartNotebook).toHaveBeenCalledWith('s1');
    expect(model.phase).toBe('launching');
    expect(screen.queryByTestId('server-gone')).not.toBeInTheDocument();
    emit('session', { sessionId: 's1', step: 'startJupyter', state: 'done', message: 'server tb-2 started', error: null });
    emit('session', { sessionId: 's1', step: 'ready', state: 'done', message: 'ready', error: null });
    expect(await screen.findByRole('button', { name: 'Open notebook' })).toBeInTheDocument();
  });

  it('drops the gone server\'s error once a restart from the notebook window is ready', async () => {
    const model = await ready();
    render(Connect, { model, onPickGpu: vi.fn(), onPickEnvironment: vi.fn() });
    expect(await screen.findByRole('button', { name: 'Open notebook' })).toBeInTheDocument();
    const message = 'the JupyterLab server is gone: the Jupyter server (pid 17213) is no longer running; its log: /home/u/.tunnelbook/run/tb-1.log';
    const error = { code: 'serverGone' as const, message };
    emit('session', { sessionId: 's1', step: 'ready', state: 'failed', message, error });
    expect(await screen.findByText(/Restart server starts it again/)).toBeInTheDocument();
    // The banner's Restart server in the notebook window: no click here, only the events.
    emit('session', { sessionId: 's1', step: 'startJupyter', state: 'done', message: 'server tb-2 started', error: null });
    emit('session', { sessionId: 's1', step: 'ready', state: 'done', message: 'ready', error: null });
    expect(await screen.findByRole('button', { name: 'Open notebook' })).toBeInTheDocument();
    expect(model.error).toBeNull();
    expect(screen.queryByRole('alert')).not.toBeInTheDocument();
  });

  it('says the chosen GPU is CUDA device 0 and titles the notebook window with host and GPU', async () => {
    const model = await ready();
    render(Connect, { model, onPickGpu: vi.fn(), onPickEnvironment: vi.fn() });
    expect(await screen.findByTestId('cuda-note')).toHaveTextContent('Inside the notebook GPU 1 is CUDA device 0 (cuda:0)');
    backend.openNotebook.mockResolvedValueOnce('jupyter-2');
    await fireEvent.click(screen.getByRole('button', { name: 'Open notebook' }));
    expect(backend.openNotebook).toHaveBeenCalledWith('http://127.0.0.1:4000/lab?token=t', 'JupyterLab — gpu-box — GPU 1');
  });

  it('offers Reconnect now while the connection is re-established', async () => {
    const model = await ready();
    render(Connect, { model, onPickGpu: vi.fn(), onPickEnvironment: vi.fn() });
    expect(await screen.findByRole('button', { name: 'Open notebook' })).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Reconnect now' })).not.toBeInTheDocument();
    emit('session', { sessionId: 's1', step: 'openTunnel', state: 'running', message: 'connection lost; reconnecting, attempt 3 in 4 s', error: null });
    backend.reconnectNotebook.mockResolvedValueOnce(undefined);
    await fireEvent.click(await screen.findByRole('button', { name: 'Reconnect now' }));
    expect(backend.reconnectNotebook).toHaveBeenCalledWith('s1');
    // While the connection is down the screen does not claim the notebook is ready.
    expect(screen.getByTestId('connection-lost')).toHaveTextContent('Connection lost — reconnecting');
    expect(screen.queryByText(/JupyterLab is ready/)).not.toBeInTheDocument();
    emit('session', { sessionId: 's1', step: 'openTunnel', state: 'done', message: 'reconnected after 9 s (3 attempts)', error: null });
    await vi.waitFor(() => expect(screen.queryByRole('button', { name: 'Reconnect now' })).not.toBeInTheDocument());
    expect(screen.getByText(/JupyterLab is ready/)).toBeInTheDocument();
    expect(screen.queryByTestId('connection-lost')).not.toBeInTheDocument();
    expect(model.phase).toBe('ready');
  });
});

describe('Sessions screen', () => {
  it('shows the servers on each connected host with their actions', async () => {
    backend.listSessions.mockResolvedValue([
      { id: 's1', hostId: 'gpu-box', status: 'ready', url: 'http://127.0.0.1:4000/lab?token=t', gpu: 'GPU 1', env: '/x', serverId: 'tb-1', window: null },
    ]);
    backend.listServers.mockResolvedValue([
      { sessionId: 's1', id: 'tb-1', pid: 1, endpoint: 'unix:/run/x.sock', env: '/x', gpu: 'GPU-1', started: 0, managed: true, url: 'http://127.0.0.1:4000/lab?token=t' },
      { sessionId: 's1', id: 'tb-cli', pid: 2, endpoint: 'unix:/run/y.sock', env: '/x', gpu: null, started: 0, managed: true, url: null },
    ]);
    const model = new SessionsState();
    await model.refresh();
    render(Sessions, { model });
    const rows = screen.getAllByTestId('server-row');
    expect(rows).toHaveLength(2);
    expect(rows[0]).toHaveTextContent('this session');
    expect(rows[1]).toHaveTextContent('Tunnelbook');
    expect(screen.getAllByRole('button', { name: 'Copy URL' })).toHaveLength(2);
  });
});

describe('Sessions screen on a SLURM login node (issue 20)', () => {
  const job = {
    sessionId: 's1',
    jobId: '41',
    state: 'RUNNING',
    reason: null,
    partition: 'gpu',
    node: 'node7',
    gpus: '2',
    requested: 'gres:gpu:v100:1',
    timeLeft: '9:12',
    endTime: '2026-11-30T21:45:00',
    ready: true,
    thisSession: false,
    url: null,
  };

  it('lists jobs started elsewhere, opens one through the login node and stops it', async () => {
    backend.listSessions.mockResolvedValue([
      { id: 's1', hostId: 'login-node', status: 'connected', url: null, gpu: null, env: null, serverId: null, window: null },
    ]);
    backend.listServers.mockResolvedValue([]);
    backend.listSlurmJobs.mockResolvedValue([
      job,
      { ...job, jobId: '42', state: 'PENDING', reason: 'waiting for resources', node: null, gpus: null, timeLeft: '10:00', endTime: null, ready: false },
    ]);
    const model = new SessionsState();
    await model.refresh();
    render(Sessions, { model });
    const rows = screen.getAllByTestId('slurm-job-row');
    expect(rows).toHaveLength(2);
    expect(rows[0]).toHaveTextContent('node7');
    expect(rows[0]).toHaveTextContent('CUDA_VISIBLE_DEVICES=2');
    expect(rows[0]).toHaveTextContent('until 2026-11-30 21:45:00');
    expect(rows[1]).toHaveTextContent('waiting for resources');
    // A pending job cannot be opened yet, only stopped.
    expect(screen.getAllByTestId('slurm-job-open')).toHaveLength(1);

    backend.openSlurmJob.mockResolvedValueOnce('http://127.0.0.1:4100/lab');
    await fireEvent.click(screen.getByTestId('slurm-job-open'));
    await vi.waitFor(() => expect(backend.openNotebook).toHaveBeenCalled());
    expect(backend.openSlurmJob).toHaveBeenCalledWith('s1', '41');
    expect(backend.openNotebook.mock.calls[0][0]).toBe('http://127.0.0.1:4100/lab');
    expect(backend.openNotebook.mock.calls[0][1]).toContain('job 41 on node7');

    backend.stopSlurmJob.mockResolvedValueOnce('CANCELLED');
    backend.listSlurmJobs.mockResolvedValue([]);
    await fireEvent.click(screen.getAllByTestId('slurm-job-stop')[0]);
    expect(await screen.findByTestId('slurm-job-stopped')).toHaveTextContent('Job 41 ended: CANCELLED');
    expect(backend.stopSlurmJob).toHaveBeenCalledWith('s1', '41');
    expect(await screen.findByTestId('slurm-jobs-none')).toBeInTheDocument();
  });

  it('shows no SLURM section for a host that is not a login node', async () => {
    backend.listSessions.mockResolvedValue([
      { id: 's1', hostId: 'gpu-box', status: 'connected', url: null, gpu: null, env: null, serverId: null, window: null },
    ]);
    backend.listServers.mockResolvedValue([]);
    backend.listSlurmJobs.mockResolvedValue(null);
    const model = new SessionsState();
    await model.refresh();
    render(Sessions, { model });
    expect(screen.queryByText(/SLURM jobs on/)).toBeNull();
    expect(model.error).toBeNull();
  });
});

// Trial of issue 14, findings 1, 2 and 14: Stop in Sessions — on this run's notebook or on one
// reopened after a restart — asks about running kernels the same way, and every view that showed
// the server drops it (no "Notebook ready on GPU 1", no dead Reopen).
describe('Stop from Sessions', () => {
  const sessionsWith = (server: { id: string; url: string | null }, serverId: string | null) => {
    backend.listSessions.mockResolvedValue([
      { id: 's1', hostId: 'gpu-box', status: serverId ? 'ready' : 'connected', url: serverId ? server.url : null, gpu: 'GPU 1', env: '/opt/jlab', serverId, window: null },
    ]);
    backend.listServers.mockResolvedValue([
      { sessionId: 's1', id: server.id, pid: 7, endpoint: '127.0.0.1:8890', env: '/opt/jlab', gpu: '1', started: 0, managed: true, url: server.url },
    ]);
  };

  async function stopInSessions(serverId: string): Promise<void> {
    const sessions = new SessionsState();
    await sessions.refresh();
    render(Sessions, { model: sessions });
    await fireEvent.click(screen.getByRole('button', { name: 'Stop' }));
    // Kernels end with the server: it asks first, saying what Stop does (saves, then closes).
    expect(backend.stopServer).not.toHaveBeenCalled();
    expect(screen.getByRole('alert')).toHaveTextContent(/running kernels end/);
    expect(screen.getByRole('alert')).toHaveTextContent(/saved first/);
    expect(screen.getByRole('alert')).not.toHaveTextContent(/unsaved notebook changes are lost/);
    backend.stopServer.mockImplementationOnce(async () => {
      emit('notebook-stopped', { sessionId: 's1', serverId });
    });
    await fireEvent.click(screen.getByRole('button', { name: 'Stop server' }));
    expect(backend.stopServer).toHaveBeenCalledWith('s1', serverId);
  }

  it("on this run's notebook: the host card no longer says the notebook is ready", async () => {
    const { HostViews } = await import('../state/host-views.svelte');
    const views = new HostViews();
    backend.startSession.mockResolvedValueOnce('s1');
    backend.gpuSnapshot.mockResolvedValue(null);
    backend.listServers.mockResolvedValueOnce([]);
    await views.start('gpu-box');
    emit('session', { sessionId: 's1', step: 'readGpus', state: 'done', message: '2 GPUs', error: null });
    backend.launchNotebook.mockResolvedValueOnce(undefined);
    await views.connect.launch(null, null);
    sessionsWith({ id: 'tb-8', url: 'http://127.0.0.1:41234/lab' }, 'tb-8');
    emit('session', { sessionId: 's1', step: 'ready', state: 'done', message: 'ready', error: null });
    await vi.waitFor(() => expect(views.connect.summary).not.toBeNull());
    expect(views.states['gpu-box'].words).toBe('Notebook ready on GPU 1');

    await stopInSessions('tb-8');
    expect(views.connect.phase).toBe('connected');
    expect(views.connect.summary).toBeNull();
    expect(views.states['gpu-box'].words).toBe('Connected');
  });

  it('on a notebook reopened after a restart: the card and Connect drop it and its Reopen', async () => {
    const { HostViews } = await import('../state/host-views.svelte');
    const views = new HostViews();
    backend.startSession.mockResolvedValueOnce('s1');
    backend.gpuSnapshot.mockResolvedValue(null);
    sessionsWith({ id: 'tb-7', url: null }, null);
    await views.start('gpu-box');
    emit('session', { sessionId: 's1', step: 'readGpus', state: 'done', message: '2 GPUs', error: null });
    await vi.waitFor(() => expect(views.connect.runningServers).toHaveLength(1));
    backend.attachServer.mockResolvedValueOnce('http://127.0.0.1:8890/lab');
    backend.openNotebook.mockResolvedValueOnce('jupyter-1');
    await views.connect.reopen(views.connect.runningServers[0]);
    expect(views.connect.reopened?.serverId).toBe('tb-7');
    expect(views.states['gpu-box'].words).toBe('Connected — a notebook is running there');

    sessionsWith({ id: 'tb-7', url: 'http://127.0.0.1:8890/lab' }, null);
    await stopInSessions('tb-7');
    expect(views.connect.runningServers).toHaveLength(0);
    expect(views.connect.reopened).toBeNull();
    expect(views.states['gpu-box'].words).toBe('Connected');
    expect(views.running['gpu-box']).toBeUndefined();
  });
});

describe('Open in browser without a browser (trial of #14, finding 15)', () => {
  it('says so at the button in words and copies a one-time link instead', async () => {
    const model = await launched();
    render(Connect, { model, onPickGpu: vi.fn(), onPickEnvironment: vi.fn() });
    backend.listSessions.mockResolvedValueOnce([
      { id: 's1', hostId: 'gpu-box', status: 'ready', url: 'http://127.0.0.1:4000/lab', gpu: 'GPU 1', env: '/x', serverId: 'tb-1', window: 'jupyter-1' },
    ]);
    emit('session', { sessionId: 's1', step: 'ready', state: 'done', message: 'ready', error: null });
    const problem = { code: 'noBrowser' as const, message: 'Could not start your web browser: the desktop\'s program that opens web pages failed; copy the address instead.' };
    backend.openInBrowser.mockRejectedValueOnce(problem);
    await fireEvent.click(await screen.findByRole('button', { name: 'Open in browser' }));
    const at = await screen.findByTestId('browser-problem');
    expect(at).toHaveTextContent(problem.message);
    // At the button, not as the page's general error at the bottom.
    expect(model.error).toBeNull();
    expect(screen.getByTestId('notebook-ready').nextElementSibling).toBe(at);

    const copied: string[] = [];
    backend.browserLink.mockResolvedValueOnce('http://127.0.0.1:39999/handoff/0123abcd');
    await model.copyBrowserLink(async (t) => void copied.push(t));
    expect(backend.browserLink).toHaveBeenCalledWith('http://127.0.0.1:4000/lab');
    expect(copied).toEqual(['http://127.0.0.1:39999/handoff/0123abcd']);
    expect(await screen.findByTestId('browser-link')).toHaveTextContent(/Copied\. Paste it into your browser/);

    // No clipboard here: the link is shown to copy by hand.
    backend.browserLink.mockResolvedValueOnce('http://127.0.0.1:39999/handoff/4567ef');
    await model.copyBrowserLink(async () => {
      throw new Error('no clipboard');
    });
    expect(await screen.findByLabelText('Link for your browser')).toHaveValue('http://127.0.0.1:39999/handoff/4567ef');
  });

  it('keeps other failures as the page error', async () => {
    const model = await launched();
    model.summary = { id: 's1', hostId: 'gpu-box', status: 'ready', url: 'http://127.0.0.1:4000/lab', gpu: 'GPU 1', env: '/x', serverId: 'tb-1', window: 'jupyter-1' } as never;
    backend.openInBrowser.mockRejectedValueOnce({ code: 'internal', message: 'cannot start the local link' });
    await model.openInBrowser();
    expect(model.browserProblem).toBeNull();
    expect(model.error?.code).toBe('internal');
  });
});
