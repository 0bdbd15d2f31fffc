// A stand-in for backend.ts: every call a vi.fn, every event subscription captured so a test
// can emit into it. Use with `vi.mock('<path>/backend', () => import('<path>/test/mock-backend'))`.
import { vi } from 'vitest';
import type { GpuEvent } from '../bindings/GpuEvent';
import type { InstallEvent } from '../bindings/InstallEvent';
import type { ProjectSummary } from '../bindings/ProjectSummary';
import type { PromptEvent } from '../bindings/PromptEvent';
import type { SessionEvent } from '../bindings/SessionEvent';
import type { SlurmEvent } from '../bindings/SlurmEvent';

type Handler<T> = (payload: T) => void;

export const emitters = {
  prompt: [] as Handler<PromptEvent>[],
  session: [] as Handler<SessionEvent>[],
  gpus: [] as Handler<GpuEvent>[],
  install: [] as Handler<InstallEvent>[],
  slurm: [] as Handler<SlurmEvent>[],
  'notebook-stopped': [] as Handler<{ sessionId: string; serverId: string }>[],
};

export const backend = {
  listHosts: vi.fn(),
  saveHost: vi.fn(),
  deleteHost: vi.fn(),
  rememberEnvironment: vi.fn(),
  previewImport: vi.fn(),
  importHosts: vi.fn(),
  pickKeyFile: vi.fn(),
  checkKeyFile: vi.fn(),
  checkPort: vi.fn(async (): Promise<string | null> => null),
  checkEnvironment: vi.fn(),
  trayAction: vi.fn(),
  startSession: vi.fn(),
  // One connection per host: no live session unless a test says so.
  liveSession: vi.fn(async (): Promise<string | null> => null),
  cancelSession: vi.fn(),
  answerPrompt: vi.fn(),
  runCommand: vi.fn(),
  gpuSnapshot: vi.fn(),
  watchGpus: vi.fn(),
  unwatchGpus: vi.fn(),
  listSessions: vi.fn(),
  closeSession: vi.fn(),
  openNotebook: vi.fn(),
  openInBrowser: vi.fn(),
  browserLink: vi.fn(),
  listForwards: vi.fn(),
  saveForward: vi.fn(),
  deleteForward: vi.fn(),
  setForwardEnabled: vi.fn(),
  startForwards: vi.fn(),
  startOneOff: vi.fn(),
  stopForward: vi.fn(),
  getSettings: vi.fn(),
  saveSettings: vi.fn(),
  trayMenu: vi.fn(),
  appPaths: vi.fn(),
  openLogsFolder: vi.fn(),
  forgetAllSecrets: vi.fn(),
  quitApp: vi.fn(),
  onQuitRequested: vi.fn(async () => () => {}),
  onTraySession: vi.fn(async () => () => {}),
  onTrayRunning: vi.fn(async () => () => {}),
  listEnvironments: vi.fn(),
  installJupyter: vi.fn(),
  launchNotebook: vi.fn(),
  restartNotebook: vi.fn(),
  reconnectNotebook: vi.fn(),
  listServers: vi.fn(),
  attachServer: vi.fn(),
  stopServer: vi.fn(),
  onPrompt: vi.fn(async (h: Handler<PromptEvent>) => {
    emitters.prompt.push(h);
    return () => {};
  }),
  onSession: vi.fn(async (h: Handler<SessionEvent>) => {
    emitters.session.push(h);
    return () => {};
  }),
  onNotebookStopped: vi.fn(async (h: Handler<{ sessionId: string; serverId: string }>) => {
    emitters['notebook-stopped'].push(h);
    return () => {};
  }),
  onGpus: vi.fn(async (h: Handler<GpuEvent>) => {
    emitters.gpus.push(h);
    return () => {};
  }),
  onInstall: vi.fn(async (h: Handler<InstallEvent>) => {
    emitters.install.push(h);
    return () => {};
  }),
  // SLURM hosts (issue 20).
  slurmCluster: vi.fn(),
  checkSlurmRequest: vi.fn(),
  launchSlurmNotebook: vi.fn(),
  stopSlurmNotebook: vi.fn(),
  listSlurmJobs: vi.fn(),
  openSlurmJob: vi.fn(),
  stopSlurmJob: vi.fn(),
  onSlurm: vi.fn(async (h: Handler<SlurmEvent>) => {
    emitters.slurm.push(h);
    return () => {};
  }),
};

export function emit<K extends keyof typeof emitters>(kind: K, payload: Parameters<(typeof emitters)[K][number]>[0]) {
  for (const h of emitters[kind]) (h as Handler<typeof payload>)(payload);
}

export function resetBackend() {
  for (const fn of Object.values(backend)) fn.mockClear();
  emitters.prompt.length = 0;
  emitters.session.length = 0;
  emitters.gpus.length = 0;
  emitters.install.length = 0;
  emitters.slurm.length = 0;
  emitters['notebook-stopped'].length = 0;
}

export const toAppError = (e: unknown) => e;

// The Files view and "Open notebook…" (backend.ts `filesBackend`).
export const filesBackend = {
  list: vi.fn(),
  makeFolder: vi.fn(),
  rename: vi.fn(),
  remove: vi.fn(),
  uploadPicked: vi.fn(),
  uploadPaths: vi.fn(),
  download: vi.fn(),
  dragOut: vi.fn(),
  pickNotebook: vi.fn(),
  openLocalNotebook: vi.fn(),
  bringBackNow: vi.fn(),
  stopSyncing: vi.fn(),
  projects: vi.fn(async (): Promise<ProjectSummary[]> => []),
  onTrayProject: vi.fn(async () => () => {}),
  onProgress: vi.fn(async () => () => {}),
  takeRequestedNotebook: vi.fn(async () => null),
  onNotebookRequested: vi.fn(async () => () => {}),
  onProject: vi.fn(async () => () => {}),
  onDrop: vi.fn(async () => () => {}),
};
