// Issue 18: every error the backend reports with a code shows its own text on the Connect screen
// (the backend's message plus the hint for the code); the UI switches on the code only.
import { render, screen } from '@testing-library/svelte';
import { beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('../backend', () => import('../test/mock-backend'));
import { backend, emit, resetBackend } from '../test/mock-backend';
import Connect from './Connect.svelte';
import { ConnectState } from '../state/connect.svelte';
import type { ErrorCode } from '../bindings/ErrorCode';
import type { SessionStep } from '../bindings/SessionStep';

beforeEach(() => resetBackend());

async function connecting(): Promise<ConnectState> {
  const model = new ConnectState();
  backend.startSession.mockResolvedValueOnce('s1');
  await model.start('gpu-box');
  return model;
}

async function launching(): Promise<ConnectState> {
  const model = await connecting();
  emit('session', { sessionId: 's1', step: 'readGpus', state: 'done', message: '2 GPUs', error: null });
  backend.launchNotebook.mockResolvedValue(undefined);
  await model.launch(null, '/x');
  return model;
}

const cases: { code: ErrorCode; step: SessionStep; message: string; hint: RegExp; actions: boolean; launch: boolean }[] = [
  {
    code: 'hostKeyChanged',
    step: 'hostKey',
    message: 'the host key of 127.0.0.1:2222 changed: SHA256:aaa was remembered, SHA256:bbb was presented',
    hint: /another key than the one Tunnelbook remembers, so nothing was sent/,
    actions: true,
    launch: false,
  },
  {
    code: 'authFailed',
    step: 'authenticate',
    message: 'tbtest@127.0.0.1 refused every authentication method tried (publickey)',
    hint: /refused the login: check the user, key file or password with Edit host/,
    actions: true,
    launch: false,
  },
  {
    code: 'noFreeGpu',
    step: 'readGpus',
    message: 'every GPU on tbtest@127.0.0.1 is busy',
    hint: /Every GPU is busy: pick one anyway, or choose "CPU only"/,
    actions: false,
    launch: true,
  },
  {
    code: 'serverGone',
    step: 'ready',
    message: 'the JupyterLab server is gone: killed',
    hint: /Restart server starts it again at the same address/,
    actions: false,
    launch: true,
  },
];

describe('error codes on the Connect screen', () => {
  for (const c of cases) {
    it(`shows ${c.code} with its message and hint`, async () => {
      const model = c.launch ? await launching() : await connecting();
      render(Connect, { model, onPickGpu: vi.fn(), onPickEnvironment: vi.fn(), onEditHost: vi.fn() });
      const error = { code: c.code, message: c.message };
      emit('session', { sessionId: 's1', step: c.step, state: 'failed', message: c.message, error });
      const alert = await screen.findByRole('alert');
      expect(alert).toHaveTextContent(c.message);
      expect(alert).toHaveAttribute('data-code', c.code);
      expect(screen.getByText(c.hint)).toBeInTheDocument();
      if (c.actions) {
        expect(screen.getByRole('button', { name: 'Retry' })).toBeInTheDocument();
        expect(screen.getByRole('button', { name: 'Edit host' })).toBeInTheDocument();
      } else {
        expect(screen.queryByTestId('error-actions')).not.toBeInTheDocument();
      }
    });
  }
});
