// A first hour in the app: hosts imported on first start, an environment added by its path and
// kept, the host form's numbers and deletion.
import { fireEvent, render, screen, within } from '@testing-library/svelte';
import { beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('../backend', () => import('../test/mock-backend'));
import { backend, resetBackend } from '../test/mock-backend';
import Hosts from './Hosts.svelte';
import Environment from './Environment.svelte';
import { blankProfile, HostsState } from '../state/hosts.svelte';
import { ADD_PATH_EXAMPLE, EnvironmentsState } from '../state/environments.svelte';
// Tests run in Node: core's discovery script, README and the e2e test are read as text.
import { readFileSync } from 'node:fs';
import { env } from '../test/env-fixtures';
import type { HostEntry } from '../bindings/HostEntry';
import type { ImportPreview } from '../bindings/ImportPreview';
import type { Profile } from '../bindings/Profile';

const local: HostEntry = { id: 'local', kind: 'local', label: 'This computer', profile: null };
const profile = (name: string, extra: Partial<Profile> = {}): Profile => ({ ...blankProfile(), name, host: `${name}.lab`, ...extra });
const saved = (p: Profile): HostEntry => ({ id: p.name, kind: 'saved', label: p.name, profile: p });

beforeEach(() => resetBackend());

describe('first start', () => {
  it('offers ~/.ssh/config hosts with what maps and what is skipped, and imports the chosen', async () => {
    backend.listHosts.mockResolvedValue([local]);
    const preview: ImportPreview = {
      source: 'sshConfig',
      origin: '/home/ana/.ssh/config',
      candidates: [
        { profile: profile('gpu', { user: 'ana', port: 2222 }), saved: false, problems: [] },
        { profile: profile('inner', { jump: 'gpu' }), saved: false, problems: [] },
        { profile: profile('bad', { host: 'a b' }), saved: false, problems: ['host: "a b" is not a valid host name'] },
      ],
      skipped: [{ name: '*', reason: 'config:1: a pattern, not a host' }],
      notes: ['settings with no Tunnelbook equivalent were ignored: forwardx11'],
    };
    backend.previewImport.mockResolvedValue([preview]);
    const model = new HostsState();
    render(Hosts, { model, onConnect: vi.fn() });
    expect(await screen.findByText(/Welcome/)).toBeInTheDocument();
    expect(screen.getByText('ana@gpu.lab:2222')).toBeInTheDocument();
    expect(screen.getByText(/via gpu/)).toBeInTheDocument();
    expect(screen.getByText(/a pattern, not a host/)).toBeInTheDocument();
    expect(screen.getByText(/forwardx11/)).toBeInTheDocument();
    expect(screen.getByLabelText('Import gpu')).toBeChecked();
    expect(screen.getByLabelText('Import bad')).not.toBeChecked();

    backend.importHosts.mockResolvedValueOnce([local, saved(profile('gpu')), saved(profile('inner'))]);
    await fireEvent.click(screen.getByRole('button', { name: 'Import 2 hosts' }));
    expect(backend.importHosts).toHaveBeenCalledWith([
      expect.objectContaining({ name: 'gpu', port: 2222 }),
      expect.objectContaining({ name: 'inner', jump: 'gpu' }),
    ]);
    expect(await screen.findByText('inner')).toBeInTheDocument();
    expect(screen.queryByText(/Welcome/)).toBeNull();
  });

  it('imports a host whose name is taken under a new name, its jumps following', async () => {
    backend.listHosts.mockResolvedValue([local, saved(profile('gpu'))]);
    backend.previewImport.mockResolvedValue([
      {
        source: 'sshConfig',
        origin: 'cfg',
        candidates: [
          { profile: profile('gpu'), saved: true, problems: [] },
          { profile: profile('inner', { jump: 'gpu' }), saved: false, problems: [] },
        ],
        skipped: [],
        notes: [],
      },
    ]);
    const model = new HostsState();
    render(Hosts, { model, onConnect: vi.fn() });
    await fireEvent.click(await screen.findByRole('button', { name: 'Import hosts…' }));
    const rename = await screen.findByLabelText('Name for gpu');
    expect(screen.getByLabelText('Import gpu')).not.toBeChecked();
    await fireEvent.input(rename, { target: { value: 'gpu-2' } });
    await fireEvent.click(screen.getByLabelText('Import gpu'));
    backend.importHosts.mockResolvedValueOnce([local]);
    await fireEvent.click(screen.getByRole('button', { name: 'Import 2 hosts' }));
    expect(backend.importHosts).toHaveBeenCalledWith([
      expect.objectContaining({ name: 'gpu-2' }),
      expect.objectContaining({ name: 'inner', jump: 'gpu-2' }),
    ]);
  });
});

describe('host form and list', () => {
  it('sends "5O609" as no port, says core\'s "not a number", and keeps environment and folder', async () => {
    backend.listHosts.mockResolvedValue([local, saved(profile('gpu'))]);
    backend.previewImport.mockResolvedValue([]);
    const model = new HostsState();
    await model.load();
    render(Hosts, { model, onConnect: vi.fn() });
    await fireEvent.click(screen.getByRole('button', { name: 'Edit gpu' }));
    await fireEvent.input(screen.getByLabelText('Port'), { target: { value: '5O609' } });
    await fireEvent.input(screen.getByLabelText('Python environment'), { target: { value: '/opt/jlab' } });
    await fireEvent.input(screen.getByLabelText('Notebook folder'), { target: { value: '~/work' } });
    backend.saveHost.mockRejectedValueOnce({
      code: 'validation',
      message: 'x',
      fields: [
        { field: 'port', message: 'the port must be between 1 and 65535' },
        { field: 'identityFiles[0]', message: 'key file /k does not exist' },
      ],
    });
    // Core's check of the typed text (trial of #14, finding 18: "must be between 1 and 65535"
    // was wrong advice for a letter O).
    backend.checkPort.mockResolvedValueOnce('the port "5O609" is not a number');
    await fireEvent.click(screen.getByRole('button', { name: 'Save' }));
    expect(backend.checkPort).toHaveBeenCalledWith('5O609');
    expect(backend.saveHost).toHaveBeenCalledWith(
      expect.objectContaining({ port: 0, environment: '/opt/jlab', notebookDir: '~/work' }),
      'gpu',
    );
    expect(await screen.findByText('the port "5O609" is not a number')).toBeInTheDocument();
    expect(screen.queryByText('the port must be between 1 and 65535')).toBeNull();
    expect(screen.getByText('key file /k does not exist')).toBeInTheDocument();
  });

  it('Browse… puts the chosen key file in the form with core\'s verdict, and a good one replaces a refused one', async () => {
    backend.listHosts.mockResolvedValue([local, saved(profile('gpu', { identityFiles: ['/home/ana/.ssh/old_rsa'] }))]);
    backend.previewImport.mockResolvedValue([]);
    const model = new HostsState();
    await model.load();
    render(Hosts, { model, onConnect: vi.fn() });
    await fireEvent.click(screen.getByRole('button', { name: 'Edit gpu' }));
    const keys = screen.getByLabelText('Key files') as HTMLTextAreaElement;
    backend.pickKeyFile.mockResolvedValueOnce('/home/ana/.ssh/id_ed25519.pub');
    backend.checkKeyFile.mockResolvedValueOnce('/home/ana/.ssh/id_ed25519.pub is a public key; the login needs the private key: choose /home/ana/.ssh/id_ed25519 instead');
    await fireEvent.click(screen.getByRole('button', { name: 'Browse…' }));
    expect(await screen.findByText(/is a public key/)).toBeInTheDocument();
    expect(backend.checkKeyFile).toHaveBeenCalledWith('/home/ana/.ssh/id_ed25519.pub');
    expect(keys.value).toBe('/home/ana/.ssh/id_ed25519.pub');
    expect(keys).toHaveAttribute('aria-invalid', 'true');
    backend.pickKeyFile.mockResolvedValueOnce('/home/ana/.ssh/id_ed25519');
    backend.checkKeyFile.mockResolvedValueOnce(null);
    await fireEvent.click(screen.getByRole('button', { name: 'Browse…' }));
    await vi.waitFor(() => expect(keys.value).toBe('/home/ana/.ssh/id_ed25519'));
    expect(screen.queryByText(/is a public key/)).not.toBeInTheDocument();
    // Cancelled: nothing changes.
    backend.pickKeyFile.mockResolvedValueOnce(null);
    await fireEvent.click(screen.getByRole('button', { name: 'Browse…' }));
    expect(keys.value).toBe('/home/ana/.ssh/id_ed25519');
    backend.saveHost.mockResolvedValueOnce([local]);
    await fireEvent.click(screen.getByRole('button', { name: 'Save' }));
    expect(backend.saveHost).toHaveBeenCalledWith(expect.objectContaining({ identityFiles: ['/home/ana/.ssh/id_ed25519'] }), 'gpu');
  });

  it('asks before deleting', async () => {
    backend.listHosts.mockResolvedValue([local, saved(profile('gpu'))]);
    backend.previewImport.mockResolvedValue([]);
    const model = new HostsState();
    await model.load();
    render(Hosts, { model, onConnect: vi.fn() });
    await fireEvent.click(screen.getByRole('button', { name: 'Delete gpu' }));
    expect(backend.deleteHost).not.toHaveBeenCalled();
    expect(screen.getByRole('alert')).toHaveTextContent('Delete gpu and forget');
    backend.deleteHost.mockResolvedValueOnce([local]);
    await fireEvent.click(screen.getByRole('button', { name: 'Delete' }));
    expect(backend.deleteHost).toHaveBeenCalledWith('gpu');
  });
});

describe('Add environment path', () => {
  it('checks a shared path on the host, adds and chooses it, and launches remembering it', async () => {
    const model = new EnvironmentsState();
    backend.listEnvironments.mockResolvedValueOnce([env('python3', { kind: 'system', jupyterLab: false, path: '/usr/bin/python3' })]);
    await model.load('s1');
    const onLaunch = vi.fn();
    render(Environment, { model, gpuLabel: 'GPU 1', onLaunch, canLaunch: true, hostName: 'gpu' });
    await fireEvent.click(screen.getByRole('button', { name: 'Add environment path…' }));
    backend.checkEnvironment.mockResolvedValueOnce(env('nope', { path: '/srv/nope', jupyterLab: false }));
    await fireEvent.input(screen.getByLabelText(/Path of an environment/), { target: { value: '/srv/nope' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Check and add' }));
    expect(await screen.findByText(/no JupyterLab/)).toBeInTheDocument();

    backend.checkEnvironment.mockResolvedValueOnce(env('jlab', { path: '/srv/jlab', configured: true }));
    await fireEvent.input(screen.getByLabelText(/Path of an environment/), { target: { value: '/srv/jlab' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Check and add' }));
    expect(backend.checkEnvironment).toHaveBeenLastCalledWith('s1', '/srv/jlab');
    const radio = await screen.findByDisplayValue('/srv/jlab');
    expect(radio).toBeChecked();
    expect(screen.getByLabelText(/every launch on gpu/)).toBeChecked();
    await fireEvent.click(screen.getByRole('button', { name: 'Start JupyterLab' }));
    expect(onLaunch).toHaveBeenCalledWith('/srv/jlab', true);
  });

  // Trial of issue 14, finding 19: discovery scans /opt/* and /opt/*/*, so "/opt/jlab must be
  // added by path" was wrong. The app's example, README's and the e2e test's shared venv are
  // outside every place core's discovery script looks, and the hint names those places.
  it("gives an example outside every place core's discovery looks, as README and the e2e test do", async () => {
    // The repository root from this file (a variable base: Vite rewrites `new URL(…, import.meta.url)`).
    const here = import.meta.url;
    const text = (path: string) => readFileSync(new URL(`../../../../${path}`, here), 'utf8');
    const script = text('crates/core/src/jupyter/env.rs');
    const readme = text('README.md');
    const firstrun = text('tests/e2e-app/firstrun.mjs');
    // The system-wide scans: `for tb_py in /opt/*/bin/python3 …` and conda's `/opt/*/envs`.
    const scans = [...script.matchAll(/^for tb_py in ([^;\n]*\/opt\/[^;\n]*); do$/gm)].flatMap((m) => m[1].split(/\s+/));
    const envDirs = [...script.matchAll(/(\/opt\/[^\s;]*\/envs)\b/g)].map((m) => `${m[1]}/*/bin/python`);
    const patterns = [...scans, ...envDirs].filter((p) => p.startsWith('/'));
    expect(patterns).toEqual(expect.arrayContaining(['/opt/*/bin/python3', '/opt/*/*/bin/python3']));
    const glob = (p: string) => new RegExp(`^${p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]+')}$`);
    const discovered = (env: string) => patterns.some((p) => glob(p).test(`${env}/bin/python3`) || glob(p).test(`${env}/bin/python`));
    // The patterns do match what they should: the trial's /opt venvs are found without adding.
    expect(discovered('/opt/jlab')).toBe(true);
    expect(discovered('/opt/tunnelbook-test/jlab-venv')).toBe(true);

    const e2eShared = firstrun.match(/const sharedEnv = '([^']+)'/)?.[1];
    expect(e2eShared).toBeDefined();
    const readmeTyped = readme.match(/Add environment path… \(6\), type `([^`]+)`/)?.[1];
    expect(readmeTyped).toBe(e2eShared);
    for (const example of [ADD_PATH_EXAMPLE, e2eShared!]) expect(discovered(example), example).toBe(false);

    const model = new EnvironmentsState();
    backend.listEnvironments.mockResolvedValueOnce([]);
    await model.load('s1');
    render(Environment, { model, gpuLabel: 'GPU 1', onLaunch: vi.fn(), canLaunch: true, hostName: 'gpu' });
    await fireEvent.click(screen.getByRole('button', { name: 'Add environment path…' }));
    expect(screen.getByLabelText(/Path of an environment/)).toHaveAttribute('placeholder', ADD_PATH_EXAMPLE);
    expect(screen.getByTestId('env-add-hint')).toHaveTextContent('/opt/NAME, /opt/GROUP/NAME, /usr/local');
  });
});

describe('a notebook already running on the host', () => {
  it('is offered with its GPU on connect, Reopen attaches to it and opens its window', async () => {
    const { ConnectState } = await import('../state/connect.svelte');
    const Connect = (await import('./Connect.svelte')).default;
    const { gpu, report } = await import('../test/gpu-fixtures');
    const { emit } = await import('../test/mock-backend');
    const model = new ConnectState();
    backend.startSession.mockResolvedValueOnce('s1');
    backend.listServers.mockResolvedValueOnce([
      { sessionId: 's1', id: 'tb-7', pid: 42, endpoint: '127.0.0.1:8890', env: '/opt/jlab', gpu: 'GPU-1', started: null, managed: true, url: null },
    ]);
    backend.gpuSnapshot.mockResolvedValueOnce(report([gpu(0, 0, 0), gpu(1, 0, 0)], []));
    await model.start('gpu-box');
    emit('session', { sessionId: 's1', step: 'readGpus', state: 'done', message: '2 GPUs', error: null });
    render(Connect, { model, onPickGpu: vi.fn(), savedEnvironment: '/opt/jlab', onLaunchSaved: vi.fn() });
    const offer = await screen.findByTestId('running-notebook');
    expect(offer).toHaveTextContent('Notebook running on GPU 1');
    expect(screen.getByText(/starts another server next to it/)).toBeInTheDocument();
    backend.attachServer.mockResolvedValueOnce('http://127.0.0.1:41234/lab?token=t');
    await fireEvent.click(screen.getByRole('button', { name: 'Reopen' }));
    expect(backend.attachServer).toHaveBeenCalledWith('s1', 'tb-7');
    expect(backend.openNotebook).toHaveBeenCalledWith('http://127.0.0.1:41234/lab?token=t', 'JupyterLab — gpu-box — GPU 1');
    expect(await screen.findByText('127.0.0.1:41234')).toBeInTheDocument();
  });
});

describe('one connection per host', () => {
  it('Connect on a host that is connected shows its session and dials no second one', async () => {
    const { HostViews } = await import('../state/host-views.svelte');
    const { emit } = await import('../test/mock-backend');
    backend.listServers.mockResolvedValue([]);
    backend.gpuSnapshot.mockResolvedValue(null);
    const views = new HostViews();
    backend.startSession.mockResolvedValueOnce('s1');
    await views.start('gpu-box');
    emit('session', { sessionId: 's1', step: 'readGpus', state: 'done', message: '2 GPUs', error: null });
    const first = views.connect;
    // The backend says s1 is gpu-box's live connection: Connect shows it, dials nothing.
    backend.liveSession.mockResolvedValueOnce('s1');
    await views.start('gpu-box');
    expect(backend.liveSession).toHaveBeenLastCalledWith('gpu-box');
    expect(backend.startSession).toHaveBeenCalledTimes(1);
    expect(views.connect).toBe(first);
    expect(views.connect.sessionId).toBe('s1');
    expect(views.connect.phase).toBe('connected');
    // Once it was closed (Sessions ▸ Close) there is none: Connect dials again.
    backend.liveSession.mockResolvedValueOnce(null);
    backend.startSession.mockResolvedValueOnce('s2');
    await views.start('gpu-box');
    expect(backend.startSession).toHaveBeenCalledTimes(2);
    expect(views.connect.sessionId).toBe('s2');
  });

  it("a session started elsewhere (the tray) is shown as it stands: its notebook ready on its GPU", async () => {
    const { HostViews } = await import('../state/host-views.svelte');
    const views = new HostViews();
    backend.liveSession.mockResolvedValueOnce('s7');
    backend.listSessions.mockResolvedValueOnce([
      { id: 's7', hostId: 'gpu-box', status: 'ready', gpu: 'GPU 1', url: 'http://127.0.0.1:41234/lab', serverId: 'tb-1', window: null, env: '/opt/jlab' },
    ]);
    await views.start('gpu-box');
    expect(backend.startSession).not.toHaveBeenCalled();
    expect(views.connect.sessionId).toBe('s7');
    expect(views.connect.phase).toBe('ready');
    expect(views.connect.summary?.gpu).toBe('GPU 1');
    expect(views.states['gpu-box']).toEqual({ words: 'Notebook ready on GPU 1', tone: 'ok' });
    // One still connecting is followed: its events finish it.
    const { emit } = await import('../test/mock-backend');
    backend.liveSession.mockResolvedValueOnce('s8');
    backend.listSessions.mockResolvedValueOnce([
      { id: 's8', hostId: 'other', status: 'starting', gpu: null, url: null, serverId: null, window: null, env: null },
    ]);
    backend.listServers.mockResolvedValue([]);
    await views.start('other');
    expect(views.connect.phase).toBe('running');
    expect(views.states['other'].words).toBe('Connecting…');
    emit('session', { sessionId: 's8', step: 'readGpus', state: 'done', message: '2 GPUs', error: null });
    expect(views.connect.phase).toBe('connected');
    expect(backend.startSession).not.toHaveBeenCalled();
  });
});

describe("the tray's sessions on the host cards", () => {
  it('a session the tray starts is followed in its host\'s view (the card), the shown host stays', async () => {
    const { HostViews } = await import('../state/host-views.svelte');
    const { emit } = await import('../test/mock-backend');
    backend.listServers.mockResolvedValue([]);
    backend.gpuSnapshot.mockResolvedValue(null);
    const views = new HostViews();
    backend.startSession.mockResolvedValueOnce('s1');
    await views.start('other');
    // The session connects while the list is being read: the event is not lost.
    let answer: (v: unknown) => void = () => {};
    backend.listSessions.mockReturnValueOnce(new Promise((r) => (answer = r)));
    const following = views.follow('gpu-box', 's2');
    await vi.waitFor(() => expect(backend.listSessions).toHaveBeenCalled());
    emit('session', { sessionId: 's2', step: 'readGpus', state: 'done', message: '2 GPUs', error: null });
    answer([{ id: 's2', hostId: 'gpu-box', status: 'starting', gpu: null, url: null, serverId: null, window: null, env: null }]);
    await following;
    expect(views.byHost['gpu-box'].phase).toBe('connected');
    expect(views.states['gpu-box'].words).toBe('Connected');
    expect(views.current).toBe('other');
    expect(backend.startSession).toHaveBeenCalledTimes(1);
  });
});

describe('host cards show the live state of their host', () => {
  it('connecting, connected, starting JupyterLab, notebook ready on GPU N, connection lost', async () => {
    const { HostViews } = await import('../state/host-views.svelte');
    const { emit } = await import('../test/mock-backend');
    backend.listHosts.mockResolvedValue([local, saved(profile('gpu-box'))]);
    backend.gpuSnapshot.mockResolvedValue(null);
    backend.listServers.mockResolvedValueOnce([
      { sessionId: 's1', id: 'tb-7', pid: 42, endpoint: '127.0.0.1:8890', env: '/opt/jlab', gpu: '1', started: null, managed: true, url: null },
    ]);
    const views = new HostViews();
    const model = new HostsState();
    await model.load();
    // Trial of issue 14, finding 17: the main button says what it does; no two lines say the same.
    const props = () => ({ model, onConnect: vi.fn(), states: views.states, running: views.running, actions: views.actions });
    const shown = render(Hosts, props());
    const card = async () => (await screen.findByTestId('host-state')).textContent;
    const mainOf = (name: string) => within(screen.getByText(name, { selector: '.name' }).closest('li')!).getByTestId('host-main');
    expect(mainOf('gpu-box')).toHaveTextContent(/^Connect$/);
    backend.startSession.mockResolvedValueOnce('s1');
    await views.start('gpu-box');
    await shown.rerender(props());
    expect(await card()).toBe('Connecting…');
    expect(mainOf('gpu-box')).toHaveTextContent('Show progress');
    emit('session', { sessionId: 's1', step: 'readGpus', state: 'done', message: '2 GPUs', error: null });
    await vi.waitFor(() => expect(views.connect.runningServers).toHaveLength(1));
    await shown.rerender(props());
    expect(await card()).toBe('Connected');
    expect(screen.getByTestId('host-running')).toHaveTextContent('Notebook running on 1');
    expect(mainOf('gpu-box')).toHaveTextContent('Start another notebook…');
    expect(mainOf('This computer')).toHaveTextContent(/^Connect$/);
    backend.launchNotebook.mockResolvedValueOnce(undefined);
    await views.connect.launch(null, null);
    await shown.rerender(props());
    expect(await card()).toBe('Connected — starting JupyterLab…');
    backend.listSessions.mockResolvedValue([
      { id: 's1', hostId: 'gpu-box', status: 'ready', gpu: 'GPU 1', url: 'http://127.0.0.1:41234/lab', serverId: 'tb-8', window: null, env: '/opt/jlab' },
    ]);
    emit('session', { sessionId: 's1', step: 'ready', state: 'done', message: 'ready', error: null });
    await vi.waitFor(() => expect(views.connect.summary).not.toBeNull());
    await shown.rerender(props());
    expect(await card()).toBe('Notebook ready on GPU 1');
    expect(mainOf('gpu-box')).toHaveTextContent('Show notebook');
    // Trial of s29, finding 3: "Show notebook" shows the notebook's window, in one click.
    backend.liveSession.mockResolvedValueOnce('s1');
    backend.openNotebook.mockClear();
    await views.start('gpu-box');
    expect(backend.openNotebook).toHaveBeenCalledWith('http://127.0.0.1:41234/lab', 'JupyterLab — gpu-box — GPU 1');
    emit('session', { sessionId: 's1', step: 'openTunnel', state: 'running', message: 'connection lost', error: null });
    await shown.rerender(props());
    expect(await card()).toMatch(/^Connection lost — reconnecting/);
    // Only the host with a session says anything.
    expect(screen.getAllByTestId('host-state')).toHaveLength(1);
  });
});

describe('each host keeps its own view', () => {
  it('a second host that fails does not take over the first one', async () => {
    const { HostViews } = await import('../state/host-views.svelte');
    const { emit } = await import('../test/mock-backend');
    backend.listServers.mockResolvedValue([]);
    backend.gpuSnapshot.mockResolvedValue(null);
    const views = new HostViews();
    backend.startSession.mockResolvedValueOnce('s1');
    await views.start('gpu-box');
    emit('session', { sessionId: 's1', step: 'readGpus', state: 'done', message: '2 GPUs', error: null });
    expect(views.connect.phase).toBe('connected');

    backend.startSession.mockResolvedValueOnce('s2');
    await views.start('broken');
    const error = { code: 'unreachable' as const, message: 'Cannot reach broken:22: nothing accepts connections' };
    emit('session', { sessionId: 's2', step: 'connect', state: 'failed', message: error.message, error });
    expect(views.connect.hostId).toBe('broken');
    expect(views.connect.phase).toBe('failed');
    // The first host's view is as it was.
    expect(views.byHost['gpu-box'].phase).toBe('connected');
    expect(views.byHost['gpu-box'].sessionId).toBe('s1');
    // The error is said once, in words, with what to do next to it.
    const Connect = (await import('./Connect.svelte')).default;
    const onEditHost = vi.fn();
    const shown = render(Connect, { model: views.connect, onPickGpu: vi.fn(), onEditHost });
    const { within } = await import('@testing-library/svelte');
    expect(within(screen.getByRole('list', { name: 'Progress' })).getAllByText(/nothing accepts connections/)).toHaveLength(1);
    await fireEvent.click(screen.getByRole('button', { name: 'Edit host' }));
    expect(onEditHost).toHaveBeenCalledWith('broken');
    backend.startSession.mockResolvedValueOnce('s3');
    await fireEvent.click(screen.getByRole('button', { name: 'Retry' }));
    expect(backend.startSession).toHaveBeenLastCalledWith('broken');
    shown.unmount();

    views.show('gpu-box');
    expect(views.connect.sessionId).toBe('s1');
    expect(views.hostIds).toEqual(['gpu-box', 'broken']);
  });
});

describe("each host keeps its own GPU picker and environments", () => {
  it('a second host connecting, then failing, neither resets nor takes over the first host\'s choices', async () => {
    const { HostViews } = await import('../state/host-views.svelte');
    const { emit } = await import('../test/mock-backend');
    const { gpu, report } = await import('../test/gpu-fixtures');
    backend.listServers.mockResolvedValue([]);
    backend.gpuSnapshot.mockResolvedValue(null);
    backend.watchGpus.mockResolvedValue(undefined);
    backend.unwatchGpus.mockResolvedValue(undefined);
    const views = new HostViews();

    // gpu-box: connected, GPU 0 chosen over the recommended GPU 1, /opt/jlab chosen.
    backend.startSession.mockResolvedValueOnce('s1');
    await views.start('gpu-box');
    emit('session', { sessionId: 's1', step: 'readGpus', state: 'done', message: '2 GPUs', error: null });
    expect(views.liveSession).toBe('s1');
    await views.gpus.watch('s1');
    emit('gpus', { sessionId: 's1', report: report([gpu(0, 9000, 40), gpu(1, 0, 0)]), error: null });
    expect(views.gpus.selected).toBe('GPU-1');
    views.gpus.choose('GPU-0');
    backend.listEnvironments.mockResolvedValueOnce([env('venv'), env('jlab', { path: '/opt/jlab' })]);
    await views.environments.load('s1');
    views.environments.choose('/opt/jlab');
    const firstGpus = views.gpus;

    // broken: its own empty picker and environments while it connects, and after it fails.
    backend.startSession.mockResolvedValueOnce('s2');
    await views.start('broken');
    expect(views.gpus).not.toBe(firstGpus);
    expect(views.gpus.report).toBeNull();
    expect(views.environments.envs).toEqual([]);
    const error = { code: 'unreachable' as const, message: 'Cannot reach broken:22: nothing accepts connections' };
    emit('session', { sessionId: 's2', step: 'connect', state: 'failed', message: error.message, error });
    expect(views.liveSession).toBeNull();
    // A GPU report of the first host (its picker still polling) does not land in the second's.
    emit('gpus', { sessionId: 's1', report: report([gpu(0, 9000, 40), gpu(1, 0, 0)]), error: null });
    expect(views.gpus.report).toBeNull();
    expect(views.gpus.selected).toBeNull();

    // Back on gpu-box: its picker, choice and environment are as they were.
    views.show('gpu-box');
    expect(views.gpus).toBe(firstGpus);
    expect(views.gpus.selected).toBe('GPU-0');
    expect(views.gpus.cards.map((c) => c.label)).toEqual(['GPU 0', 'GPU 1']);
    expect(views.environments.selected).toBe('/opt/jlab');
    expect(views.environments.sessionId).toBe('s1');
    expect(views.connect.phase).toBe('connected');
    // Leaving the GPU screen and showing it again keeps the choice.
    await views.gpus.stop();
    await views.gpus.watch('s1');
    expect(views.gpus.selected).toBe('GPU-0');

    // Reconnecting broken replaces only broken's views.
    backend.startSession.mockResolvedValueOnce('s3');
    await views.start('broken');
    views.show('gpu-box');
    expect(views.gpus.selected).toBe('GPU-0');
    expect(views.environments.selected).toBe('/opt/jlab');
  });
});

describe("the tray's one-click launch with a notebook already running", () => {
  it('follows the tray\'s session and offers Reopen, starting nothing', async () => {
    const { HostViews } = await import('../state/host-views.svelte');
    const server = { sessionId: 's9', id: 'tb-7', pid: 99, endpoint: 'unix:/x/tb-7.sock', env: '/opt/jlab', gpu: '1', started: null, managed: true, url: null };
    backend.listServers.mockResolvedValue([server]);
    backend.gpuSnapshot.mockResolvedValue(null);
    const views = new HostViews();
    await views.adopt('gpu-box', 's9');
    expect(backend.startSession).not.toHaveBeenCalled();
    expect(backend.launchNotebook).not.toHaveBeenCalled();
    expect(views.connect.phase).toBe('connected');
    expect(views.connect.sessionId).toBe('s9');
    expect(views.running['gpu-box'].map((r) => r.server.id)).toEqual(['tb-7']);
    const Connect = (await import('./Connect.svelte')).default;
    render(Connect, { model: views.connect, onPickGpu: vi.fn(), savedEnvironment: '/opt/jlab', onLaunchSaved: vi.fn() });
    expect(await screen.findByTestId('running-notebook')).toHaveTextContent('Notebook running on 1');
    expect(screen.getByText(/starts another server next to it/)).toBeInTheDocument();
    backend.attachServer.mockResolvedValueOnce('http://127.0.0.1:41234/lab');
    await fireEvent.click(screen.getByRole('button', { name: 'Reopen' }));
    expect(backend.attachServer).toHaveBeenCalledWith('s9', 'tb-7');
    expect(backend.launchNotebook).not.toHaveBeenCalled();
  });
});

describe('Lmod modules in the Environment step', () => {
  it('a module environment chosen for a launch is kept with its module; another venv keeps the module list', async () => {
    const lmod = env('python/3.11', { kind: 'module', path: '/opt/lmod/apps/python/3.11/bin/python3' });
    const venv = env('venv');
    backend.rememberEnvironment.mockResolvedValue([local]);
    const model = new HostsState();
    await model.rememberLaunch(profile('hpc'), lmod.path, [venv, lmod]);
    expect(backend.rememberEnvironment).toHaveBeenLastCalledWith('hpc', lmod.path, ['python/3.11']);
    // The same choice again: nothing to save.
    backend.rememberEnvironment.mockClear();
    await model.rememberLaunch(profile('hpc', { environment: lmod.path, modules: ['python/3.11'] }), lmod.path, [venv, lmod]);
    expect(backend.rememberEnvironment).not.toHaveBeenCalled();
    // A plain venv: its path, the saved modules left as they are.
    await model.rememberLaunch(profile('hpc', { environment: lmod.path, modules: ['python/3.11'] }), venv.path, [venv, lmod]);
    expect(backend.rememberEnvironment).toHaveBeenLastCalledWith('hpc', venv.path, null);
  });

  it('says the module is loaded first when a module environment is chosen', async () => {
    const lmod = env('python/3.11', { kind: 'module', path: '/opt/lmod/apps/python/3.11/bin/python3' });
    backend.listEnvironments.mockResolvedValueOnce([env('venv'), lmod]);
    const model = new EnvironmentsState();
    await model.load('s1');
    model.choose(lmod.path);
    render(Environment, { model, gpuLabel: 'GPU 1', onLaunch: vi.fn(), canLaunch: true, hostName: 'hpc' });
    expect(screen.getByText(/loaded first/)).toHaveTextContent('module python/3.11 loaded first');
  });
});
