import { fireEvent, render, screen } from '@testing-library/svelte';
import { beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('../backend', () => import('../test/mock-backend'));
import { backend, emit, resetBackend } from '../test/mock-backend';
import Hosts from './Hosts.svelte';
import GpuPicker from './GpuPicker.svelte';
import PromptDialog from '../components/PromptDialog.svelte';
import { HostsState } from '../state/hosts.svelte';
import { GpusState } from '../state/gpus.svelte';
import { PromptsState } from '../state/prompts.svelte';
import type { HostEntry } from '../bindings/HostEntry';

const local: HostEntry = { id: 'local', kind: 'local', label: 'This computer', profile: null };

beforeEach(() => resetBackend());

describe('Hosts screen', () => {
  it('lists this computer and shows per-field messages from the backend', async () => {
    backend.listHosts.mockResolvedValue([local]);
    const model = new HostsState();
    await model.load();
    render(Hosts, { model, onConnect: vi.fn() });
    expect(screen.getByText('This computer')).toBeInTheDocument();

    await fireEvent.click(screen.getByRole('button', { name: 'Add host' }));
    backend.saveHost.mockRejectedValueOnce({
      code: 'validation',
      message: 'x',
      fields: [{ field: 'host', message: 'Enter a host name or address.' }],
    });
    await fireEvent.input(screen.getByLabelText('Name'), { target: { value: 'gpu-box' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Save' }));
    const message = await screen.findByText('Enter a host name or address.');
    expect(screen.getByLabelText('Host')).toHaveAttribute('aria-invalid', 'true');
    expect(screen.getByLabelText('Host')).toHaveAccessibleDescription(message.textContent ?? '');

    const saved: HostEntry = {
      id: 'gpu-box',
      kind: 'saved',
      label: 'gpu-box',
      profile: { ...(await import('../state/hosts.svelte')).blankProfile(), name: 'gpu-box', host: '10.0.0.5' },
    };
    backend.saveHost.mockResolvedValueOnce([local, saved]);
    await fireEvent.input(screen.getByLabelText('Host'), { target: { value: '10.0.0.5' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Save' }));
    expect(await screen.findByText('gpu-box')).toBeInTheDocument();
    expect(backend.saveHost).toHaveBeenLastCalledWith(expect.objectContaining({ name: 'gpu-box', host: '10.0.0.5', port: 22 }), null);
    expect(screen.queryByRole('form')).toBeNull();
  });
});

describe('GPU picker', () => {
  it('highlights free GPUs and offers CPU only', () => {
    const model = new GpusState();
    model.apply({
      sessionId: 's1',
      recommended: 'GPU-b',
      reason: null,
      gpus: [
        { index: 0, uuid: 'GPU-a', name: 'A100', memoryUsedMib: 30000, memoryTotalMib: 40960, utilizationPct: 97, temperatureC: 70, powerW: 300, powerLimitW: 400, free: false, processes: [{ pid: 42, user: 'bob', name: 'python', memoryMib: 30000 }] },
        { index: 1, uuid: 'GPU-b', name: 'A100', memoryUsedMib: 0, memoryTotalMib: 40960, utilizationPct: 0, temperatureC: 35, powerW: 50, powerLimitW: 400, free: true, processes: [] },
      ],
    });
    render(GpuPicker, { model });
    const radios = screen.getAllByRole('radio');
    expect(radios).toHaveLength(3);
    expect(radios[1]).toBeChecked();
    expect(screen.getByText(/bob · python/)).toBeInTheDocument();
    expect(screen.getAllByTestId('gpu-card')[1]).toHaveClass('free');
    expect(screen.getByText('CPU only')).toBeInTheDocument();
  });
});

describe('Prompt dialog', () => {
  it('shows the fingerprint and answers "trust"', async () => {
    const model = new PromptsState();
    await model.start();
    render(PromptDialog, { model });
    emit('prompt', { id: 7, question: { kind: 'hostKey', detail: { host: 'gpu-box', port: 22, algorithm: 'ssh-ed25519', fingerprint: 'SHA256:abc' } } });
    expect(await screen.findByText(/SHA256:abc/)).toBeInTheDocument();
    await fireEvent.click(screen.getByRole('button', { name: 'Trust and connect' }));
    expect(backend.answerPrompt).toHaveBeenCalledWith(7, { kind: 'hostKey', trust: true });
  });

  it('Escape cancels a password prompt', async () => {
    const model = new PromptsState();
    await model.start();
    render(PromptDialog, { model });
    emit('prompt', { id: 8, question: { kind: 'secret', detail: { kind: 'password', user: 'ana', host: 'gpu-box', retry: false } } });
    const dialog = await screen.findByRole('dialog');
    await fireEvent.keyDown(dialog, { key: 'Escape' });
    expect(backend.answerPrompt).toHaveBeenCalledWith(8, { kind: 'cancel' });
  });
});
