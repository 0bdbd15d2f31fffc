// Terminal tabs (issue 23): output that beats the reply to open_terminal is not lost, an exit
// is recorded on its tab, and a lost connection is explained with the host's tmux/screen.
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { TerminalEvent } from '../bindings/TerminalEvent';

const handlers: ((e: TerminalEvent) => void)[] = [];
const backend = vi.hoisted(() => ({
  openTerminal: vi.fn(),
  closeTerminal: vi.fn(async () => {}),
  onTerminal: vi.fn(),
}));
vi.mock('../backend', () => ({
  backend,
  toAppError: (e: unknown) => e,
}));
import { codeParts, endMessage, TerminalsState } from './terminals.svelte';

beforeEach(() => {
  handlers.length = 0;
  backend.openTerminal.mockReset();
  backend.onTerminal.mockImplementation(async (h: (e: TerminalEvent) => void) => {
    handlers.push(h);
    return () => {};
  });
});

const out = (terminalId: string, text: string): TerminalEvent => ({
  terminalId,
  update: { kind: 'output', data: btoa(text) },
});

describe('TerminalsState', () => {
  it('hands output that arrived before the reply to the terminal, in order', async () => {
    const model = new TerminalsState();
    await model.start();
    backend.openTerminal.mockImplementation(async () => {
      handlers[0](out('t1', 'Last login'));
      handlers[0](out('t1', '$ '));
      return { terminalId: 't1', destination: 'root@box', multiplexers: [] };
    });
    const tab = model.add('s1', 'box');
    const got: string[] = [];
    await model.open(tab.key, 80, 24, (u) => u.kind === 'output' && got.push(atob(u.data)));
    handlers[0](out('t1', 'ls'));
    handlers[0](out('t2', 'not mine'));
    expect(got).toEqual(['Last login', '$ ', 'ls']);
    expect(backend.openTerminal).toHaveBeenCalledWith('s1', 80, 24);
  });

  it('records a lost connection and suggests the host\'s tmux', async () => {
    const model = new TerminalsState();
    backend.openTerminal.mockResolvedValue({ terminalId: 't1', destination: 'root@box', multiplexers: ['tmux'] });
    const tab = model.add('s1', 'box');
    await model.open(tab.key, 80, 24, () => {});
    handlers[0]({ terminalId: 't1', update: { kind: 'exited', status: null, signal: null, connectionLost: true } });
    const now = model.tabs[0];
    expect(now.ended?.connectionLost).toBe(true);
    const text = endMessage(now) ?? '';
    // The saved host's name, not the login address.
    expect(text).toContain('connection to box was lost');
    expect(text).not.toContain('root@');
    expect(text).toContain('cannot survive');
    expect(text).toContain('tmux attach');
    model.again(tab.key);
    expect(model.tabs).toHaveLength(2);
    expect(model.tabs[1].sessionId).toBe('s1');
    expect(model.active).toBe(model.tabs[1].key);
    // After a reconnect that made a new session for the host, the new shell goes there.
    model.again(tab.key, { sessionId: 's2', hostLabel: 'box' });
    expect(model.tabs[2].sessionId).toBe('s2');
    model.again(tab.key, { sessionId: 's3', hostLabel: 'other' });
    expect(model.tabs[3].sessionId).toBe('s1');
  });

  it('waits for a reconnecting host, then opens the shell (a dead tab was left before)', async () => {
    const model = new TerminalsState();
    backend.openTerminal
      .mockRejectedValueOnce({ code: 'unreachable', message: 'the host is not connected right now' })
      .mockRejectedValueOnce({ code: 'unreachable', message: 'the host is not connected right now' })
      .mockResolvedValue({ terminalId: 't9', destination: 'root@box', multiplexers: [] });
    const tab = model.add('s1', 'box');
    await model.open(tab.key, 80, 24, () => {}, 1);
    expect(backend.openTerminal).toHaveBeenCalledTimes(3);
    expect(model.tabs[0].terminalId).toBe('t9');
    expect(model.tabs[0].error).toBeNull();
    // Other errors are shown at once and not retried.
    backend.openTerminal.mockReset();
    backend.openTerminal.mockRejectedValue({ code: 'authFailed', message: 'refused' });
    const other = model.add('s1', 'box');
    await model.open(other.key, 80, 24, () => {}, 1);
    expect(backend.openTerminal).toHaveBeenCalledTimes(1);
    expect(model.tabs[1].error?.code).toBe('authFailed');
  });

  it('says how a shell exited on its own, without advice', () => {
    const tab = {
      key: 1, sessionId: 's1', hostLabel: 'box', terminalId: 't1', destination: 'root@box',
      multiplexers: ['tmux'], error: null, ended: { status: 3, signal: null, connectionLost: false }, search: '',
    };
    expect(endMessage(tab)).toBe('The shell exited with status 3.');
  });

  it('splits a message at its backtick pairs for showing commands as code', () => {
    expect(codeParts('run `tmux` and `tmux attach` now')).toEqual([
      { text: 'run ', code: false },
      { text: 'tmux', code: true },
      { text: ' and ', code: false },
      { text: 'tmux attach', code: true },
      { text: ' now', code: false },
    ]);
    expect(codeParts('a lone ` stays')).toEqual([{ text: 'a lone ` stays', code: false }]);
  });
});
