// Issue 23, first-use findings on the Terminal screen: closing a tab whose shell still runs asks
// first (once, naming the host; not when the shell has ended), each tab keeps its own search
// text, and the drop notice names the saved host and shows commands as code.
import { fireEvent, render, screen } from '@testing-library/svelte';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { TerminalEvent } from '../bindings/TerminalEvent';

const handlers: ((e: TerminalEvent) => void)[] = [];
const backend = vi.hoisted(() => ({
  openTerminal: vi.fn(),
  closeTerminal: vi.fn(async () => {}),
  onTerminal: vi.fn(),
  checkMyTerminal: vi.fn(),
  openInMyTerminal: vi.fn(),
}));
vi.mock('../backend', () => ({ backend, toAppError: (e: unknown) => e }));
vi.mock('./Terminal.svelte', async () => import('../test/TerminalStub.svelte'));
import TerminalTabs from './TerminalTabs.svelte';
import { TerminalsState } from '../state/terminals.svelte';

let ids = 0;
beforeEach(() => {
  handlers.length = 0;
  ids = 0;
  backend.closeTerminal.mockClear();
  backend.onTerminal.mockImplementation(async (h: (e: TerminalEvent) => void) => {
    handlers.push(h);
    return () => {};
  });
  backend.openTerminal.mockImplementation(async () => ({
    terminalId: `t${++ids}`,
    destination: 'root@127.0.0.1:2222',
    multiplexers: ['tmux'],
  }));
});

/** Two open shells on `gpu-box`, rendered. */
async function twoShells() {
  const model = new TerminalsState();
  for (let i = 0; i < 2; i++) {
    const tab = model.add('s1', 'gpu-box');
    await model.open(tab.key, 80, 24, () => {});
  }
  render(TerminalTabs, { model, sessionId: 's1', hostLabel: 'gpu-box', hostName: 'gpu-box' });
  return model;
}

describe('Terminal tabs', () => {
  it('asks once, naming the host, before closing a tab whose shell runs', async () => {
    const model = await twoShells();
    await fireEvent.click(screen.getByRole('button', { name: 'Close gpu-box 1' }));
    const ask = screen.getByRole('alertdialog');
    expect(ask.textContent).toContain('The shell on gpu-box is still running');
    expect(model.tabs).toHaveLength(2);
    expect(backend.closeTerminal).not.toHaveBeenCalled();
    // Keep it: nothing closes, the question goes.
    await fireEvent.click(screen.getByRole('button', { name: 'Keep it' }));
    expect(screen.queryByRole('alertdialog')).toBeNull();
    expect(model.tabs).toHaveLength(2);
    // Asked again and answered: one close, of that tab's shell.
    await fireEvent.click(screen.getByRole('button', { name: 'Close gpu-box 1' }));
    await fireEvent.click(screen.getByRole('button', { name: 'Close the shell' }));
    expect(model.tabs).toHaveLength(1);
    expect(backend.closeTerminal).toHaveBeenCalledExactlyOnceWith('t1');
    expect(screen.queryByRole('alertdialog')).toBeNull();
  });

  it('closes a tab whose shell has ended without asking', async () => {
    const model = await twoShells();
    handlers[0]({ terminalId: 't2', update: { kind: 'exited', status: 0, signal: null, connectionLost: false } });
    await fireEvent.click(screen.getByRole('button', { name: 'Close gpu-box 2' }));
    expect(screen.queryByRole('alertdialog')).toBeNull();
    expect(model.tabs.map((t) => t.terminalId)).toEqual(['t1']);
    expect(backend.closeTerminal).not.toHaveBeenCalled();
  });

  it('keeps the search text per tab', async () => {
    const model = await twoShells();
    const box = () => screen.getByRole('searchbox', { name: 'Search text' }) as HTMLInputElement;
    await fireEvent.input(box(), { target: { value: 'needle' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Find next' }));
    expect(screen.getByTestId('terminal-active').dataset.search).toBe('needle#1');
    // The other tab: an empty box, and no search of its own.
    await fireEvent.click(screen.getAllByRole('tab')[0]);
    expect(model.active).toBe(model.tabs[0].key);
    expect(box().value).toBe('');
    expect(screen.getByTestId('terminal-active').dataset.search).toBe('#0');
    // Back: the text is still there.
    await fireEvent.click(screen.getAllByRole('tab')[1]);
    expect(box().value).toBe('needle');
  });

  it('names the saved host in the drop notice and shows commands as code', async () => {
    await twoShells();
    handlers[0]({ terminalId: 't2', update: { kind: 'exited', status: null, signal: null, connectionLost: true } });
    const notice = await screen.findByTestId('terminal-ended');
    expect(notice.textContent).toContain('The connection to gpu-box was lost');
    expect(notice.textContent).not.toContain('127.0.0.1');
    expect(notice.textContent).not.toContain('`');
    const code = [...notice.querySelectorAll('code')].map((c) => c.textContent);
    expect(code).toEqual(['tmux', 'tmux attach']);
  });
});
