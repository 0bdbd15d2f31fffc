// Terminal tabs (issue 23): login shells over a connected host's open connection. The shells'
// output is not state (it goes straight into each tab's xterm.js); what is kept here is which
// tabs exist, on which session, and how each one ended.
import { backend, toAppError, type UnlistenFn } from '../backend';
import type { AppError } from '../bindings/AppError';
import type { TerminalEvent } from '../bindings/TerminalEvent';
import type { TerminalUpdate } from '../bindings/TerminalUpdate';

/** How a tab's shell ended. */
export interface TerminalEnd {
  status: number | null;
  signal: string | null;
  /** The connection ended under the shell. */
  connectionLost: boolean;
}

/** One terminal tab. */
export interface TerminalTab {
  /** The tab's own key (stays the same while its shell opens). */
  key: number;
  sessionId: string;
  /** The host, in words (the saved host's name, "This computer"). */
  hostLabel: string;
  /** The backend's terminal id once the shell is open. */
  terminalId: string | null;
  destination: string | null;
  /** `tmux`/`screen` when the host has them. */
  multiplexers: string[];
  error: AppError | null;
  ended: TerminalEnd | null;
  /** This tab's search box text (each tab keeps its own). */
  search: string;
}

/** A message split at its backticks: `code` parts are shown as code, not as literal backticks. */
export interface TextPart {
  text: string;
  code: boolean;
}

/** Splits `text` at backtick pairs (a lone backtick stays text). */
export function codeParts(text: string): TextPart[] {
  const parts: TextPart[] = [];
  const re = /`([^`]+)`/g;
  let at = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m.index > at) parts.push({ text: text.slice(at, m.index), code: false });
    parts.push({ text: m[1], code: true });
    at = m.index + m[0].length;
  }
  if (at < text.length) parts.push({ text: text.slice(at), code: false });
  return parts;
}

type Sink = (update: TerminalUpdate) => void;

/** What to tell the user when a shell ended, or null for a plain exit. The host is named as the
 * user saved it (not `user@address:port`); commands are in backticks ([`codeParts`]). */
export function endMessage(tab: TerminalTab): string | null {
  const end = tab.ended;
  if (!end) return null;
  if (!end.connectionLost) {
    if (end.signal) return `The shell was ended by signal ${end.signal}.`;
    return `The shell exited${end.status !== null ? ` with status ${end.status}` : ''}.`;
  }
  const where = tab.hostLabel;
  let text = `The connection to ${where} was lost, and this shell ended with it: a shell cannot survive its connection. Reconnect, then open a new shell.`;
  if (tab.multiplexers.length > 0) {
    const m = tab.multiplexers[0];
    text += ` ${where} has ${tab.multiplexers.join(' and ')}: run your work inside \`${m}\` and \`${m === 'tmux' ? 'tmux attach' : 'screen -r'}\` brings it back after a drop.`;
  }
  return text;
}

export class TerminalsState {
  tabs = $state<TerminalTab[]>([]);
  /** The key of the tab shown. */
  active = $state<number | null>(null);
  /** The tab whose close waits for the user's answer ([`TerminalsState.requestClose`]). */
  confirming = $state<number | null>(null);
  #next = 1;
  #sinks = new Map<string, Sink>();
  // Output that arrived before its tab's terminal attached (the first prompt can beat the
  // reply to `open_terminal`).
  #early = new Map<string, TerminalUpdate[]>();
  #unlisten: Promise<UnlistenFn> | null = null;

  /** Listens for `terminal` events (idempotent). */
  start(): Promise<UnlistenFn> {
    this.#unlisten ??= backend.onTerminal((e) => this.#dispatch(e));
    return this.#unlisten;
  }

  stop() {
    void this.#unlisten?.then((u) => u());
    this.#unlisten = null;
  }

  #dispatch(e: TerminalEvent) {
    if (e.update.kind === 'exited') {
      const tab = this.tabs.find((t) => t.terminalId === e.terminalId);
      if (tab) tab.ended = { status: e.update.status, signal: e.update.signal, connectionLost: e.update.connectionLost };
    }
    const sink = this.#sinks.get(e.terminalId);
    if (sink) sink(e.update);
    else this.#early.set(e.terminalId, [...(this.#early.get(e.terminalId) ?? []), e.update]);
  }

  /** A new tab for a shell on session `sessionId`; the shell opens when its terminal knows its
   * size ([`TerminalsState.open`]). */
  add(sessionId: string, hostLabel: string): TerminalTab {
    const tab: TerminalTab = {
      key: this.#next++,
      sessionId,
      hostLabel,
      terminalId: null,
      destination: null,
      multiplexers: [],
      error: null,
      ended: null,
      search: '',
    };
    this.tabs.push(tab);
    this.active = tab.key;
    return this.tabs[this.tabs.length - 1];
  }

  /** Opens the tab's shell at `cols` × `rows`; `sink` gets its output from the first byte.
   * While the host is reconnecting (`unreachable`) the tab says so and tries again every
   * `retryMs` until it is connected (for up to `retries` tries) or the tab is closed. */
  async open(key: number, cols: number, rows: number, sink: Sink, retryMs = 1000, retries = 120) {
    await this.start();
    for (let attempt = 1; ; attempt++) {
      const tab = this.tabs.find((t) => t.key === key);
      if (!tab) return;
      try {
        const opened = await backend.openTerminal(tab.sessionId, cols, rows);
        tab.error = null;
        tab.terminalId = opened.terminalId;
        tab.destination = opened.destination;
        tab.multiplexers = opened.multiplexers;
        this.#sinks.set(opened.terminalId, sink);
        for (const u of this.#early.get(opened.terminalId) ?? []) sink(u);
        this.#early.delete(opened.terminalId);
        return;
      } catch (e) {
        const error = toAppError(e);
        tab.error = error;
        if (error.code !== 'unreachable' || attempt >= retries) return;
        await new Promise((r) => setTimeout(r, retryMs));
      }
    }
  }

  /** A new shell on the same host as tab `key` (after its shell ended, e.g. after a reconnect):
   * on `current`, the host's session now, when given (a reconnect may have started a new one). */
  again(key: number, current: { sessionId: string; hostLabel: string } | null = null) {
    const tab = this.tabs.find((t) => t.key === key);
    if (!tab) return;
    const sessionId = current && current.hostLabel === tab.hostLabel ? current.sessionId : tab.sessionId;
    this.add(sessionId, tab.hostLabel);
  }

  /** The question to ask before closing tab `key`, or null when closing loses nothing (its shell
   * has ended, or never opened). */
  closeQuestion(key: number): string | null {
    const tab = this.tabs.find((t) => t.key === key);
    if (!tab || !tab.terminalId || tab.ended) return null;
    return `The shell on ${tab.hostLabel} is still running. Close it? The host ends it, with whatever runs in it.`;
  }

  /** The close button of tab `key`: closes it at once when its shell has ended, otherwise asks
   * first (`confirming`; answered by [`TerminalsState.answerClose`]). */
  async requestClose(key: number) {
    if (this.closeQuestion(key) === null) {
      this.confirming = null;
      await this.close(key);
    } else {
      this.confirming = key;
    }
  }

  /** The user's answer to the close question: `true` closes the tab, `false` keeps it. */
  async answerClose(close: boolean) {
    const key = this.confirming;
    this.confirming = null;
    if (close && key !== null) await this.close(key);
  }

  /** Closes tab `key` (the host hangs up its shell). */
  async close(key: number) {
    const i = this.tabs.findIndex((t) => t.key === key);
    if (i < 0) return;
    const [tab] = this.tabs.splice(i, 1);
    if (this.confirming === key) this.confirming = null;
    if (this.active === key) this.active = this.tabs[Math.min(i, this.tabs.length - 1)]?.key ?? null;
    if (tab.terminalId) {
      this.#sinks.delete(tab.terminalId);
      if (!tab.ended) await backend.closeTerminal(tab.terminalId).catch(() => {});
    }
  }
}
