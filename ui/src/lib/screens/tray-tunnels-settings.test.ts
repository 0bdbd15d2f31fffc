import { fireEvent, render, screen, within } from '@testing-library/svelte';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('../backend', () => import('../test/mock-backend'));
import { backend, resetBackend } from '../test/mock-backend';
import Tunnels from './Tunnels.svelte';
import Settings from './Settings.svelte';
import QuitDialog from '../components/QuitDialog.svelte';
import { TunnelsState } from '../state/tunnels.svelte';
import { SettingsState } from '../state/settings.svelte';
import type { HostEntry } from '../bindings/HostEntry';
import type { TunnelsView } from '../bindings/TunnelsView';
import type { ForwardView } from '../bindings/ForwardView';
import type { Settings as SettingsT } from '../bindings/Settings';
import type { TrayMenu } from '../bindings/TrayMenu';
import { blankProfile } from '../state/hosts.svelte';

const gpuBox: HostEntry = {
  id: 'gpu-box',
  kind: 'saved',
  label: 'gpu-box',
  profile: { ...blankProfile(), name: 'gpu-box', host: '10.0.0.5' },
};
const hosts: HostEntry[] = [{ id: 'local', kind: 'local', label: 'This computer', profile: null }, gpuBox];

const zero = { openConnections: 0, totalConnections: 0, bytesUp: 0, bytesDown: 0 };
const running: ForwardView = {
  index: 0,
  rule: { enabled: true, kind: 'local', bind: '127.0.0.1', port: 0, host: '127.0.0.1', host_port: 8080 },
  runningId: 'f1',
  description: '127.0.0.1:43210 -> 127.0.0.1:8080',
  localAddr: '127.0.0.1:43210',
  url: 'http://127.0.0.1:43210/',
  counters: { openConnections: 1, totalConnections: 3, bytesUp: 2048, bytesDown: 5 * 1024 * 1024 },
  error: null,
  notice: null,
};
const view = (over: Partial<TunnelsView> = {}): TunnelsView => ({
  hostId: 'gpu-box',
  sessionId: 's1',
  rules: [running],
  oneOff: [],
  forwarding: null,
  ...over,
});

beforeEach(() => resetBackend());
afterEach(() => vi.useRealTimers());

describe('Tunnels screen', () => {
  it('lists saved rules with live counters, toggles and adds rules', async () => {
    backend.listForwards.mockResolvedValue(view());
    const model = new TunnelsState();
    render(Tunnels, { model, hosts });
    const row = await screen.findByTestId('rule-row');
    expect(within(row).getByText('Local (C2S)')).toBeInTheDocument();
    expect(within(row).getByText('127.0.0.1:43210')).toBeInTheDocument();
    expect(within(row).getByText('running')).toBeInTheDocument();
    expect(within(row).getByTestId('rule-connections')).toHaveTextContent('3 (1 open)');
    expect(within(row).getByTestId('rule-bytes')).toHaveTextContent('↑ 2.0 KiB ↓ 5.0 MiB');
    expect(screen.getByTestId('tunnels-connected')).toHaveTextContent('connected');

    // Toggle off: the backend saves it in the profile and stops it.
    const stopped: ForwardView = { ...running, rule: { ...running.rule, enabled: false }, runningId: null, localAddr: null, url: null, counters: zero };
    backend.setForwardEnabled.mockResolvedValueOnce(view({ rules: [stopped] }));
    await fireEvent.click(screen.getByLabelText('Enable rule 1'));
    expect(backend.setForwardEnabled).toHaveBeenCalledWith('gpu-box', 0, false);
    expect(await screen.findByText('stopped')).toBeInTheDocument();

    // Add a remote (S2C) rule.
    backend.saveForward.mockResolvedValueOnce(view({ rules: [stopped, { ...running, index: 1 }] }));
    await fireEvent.click(screen.getByRole('button', { name: 'New rule' }));
    await fireEvent.change(screen.getByLabelText('Type'), { target: { value: 'remote' } });
    await fireEvent.input(screen.getByLabelText('Port (0 = any free)'), { target: { value: '9000' } });
    await fireEvent.input(screen.getByLabelText('To port'), { target: { value: '3000' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Add rule' }));
    expect(backend.saveForward).toHaveBeenCalledWith('gpu-box', null, {
      enabled: true,
      kind: 'remote',
      bind: '127.0.0.1',
      port: 9000,
      host: '127.0.0.1',
      host_port: 3000,
    });
    expect(await screen.findAllByTestId('rule-row')).toHaveLength(2);
  });

  it("names the server's forwarding policy as soon as the host is connected, before any rule runs", async () => {
    const policy = 'the server forbids TCP port forwarding (sshd_config: AllowTcpForwarding no or PermitOpen none)';
    backend.listForwards.mockResolvedValue(view({ rules: [], forwarding: policy }));
    const model = new TunnelsState();
    render(Tunnels, { model, hosts });
    expect(await screen.findByTestId('tunnels-policy')).toHaveTextContent('AllowTcpForwarding no');
    expect(backend.startOneOff).not.toHaveBeenCalled();
  });

  // A new user's finding 5: a rule with port 0 keeps its port; when it was taken at the start,
  // the row says which port it listens on instead.
  it("says so on a rule's row when its port of last time was taken", async () => {
    const notice = 'port 43210 (its port last time) is taken now: it listens on port 43311';
    backend.listForwards.mockResolvedValue(view({ rules: [{ ...running, localAddr: '127.0.0.1:43311', notice }] }));
    const model = new TunnelsState();
    render(Tunnels, { model, hosts });
    const row = await screen.findByTestId('rule-row');
    expect(within(row).getByTestId('rule-notice')).toHaveTextContent(notice);
    expect(within(row).getByText('127.0.0.1:43311')).toBeInTheDocument();
  });

  it('says nothing about the policy where forwarding is allowed', async () => {
    backend.listForwards.mockResolvedValue(view({ rules: [] }));
    const model = new TunnelsState();
    render(Tunnels, { model, hosts });
    await screen.findByText('No saved rules.');
    expect(screen.queryByTestId('tunnels-policy')).not.toBeInTheDocument();
  });

  it('starts a one-off forward and opens it', async () => {
    backend.listForwards.mockResolvedValue(view({ rules: [] }));
    const model = new TunnelsState();
    render(Tunnels, { model, hosts });
    await screen.findByText('No saved rules.');
    backend.startOneOff.mockResolvedValueOnce(view({ rules: [], oneOff: [{ ...running, index: null }] }));
    await fireEvent.click(screen.getByRole('button', { name: 'Forward' }));
    expect(backend.startOneOff).toHaveBeenCalledWith('gpu-box', {
      kind: 'local',
      bind: '127.0.0.1',
      port: 0,
      host: '127.0.0.1',
      host_port: 6006,
    });
    const row = await screen.findByTestId('oneoff-row');
    await fireEvent.click(within(row).getByRole('button', { name: 'Open' }));
    expect(backend.openInBrowser).toHaveBeenCalledWith('http://127.0.0.1:43210/');
  });

  it('says why a rule could not start', async () => {
    backend.listForwards.mockResolvedValue(view({ sessionId: null, rules: [] }));
    const model = new TunnelsState();
    render(Tunnels, { model, hosts });
    expect(await screen.findByText(/not connected/)).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Forward' })).toBeDisabled();
    backend.saveForward.mockRejectedValueOnce({ code: 'validation', message: 'local port 22 is already in use' });
    await fireEvent.click(screen.getByRole('button', { name: 'New rule' }));
    await fireEvent.click(screen.getByRole('button', { name: 'Add rule' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('already in use');
  });
});

const defaults: SettingsT = {
  refreshIntervalSecs: 5,
  hostKeyPolicy: 'ask',
  startAtLogin: false,
  theme: 'system',
  notifyGpuFree: [],
  trayNoticeShown: false,
  gpuFree: { maxUtilizationPercent: 10, maxMemoryPercent: 10, minFreeMemoryMib: 0, ownAsFree: false },
};
const tray: TrayMenu = {
  items: [
    { kind: 'submenu', label: 'This computer', items: [{ kind: 'action', id: 'connect:local', label: 'Connect and open notebook' }] },
    { kind: 'separator' },
    { kind: 'info', label: 'gpu-box: 2 of 4 GPUs free' },
    { kind: 'separator' },
    { kind: 'action', id: 'show', label: 'Show Tunnelbook' },
    { kind: 'action', id: 'quit', label: 'Quit' },
  ],
};

describe('Settings screen', () => {
  async function open() {
    backend.getSettings.mockResolvedValue(defaults);
    backend.appPaths.mockResolvedValue({ home: '/h', settings: '/h/settings.toml', logs: '/h/logs' });
    backend.trayMenu.mockResolvedValue(tray);
    const model = new SettingsState();
    await model.load();
    render(Settings, { model, hosts });
    return model;
  }

  it('saves the edited settings and applies the theme', async () => {
    await open();
    await fireEvent.input(screen.getByLabelText('GPU refresh interval (seconds)'), { target: { value: '10' } });
    await fireEvent.change(screen.getByLabelText('Theme'), { target: { value: 'dark' } });
    await fireEvent.change(screen.getByLabelText('Unknown host keys'), { target: { value: 'strict' } });
    await fireEvent.click(screen.getByLabelText('Start at login'));
    await fireEvent.click(screen.getByLabelText('gpu-box'));
    await fireEvent.input(screen.getByLabelText('% utilization'), { target: { value: '5' } });
    await fireEvent.input(screen.getByLabelText(/MiB free/), { target: { value: '8192' } });
    const expected = {
      ...defaults,
      refreshIntervalSecs: 10,
      theme: 'dark',
      hostKeyPolicy: 'strict',
      startAtLogin: true,
      notifyGpuFree: ['gpu-box'],
      gpuFree: { ...defaults.gpuFree, maxUtilizationPercent: 5, minFreeMemoryMib: 8192 },
    };
    backend.saveSettings.mockResolvedValueOnce(expected);
    await fireEvent.click(screen.getByRole('button', { name: 'Save settings' }));
    expect(backend.saveSettings).toHaveBeenCalledWith(expected);
    expect(await screen.findByText('Saved.')).toBeInTheDocument();
    expect(document.documentElement.dataset.theme).toBe('dark');
  });

  it('shows the field message for an invalid interval', async () => {
    await open();
    backend.saveSettings.mockRejectedValueOnce({
      code: 'validation',
      message: 'x',
      fields: [{ field: 'refreshIntervalSecs', message: 'The refresh interval must be between 1 and 3600 seconds.' }],
    });
    await fireEvent.click(screen.getByRole('button', { name: 'Save settings' }));
    expect(await screen.findByText(/between 1 and 3600/)).toBeInTheDocument();
    expect(screen.getByLabelText('GPU refresh interval (seconds)')).toHaveAttribute('aria-invalid', 'true');
  });

  it('shows the logs path and forgets secrets after confirming; the tray menu is not a setting', async () => {
    await open();
    expect(screen.getByTestId('logs-path')).toHaveTextContent('/h/logs');
    await fireEvent.click(screen.getByRole('button', { name: 'Open folder' }));
    expect(backend.openLogsFolder).toHaveBeenCalled();
    // The tray's model is checked by the tray tests, not shown among the user's settings.
    expect(screen.queryByText('Tray menu')).toBeNull();

    backend.forgetAllSecrets.mockResolvedValueOnce(1);
    await fireEvent.click(screen.getByRole('button', { name: 'Forget all secrets…' }));
    expect(backend.forgetAllSecrets).not.toHaveBeenCalled();
    await fireEvent.click(screen.getByRole('button', { name: 'Forget all secrets' }));
    expect(backend.forgetAllSecrets).toHaveBeenCalledTimes(1);
    expect(await screen.findByText('1 remembered secret(s) forgotten.')).toBeInTheDocument();
  });
});

describe('Quit dialog', () => {
  it('asks whether to stop the remote notebooks', async () => {
    const onAnswer = vi.fn();
    const onCancel = vi.fn();
    render(QuitDialog, { onAnswer, onCancel });
    await fireEvent.click(screen.getByRole('button', { name: 'Leave them running and quit' }));
    expect(onAnswer).toHaveBeenCalledWith(false);
    await fireEvent.click(screen.getByRole('button', { name: 'Stop notebooks and quit' }));
    expect(onAnswer).toHaveBeenCalledWith(true);
    await fireEvent.click(screen.getByRole('button', { name: 'Cancel' }));
    expect(onCancel).toHaveBeenCalled();
  });

  // Trial of issue 14, finding 16: the default (blue, focused: Enter) is the safe choice, never
  // the one that ends the kernels.
  it('makes leaving the notebooks running the default, not stopping them', async () => {
    const onAnswer = vi.fn();
    const onCancel = vi.fn();
    render(QuitDialog, { onAnswer, onCancel });
    const leave = screen.getByRole('button', { name: 'Leave them running and quit' });
    const stop = screen.getByRole('button', { name: 'Stop notebooks and quit' });
    await vi.waitFor(() => expect(document.activeElement).toBe(leave));
    expect(leave).toHaveClass('primary');
    expect(stop).not.toHaveClass('primary');
    expect(stop).toHaveClass('danger');
    await fireEvent.keyDown(window, { key: 'Escape' });
    expect(onCancel).toHaveBeenCalled();
    expect(onAnswer).not.toHaveBeenCalled();
  });

  it('says until when a SLURM job left running keeps running (issue 20)', () => {
    render(QuitDialog, {
      onAnswer: vi.fn(),
      onCancel: vi.fn(),
      slurmJobs: [
        { host: 'login-node', jobId: '41', endTime: '2026-11-30T21:45:00' },
        { host: 'login-node', jobId: '42', endTime: null },
      ],
    });
    const lines = screen.getAllByTestId('quit-slurm-job');
    expect(lines[0]).toHaveTextContent('SLURM job 41 on login-node keeps running until 2026-11-30 21:45:00 (its time limit');
    expect(lines[0]).toHaveTextContent('tunnelbook attach login-node');
    expect(lines[1]).toHaveTextContent('keeps running until its time limit');
  });
});
