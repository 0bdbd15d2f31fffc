// The one module that talks to Tauri: its calls are the generated contract (bindings/ipc.ts),
// and every rejection becomes an AppError whose code the UI switches on.
import { beforeEach, describe, expect, it, vi } from 'vitest';

const invoke = vi.fn();
const listen = vi.fn();
vi.mock('@tauri-apps/api/core', () => ({ invoke: (...a: unknown[]) => invoke(...a) }));
vi.mock('@tauri-apps/api/event', () => ({ listen: (...a: unknown[]) => listen(...a) }));

import { backend, toAppError } from './backend';
import { ERROR_CODES } from './bindings/ipc';

beforeEach(() => {
  invoke.mockReset();
  listen.mockReset();
});

describe('backend', () => {
  it('sends the generated command names with camelCase arguments', async () => {
    invoke.mockResolvedValue([]);
    await backend.listHosts();
    expect(invoke).toHaveBeenLastCalledWith('list_hosts', undefined);
    const profile = { name: 'gpu-box' } as never;
    await backend.saveHost(profile, 'old-name');
    expect(invoke).toHaveBeenLastCalledWith('save_host', { previousName: 'old-name', profile });
    await backend.launchNotebook('s1', null, '/x');
    expect(invoke).toHaveBeenLastCalledWith('launch_notebook', { sessionId: 's1', gpu: null, env: '/x' });
  });

  it('knows every error code Rust declares, serverGone included', async () => {
    expect(ERROR_CODES).toContain('serverGone');
    expect(ERROR_CODES).toContain('noFreeGpu');
    for (const code of ERROR_CODES) {
      invoke.mockRejectedValueOnce({ code, message: `m-${code}` });
      await expect(backend.restartNotebook('s1')).rejects.toEqual({ code, message: `m-${code}` });
    }
    expect(toAppError({ code: 'noSuchCode', message: 'x' })).toEqual({ code: 'internal', message: '[object Object]' });
  });

  it('listens to the generated event names', async () => {
    listen.mockResolvedValue(() => {});
    const handler = vi.fn();
    await backend.onSession(handler);
    expect(listen).toHaveBeenLastCalledWith('session', expect.any(Function));
    const wrapped = listen.mock.lastCall?.[1] as (e: { payload: unknown }) => void;
    wrapped({ payload: { sessionId: 's1' } });
    expect(handler).toHaveBeenCalledWith({ sessionId: 's1' });
    await backend.onTraySession(vi.fn());
    expect(listen).toHaveBeenLastCalledWith('tray-session', expect.any(Function));
  });
});
