import { beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('../backend', () => import('../test/mock-backend'));
import { filesBackend } from '../test/mock-backend';
import { FilesState, ProjectState, size } from './files.svelte';

const entry = (name: string, isDir = false) => ({ name, path: `/home/u/${name}`, isDir, size: isDir ? 0 : 10, mtime: 1 });

beforeEach(() => {
  for (const fn of Object.values(filesBackend)) fn.mockClear();
});

describe('FilesState', () => {
  it('lists the home folder, then acts and lists again', async () => {
    filesBackend.list.mockResolvedValue({ path: '/home/u', parent: '/home', entries: [entry('data', true), entry('a.csv')] });
    const files = new FilesState();
    await files.open('s1');
    expect(filesBackend.list).toHaveBeenCalledWith('s1', null);
    expect(files.path).toBe('/home/u');
    expect(files.entries.map((e) => e.name)).toEqual(['data', 'a.csv']);

    filesBackend.remove.mockResolvedValueOnce(undefined);
    files.confirmDelete = files.entries[1];
    await files.remove(files.entries[1]);
    expect(filesBackend.remove).toHaveBeenCalledWith('s1', '/home/u/a.csv');
    expect(files.confirmDelete).toBeNull();
    expect(files.notice).toBe('Deleted a.csv');
    expect(filesBackend.list).toHaveBeenLastCalledWith('s1', '/home/u');
  });

  it('shows the backend error and a cancelled picker as nothing', async () => {
    filesBackend.list.mockResolvedValue({ path: '/home/u', parent: '/home', entries: [] });
    const files = new FilesState();
    await files.open('s1');
    filesBackend.uploadPicked.mockResolvedValueOnce(0);
    await files.upload();
    expect(files.notice).toBeNull();
    filesBackend.rename.mockRejectedValueOnce({ code: 'validation', message: 'Permission denied' });
    await files.rename(entry('a.csv'), 'b.csv');
    expect(files.error?.message).toBe('Permission denied');
  });

  it('drags a row out, and says when it was let go before the file was ready', async () => {
    const files = new FilesState();
    files.sessionId = 's1';
    filesBackend.dragOut.mockResolvedValueOnce({ name: 'a.csv', started: true, local: '/cache/drag-out/1-0/a.csv' });
    await files.dragOut(entry('a.csv'));
    expect(filesBackend.dragOut).toHaveBeenCalledWith('s1', '/home/u/a.csv');
    expect(files.notice).toBeNull();
    filesBackend.dragOut.mockResolvedValueOnce({ name: 'a.csv', started: false, local: '/cache/drag-out/1-0/a.csv' });
    await files.dragOut(entry('a.csv'));
    expect(files.notice).toBe('a.csv is ready: drag it again and drop it where it should go');
    filesBackend.dragOut.mockRejectedValueOnce({ code: 'validation', message: 'big.bin is 3.4 GB — too big to drag out (the limit is 2.0 GB). Use Download to save it.' });
    await files.dragOut(entry('big.bin'));
    expect(files.error?.message).toContain('Use Download');
    // Dropped back on the window: not uploaded again; other files dropped with it are.
    filesBackend.list.mockResolvedValue({ path: '/home/u', parent: '/home', entries: [] });
    await files.dropped(['/cache/drag-out/1-0/a.csv']);
    expect(filesBackend.uploadPaths).not.toHaveBeenCalled();
    filesBackend.uploadPaths.mockResolvedValueOnce(1);
    await files.dropped(['/cache/drag-out/1-0/a.csv', '/home/me/b.csv']);
    expect(filesBackend.uploadPaths).toHaveBeenCalledWith('s1', '~', ['/home/me/b.csv']);
  });

  it('clears the drag-out progress once the drag is handed over (trial finding 9)', async () => {
    const files = new FilesState();
    files.sessionId = 's1';
    const p = { bytesDone: 5, bytesTotal: 5, filesDone: 1, filesTotal: 1, bytesPerSec: 3 };
    // The backend's progress (events come before the command's reply): prepared, ready to drop.
    filesBackend.dragOut.mockImplementationOnce(async () => {
      files.onProgress({ sessionId: 's1', direction: 'drag', what: 'upload-me.txt', progress: p, done: true, error: null });
      return { name: 'upload-me.txt', started: true, local: '/cache/drag-out/1-0/upload-me.txt' };
    });
    await files.dragOut(entry('upload-me.txt'));
    expect(files.progress).toBeNull();
    // A failed preparation stays shown, with its error.
    filesBackend.dragOut.mockImplementationOnce(async () => {
      files.onProgress({ sessionId: 's1', direction: 'drag', what: 'b.bin', progress: p, done: true, error: 'Permission denied' });
      throw { code: 'io', message: 'Permission denied' };
    });
    await files.dragOut(entry('b.bin'));
    expect(files.progress?.error).toBe('Permission denied');
    // Another transfer's progress is left alone.
    const up = { sessionId: 's1', direction: 'upload', what: 'c.csv', progress: p, done: true, error: null };
    filesBackend.dragOut.mockImplementationOnce(async () => {
      files.onProgress(up);
      return { name: 'd.csv', started: true, local: '/cache/drag-out/1-1/d.csv' };
    });
    await files.dragOut(entry('d.csv'));
    expect(files.progress).toEqual(up);
  });

  it('keeps only its own session’s progress', () => {
    const files = new FilesState();
    files.sessionId = 's1';
    const p = { bytesDone: 1, bytesTotal: 2, filesDone: 0, filesTotal: 1, bytesPerSec: 3 };
    files.onProgress({ sessionId: 's2', direction: 'upload', what: 'x', progress: p, done: false, error: null });
    expect(files.progress).toBeNull();
    files.onProgress({ sessionId: 's1', direction: 'upload', what: 'x', progress: p, done: false, error: null });
    expect(files.progress?.what).toBe('x');
  });
});

describe('ProjectState', () => {
  it('follows upload, launch and sync, and says when a host save lands beside a local edit', async () => {
    filesBackend.openLocalNotebook.mockResolvedValueOnce('project-1');
    const p = new ProjectState();
    await p.open('s1', '/work/proj/analysis.ipynb');
    expect(filesBackend.openLocalNotebook).toHaveBeenCalledWith('s1', '/work/proj/analysis.ipynb', null, null);
    p.onEvent({ type: 'uploading', projectId: 'project-1', progress: { bytesDone: 5, bytesTotal: 5, filesDone: 2, filesTotal: 2, bytesPerSec: 1 }, leftOut: ['big.bin'] });
    expect(p.leftOut).toEqual(['big.bin']);
    p.onEvent({ type: 'launching', projectId: 'project-1', message: 'Starting JupyterLab' });
    expect(p.phase).toBe('launching');
    p.onEvent({ type: 'syncing', projectId: 'project-1', remoteDir: '/home/u/tunnelbook/proj', window: 'jupyter-1' });
    expect(p.phase).toBe('syncing');
    p.onEvent({ type: 'broughtBack', projectId: 'project-1', files: [{ rel: 'analysis.ipynb', localPath: '/work/proj/analysis (box).ipynb', beside: true }] });
    expect(p.log[0]).toContain('saved beside it as /work/proj/analysis (box).ipynb');
    p.onEvent({ type: 'broughtBack', projectId: 'other', files: [{ rel: 'x', localPath: '/x', beside: false }] });
    expect(p.log).toHaveLength(1);
    await p.bringBackNow();
    expect(filesBackend.bringBackNow).toHaveBeenCalledWith('project-1');
    await p.stop();
    expect(filesBackend.stopSyncing).toHaveBeenCalledWith('project-1');
    p.onEvent({ type: 'stopped', projectId: 'project-1' });
    expect(p.phase).toBe('stopped');
  });

  it('shows a project resumed on connect, synced when the app last ran (trial finding 5)', async () => {
    const p = new ProjectState();
    p.onEvent({ type: 'resumed', projectId: 'project-7', notebook: '/work/proj/analysis.ipynb', remoteDir: '/home/u/tunnelbook/proj' });
    expect(p.id).toBe('project-7');
    expect(p.phase).toBe('syncing');
    expect(p.notebook).toBe('/work/proj/analysis.ipynb');
    expect(p.remoteDir).toBe('/home/u/tunnelbook/proj');
    // Its saves made meanwhile come back and are told.
    p.onEvent({ type: 'broughtBack', projectId: 'project-7', files: [{ rel: 'analysis.ipynb', localPath: '/work/proj/analysis.ipynb', beside: false }] });
    expect(p.log).toEqual(['analysis.ipynb came back']);
    await p.stop();
    expect(filesBackend.stopSyncing).toHaveBeenCalledWith('project-7');
    // A project being opened now is not replaced by another resumed one.
    filesBackend.openLocalNotebook.mockResolvedValueOnce('project-8');
    await p.open('s1', '/work/other/b.ipynb');
    p.onEvent({ type: 'resumed', projectId: 'project-9', notebook: '/work/x/c.ipynb', remoteDir: '/home/u/tunnelbook/x' });
    expect(p.id).toBe('project-8');
    expect(p.notebook).toBe('/work/other/b.ipynb');
  });

  it('shows the project the backend keeps after the page is reloaded, and steers it', async () => {
    const summary = (id: string, phase: 'syncing' | 'stopped') => ({
      id, sessionId: 's1', notebook: `/work/${id}/analysis.ipynb`, phase,
      upload: { bytesDone: 5, bytesTotal: 5, filesDone: 2, filesTotal: 2, bytesPerSec: 1 }, leftOut: [],
      message: null, remoteDir: `/home/u/tunnelbook/${id}`, window: 'jupyter-1',
      log: [{ rel: 'analysis.ipynb', localPath: `/work/${id}/analysis.ipynb`, beside: false }], error: null,
    });
    filesBackend.projects.mockResolvedValue([summary('project-1', 'stopped'), summary('project-2', 'syncing')]);
    const p = new ProjectState();
    await p.restore();
    // The newest one, as it is now.
    expect(p.id).toBe('project-2');
    expect(p.phase).toBe('syncing');
    expect(p.remoteDir).toBe('/home/u/tunnelbook/project-2');
    expect(p.upload?.filesDone).toBe(2);
    expect(p.log).toEqual(['analysis.ipynb came back']);
    await p.bringBackNow();
    expect(filesBackend.bringBackNow).toHaveBeenCalledWith('project-2');
    p.onEvent({ type: 'stopped', projectId: 'project-2' });
    expect(p.phase).toBe('stopped');
    // The tray's project, by id.
    await p.restore('project-1');
    expect(p.id).toBe('project-1');
    expect(p.phase).toBe('stopped');
    // Nothing kept: nothing changes.
    filesBackend.projects.mockResolvedValueOnce([]);
    await p.restore();
    expect(p.id).toBe('project-1');
  });

  it('keeps events that come before openLocalNotebook answers (a quick upload)', async () => {
    const p = new ProjectState();
    let answer!: (id: string) => void;
    filesBackend.openLocalNotebook.mockReturnValueOnce(new Promise<string>((r) => (answer = r)));
    const opening = p.open('s1', '/work/proj/analysis.ipynb');
    p.onEvent({ type: 'uploading', projectId: 'project-3', progress: { bytesDone: 5, bytesTotal: 5, filesDone: 2, filesTotal: 2, bytesPerSec: 1 }, leftOut: [] });
    p.onEvent({ type: 'launching', projectId: 'other', message: 'not ours' });
    answer('project-3');
    await opening;
    expect(p.upload?.filesDone).toBe(2);
    expect(p.phase).toBe('uploading');
    p.onEvent({ type: 'launching', projectId: 'project-3', message: 'Starting JupyterLab' });
    expect(p.phase).toBe('launching');
  });
});

describe('size', () => {
  it('rounds bytes and scales units', () => {
    expect(size(404.53)).toBe('405 B');
    expect(size(3_145_745)).toBe('3.1 MB');
  });
});

describe('a notebook from the desktop', () => {
  it('waits for a host, then opens there once', async () => {
    filesBackend.openLocalNotebook.mockResolvedValueOnce('project-2');
    const p = new ProjectState();
    p.requested = '/work/proj/analysis.ipynb';
    await p.openRequested('s1');
    expect(filesBackend.openLocalNotebook).toHaveBeenCalledWith('s1', '/work/proj/analysis.ipynb', null, null);
    expect(p.requested).toBeNull();
    expect(p.id).toBe('project-2');
  });
});
