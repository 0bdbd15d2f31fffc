// The sessions this app started.
import { backend } from '../backend';
import type { AppError } from '../bindings/AppError';
import type { SessionSummary } from '../bindings/SessionSummary';

export class SessionsState {
  sessions = $state<SessionSummary[]>([]);
  error = $state<AppError | null>(null);

  async refresh(): Promise<void> {
    try {
      this.sessions = await backend.listSessions();
      this.error = null;
    } catch (e) {
      this.error = e as AppError;
    }
  }

  async close(id: string): Promise<void> {
    try {
      await backend.closeSession(id);
    } catch (e) {
      this.error = e as AppError;
    }
    await this.refresh();
  }

  async open(session: SessionSummary): Promise<void> {
    if (!session.url) return;
    try {
      await backend.openNotebook(session.url, `JupyterLab — ${session.hostId}`);
    } catch (e) {
      this.error = e as AppError;
    }
  }

  async openInBrowser(session: SessionSummary): Promise<void> {
    if (!session.url) return;
    try {
      await backend.openInBrowser(session.url);
    } catch (e) {
      this.error = e as AppError;
    }
  }
}
