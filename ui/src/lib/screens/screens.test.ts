import { fireEvent, render, screen } from '@testing-library/svelte';
import { beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('../backend', () => import('../test/mock-backend'));
import { backend, emit, resetBackend } from '../test/mock-backend';
import Hosts from './Hosts.svelte';
import GpuPicker from './GpuPicker.svelte';
import PromptDialog from '../components/PromptDialog.svelte';
import { HostsState } from '../state/hosts.svelte';
import { CPU_ONLY, GpusState } from '../state/gpus.svelte';
import { gpu, noGpuReport, proc, report } from '../test/gpu-fixtures';
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
  it('highlights free GPUs, preselects the best and offers CPU only', async () => {
    const model = new GpusState();
    model.apply(report([gpu(0, 30000, 97), gpu(1, 0, 0)], [proc(0, 42, 'bob')]));
    render(GpuPicker, { model });
    const radios = screen.getAllByRole('radio');
    expect(radios).toHaveLength(3);
    // Core's order: the free GPU 1 first, preselected and marked best.
    expect(radios[0]).toHaveAttribute('value', 'GPU-1');
    expect(radios[0]).toBeChecked();
    const cards = screen.getAllByTestId('gpu-card');
    expect(cards[0]).toHaveClass('free');
    expect(cards[0]).toHaveTextContent('best');
    expect(cards[1]).not.toHaveClass('free');
    expect(cards[1]).toHaveTextContent('busy');
    expect(screen.getByText(/bob · python3 \(42\)/)).toBeInTheDocument();
    expect(screen.getByText('CPU only')).toBeInTheDocument();
    await fireEvent.click(radios[2]);
    expect(model.selected).toBe(CPU_ONLY);
  });

  it('updates live from gpus events of the watched session', async () => {
    const model = new GpusState();
    await model.watch('s1');
    render(GpuPicker, { model });
    expect(screen.getByText('Reading GPUs…')).toBeInTheDocument();
    emit('gpus', { sessionId: 's1', report: report([gpu(0, 30000, 97)], [proc(0, 42, 'bob')]), error: null });
    expect(await screen.findByText('GPU 0')).toBeInTheDocument();
    // Nothing free: CPU only is preselected.
    expect(screen.getAllByRole('radio')[1]).toBeChecked();
    emit('gpus', { sessionId: 's1', report: report([gpu(0, 30000, 97), gpu(1, 0, 0)], [proc(0, 42, 'bob')]), error: null });
    expect(await screen.findByText('GPU 1')).toBeInTheDocument();
    expect(screen.getAllByTestId('gpu-card')).toHaveLength(2);
  });

  it('shows "no NVIDIA GPU" as a state, not an error', () => {
    const model = new GpusState();
    model.apply(noGpuReport('no local NVIDIA GPU (the NVIDIA driver is not loaded)'));
    render(GpuPicker, { model });
    expect(screen.getByTestId('no-gpu')).toHaveTextContent('no local NVIDIA GPU');
    expect(screen.queryByRole('status')).toBeNull();
    expect(screen.getAllByRole('radio')).toHaveLength(1);
    expect(screen.getByRole('radio')).toBeChecked();
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
