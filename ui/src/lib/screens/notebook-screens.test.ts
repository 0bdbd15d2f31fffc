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
import type { SessionSummary } from '../bindings/SessionSummary';

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

// Trial of issue 14, finding 18: a host-key question waits at its own step, in words.
describe('Connect screen while a question waits', () => {
  it('says "Waiting for you to check the host key" at the host key step, not at Connecting', async () => {
    const model = new ConnectState();
    backend.startSession.mockResolvedValueOnce('s1');
    await model.start('gpu-box');
    emit('session', { sessionId: 's1', step: 'connect', state: 'running', message: 'connecting to 127.0.0.1:2222', error: null });
    const question = {
      kind: 'hostKey' as const,
      detail: { host: '127.0.0.1', port: 2222, algorithm: 'ssh-ed25519', fingerprint: 'SHA256:abc', known: false },
    } as unknown as import('../bindings/PromptQuestion').PromptQuestion;
    render(Connect, { model, onPickGpu: vi.fn(), waitingForAnswer: true, question });
    const stepOf = (label: string) => screen.getByText(label, { selector: '.label' }).closest('li')!;
    expect(stepOf('Checking the host key')).toHaveTextContent('Waiting for you to check the host key');
    expect(stepOf('Checking the host key')).toHaveClass('running');
    expect(stepOf('Connecting')).not.toHaveTextContent(/waiting/i);
    expect(stepOf('Connecting')).toHaveClass('done');
    expect(screen.queryByText(/waiting for your answer/)).toBeNull();
  });
});

// Trial of issue 14, finding 11: during an outage the Connect step says what the app does (no
// first-connect advice as an error), and the step list does not keep "Ready ✓".
describe('Connect screen during an outage', () => {
  it('a notebook followed while its connection is down (the tray\'s) does not show Ready done', async () => {
    backend.listSessions.mockResolvedValue([
      { id: 's1', hostId: 'gpu-box', status: 'disconnected', url: 'http://127.0.0.1:4000/lab', gpu: 'GPU 1', env: '/x', serverId: 'tb-1', window: null },
    ]);
    const model = new ConnectState();
    await model.adopt('gpu-box', 's1');
    expect(model.phase).toBe('ready');
    expect(model.reconnecting).toBe(true);
    expect(model.steps.find((s) => s.step === 'ready')?.state).toBe('running');
  });

  it('shows the reconnect attempts as progress, and Ready only once the connection is back', async () => {
    const model = await launched();
    backend.listSessions.mockResolvedValue([
      { id: 's1', hostId: 'gpu-box', status: 'ready', url: 'http://127.0.0.1:4000/lab?token=t', gpu: 'GPU 1', env: '/x', serverId: 'tb-1', window: 'jupyter-1' },
    ]);
    emit('session', { sessionId: 's1', step: 'ready', state: 'done', message: 'ready', error: null });
    render(Connect, { model, onPickGpu: vi.fn(), onPickEnvironment: vi.fn() });
    const readyStep = () => screen.getByText('Ready').closest('li');
    expect(await screen.findByRole('button', { name: 'Open notebook' })).toBeInTheDocument();
    expect(readyStep()).toHaveClass('done');

    // Core's host session dials again: its connect step runs, with the cause as its error.
    const message = 'Connection lost — reconnecting (attempt 2, next try in 2 s); last: cannot reach 127.0.0.1:38479: nothing accepts connections on that port (connection refused)';
    const error = { code: 'unreachable' as const, message: 'Connection lost — reconnecting (attempt 2, next try in 2 s): cannot reach 127.0.0.1:38479. Tunnelbook keeps trying; the notebook carries on when the host answers again.' };
    emit('session', { sessionId: 's1', step: 'connect', state: 'running', message, error });
    await vi.waitFor(() => expect(screen.getByTestId('connection-lost')).toBeInTheDocument());
    expect(screen.getByText('Connecting').closest('li')).toHaveTextContent('Connection lost — reconnecting (attempt 2, next try in 2 s)');
    // Progress, not a red error with advice to check the host name.
    expect(screen.queryByRole('alert')).toBeNull();
    expect(readyStep()).not.toHaveClass('done');
    expect(readyStep()).toHaveTextContent('waiting for the connection');
    expect(screen.queryByText(/JupyterLab is ready/)).toBeNull();

    emit('session', { sessionId: 's1', step: 'connect', state: 'done', message: 'reconnected to 127.0.0.1 after 9 s (3 attempts)', error: null });
    emit('session', { sessionId: 's1', step: 'openTunnel', state: 'done', message: 'reconnected after 9 s (3 attempts)', error: null });
    await vi.waitFor(() => expect(readyStep()).toHaveClass('done'));
    expect(screen.queryByTestId('connection-lost')).toBeNull();
    expect(screen.getByText(/JupyterLab is ready/)).toBeInTheDocument();
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

  // Trial of issue 14, finding 18: "GPU 3" as everywhere (the UUID only as a tooltip), no
  // internal `tb-…` ids or pids in the table.
  it('names a server\'s GPU as the person knows it and shows no internal ids', async () => {
    const { gpu, report } = await import('../test/gpu-fixtures');
    backend.listSessions.mockResolvedValue([
      { id: 's1', hostId: 'gpu-box', status: 'connected', url: null, gpu: null, env: null, serverId: null, window: null },
    ]);
    backend.listServers.mockResolvedValue([
      { sessionId: 's1', id: 'tb-d10b3f79d0', pid: 22252, endpoint: '127.0.0.1:8890', env: '/opt/jlab', gpu: 'GPU-3', started: 0, managed: true, url: null },
      { sessionId: 's1', id: 'pid-4242', pid: 4242, endpoint: '127.0.0.1:8888', env: null, gpu: null, started: null, managed: false, url: null },
    ]);
    backend.gpuSnapshot.mockResolvedValue(report([gpu(0, 0, 0), gpu(3, 0, 0)]));
    backend.listSlurmJobs.mockResolvedValue(null);
    const model = new SessionsState();
    await model.refresh();
    render(Sessions, { model });
    const rows = screen.getAllByTestId('server-row');
    const gpus = screen.getAllByTestId('server-gpu');
    expect(gpus[0]).toHaveTextContent(/^GPU 3$/);
    expect(gpus[0]).toHaveAttribute('title', 'CUDA_VISIBLE_DEVICES=GPU-3');
    expect(gpus[1]).toHaveTextContent('—');
    for (const r of rows) {
      expect(r).not.toHaveTextContent(/tb-|pid/);
      expect(r).toHaveTextContent('JupyterLab');
    }
    expect(rows[1]).toHaveTextContent('external');
  });

  // A new user's finding 3: Close stopped the session's JupyterLab without asking, while Stop
  // asks. Close asks the same way; Keep open keeps it, Close session closes it.
  it('asks before Close stops the session\'s servers, as Stop does', async () => {
    backend.listSessions.mockResolvedValue([
      { id: 's1', hostId: 'gpu-box', status: 'ready', url: 'http://127.0.0.1:4000/lab', gpu: 'GPU 1', env: '/x', serverId: 'tb-1', window: null },
    ]);
    backend.listServers.mockResolvedValue([]);
    const model = new SessionsState();
    await model.refresh();
    render(Sessions, { model });
    await fireEvent.click(screen.getByRole('button', { name: 'Close' }));
    expect(backend.closeSession).not.toHaveBeenCalled();
    expect(screen.getByTestId('close-question')).toHaveTextContent(/servers it started stop.*running kernels end/);
    await fireEvent.click(screen.getByRole('button', { name: 'Keep open' }));
    expect(backend.closeSession).not.toHaveBeenCalled();
    expect(screen.queryByTestId('close-question')).toBeNull();
    await fireEvent.click(screen.getByRole('button', { name: 'Close' }));
    await fireEvent.click(screen.getByRole('button', { name: 'Close session' }));
    expect(backend.closeSession).toHaveBeenCalledWith('s1');
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
    // A new user's finding 4: the card offered Reopen for the notebook already reopened.
    expect(views.states['gpu-box'].words).toMatch(/^Notebook reopened on /);
    expect(views.running['gpu-box']).toBeUndefined();

    sessionsWith({ id: 'tb-7', url: 'http://127.0.0.1:8890/lab' }, null);
    await stopInSessions('tb-7');
    expect(views.connect.runningServers).toHaveLength(0);
    expect(views.connect.reopened).toBeNull();
    expect(views.states['gpu-box'].words).toBe('Connected');
    expect(views.running['gpu-box']).toBeUndefined();
  });

  // A new user's finding 4: after Sessions ▸ Close the host card still said "Notebook ready"
  // (and Connect showed the closed session). The card follows: nothing said, Connect offered.
  it('drops a session closed in Sessions from its host card', async () => {
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
    await vi.waitFor(() => expect(views.states['gpu-box'].words).toBe('Notebook ready on GPU 1'));

    const sessions = new SessionsState();
    sessions.onClosed = (id) => views.closed(id);
    await sessions.refresh();
    render(Sessions, { model: sessions });
    await fireEvent.click(screen.getByRole('button', { name: 'Close' }));
    await fireEvent.click(screen.getByRole('button', { name: 'Close session' }));
    await vi.waitFor(() => expect(backend.closeSession).toHaveBeenCalledWith('s1'));
    await vi.waitFor(() => expect(views.states['gpu-box']).toBeUndefined());
    expect(views.actions['gpu-box'] ?? 'Connect').toBe('Connect');
    expect(views.connect.sessionId).toBeNull();
  });

  // A new user's finding 7: each Reopen (the second one only brings the window to the front)
  // added "reopened …" to Connect's Details again.
  it('says "reopened" once in Details however often Reopen is pressed', async () => {
    const { HostViews } = await import('../state/host-views.svelte');
    const views = new HostViews();
    backend.startSession.mockResolvedValueOnce('s1');
    backend.gpuSnapshot.mockResolvedValue(null);
    sessionsWith({ id: 'tb-7', url: null }, null);
    await views.start('gpu-box');
    emit('session', { sessionId: 's1', step: 'readGpus', state: 'done', message: '2 GPUs', error: null });
    await vi.waitFor(() => expect(views.connect.runningServers).toHaveLength(1));
    for (let i = 0; i < 3; i++) {
      backend.attachServer.mockResolvedValueOnce('http://127.0.0.1:8890/lab');
      backend.openNotebook.mockResolvedValueOnce('jupyter-1');
      await views.connect.reopen(views.connect.runningServers[0]);
    }
    expect(backend.openNotebook).toHaveBeenCalledTimes(3);
    expect(views.connect.log.filter((l) => l.includes('reopened'))).toHaveLength(1);
  });
});

// Trial of issue 14, findings 9 and 10: Sessions follows the sessions it did not start (the
// tray's), an error belongs to its attempt, and ended attempts leave the live list.
describe('Sessions follows every session', () => {
  const row = (id: string, status: SessionSummary['status'], extra: Partial<SessionSummary> = {}): SessionSummary => ({
    id, hostId: 'labserver', status, url: null, gpu: null, env: null, serverId: null, window: null, ...extra,
  });

  it("shows a tray launch's notebook ready when it is, without Refresh", async () => {
    backend.listSessions.mockResolvedValue([row('s1', 'starting')]);
    backend.listServers.mockResolvedValue([]);
    backend.listSlurmJobs.mockResolvedValue(null);
    const model = new SessionsState();
    await model.listen();
    await model.refresh();
    render(Sessions, { model });
    expect(screen.getByTestId('session-row')).toHaveTextContent('connecting…');
    // The tray's session goes on by itself: its events reach this screen.
    backend.listSessions.mockResolvedValue([
      row('s1', 'ready', { url: 'http://127.0.0.1:4000/lab', gpu: 'GPU 3', env: '/opt/jlab', serverId: 'tb-9' }),
    ]);
    backend.listServers.mockResolvedValue([
      { sessionId: 's1', id: 'tb-9', pid: 9, endpoint: '127.0.0.1:8890', env: '/opt/jlab', gpu: '3', started: 0, managed: true, url: 'http://127.0.0.1:4000/lab' },
    ]);
    emit('session', { sessionId: 's1', step: 'ready', state: 'done', message: 'Jupyter Server 2 is ready', error: null });
    await vi.waitFor(() => expect(screen.getByTestId('session-row')).toHaveTextContent('notebook ready'));
    expect(screen.getByTestId('session-row')).toHaveTextContent('GPU 3');
    expect(screen.getAllByRole('button', { name: 'Open' }).length).toBeGreaterThan(0);
    // Its server is listed for the new status (no Refresh pressed).
    await vi.waitFor(() => expect(screen.getByTestId('server-row')).toHaveTextContent('this session'));
  });

  it("drops a failed attempt's error once a later attempt on the host works, and lists ended rows apart", async () => {
    backend.listSessions.mockResolvedValue([row('s1', 'closed', { gpu: 'GPU 1' }), row('s2', 'failed'), row('s3', 'starting')]);
    const keyError = { code: 'authFailed' as const, message: 'cannot use key file /home/ana/.ssh/config: Could not read key' };
    backend.listServers.mockImplementation(async (id: string) => {
      if (id === 's2') throw keyError;
      return [];
    });
    backend.listSlurmJobs.mockResolvedValue(null);
    const model = new SessionsState();
    await model.listen();
    await model.refresh();
    render(Sessions, { model });
    // The failed attempt is the newest word on the host until another works: its error on its row.
    expect(screen.queryByRole('alert')).toBeNull();
    const failed = screen.getAllByTestId('session-row').find((r) => r.textContent?.includes('failed'));
    expect(failed).toHaveTextContent('Could not read key');
    expect(screen.getAllByTestId('ended-session-row')).toHaveLength(1);

    // The host fixed, the next attempt connects: the error and the failed row go to Ended.
    backend.listSessions.mockResolvedValue([row('s1', 'closed', { gpu: 'GPU 1' }), row('s2', 'failed'), row('s3', 'connected')]);
    emit('session', { sessionId: 's3', step: 'authenticate', state: 'done', message: 'connected', error: null });
    await vi.waitFor(() => expect(screen.getAllByTestId('session-row')).toHaveLength(1));
    expect(screen.getByTestId('session-row')).toHaveTextContent('connected');
    expect(screen.queryByText(/Could not read key/)).toBeNull();
    expect(screen.getByTestId('sessions-ended')).toHaveTextContent('Ended (2)');
    expect(screen.getByTestId('sessions-ended')).not.toHaveAttribute('open');
  });

  it('lists live sessions first, and a dismissed failure goes under Ended', async () => {
    backend.listSessions.mockResolvedValue([
      { ...row('s1', 'failed'), hostId: 'other' },
      row('s2', 'connected'),
      { ...row('s3', 'ready', { url: 'http://127.0.0.1:4000/lab' }), hostId: 'gpu-box' },
    ]);
    backend.listServers.mockResolvedValue([]);
    backend.listSlurmJobs.mockResolvedValue(null);
    const model = new SessionsState();
    await model.refresh();
    render(Sessions, { model });
    const statuses = screen.getAllByTestId('session-row').map((r) => r.getAttribute('data-status'));
    expect(statuses).toEqual(['ready', 'connected', 'failed']);
    await fireEvent.click(screen.getByRole('button', { name: 'Dismiss' }));
    expect(screen.getAllByTestId('session-row')).toHaveLength(2);
    expect(screen.getByTestId('sessions-ended')).toHaveTextContent('Ended (1)');
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
