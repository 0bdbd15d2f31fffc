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
    // nvidia-smi's order (0, 1), not the ranking's; the free GPU 1 is preselected and marked best.
    expect(radios[0]).toHaveAttribute('value', 'GPU-0');
    expect(radios[1]).toHaveAttribute('value', 'GPU-1');
    expect(radios[1]).toBeChecked();
    const cards = screen.getAllByTestId('gpu-card');
    expect(cards[1]).toHaveClass('free');
    expect(cards[1]).toHaveTextContent('best');
    expect(cards[0]).not.toHaveClass('free');
    expect(cards[0]).toHaveTextContent('busy');
    // Utilization is named as nvidia-smi names it, not "N% busy" beside the "busy" badge (a GPU
    // in use at 0 % read "busy" and "0% busy" at once in the first-use trial).
    expect(cards[0]).toHaveTextContent(/\d+% utilization/);
    expect(cards[0]).not.toHaveTextContent(/% busy/);
    // Each card says why, in words.
    const why = screen.getAllByTestId('gpu-why');
    expect(why[0]).toHaveTextContent('in use by bob');
    expect(why[1]).toHaveTextContent(/^Recommended — free: 0 % utilization/);
    expect(screen.getByText(/bob · python3 \(42\)/)).toBeInTheDocument();
    // "GPU 0 · NVIDIA …" with a space on both sides of the dot (trial of #14, finding 18: "GPU 0·").
    expect(cards[0].querySelector('.name')?.textContent).toMatch(/^GPU 0 · \S/);
    expect(screen.getByText(/bob · python3 \(42\)/).textContent).toMatch(/\(42\) · [\d.]+ GiB$/);
    expect(screen.getByText('CPU only')).toBeInTheDocument();
    await fireEvent.click(radios[2]);
    expect(model.selected).toBe(CPU_ONLY);
  });

  it('shows unreadable GPUs and GPUs with a problem with their reason, never selectable', async () => {
    const broken = { ...gpu(1, 0, 0), problem: 'nvidia-smi cannot read it (memory.used is "[Unknown Error]")' };
    const r = report([gpu(0, 30000, 97), broken, gpu(3, 0, 0)], [proc(0, 42, 'bob')]);
    r.snapshot.unreadable = [{ index: null, pciBusId: '0000:0B:00.0', message: 'Unable to determine the device handle for GPU 0000:0B:00.0: Unknown Error' }];
    const model = new GpusState();
    model.apply(r);
    render(GpuPicker, { model });
    expect(screen.getByTestId('gpu-unreadable')).toHaveTextContent('GPU at 0000:0B:00.0 cannot be read: Unable to determine the device handle');
    const cards = screen.getAllByTestId('gpu-card');
    expect(cards.map((c) => c.querySelector('input')?.value)).toEqual(['GPU-0', 'GPU-1', 'GPU-3']);
    expect(cards[1]).toHaveTextContent('unusable');
    expect(cards[1]).toHaveTextContent('[Unknown Error]');
    const radio = cards[1].querySelector('input') as HTMLInputElement;
    expect(radio).toBeDisabled();
    model.choose('GPU-1');
    expect(model.selected).toBe('GPU-3');
  });

  it('keeps the last known state on screen, marked stale, while a refresh fails', async () => {
    const model = new GpusState();
    await model.watch('s1');
    render(GpuPicker, { model });
    emit('gpus', { sessionId: 's1', report: report([gpu(0, 0, 0)]), error: null });
    expect(await screen.findByText('GPU 0')).toBeInTheDocument();
    expect(screen.queryByTestId('gpu-stale')).toBeNull();
    emit('gpus', { sessionId: 's1', report: null, error: { code: 'timeout', message: 'nvidia-smi on box did not answer within 20 s' } });
    expect(await screen.findByTestId('gpu-stale')).toHaveTextContent('Last known state');
    expect(screen.getByText('GPU 0')).toBeInTheDocument();
    expect(screen.getByRole('status')).toHaveTextContent('did not answer');
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
