// The Files view through the real app (tauri-driver + WebKitWebDriver, plain W3C WebDriver HTTP),
// against the test bed's real sshd (`Subsystem sftp internal-sftp`), over the host session's
// connection (no second login).
//
//   node tests/e2e-app/files.mjs <tunnelbook-app binary> <tunnelbook-e2e-bed binary> <tunnelbook CLI>   (under Xvfb)
//
// Checks: connect to gpu-box; Files lists the home folder; "Upload…" (the GTK file picker, driven
// with xdotool) puts a local file on the host byte for byte, with progress shown; "Download" (the
// save dialog) brings a host file here byte for byte; Rename renames it on the host; Delete asks
// first, then deletes it on the host. Drag out: a file row and a folder row dragged (xdotool) onto
// a real GTK drop target (drop-target.py) land there byte for byte; Quit removes the copies. "Open notebook…" (the picker) uploads a local notebook's
// folder, starts JupyterLab in it and opens the notebook window; a save on the host comes back,
// a local edit is never overwritten; the app (not the page) keeps the project;
// the tray offers "Open notebook on GPU…".
// Screenshots: docs/screenshots/files.png, open-notebook.png.
// Its own bed user (tbfiles) and tauri-driver ports, so it runs beside the other suites.
import { execFileSync, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { ELEMENT, freePort, sleep, waitFor, webdriver } from './webdriver.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const binary = resolve(process.argv[2] ?? join(root, 'target/debug/tunnelbook-app'));
const bedBinary = resolve(process.argv[3] ?? join(root, 'target/debug/tunnelbook-e2e-bed'));
const cli = resolve(process.argv[4] ?? join(root, 'target/debug/tunnelbook'));
const shots = resolve(process.env.E2E_SHOTS_DIR ?? join(root, 'docs/screenshots'));
const port = Number(process.env.FILES_DRIVER_PORT ?? 0) || (await freePort());
const nativePort = await freePort();
const wd = webdriver(`http://127.0.0.1:${port}`);
const home = mkdtempSync(join(tmpdir(), 'tunnelbook-e2e-files-'));
const userHome = mkdtempSync(join(tmpdir(), 'tunnelbook-e2e-files-home-'));
const BED_USER = 'tbfiles';
mkdirSync(shots, { recursive: true });

const step = (name) => console.log(`ok - ${name}`);
let session;
let bed;
let driver;
let dropTarget = null;
let failed = false;

function appPids() {
  const pids = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const environ = readFileSync(`/proc/${name}/environ`, 'utf8').split('\0');
      if (readlinkSync(`/proc/${name}/exe`) === binary && environ.includes(`TUNNELBOOK_HOME=${home}`)) pids.push(Number(name));
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return pids;
}

function startBed() {
  bed = spawn(bedBinary, ['--user', BED_USER], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolveBed, reject) => {
    const lines = createInterface({ input: bed.stdout });
    lines.once('line', (line) => resolveBed(JSON.parse(line)));
    bed.once('exit', (code) => reject(new Error(`the test bed exited (${code}) before it was ready`)));
  });
}

const s = (path) => `/session/${session}${path}`;
const find = async (using, value) => (await wd('POST', s('/element'), { using, value }))[ELEMENT];
const findAll = async (using, value) => (await wd('POST', s('/elements'), { using, value })).map((e) => e[ELEMENT]);
const click = async (el) => wd('POST', s(`/element/${el}/click`), {});
const text = async (el) => wd('GET', s(`/element/${el}/text`));
/** Calls an app command from the page, as the UI does. */
const command = async (cmd, args = {}) => {
  const out = await wd('POST', s('/execute/async'), {
    script:
      'const done = arguments[arguments.length - 1];' +
      'window.__TAURI_INTERNALS__.invoke(arguments[0], arguments[1]).then((v) => done({ ok: v }), (e) => done({ err: e }));',
    args: [cmd, args],
  });
  if (out && 'err' in out) throw new Error(`${cmd}: ${JSON.stringify(out.err)}`);
  return out.ok;
};
const type = async (el, t) => {
  await wd('POST', s(`/element/${el}/clear`), {});
  await wd('POST', s(`/element/${el}/value`), { text: t });
};
const button = (label) => `//button[normalize-space()=${JSON.stringify(label)}]`;
const hostCard = (name) =>
  `//li[@data-testid='host-entry'][.//div[contains(concat(' ', @class, ' '), ' name ') and normalize-space()=${JSON.stringify(name)}]]`;
const row = (name) => `//tr[@data-testid='file-row'][@data-name=${JSON.stringify(name)}]`;
const shot = async (name) => {
  await sleep(500);
  writeFileSync(join(shots, name), Buffer.from(await wd('GET', s('/screenshot')), 'base64'));
  console.log(`screenshot docs/screenshots/${name}`);
};

/** The GTK dialog titled `title` (its X window id), once it is mapped. */
async function dialogWindow(title) {
  const id = await waitFor(`the "${title}" dialog`, () => {
    try {
      return execFileSync('xdotool', ['search', '--name', `^${title}$`], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim().split('\n')[0];
    } catch {
      return null; // not there yet
    }
  }, 30000);
  await sleep(1000); // let GTK map and focus it
  execFileSync('xdotool', ['windowfocus', '--sync', id]);
  return id;
}

function dialogOpen(title) {
  try {
    return execFileSync('xdotool', ['search', '--name', `^${title}$`], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim() !== '';
  } catch {
    return false;
  }
}

/** Pseudo-random bytes, so a byte-for-byte comparison means something. */
function noise(len) {
  const b = Buffer.alloc(len);
  let x = 0x2545f491;
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

async function main() {
  const box = await startBed();
  const remoteHome = `/home/${BED_USER}`;
  // Leftovers of an earlier failed run.
  for (const f of ['upload-me.bin', 'results.csv', 'results-final.csv', 'drag me #1.bin', 'drag-dir', 'big-drag.bin']) rmSync(join(remoteHome, f), { recursive: true, force: true });
  // A file on the host to download.
  const results = 'epoch,loss\n1,0.93\n2,0.41\n3,0.22\n';
  writeFileSync(join(remoteHome, 'results.csv'), results);
  const uid = statSync(remoteHome).uid;
  chownSync(join(remoteHome, 'results.csv'), uid, statSync(remoteHome).gid);
  // The saved host, as `tunnelbook hosts add` saves it.
  execFileSync(cli, ['hosts', 'add', 'gpu-box', '--host', box.host, '--port', String(box.port), '--user', box.user, '--key', box.key], {
    env: { ...process.env, TUNNELBOOK_HOME: home, HOME: userHome },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const local = mkdtempSync(join(tmpdir(), 'tunnelbook-e2e-files-local-'));
  const upload = join(local, 'upload-me.bin');
  const uploadBody = noise(3 * 1024 * 1024 + 17);
  writeFileSync(upload, uploadBody);

  driver = spawn('tauri-driver', ['--port', String(port), '--native-port', String(nativePort)], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, TUNNELBOOK_HOME: home, HOME: userHome },
  });
  await waitFor('tauri-driver', () => wd('GET', '/status').then(() => true).catch(() => false));
  session = (await wd('POST', '/session', { capabilities: { alwaysMatch: { 'tauri:options': { application: binary } } } })).sessionId;

  // 1. Connect (trusting the new host key), then Files: the home folder over that connection.
  await click(await waitFor('gpu-box Connect', () => find('xpath', `${hostCard('gpu-box')}${button('Connect')}`), 30000));
  await click(await waitFor('the host key dialog', () => find('xpath', button('Trust and connect')), 30000));
  await waitFor('the connection', () => find('xpath', button('Choose a GPU')), 30000);
  await click(await find('css selector', '[data-testid="tab-files"]'));
  await waitFor('the home folder', async () => (await text(await find('css selector', '[data-testid="files-path"]'))) === remoteHome, 30000);
  await waitFor('results.csv listed', () => find('xpath', row('results.csv')), 30000);
  step(`Files lists ${remoteHome} over gpu-box's connection`);

  // 2. Upload… through the file picker.
  await click(await find('css selector', '[data-testid="files-upload"]'));
  await dialogWindow('Upload to the host');
  execFileSync('xdotool', ['key', '--clearmodifiers', 'ctrl+l']);
  await sleep(300);
  execFileSync('xdotool', ['type', '--delay', '10', upload]);
  // The location field's completion may take the first Return; press again while it is open.
  for (let i = 0; i < 3 && dialogOpen('Upload to the host'); i++) {
    await sleep(700);
    execFileSync('xdotool', ['key', 'Return']);
  }
  await waitFor('upload-me.bin listed', () => find('xpath', row('upload-me.bin')), 30000);
  const onHost = readFileSync(join(remoteHome, 'upload-me.bin'));
  if (!onHost.equals(uploadBody)) throw new Error(`the uploaded file differs (${onHost.length} bytes on the host, ${uploadBody.length} here)`);
  if (statSync(join(remoteHome, 'upload-me.bin')).uid !== uid) throw new Error('the upload is not owned by the host user');
  const progress = await text(await waitFor('the progress', () => find('css selector', '[data-testid="files-progress"]')));
  if (!progress.includes('Uploading upload-me.bin') || !progress.includes('done') || !progress.includes('1/1 files')) throw new Error(`progress: ${progress}`);
  if (readdirSync(remoteHome).some((n) => n.includes('.tbpart-'))) throw new Error('a temporary file was left on the host');
  step(`Upload… sent upload-me.bin (${uploadBody.length} bytes) byte for byte, progress: ${progress}`);

  // 3. Download through the save dialog.
  const savedTo = join(local, 'results-here.csv');
  await click(await find('xpath', `${row('results.csv')}${button('Download')}`));
  await dialogWindow('Download from the host');
  execFileSync('xdotool', ['key', '--clearmodifiers', 'ctrl+a']);
  execFileSync('xdotool', ['type', '--delay', '10', savedTo]);
  execFileSync('xdotool', ['key', 'Return']);
  await waitFor('the download at the chosen place', () => existsSync(savedTo) && readFileSync(savedTo, 'utf8') === results, 30000);
  await waitFor('the download notice', async () => (await text(await find('css selector', '[data-testid="files-notice"]'))).includes(`Downloaded results.csv to ${savedTo}`));
  step('Download saved results.csv where the save dialog said, byte for byte');
  // The view from its title: the drag-out hint, the download's notice and progress, the rows.
  await wd('POST', s('/execute/sync'), { script: 'document.getElementById("files-title").scrollIntoView(); return 1;', args: [] });
  await shot('files.png');

  // 3b. Drag out: a file row, then a folder row, dragged out of the window as a user does
  // (xdotool: press, move, release) onto a real drop target — a GTK 3 window that accepts
  // text/uri-list and copies what is dropped into a folder, as a file manager does
  // (drop-target.py) — land there byte for byte.
  const dragBody = noise(5 * 1024 * 1024 + 3);
  writeFileSync(join(remoteHome, 'drag me #1.bin'), dragBody);
  mkdirSync(join(remoteHome, 'drag-dir/sub'), { recursive: true });
  writeFileSync(join(remoteHome, 'drag-dir/a.txt'), 'first\n');
  writeFileSync(join(remoteHome, 'drag-dir/sub/b.bin'), noise(70000));
  for (const f of ['drag me #1.bin', 'drag-dir', 'drag-dir/a.txt', 'drag-dir/sub', 'drag-dir/sub/b.bin']) chownSync(join(remoteHome, f), uid, statSync(remoteHome).gid);
  await click(await find('xpath', button('Refresh')));
  await waitFor('drag me #1.bin listed', () => find('xpath', row('drag me #1.bin')), 30000);
  await waitFor('drag-dir listed', () => find('xpath', row('drag-dir')), 30000);
  const hint = await text(await find('css selector', '[data-testid="drag-hint"]'));
  if (!hint.startsWith('Drag out to save')) throw new Error(`the drag hint: ${hint}`);
  const dropDir = mkdtempSync(join(tmpdir(), 'tunnelbook-e2e-files-drop-'));
  dropTarget = spawn('/usr/bin/python3', [join(root, 'tests/e2e-app/drop-target.py'), dropDir, '1110', '560'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const dropped = [];
  createInterface({ input: dropTarget.stdout }).on('line', (l) => dropped.push(l));
  await waitFor('the drop target', () => dropped.includes('ready'), 20000);
  const appWindow = execFileSync('xdotool', ['search', '--onlyvisible', '--name', '^Tunnelbook$']).toString().trim().split('\n')[0];
  // Without a window manager, a closed GTK file dialog of the steps above can stay mapped over
  // the app: raise the app (the drop target sits to its right, on no other window).
  execFileSync('xdotool', ['windowraise', appWindow]);
  const geometry = Object.fromEntries(execFileSync('xdotool', ['getwindowgeometry', '--shell', appWindow]).toString().trim().split('\n').map((l) => l.split('=')));
  const xdo = (...args) => execFileSync('xdotool', args.map(String));
  // Press on a row's size cell and move past the drag threshold (the page's dragstart: the app
  // downloads the file, then starts the native drag under the held button).
  const pressAndMove = async (name, pause = 80, steps = 6) => {
    const cell = await wd('POST', s('/execute/sync'), {
      script: 'const c = arguments[0]; c.scrollIntoView({ block: "center" }); const b = c.getBoundingClientRect(); return { x: b.x, y: b.y, width: b.width, height: b.height };',
      args: [{ [ELEMENT]: await find('xpath', `${row(name)}/td[2]`) }],
    });
    const x = Math.round(Number(geometry.X) + cell.x + cell.width / 2);
    const y = Math.round(Number(geometry.Y) + cell.y + cell.height / 2);
    xdo('mousemove', x, y);
    await sleep(300);
    xdo('mousedown', 1);
    await sleep(200);
    for (let i = 1; i <= steps; i++) {
      xdo('mousemove', x + 5 * i, y + 3 * i);
      await sleep(pause);
    }
    return [x + 5 * steps, y + 3 * steps];
  };
  // …then over the target in steps, and let go.
  const carryAndDrop = async ([x, y], name) => {
    const [tx, ty] = [1195, 680];
    for (let i = 1; i <= 12; i++) {
      xdo('mousemove', Math.round(x + ((tx - x) * i) / 12), Math.round(y + ((ty - y) * i) / 12));
      await sleep(100);
    }
    await sleep(600);
    xdo('mouseup', 1);
    await waitFor(`${name} dropped on the target`, () => dropped.some((l) => l === `dropped ${name}` || l.startsWith('error')), 20000);
    if (!dropped.includes(`dropped ${name}`)) throw new Error(`the drop target says: ${dropped.join(' | ')}`);
  };
  // Prepared: the copy is complete in the app's drag-out cache (a file appears there only by its
  // final rename; the folder's last file is checked). The progress line says so meanwhile, and is
  // cleared once the drag is handed to the system (trial finding 9), so it cannot be waited for.
  const dragCache = join(userHome, '.cache/dev.tunnelbook.app/drag-out');
  const prepared = (name, last, size) => existsSync(dragCache)
    && readdirSync(dragCache).some((d) => existsSync(join(dragCache, d, name, last)) && statSync(join(dragCache, d, name, last)).size === size);
  for (const [name, last, size] of [['drag me #1.bin', '', dragBody.length], ['drag-dir', 'sub/b.bin', 70000]]) {
    const at = await pressAndMove(name);
    await waitFor(`${name} prepared for the drag`, () => prepared(name, last, size), 30000);
    await sleep(700);
    await carryAndDrop(at, name);
  }
  const got = readFileSync(join(dropDir, 'drag me #1.bin'));
  if (!got.equals(dragBody)) throw new Error(`the dragged-out file differs (${got.length} bytes dropped, ${dragBody.length} on the host)`);
  if (readFileSync(join(dropDir, 'drag-dir/a.txt'), 'utf8') !== 'first\n' || !readFileSync(join(dropDir, 'drag-dir/sub/b.bin')).equals(noise(70000))) throw new Error('the dragged-out folder differs from the host\'s');
  if (!existsSync(dragCache)) throw new Error(`the drag-out copies are not in ${dragCache}`);
  step(`drag out: "drag me #1.bin" (${dragBody.length} bytes) and the folder drag-dir/ dragged from their rows onto a GTK drop target landed there byte for byte (hint: "${hint}")`);

  // Let go before the file is ready (80 MB, released right past the drag threshold: tens of
  // milliseconds against the download's hundreds): nothing is dropped and the view says it is
  // ready; the next drag of it starts from the same copy (no second download) and lands.
  const bigBody = noise(80 * 1024 * 1024);
  writeFileSync(join(remoteHome, 'big-drag.bin'), bigBody);
  chownSync(join(remoteHome, 'big-drag.bin'), uid, statSync(remoteHome).gid);
  await click(await find('xpath', button('Refresh')));
  await waitFor('big-drag.bin listed', () => find('xpath', row('big-drag.bin')), 30000);
  const droppedBefore = dropped.length;
  await pressAndMove('big-drag.bin', 10, 2);
  xdo('mouseup', 1);
  const readyNotice = 'big-drag.bin is ready: drag it again and drop it where it should go';
  await waitFor('the "ready: drag it again" notice', async () => (await text(await find('css selector', '[data-testid="files-notice"]')).catch(() => '')) === readyNotice, 60000);
  if (dropped.length !== droppedBefore) throw new Error(`dropped although let go early: ${dropped.join(' | ')}`);
  const at = await pressAndMove('big-drag.bin');
  await sleep(1000);
  await carryAndDrop(at, 'big-drag.bin');
  if (!readFileSync(join(dropDir, 'big-drag.bin')).equals(bigBody)) throw new Error('the dragged-out big-drag.bin differs from the host\'s');
  const copies = readdirSync(dragCache).filter((d) => existsSync(join(dragCache, d, 'big-drag.bin')));
  if (copies.length !== 1) throw new Error(`big-drag.bin was prepared ${copies.length} times`);
  step(`let go before big-drag.bin (${bigBody.length} bytes) was ready: nothing dropped, "${readyNotice}"; the next drag used the same copy and landed byte for byte`);
  dropTarget.kill('SIGTERM');
  dropTarget = null;
  rmSync(dropDir, { recursive: true, force: true });
  for (const f of ['drag me #1.bin', 'drag-dir', 'big-drag.bin']) rmSync(join(remoteHome, f), { recursive: true, force: true });
  await click(await find('xpath', button('Refresh')));

  // 4. Rename on the host.
  await click(await find('xpath', `${row('results.csv')}${button('Rename')}`));
  await type(await find('css selector', '[data-testid="rename-input"]'), 'results-final.csv');
  await click(await find('xpath', `${row('results.csv')}${button('Rename')}`));
  await waitFor('results-final.csv listed', () => find('xpath', row('results-final.csv')), 30000);
  if (existsSync(join(remoteHome, 'results.csv')) || !existsSync(join(remoteHome, 'results-final.csv'))) throw new Error('not renamed on the host');
  step('Rename renamed the file on the host');

  // 5. Delete asks first, then deletes on the host.
  await click(await find('xpath', `${row('upload-me.bin')}${button('Delete')}`));
  const asked = await text(await find('xpath', row('upload-me.bin')));
  if (!asked.includes('Delete upload-me.bin?')) throw new Error(`no confirmation: ${asked}`);
  if (!existsSync(join(remoteHome, 'upload-me.bin'))) throw new Error('deleted before the confirmation');
  await click(await find('css selector', '[data-testid="confirm-delete"]'));
  await waitFor('upload-me.bin gone from the list', async () => (await findAll('xpath', row('upload-me.bin'))).length === 0, 30000);
  if (existsSync(join(remoteHome, 'upload-me.bin'))) throw new Error('still on the host after Delete');
  step('Delete asked first, then deleted upload-me.bin on the host');
  rmSync(join(remoteHome, 'results-final.csv'), { force: true });

  // 6. Open notebook…: a local notebook's folder goes up, JupyterLab starts there and the
  // notebook opens in a notebook window; a save on the host comes back; a local edit made
  // meanwhile is kept and the host's save lands beside it, and the user is told.
  const proj = join(local, 'proj');
  mkdirSync(join(proj, 'data'), { recursive: true });
  const nb = (marks) => JSON.stringify({
    cells: marks.map((m) => ({ cell_type: 'code', execution_count: null, metadata: {}, outputs: [], source: `print(${JSON.stringify(m)})` })),
    metadata: {}, nbformat: 4, nbformat_minor: 5,
  });
  writeFileSync(join(proj, 'analysis.ipynb'), nb(['first']));
  writeFileSync(join(proj, 'data/small.csv'), 'a,b\n1,2\n');
  mkdirSync(join(proj, '__pycache__'));
  writeFileSync(join(proj, '__pycache__/x.pyc'), 'x');
  const remoteProj = join(remoteHome, 'tunnelbook/proj');
  rmSync(remoteProj, { recursive: true, force: true });
  await click(await find('css selector', '[data-testid="open-notebook"]'));
  await dialogWindow('Open notebook on the host');
  execFileSync('xdotool', ['key', '--clearmodifiers', 'ctrl+l']);
  await sleep(300);
  execFileSync('xdotool', ['type', '--delay', '10', join(proj, 'analysis.ipynb')]);
  for (let i = 0; i < 3 && dialogOpen('Open notebook on the host'); i++) {
    await sleep(700);
    execFileSync('xdotool', ['key', 'Return']);
  }
  await waitFor('the notebook to open on the host', () => find('css selector', '[data-testid="project-syncing"]'), 120000);
  await waitFor('the notebook window', async () => (await wd('GET', s('/window/handles'))).length === 2, 30000);
  if (!existsSync(join(remoteProj, 'analysis.ipynb')) || readFileSync(join(remoteProj, 'data/small.csv'), 'utf8') !== 'a,b\n1,2\n') throw new Error('the project did not go up');
  if (existsSync(join(remoteProj, '__pycache__'))) throw new Error('__pycache__ went up');
  const upText = await text(await find('css selector', '[data-testid="project-upload"]'));
  if (!upText.includes('2/2 files')) throw new Error(`upload progress: ${upText}`);
  step(`Open notebook… uploaded the folder (${upText}), started JupyterLab there and opened the notebook window`);

  // A save on the host (as JupyterLab writes it) comes back within seconds.
  writeFileSync(join(remoteProj, 'analysis.ipynb'), nb(['first', 'saved on the host']));
  await waitFor('the host save to come back', () => readFileSync(join(proj, 'analysis.ipynb'), 'utf8').includes('saved on the host'), 20000);
  await waitFor('the log line', async () => (await Promise.all((await findAll('css selector', '[data-testid="project-log"]')).map(text))).some((t) => t.includes('analysis.ipynb came back')));
  step('a save on the host came back to the local notebook');

  // The project lives in the app, not in the page: what a reloaded main window restores from
  // (the `projects` command; the page's side is ProjectState.restore, files.test.ts). (WebDriver's
  // refresh of the Tauri page never completes under WebKitWebDriver, so the reload itself is not
  // driven here.)
  const kept = (await command('projects')).at(-1);
  if (kept?.phase !== 'syncing' || kept.notebook !== join(proj, 'analysis.ipynb') || kept.remoteDir !== remoteProj || !kept.log.some((f) => f.rel === 'analysis.ipynb')) throw new Error(`the app keeps: ${JSON.stringify(kept)}`);
  step('the app keeps the project (syncing, its folder on the host, what came back) for a reloaded window');

  // The connection drops (sshd and its sessions killed, back after 8 s); a save made on the host
  // meanwhile comes back once the app has reconnected (the sync reopens SFTP on the new connection).
  bed.stdin.write('restart-sshd 8\n');
  await sleep(1500);
  writeFileSync(join(remoteProj, 'analysis.ipynb'), nb(['first', 'saved during the outage']));
  await waitFor('the outage save to come back', () => readFileSync(join(proj, 'analysis.ipynb'), 'utf8').includes('saved during the outage'), 90000);
  step('a save made on the host while the connection was down came back after the reconnect');

  // Edited here, then saved on the host: both versions kept, the user told.
  await sleep(1100);
  writeFileSync(join(proj, 'analysis.ipynb'), nb(['first', 'edited on the laptop']));
  await sleep(1100);
  writeFileSync(join(remoteProj, 'analysis.ipynb'), nb(['first', 'second save on the host']));
  await click(await find('xpath', button('Bring back now')));
  const beside = join(proj, 'analysis (gpu-box).ipynb');
  await waitFor('the host version beside the local one', () => existsSync(beside) && readFileSync(beside, 'utf8').includes('second save on the host'), 20000);
  if (!readFileSync(join(proj, 'analysis.ipynb'), 'utf8').includes('edited on the laptop')) throw new Error('the local edit was overwritten');
  await waitFor('the conflict told', async () => (await Promise.all((await findAll('css selector', '[data-testid="project-log"]')).map(text))).some((t) => t.includes('saved beside it')));
  await shot('open-notebook.png');
  await click(await find('xpath', button('Stop syncing')));
  await waitFor('syncing stopped', async () => (await text(await find('css selector', '[data-testid="project"]'))).includes('Syncing stopped'));
  step('a local edit is kept; the host save landed beside it as "analysis (gpu-box).ipynb" and the user was told; Stop syncing stopped');

  // 6b. The tray offers "Open notebook on GPU…" on the connected host's session (the picker it
  // opens is not driven here: under Xvfb a picker without a parent window refuses xdotool's focus).
  const trayHost = (await command('tray_menu')).items.find((e) => e.kind === 'submenu' && e.label === 'gpu-box');
  const trayItem = (trayHost?.items ?? []).flatMap((e) => (e.kind === 'submenu' ? e.items : [e])).find((e) => e.kind === 'action' && e.label === 'Open notebook on GPU…');
  if (!trayItem?.id.startsWith('notebook:')) throw new Error(`no "Open notebook on GPU…" in the tray: ${JSON.stringify(trayHost)}`);
  step(`the tray offers "Open notebook on GPU…" (${trayItem.id}) on gpu-box's session`);
  rmSync(remoteProj, { recursive: true, force: true });

  // 7. "Open with Tunnelbook" (the bundle's .ipynb file association): the app started with a
  // notebook on its command line shows it in Files, waiting for a host; once connected, one
  // click opens it there.
  await command('quit_app', { stopNotebooks: true }).catch(() => {});
  await waitFor('the app to exit', () => appPids().length === 0, 20000);
  if (existsSync(join(userHome, '.cache/dev.tunnelbook.app/drag-out'))) throw new Error('the drag-out copies are still in the cache after Quit');
  step('Quit removed the drag-out copies from the cache');
  await wd('DELETE', s('')).catch(() => {});
  session = (await wd('POST', '/session', { capabilities: { alwaysMatch: { 'tauri:options': { application: binary, args: [join(proj, 'analysis.ipynb')] } } } })).sessionId;
  const waiting = await text(await waitFor('the requested notebook', () => find('css selector', '[data-testid="requested-notebook"]'), 30000));
  if (!waiting.includes(join(proj, 'analysis.ipynb')) || !waiting.includes('Connect to a host')) throw new Error(`requested: ${waiting}`);
  await click(await find('css selector', '[data-testid="tab-hosts"]'));
  await click(await waitFor('gpu-box Connect', () => find('xpath', `${hostCard('gpu-box')}${button('Connect')}`), 30000));
  await waitFor('the connection', () => find('xpath', button('Choose a GPU')), 30000);
  await click(await find('css selector', '[data-testid="tab-files"]'));
  await click(await waitFor('Open it on gpu-box', () => find('xpath', button('Open it on gpu-box')), 30000));
  await waitFor('the requested notebook to open on the host', () => find('css selector', '[data-testid="project-syncing"]'), 120000);
  if (!existsSync(join(remoteProj, 'analysis.ipynb'))) throw new Error('the requested notebook did not go up');
  step('started with a notebook on the command line: it waited in Files, then opened on gpu-box in one click');
  rmSync(remoteProj, { recursive: true, force: true });
  rmSync(local, { recursive: true, force: true });
}

try {
  await main();
  console.log('e2e-app files: all checks passed');
} catch (e) {
  failed = true;
  console.error(`not ok - ${e.message}`);
  if (session) {
    try {
      writeFileSync(join(tmpdir(), 'tunnelbook-e2e-files-failure.png'), Buffer.from(await wd('GET', s('/screenshot')), 'base64'));
      console.error(await text(await find('css selector', 'main')));
    } catch (err) {
      console.error(`(no failure screenshot: ${err.message})`);
    }
  }
} finally {
  if (session) await wd('DELETE', s('')).catch(() => {});
  const end = Date.now() + 5000;
  while (appPids().length > 0 && Date.now() < end) await sleep(200);
  for (const pid of appPids()) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {}
  }
  if (bed) {
    bed.stdin.end();
    await new Promise((r) => (bed.exitCode !== null ? r() : bed.once('exit', r)));
  }
  driver?.kill('SIGTERM');
  dropTarget?.kill('SIGTERM');
  rmSync(home, { recursive: true, force: true });
  rmSync(userHome, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
