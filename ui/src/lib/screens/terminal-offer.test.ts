// Issue 23: when no environment on the host has JupyterLab, the Environment step offers a
// terminal next to "Install JupyterLab", so the user can set one up their own way.
import { fireEvent, render, screen } from '@testing-library/svelte';
import { beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('../backend', () => import('../test/mock-backend'));
import { backend, resetBackend } from '../test/mock-backend';
import Environment from './Environment.svelte';
import { EnvironmentsState } from '../state/environments.svelte';
import { env } from '../test/env-fixtures';

beforeEach(() => resetBackend());

describe('Environment step', () => {
  it('offers a terminal when no environment has JupyterLab', async () => {
    const model = new EnvironmentsState();
    backend.listEnvironments.mockResolvedValueOnce([env('python3', { kind: 'system', jupyterLab: false, path: '/usr/bin/python3' })]);
    await model.load('s1');
    const onOpenTerminal = vi.fn();
    render(Environment, { model, gpuLabel: 'GPU 1', onLaunch: vi.fn(), canLaunch: true, onOpenTerminal });
    expect(screen.getByRole('button', { name: 'Install JupyterLab' })).toBeInTheDocument();
    await fireEvent.click(screen.getByRole('button', { name: 'Open a terminal' }));
    expect(onOpenTerminal).toHaveBeenCalledOnce();
  });

  it('does not when one has it', async () => {
    const model = new EnvironmentsState();
    backend.listEnvironments.mockResolvedValueOnce([env('jlab', { path: '/opt/jlab', jupyterLab: true })]);
    await model.load('s1');
    render(Environment, { model, gpuLabel: 'GPU 1', onLaunch: vi.fn(), canLaunch: true, onOpenTerminal: vi.fn() });
    expect(screen.queryByRole('button', { name: 'Open a terminal' })).toBeNull();
  });
});
