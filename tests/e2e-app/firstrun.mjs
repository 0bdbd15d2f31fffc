// A Bitvise user's first hour, through the real app (tauri-driver + WebKitWebDriver, plain W3C
// WebDriver HTTP, no npm dependencies), against the test bed's real sshd, GPU shim and JupyterLab.
//
//   node tests/e2e-app/firstrun.mjs <tunnelbook-app binary> <tunnelbook-e2e-bed binary>   (under Xvfb)
//
// The app starts with no saved host and a ~/.ssh/config of three hosts (gpu-box: the bed's sshd;
// inner: behind gpu-box as its ProxyJump; x11-box: with ForwardX11, which has no Tunnelbook
// equivalent) plus a `Host *` pattern. Checks:
//  1. First start offers the import: one row per host with what it maps to (inner "via gpu-box"),
//     the pattern skipped with its reason, the unmapped option named; importing saves all three.
//  2. The JupyterLab environment is a shared venv at /srv/tunnelbook-test/jlab (a link to the bed's
//     venv), not on the login PATH, not in the home (the bed runs with --no-env-link) and in no place
//     environment discovery looks (/opt/NAME and /opt/GROUP/NAME are: the bed's own venv under
//     /opt/tunnelbook-test is listed by itself): "Add environment path…" checks it on the host
//     (Python version, JupyterLab present), it is kept in the host's profile, and the launch is
//     ready. Clicks and typed fields from first start to the open notebook, and on to an executed
//     cell (the launcher's Python 3 card, the code, Shift+Enter), are counted.
//  3. A second launch from Hosts needs no choice (Connect, Start JupyterLab: the saved environment).
//     The app quits with that notebook running and starts again: on connect the host card says
//     "Notebook running on GPU 1 — Reopen", and Reopen opens it on the same local port. The tray's
//     one-click "Connect and open notebook" then launches with no choice either.
//  4. Importing again marks every host as already saved; one is imported under a new name.
//  5. The host form refuses port "5O609" ("not a number") and user@host in Host (core's messages);
//     Delete asks first.
//     Browse… picks a key file in the system picker; core refuses a public key, the private is saved.
//  3d. The app quits with the tray's notebook running; after a restart the tray's one-click launch
//     starts no second server: the window offers Reopen, on the same local port.
//  2b. Two hosts, one failing: the failing one's GPU and Environment screens never show the first
//     host's; the first keeps its GPU and environment choice.
//  3a. (issue 14) Connect on the connected host shows its session: no second session, no second
//     TCP connection to sshd; the host card shows "Connected", then "Notebook ready on GPU 1". The
//     notebook window closed by its own close button (WM_DELETE_WINDOW) saves its unsaved cell
//     first. After the restart and Reopen, Sessions shows the reopened notebook's GPU and venv.
// Screenshots: docs/screenshots/first-run-import.png, environment-add-path.png, host-card-reopen.png,
// two-hosts-one-failing.png, host-card-live.png.
import { execFileSync, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { ELEMENT, freePort, sleep, waitFor, webdriver } from './webdriver.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const binary = resolve(process.argv[2] ?? join(root, 'target/debug/tunnelbook-app'));
const bedBinary = resolve(process.argv[3] ?? join(root, 'target/debug/tunnelbook-e2e-bed'));
const shots = resolve(process.env.E2E_SHOTS_DIR ?? join(root, 'docs/screenshots'));
// Its own ports: run.mjs and tray.mjs (or another person's run) may have a tauri-driver up.
const port = Number(process.env.FIRSTRUN_DRIVER_PORT ?? 0) || (await freePort());
const nativePort = await freePort();
const wd = webdriver(`http://127.0.0.1:${port}`);
const home = mkdtempSync(join(tmpdir(), 'tunnelbook-e2e-firstrun-'));
// The app's $HOME: its ~/.ssh/config is the one written here, not the machine's.
const userHome = mkdtempSync(join(tmpdir(), 'tunnelbook-e2e-firstrun-home-'));
// The bed's login user: not run.mjs's `tbapp`, so both can run at once.
const BED_USER = 'tbfirst';
mkdirSync(shots, { recursive: true });

const step = (name) => console.log(`ok - ${name}`);
let session;
let bed;
let driver;
let failed = false;
// What the user does, counted: clicks and typed fields.
const count = { clicks: 0, typed: 0 };

/** This run's app processes: the ones whose TUNNELBOOK_HOME is this run's (the tray keeps the app
 * running after its window closes). */
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
  bed = spawn(bedBinary, ['--user', BED_USER, '--no-env-link'], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolveBed, reject) => {
    const lines = createInterface({ input: bed.stdout });
    lines.once('line', (line) => resolveBed(JSON.parse(line)));
    bed.once('exit', (code) => reject(new Error(`the test bed exited (${code}) before it was ready`)));
  });
}

const s = (path) => `/session/${session}${path}`;
const find = async (using, value) => (await wd('POST', s('/element'), { using, value }))[ELEMENT];
const findAll = async (using, value) => (await wd('POST', s('/elements'), { using, value })).map((e) => e[ELEMENT]);
const rawClick = async (el) => wd('POST', s(`/element/${el}/click`), {});
/** A click the user makes (counted). */
const click = async (el) => {
  count.clicks += 1;
  return rawClick(el);
};
const rawType = async (el, t) => {
  await wd('POST', s(`/element/${el}/clear`), {});
  await wd('POST', s(`/element/${el}/value`), { text: t });
};
/** A field the user types into (counted). */
const type = async (el, t) => {
  count.typed += 1;
  return rawType(el, t);
};
const text = async (el) => wd('GET', s(`/element/${el}/text`));
const prop = async (el, name) => wd('GET', s(`/element/${el}/property/${name}`));
const button = (label) => `//button[normalize-space()=${JSON.stringify(label)}]`;
/** The host card whose name is exactly `name`. */
const hostCard = (name) =>
  `//li[@data-testid='host-entry'][.//div[contains(concat(' ', @class, ' '), ' name ') and normalize-space()=${JSON.stringify(name)}]]`;
const shot = async (name) => {
  await sleep(500);
  writeFileSync(join(shots, name), Buffer.from(await wd('GET', s('/screenshot')), 'base64'));
  console.log(`screenshot docs/screenshots/${name}`);
};
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
/** The GTK dialog titled `title`, focused, once it is mapped. */
async function dialogWindow(title) {
  const id = await waitFor(`the "${title}" dialog`, () => {
    try {
      return execFileSync('xdotool', ['search', '--onlyvisible', '--name', `^${title}$`], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim().split('\n').filter(Boolean);
    } catch {
      return null; // not there yet
    }
  }, 30000);
  await sleep(1000); // let GTK map and focus it
  // GTK may map more than one window under the title: focus the one that takes it.
  for (const w of id) {
    try {
      execFileSync('xdotool', ['windowfocus', '--sync', w], { stdio: ['ignore', 'ignore', 'ignore'], timeout: 5000 });
      return w;
    } catch {
      // not focusable; the next
    }
  }
  return id[0];
}
function dialogOpen(title) {
  try {
    return execFileSync('xdotool', ['search', '--name', `^${title}$`], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim() !== '';
  } catch {
    return false;
  }
}
/** Chooses `path` in the GTK file picker titled `title` (typed into its location field). */
async function pickInDialog(title, path) {
  await dialogWindow(title);
  execFileSync('xdotool', ['key', '--clearmodifiers', 'ctrl+l']);
  await sleep(300);
  execFileSync('xdotool', ['type', '--delay', '10', path]);
  // The location field's completion may take the first Return; press again while it is open.
  for (let i = 0; i < 3 && dialogOpen(title); i++) {
    await sleep(700);
    execFileSync('xdotool', ['key', 'Return']);
  }
}
/** Browse… on the host form and choose `path` in its picker, until the key files field shows it.
 * On a busy machine GTK's picker sometimes opens its location field after xdotool has started
 * typing, and Return then takes the highlighted file (~/.ssh/config, first in the folder)
 * instead of the typed path: the harness closes the picker and tries again (3 times at most). */
async function browseKeyFile(path) {
  const title = 'Choose a private key file';
  for (let attempt = 1; ; attempt++) {
    await rawClick(await find('xpath', button('Browse…')));
    await pickInDialog(title, path);
    if (dialogOpen(title)) execFileSync('xdotool', ['key', 'Escape']);
    try {
      await waitFor(`the key files field to show ${path}`, async () => (await prop(await find('css selector', '#hf-keys'), 'value')) === path, 10000);
      return;
    } catch (e) {
      if (attempt >= 3) throw e;
      console.log(`# the picker took another file than ${path} (attempt ${attempt}); again`);
    }
  }
}
const windows = async () => (await wd('GET', s('/window/handles'))).length;
/** The app's established TCP connections to sshd on `port` (its SSH connections to the host). */
function sshConnections(sshdPort) {
  const mine = new Set();
  for (const pid of appPids()) {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) mine.add(m[1]);
      } catch {
        // closed meanwhile
      }
    }
  }
  let n = 0;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const remotePort = parseInt(f[2].split(':')[1], 16);
      if (remotePort === sshdPort && f[3] === '01' && mine.has(f[9])) n += 1;
    }
  }
  return n;
}
/** Clicks the close button of every window titled like `title`, as a window manager does
 * (WM_DELETE_WINDOW; see wm-close.py); returns how many windows were found. */
function wmClose(title) {
  let ids = [];
  try {
    ids = execFileSync('xdotool', ['search', '--name', title], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim().split('\n').filter(Boolean);
  } catch {
    return 0;
  }
  if (ids.length > 0) execFileSync('python3', [join(root, 'tests/e2e-app/wm-close.py'), ...ids]);
  return ids.length;
}
const readyOn = async (host) =>
  (await command('list_sessions')).find((x) => x.hostId === host && x.status === 'ready' && x.url) ?? null;

/** The shared environment added by its path: outside every place core's discovery looks (the
 * home, conda's envs folders, /opt/NAME, /opt/GROUP/NAME, /usr/local, the login PATH). README's
 * count types this path; a UI unit test checks it against core's scan. */
const sharedEnv = '/srv/tunnelbook-test/jlab';

async function main() {
  const box = await startBed();
  // The bed's venv by that path (a link: the venv is built once, under /opt/tunnelbook-test).
  mkdirSync(dirname(sharedEnv), { recursive: true, mode: 0o755 });
  rmSync(sharedEnv, { force: true });
  symlinkSync(box.venv, sharedEnv);
  mkdirSync(join(userHome, '.ssh'), { recursive: true, mode: 0o700 });
  writeFileSync(
    join(userHome, '.ssh/config'),
    [
      'Host *',
      '    ServerAliveInterval 15',
      '',
      'Host gpu-box',
      `    HostName ${box.host}`,
      `    Port ${box.port}`,
      `    User ${box.user}`,
      `    IdentityFile ${box.key}`,
      '',
      'Host inner',
      '    HostName 10.1.2.3',
      '    User ana',
      '    ProxyJump gpu-box',
      '',
      'Host x11-box',
      '    HostName 10.1.2.4',
      '    ForwardX11 yes',
      '',
    ].join('\n'),
  );
  driver = spawn('tauri-driver', ['--port', String(port), '--native-port', String(nativePort)], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, TUNNELBOOK_HOME: home, HOME: userHome },
  });
  await waitFor('tauri-driver', () => wd('GET', '/status').then(() => true).catch(() => false));
  const created = await wd('POST', '/session', {
    capabilities: { alwaysMatch: { 'tauri:options': { application: binary } } },
  });
  session = created.sessionId;

  // 1. First start: the import preview of ~/.ssh/config.
  const panel = await waitFor('the first-run import', () => find('css selector', '[data-testid="import-hosts"]'), 30000).catch(async (e) => {
    throw new Error(`${e.message}; the import preview: ${JSON.stringify(await command('preview_import').catch((x) => x.message))}`);
  });
  if (!(await text(panel)).includes('Welcome')) throw new Error(`not a first-run greeting: ${await text(panel)}`);
  const rows = await Promise.all((await findAll('css selector', '[data-testid="import-row"]')).map(text));
  if (rows.length !== 3) throw new Error(`expected three hosts to import: ${JSON.stringify(rows)}`);
  const row = (name) => rows.find((r) => r.startsWith(name)) ?? '';
  if (!row('gpu-box').includes(`${box.user}@${box.host}:${box.port}`)) throw new Error(`gpu-box maps to: ${row('gpu-box')}`);
  if (!row('inner').includes('ana@10.1.2.3') || !row('inner').includes('via gpu-box')) throw new Error(`inner maps to: ${row('inner')}`);
  const skipped = await text(await find('css selector', '[data-testid="import-skipped"]'));
  if (!skipped.includes('* —') || !skipped.includes('a pattern')) throw new Error(`skipped: ${skipped}`);
  const notes = await text(await find('css selector', '[data-testid="import-notes"]'));
  if (!/forwardx11/i.test(notes)) throw new Error(`the unmapped ForwardX11 is not named: ${notes}`);
  for (const name of ['gpu-box', 'inner', 'x11-box']) {
    if (!(await prop(await find('css selector', `input[aria-label="Import ${name}"]`), 'checked'))) throw new Error(`${name} not chosen`);
  }
  await shot('first-run-import.png');
  await click(await find('xpath', button('Import 3 hosts')));
  await waitFor('the imported hosts', async () => (await findAll('xpath', `${hostCard('gpu-box')} | ${hostCard('inner')} | ${hostCard('x11-box')}`)).length === 3);
  const saved = readFileSync(join(home, 'hosts.toml'), 'utf8');
  if (!saved.includes('jump = "gpu-box"') || !saved.includes(`port = ${box.port}`)) throw new Error(`hosts.toml:\n${saved}`);
  step('first start: ~/.ssh/config previewed (jump kept, pattern skipped, ForwardX11 named) and three hosts imported');

  // 2. Connect, trust the key, take the preselected free GPU, add the shared venv by its path.
  await click(await find('xpath', `${hostCard('gpu-box')}${button('Connect')}`));
  await click(await waitFor('the host key dialog', () => find('xpath', button('Trust and connect')), 30000));
  await click(await waitFor('Choose a GPU', () => find('xpath', button('Choose a GPU')), 30000));
  await waitFor('two GPU cards', async () => (await findAll('css selector', '[data-testid="gpu-card"]')).length === 2, 30000);
  const chosen = await find('css selector', `input[value="${box.freeGpu}"]`);
  if (!(await prop(chosen, 'checked'))) throw new Error('the free GPU is not preselected');
  await click(await find('xpath', button('Next: choose an environment')));
  await waitFor('the discovered environments', async () => (await findAll('css selector', '[data-testid="env-row"]')).length >= 1, 30000);
  // The rows' paths are their radios' values (a narrow window hides the path column's text).
  const found = await Promise.all((await findAll('css selector', '[data-testid="env-row"] input[type="radio"]')).map((el) => prop(el, 'value')));
  if (found.includes(sharedEnv)) throw new Error(`the shared venv was found without being added: ${found}`);
  // As README says: discovery looks in /opt/NAME and /opt/GROUP/NAME, so the bed's own venv there
  // is listed by itself; the path outside those places is the one to add.
  if (!found.includes(box.venv)) throw new Error(`discovery did not list ${box.venv} (under /opt/GROUP/NAME): ${found}`);
  await click(await find('xpath', button('Add environment path…')));
  await type(await find('css selector', '#env-add-path'), sharedEnv);
  await click(await find('xpath', button('Check and add')));
  const added = await waitFor('the added environment', () => find('css selector', `input[value="${sharedEnv}"]`), 30000);
  if (!(await prop(added, 'checked'))) throw new Error('the added environment is not chosen');
  const addedRow = await text(await find('xpath', `//label[@data-testid='env-row'][.//input[@value=${JSON.stringify(sharedEnv)}]]`));
  if (!/Python 3\.\d+/.test(addedRow) || !addedRow.includes('JupyterLab')) throw new Error(`added row: ${addedRow}`);
  await shot('environment-add-path.png');
  const main1 = await wd('GET', s('/window'));
  await click(await find('xpath', button('Start JupyterLab')));
  await waitFor('the notebook to be ready', () => find('css selector', '[data-testid="notebook-ready"]'), 120000);
  const first = { ...count };
  await waitFor('the notebook window', async () => (await windows()) === 2, 30000);
  // 2a. On to an executed cell, as the user goes on: the launcher's Python 3 card, the code typed
  // into the first cell, Shift+Enter (counted as a click: it is the Run button).
  const nbWindow = (await wd('GET', s('/window/handles'))).find((h) => h !== main1);
  await wd('POST', s('/window'), { handle: nbWindow });
  const pythonCard = '.jp-LauncherCard[data-category="Notebook"]';
  await waitFor('the Python 3 card in the launcher', () => find('css selector', pythonCard), 90000);
  await sleep(2000); // JupyterLab re-renders the launcher as it settles
  await waitFor('a click on the Python 3 card', async () => {
    await rawClick(await find('css selector', pythonCard));
    return true;
  });
  count.clicks += 1;
  const editorSelector = '.jp-NotebookPanel .jp-Cell .cm-content';
  await waitFor('the first cell of the new notebook', () => find('css selector', editorSelector), 60000);
  await sleep(2000);
  await waitFor('typing in the first cell', async () => {
    const editor = await find('css selector', editorSelector);
    await rawClick(editor);
    // Shift+Enter runs the cell; NULL releases Shift.
    await wd('POST', s(`/element/${editor}/value`), { text: 'import os; print(os.environ["CUDA_VISIBLE_DEVICES"])\uE008\uE007\uE000' });
    return true;
  });
  count.typed += 1; // the code
  count.clicks += 1; // Shift+Enter (Run)
  const cellOut = await waitFor('the cell output', async () => {
    const outs = await findAll('css selector', '.jp-NotebookPanel .jp-OutputArea-output');
    return outs.length > 0 ? (await text(outs[0])).trim() : null;
  }, 90000);
  if (cellOut !== box.freeGpu) throw new Error(`the kernel saw CUDA_VISIBLE_DEVICES=${cellOut}, not ${box.freeGpu}`);
  const toCell = { ...count };
  await wd('POST', s('/window'), { handle: main1 });
  const profile = readFileSync(join(home, 'hosts.toml'), 'utf8');
  if (!profile.includes(`environment = "${sharedEnv}"`)) throw new Error(`the environment is not kept:\n${profile}`);
  let ready = await readyOn('gpu-box');
  if (ready?.env !== sharedEnv) throw new Error(`first launch env: ${JSON.stringify(ready)}`);
  step(`shared venv ${sharedEnv} checked on the host, kept for gpu-box and launched`);
  console.log(`CLICKS first start -> JupyterLab open: ${first.clicks} clicks, ${first.typed} typed field(s)`);
  console.log(`CLICKS first start -> executed cell: ${toCell.clicks} clicks (Shift+Enter counted as one), ${toCell.typed} typed field(s) (the environment path, the cell's code); the cell printed ${cellOut}`);
  step(`first start to an executed cell: ${toCell.clicks} clicks, ${toCell.typed} typed fields; the kernel saw the chosen GPU`);
  await rawClick(await find('xpath', `//*[@data-testid='notebook-ready']${button('Stop')}`));
  await rawClick(await find('xpath', `//*[@data-testid='notebook-ready']${button('Stop server')}`));
  await waitFor('the notebook window to close', async () => (await windows()) === 1, 30000);
  // Stop saved the notebook first: the cell never saved by hand is in the file on the host.
  const savedNotebook = readdirSync(`/home/${box.user}`, { recursive: true })
    .filter((f) => /Untitled[^/]*\.ipynb$/.test(String(f)))
    .map((f) => readFileSync(join(`/home/${box.user}`, String(f)), 'utf8'));
  if (!savedNotebook.some((t) => t.includes('CUDA_VISIBLE_DEVICES'))) throw new Error(`the unsaved cell was lost on Stop: ${savedNotebook.length} Untitled notebooks, none with the cell`);
  step('Stop saved the open notebook first: its unsaved cell is in the file on the host');

  // 2b. Each host keeps its own state: gpu-box connected with GPU 0 chosen (not the recommended
  // one), then a second host that fails (nothing listens on its port). The failing host's GPU and
  // Environment screens show neither gpu-box's cards nor its environments; back on gpu-box, its
  // choices are as they were.
  await rawClick(await find('css selector', '[data-testid="tab-gpus"]'));
  await waitFor('gpu-box GPU cards again', async () => (await findAll('css selector', '[data-testid="gpu-card"]')).length === 2, 30000);
  await rawClick(await find('css selector', `input[value="${box.busyGpu}"]`));
  if (!(await prop(await find('css selector', `input[value="${box.busyGpu}"]`), 'checked'))) throw new Error('GPU 0 could not be chosen');
  const gpuBox = (await command('list_hosts')).find((h) => h.profile?.name === 'gpu-box').profile;
  await command('save_host', { previousName: null, profile: { ...gpuBox, name: 'down-box', port: await freePort(), jump: null } });
  await rawClick(await find('css selector', '[data-testid="tab-hosts"]'));
  await rawClick(await waitFor('down-box Connect', () => find('xpath', `${hostCard('down-box')}${button('Connect')}`)));
  await waitFor('down-box to fail', () => find('xpath', button('Edit host')), 30000);
  await waitFor('the host switcher', () => find('css selector', '[data-testid="connect-host-down-box"]'));
  const downOn = async (tab) => {
    await rawClick(await find('css selector', `[data-testid="tab-${tab}"]`));
    const note = await text(await waitFor(`down-box's ${tab} note`, () => find('css selector', '[data-testid="host-not-connected"]')));
    if (!note.includes('down-box is not connected')) throw new Error(`${tab} for down-box says: ${note}`);
    const foreign = (await findAll('css selector', '[data-testid="gpu-card"]')).length + (await findAll('css selector', '[data-testid="env-row"]')).length;
    if (foreign !== 0) throw new Error(`down-box's ${tab} screen shows ${foreign} of gpu-box's GPU cards or environments`);
  };
  await downOn('gpus');
  await downOn('environment');
  await shot('two-hosts-one-failing.png');
  await rawClick(await find('css selector', '[data-testid="connect-host-gpu-box"]'));
  const keptEnv = await waitFor("gpu-box's environments", () => find('css selector', `input[value="${sharedEnv}"]`), 30000);
  if (!(await prop(keptEnv, 'checked'))) throw new Error("gpu-box's environment is no longer chosen");
  const forGpu = await text(await find('css selector', '[data-testid="env-gpu"]'));
  if (!forGpu.includes('GPU 0')) throw new Error(`gpu-box's environment screen is for: ${forGpu}`);
  await rawClick(await find('css selector', '[data-testid="tab-gpus"]'));
  await waitFor('gpu-box GPU cards after down-box failed', async () => (await findAll('css selector', '[data-testid="gpu-card"]')).length === 2, 30000);
  if (!(await prop(await find('css selector', `input[value="${box.busyGpu}"]`), 'checked'))) throw new Error("gpu-box's GPU choice was lost");
  await rawClick(await find('css selector', '[data-testid="tab-connect"]'));
  await rawClick(await find('css selector', '[data-testid="connect-host-down-box"]'));
  await waitFor("down-box's own failure", () => find('xpath', button('Edit host')));
  step('two hosts, one failing: down-box shows neither gpu-box\'s GPUs nor its environments; gpu-box keeps GPU 0 and its venv');

  // 3a. Second launch from Hosts: gpu-box is still connected (since 2), so its card says so and
  // Connect shows that session — its "Start JupyterLab" with the saved environment, no GPU or
  // environment to choose — and opens no second SSH connection (the app's TCP connections to
  // sshd and its session list both stay at one).
  await rawClick(await find('css selector', '[data-testid="tab-hosts"]'));
  const liveState = await text(await waitFor("gpu-box's live state", () => find('xpath', `${hostCard('gpu-box')}//*[@data-testid='host-state']`)));
  if (!liveState.startsWith('Connected')) throw new Error(`gpu-box's card says: ${liveState}`);
  const openOn = async () => (await command('list_sessions')).filter((x) => x.hostId === 'gpu-box' && x.status !== 'closed');
  const [connected] = await openOn();
  const sshBefore = sshConnections(box.port);
  if (sshBefore < 1) throw new Error(`no SSH connection to gpu-box's sshd while it is connected (${sshBefore})`);
  const before = count.clicks;
  // Its main button says what it does now (trial of #14, finding 17): no "Connect" on a connected host.
  const mainButton = await waitFor("gpu-box's main button", () => find('xpath', `${hostCard('gpu-box')}//button[@data-testid='host-main']`));
  const mainWords = await text(mainButton);
  if (mainWords === 'Connect') throw new Error('a connected host\'s card still offers "Connect"');
  await click(mainButton);
  await click(await waitFor('Start JupyterLab with the saved choices', () => find('css selector', '[data-testid="launch-saved"]'), 30000));
  await waitFor('the second notebook to be ready', () => find('css selector', '[data-testid="notebook-ready"]'), 120000);
  ready = await readyOn('gpu-box');
  if (ready?.env !== sharedEnv) throw new Error(`second launch env: ${JSON.stringify(ready)}`);
  const sessionsAfter = await openOn();
  if (sessionsAfter.length !== 1 || sessionsAfter[0].id !== connected.id) throw new Error(`Connect opened a second session: ${JSON.stringify(sessionsAfter)} (was ${connected.id})`);
  const sshAfter = sshConnections(box.port);
  if (sshAfter !== sshBefore) throw new Error(`Connect on a connected host opened a second SSH connection: ${sshBefore} -> ${sshAfter}`);
  const localPort = new URL(ready.url).port;
  step(`second launch: ${count.clicks - before} clicks from Hosts (Connect, Start JupyterLab), the saved environment, no choice; the same session ${connected.id} and ${sshAfter} SSH connection(s) to sshd, none added`);
  await rawClick(await find('css selector', '[data-testid="tab-hosts"]'));
  const readyState = await text(await waitFor("gpu-box's ready state", () => find('xpath', `${hostCard('gpu-box')}//*[@data-testid='host-state']`)));
  if (readyState !== `Notebook ready on ${ready.gpu}` || ready.gpu !== 'GPU 1') throw new Error(`gpu-box's card says: ${readyState} (the session: ${JSON.stringify(ready)})`);
  await shot('host-card-live.png');
  step(`gpu-box's card shows its live state: "${liveState}", then "${readyState}"`);

  // 3a'. The notebook window closed by its own close button saves first: a cell typed (never
  // saved by hand) is in the notebook file on the host after the window is gone.
  const main3 = await wd('GET', s('/window'));
  await waitFor('the second notebook window', async () => (await windows()) === 2, 30000);
  const nb2 = (await wd('GET', s('/window/handles'))).find((h) => h !== main3);
  await wd('POST', s('/window'), { handle: nb2 });
  // JupyterLab restores the last workspace (2a's notebook) instead of the launcher: a new
  // notebook through its own command (File ▸ New ▸ Notebook).
  await waitFor('JupyterLab in the second window', () => find('css selector', '.jp-LabShell'), 90000);
  await waitFor("JupyterLab's commands", () =>
    wd('POST', s('/execute/sync'), { script: 'return !!(window.jupyterapp && window.jupyterapp.commands.hasCommand("notebook:create-new"));', args: [] }), 60000);
  const created2 = await wd('POST', s('/execute/async'), {
    script: 'const done = arguments[arguments.length - 1]; window.jupyterapp.commands.execute("notebook:create-new", { kernelName: "python3" }).then(() => done(true), (e) => done(String(e)));',
    args: [],
  });
  if (created2 !== true) throw new Error(`no new notebook: ${created2}`);
  const activeEditor = '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell .cm-content';
  await waitFor('the first cell of the second notebook', () => find('css selector', activeEditor), 60000);
  await sleep(2000);
  const marker = `saved by closing the window ${Date.now()}`;
  await waitFor('typing in the cell', async () => {
    const editor = await find('css selector', activeEditor);
    await rawClick(editor);
    await wd('POST', s(`/element/${editor}/value`), { text: `print("${marker}")` });
    return true;
  });
  await waitFor('the notebook to have unsaved changes', () => find('css selector', '.jp-mod-dirty'), 20000);
  const notebooksWith = (needle) =>
    readdirSync(`/home/${box.user}`, { recursive: true })
      .filter((f) => /\.ipynb$/.test(String(f)) && !String(f).includes('.ipynb_checkpoints'))
      .filter((f) => readFileSync(join(`/home/${box.user}`, String(f)), 'utf8').includes(needle));
  if (notebooksWith(marker).length !== 0) throw new Error('the cell was saved before the window was closed');
  await wd('POST', s('/window'), { handle: main3 });
  const closed = wmClose('JupyterLab');
  if (closed === 0) throw new Error('no notebook window found to close');
  await waitFor('the notebook window to close', async () => (await windows()) === 1, 30000);
  const savedBy = notebooksWith(marker);
  if (savedBy.length !== 1) throw new Error(`closing the notebook window lost its unsaved cell (${savedBy.length} notebooks hold it)`);
  step(`the notebook window's own close saved ${savedBy[0]} first: its unsaved cell is on the host`);

  // 3b. Quit with the notebook running, start the app again: the host card offers Reopen, on the
  // same local port.
  await command('quit_app', { stopNotebooks: false }).catch(() => {});
  await waitFor('the app to exit', () => appPids().length === 0, 20000);
  await wd('DELETE', s('')).catch(() => {});
  session = (await wd('POST', '/session', { capabilities: { alwaysMatch: { 'tauri:options': { application: binary } } } })).sessionId;
  let main2 = await wd('GET', s('/window'));
  await click(await waitFor('gpu-box Connect after the restart', () => find('xpath', `${hostCard('gpu-box')}${button('Connect')}`), 30000));
  const running = await waitFor('the running notebook on connect', () => find('css selector', '[data-testid="running-notebook"]'), 60000);
  if (!(await text(running)).includes('Notebook running on GPU 1')) throw new Error(`running: ${await text(running)}`);
  await rawClick(await find('css selector', '[data-testid="tab-hosts"]'));
  const card = await waitFor('Reopen on the host card', () => find('css selector', '[data-testid="host-running"]'));
  if (!(await text(card)).includes('Notebook running on GPU 1')) throw new Error(`host card: ${await text(card)}`);
  await shot('host-card-reopen.png');
  await click(await find('xpath', `//*[@data-testid='host-running']${button('Reopen')}`));
  const reopened = await waitFor('the reopened notebook window', async () => {
    const all = await wd('GET', s('/window/handles'));
    return all.length === 2 ? all.find((h) => h !== main2) : null;
  }, 60000);
  await wd('POST', s('/window'), { handle: reopened });
  const reopenedUrl = await waitFor('the notebook URL', async () => {
    const u = await wd('GET', s('/url'));
    return u.startsWith('http://127.0.0.1') ? u : null;
  }, 30000);
  if (new URL(reopenedUrl).port !== localPort) throw new Error(`reopened on ${new URL(reopenedUrl).port}, was ${localPort}`);
  await waitFor('JupyterLab in the reopened window', () => find('css selector', '.jp-LabShell'), 90000);
  // What was open when the window was closed (3a') is open again: JupyterLab's workspace on the
  // server, not a fresh Launcher (trial of #14, finding 6).
  const savedName = String(savedBy[0]).split('/').pop();
  const reopenedTabs = await waitFor(`${savedName} open again in the reopened window`, async () => {
    const tabs = await wd('POST', s('/execute/sync'), { script: 'return [...document.querySelectorAll(".jp-LabShell .lm-DockPanel-tabBar .lm-TabBar-tabLabel")].map((t) => t.textContent);', args: [] });
    return tabs.includes(savedName) ? tabs : null;
  }, 60000);
  step(`after quitting with the notebook running and starting again, the host card offers Reopen; it reopened on the same port ${localPort}, on what was open: ${JSON.stringify(reopenedTabs)}`);
  // 3b'. The connection drops (sshd restarted, back after 6 s): the reopened window shows the
  // banner as a fresh launch's does, it goes on reconnect, and the same local port reaches the
  // server again — its forward runs over the host session (trial of #14 in s28, finding 1: the
  // port answered with resets after the reconnect).
  const reopenedBanner = async () => (await wd('POST', s('/execute/sync'), { script: 'const b = document.getElementById("tunnelbook-banner"); return b ? b.textContent : "";', args: [] }));
  bed.stdin.write('restart-sshd 6\n');
  const lostBanner = await waitFor('the connection banner in the reopened window', async () => {
    const t = await reopenedBanner();
    return t.includes('Connection to gpu-box lost') ? t : null;
  }, 30000);
  await waitFor('the banner to go after the reconnect', async () => (await reopenedBanner()) === '', 90000);
  const api = await waitFor('the reopened port answering after the reconnect', async () => {
    const r = await fetch(`http://127.0.0.1:${localPort}/api`).catch(() => null);
    return r && r.ok ? (await r.json()).version : null;
  }, 20000);
  step(`sshd outage with the reopened window: banner "${lostBanner}", gone on reconnect; port ${localPort} answers again (JupyterLab ${api})`);
  // The reopened window stays open: Stop in Sessions (below) must close it.
  await wd('POST', s('/window'), { handle: main2 });
  // The session's row shows what the reopened notebook was launched with (its record on the
  // host), not "—".
  await rawClick(await find('css selector', '[data-testid="tab-sessions"]'));
  const sessionRow = await text(await waitFor('the session row', async () => {
    for (const r of await findAll('css selector', '[data-testid="session-row"]')) {
      const t = await text(r);
      if (t.startsWith('gpu-box') && !t.includes('closed')) return r;
    }
    return null;
  }, 20000));
  if (!sessionRow.includes('GPU 1') || !sessionRow.includes(sharedEnv)) throw new Error(`the reopened notebook's session row: ${sessionRow}`);
  step(`Sessions shows the reopened notebook's GPU and environment: ${sessionRow.replace(/\s+/g, ' ')}`);
  // The reopened notebook is the app's notebook too: the tray's Quit asks about it (the first-use
  // trial quit at once here); Cancel keeps the app.
  const quitItem = (await command('tray_menu')).items.find((e) => e.kind === 'action' && e.label === 'Quit');
  await command('tray_action', { id: quitItem.id });
  await waitFor('the quit question', () => find('xpath', button('Stop notebooks and quit')), 20000);
  await click(await find('xpath', button('Cancel')));
  if (appPids().length === 0) throw new Error('the app quit without asking');
  step('tray Quit with a reopened notebook asks whether to stop it; Cancel keeps the app');
  // Stop it from Sessions, as a user would (trial of #14, finding 1): it asks about the running
  // kernels as for a notebook started in this run, closes the reopened window (never left on
  // JupyterLab's "Server Connection Error"), and the host card then says no notebook runs.
  await rawClick(await find('css selector', '[data-testid="tab-sessions"]'));
  const tbRow = "//tr[@data-testid='server-row'][contains(., 'Tunnelbook')]";
  await rawClick(await waitFor('the reopened server in Sessions', () => find('xpath', `${tbRow}${button('Stop')}`), 30000));
  const stopQuestion = await text(await find('xpath', `${tbRow}//*[@role='alert']`));
  if (!/running kernels end/.test(stopQuestion) || !/saved first/.test(stopQuestion)) throw new Error(`Stop asked: ${stopQuestion}`);
  await rawClick(await find('xpath', `${tbRow}${button('Stop server')}`));
  await waitFor('the reopened notebook window to close', async () => (await windows()) === 1, 30000);
  await rawClick(await find('css selector', '[data-testid="tab-hosts"]'));
  // The windows close first, then the server stops: the card changes once it has.
  const stateEl = () => find('xpath', `${hostCard('gpu-box')}//*[@data-testid='host-state']`);
  // "Connected" says only that (trial of #14, finding 17): the notebook's own "Reopen" line goes.
  const afterStop = await waitFor("gpu-box's card to say no notebook runs", async () => {
    const t = await text(await stateEl());
    const reopen = await findAll('css selector', '[data-testid="host-running"]');
    return t === 'Connected' && reopen.length === 0 ? t : null;
  }, 30000).catch(async (e) => {
    throw new Error(`host card after Stop: ${await text(await stateEl())} (${e.message})`);
  });
  if ((await findAll('css selector', '[data-testid="host-running"]')).length) throw new Error('the host card still offers Reopen after Stop');
  step(`Stop in Sessions on the reopened notebook asked first, closed its window; the host card says "${afterStop}"`);
  const [own] = (await command('list_sessions')).filter((x) => x.hostId === 'gpu-box' && x.status === 'connected');
  const servers = await command('list_servers', { sessionId: own.id });
  for (const server of servers) await command('stop_server', { sessionId: own.id, serverId: server.id });

  // 3c. The tray's one-click launch, with every session closed as on a later day.
  for (const x of await command('list_sessions')) await command('close_session', { sessionId: x.id });
  const menu = await command('tray_menu');
  const sub = menu.items.find((e) => e.kind === 'submenu' && e.label === 'gpu-box')?.items ?? [];
  const item = sub.find((e) => e.kind === 'action' && e.label === 'Connect and open notebook');
  if (!item) throw new Error(`no one-click launch in the tray: ${JSON.stringify(sub)}`);
  // Opening the tray menu and clicking the item: the click is done as the tray does it.
  await command('tray_action', { id: item.id });
  ready = await waitFor('the tray launch to be ready', () => readyOn('gpu-box'), 120000);
  if (ready.env !== sharedEnv) throw new Error(`tray launch env: ${JSON.stringify(ready)}`);
  await waitFor('the notebook window', async () => (await windows()) === 2, 30000);
  step('tray: "Connect and open notebook" launched from the saved environment with no choice (2 clicks: menu, item)');

  // 3d. A later day: the app quits with the tray's notebook running and starts again. The tray's
  // one-click launch then starts no second server: the window offers Reopen, on the same port.
  const trayPort = new URL(ready.url).port;
  await command('quit_app', { stopNotebooks: false }).catch(() => {});
  await waitFor('the app to exit', () => appPids().length === 0, 20000);
  await wd('DELETE', s('')).catch(() => {});
  session = (await wd('POST', '/session', { capabilities: { alwaysMatch: { 'tauri:options': { application: binary } } } })).sessionId;
  main2 = await wd('GET', s('/window'));
  await waitFor('the hosts after the restart', () => find('xpath', hostCard('gpu-box')), 30000);
  const again = (await command('tray_menu')).items.find((e) => e.kind === 'submenu' && e.label === 'gpu-box')?.items ?? [];
  const oneClick = again.find((e) => e.kind === 'action' && e.label === 'Connect and open notebook');
  if (!oneClick) throw new Error(`no one-click launch in the tray after the restart: ${JSON.stringify(again)}`);
  await command('tray_action', { id: oneClick.id });
  const offer = await waitFor('the Reopen offer after the tray click', () => find('css selector', '[data-testid="running-notebook"]'), 60000);
  if (!(await text(offer)).includes('Notebook running on GPU 1')) throw new Error(`offer: ${await text(offer)}`);
  const [traySession] = (await command('list_sessions')).filter((x) => x.hostId === 'gpu-box' && x.status !== 'closed');
  if (traySession.status !== 'connected') throw new Error(`the tray launched anyway: ${JSON.stringify(traySession)}`);
  const onHost = (await command('list_servers', { sessionId: traySession.id })).filter((x) => x.managed);
  if (onHost.length !== 1) throw new Error(`expected the one running server, found ${onHost.length}: ${JSON.stringify(onHost)}`);
  await sleep(2000);
  if ((await command('list_sessions')).some((x) => x.status === 'launching' || x.status === 'ready')) throw new Error('a second server is being started');
  await shot('tray-reopen-offer.png');
  await click(await find('xpath', `//*[@data-testid='running-notebook']${button('Reopen')}`));
  const trayReopened = await waitFor('the reopened notebook window', async () => {
    const all = await wd('GET', s('/window/handles'));
    return all.length === 2 ? all.find((h) => h !== main2) : null;
  }, 60000);
  await wd('POST', s('/window'), { handle: trayReopened });
  const trayUrl = await waitFor('the notebook URL', async () => {
    const u = await wd('GET', s('/url'));
    return u.startsWith('http://127.0.0.1') ? u : null;
  }, 30000);
  if (new URL(trayUrl).port !== trayPort) throw new Error(`reopened on ${new URL(trayUrl).port}, was ${trayPort}`);
  await wd('POST', s('/window'), { handle: main2 });
  step(`tray after a restart with the notebook running: no second server, Reopen offered; reopened on the same port ${trayPort}`);
  // Sessions' Close on that row: the reopened window closes with it (trial of #14 in s28,
  // finding 3: it was left open on a dead address); the server keeps running, stopped here from
  // a new connection.
  await command('close_session', { sessionId: traySession.id });
  await waitFor('the reopened window to close with its session', async () => (await windows()) === 1, 20000);
  const cleanup = await command('start_session', { hostId: 'gpu-box' });
  await waitFor('a new connection to gpu-box', () => command('list_servers', { sessionId: cleanup }), 30000);
  await command('stop_server', { sessionId: cleanup, serverId: onHost[0].id });
  await command('close_session', { sessionId: cleanup });
  step('Close on the session of a reopened notebook closed its window; the server was left running');

  // 4. Importing again: every name is taken; one comes in under a new name.
  await rawClick(await find('css selector', '[data-testid="tab-hosts"]'));
  await rawClick(await waitFor('Import hosts…', () => find('xpath', button('Import hosts…'))));
  const rename = await waitFor('the rename field', () => find('css selector', 'input[aria-label="Name for gpu-box"]'));
  for (const name of ['gpu-box', 'inner', 'x11-box']) {
    if (await prop(await find('css selector', `input[aria-label="Import ${name}"]`), 'checked')) throw new Error(`${name} is chosen though saved`);
  }
  await rawType(rename, 'gpu-box-2');
  await rawClick(await find('css selector', 'input[aria-label="Import gpu-box"]'));
  await rawClick(await find('xpath', button('Import 1 host')));
  await waitFor('gpu-box-2 in the list', () => find('xpath', hostCard('gpu-box-2')));
  step('a second import marks saved names; gpu-box comes in again as gpu-box-2');

  // 5. The host form: core's messages; Delete asks first.
  await rawClick(await find('css selector', 'button[aria-label="Edit gpu-box-2"]'));
  await rawType(await waitFor('the port field', () => find('css selector', '#hf-port')), '5O609');
  await rawType(await find('css selector', '#hf-host'), 'ana@gpu.example.edu');
  await rawClick(await find('xpath', button('Save')));
  const portError = await text(await waitFor('the port message', () => find('css selector', '#hf-port-err')));
  const hostError = await text(await find('css selector', '#hf-host-err'));
  // Core's check of the typed text, through the app's check_port (trial of #14, finding 18).
  if (!/"5O609" is not a number/.test(portError) || !/user field/.test(hostError)) throw new Error(`form messages: ${portError} / ${hostError}`);
  if (/port = 5\n/.test(readFileSync(join(home, 'hosts.toml'), 'utf8'))) throw new Error('port 5 was saved from "5O609"');
  await rawClick(await find('xpath', button('Cancel')));

  // 5b. Key file with Browse…: ~/.ssh/config and the public key chosen by mistake are refused by
  // core's validator (saying what to choose); the private key is taken and saved.
  const labKey = join(userHome, '.ssh/id_lab');
  writeFileSync(labKey, readFileSync(box.key), { mode: 0o600 });
  writeFileSync(`${labKey}.pub`, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFirstHourTestKey ana@laptop\n');
  await rawClick(await find('css selector', 'button[aria-label="Edit gpu-box-2"]'));
  // ~/.ssh/config given by mistake (the picker opens in ~/.ssh, where it sits beside the keys): Save
  // refuses it at the field, saying what it is and what to choose (trial of #14, finding 8: it
  // was saved, and Connect failed later with "Could not read key").
  await rawType(await waitFor('the key files field', () => find('css selector', '#hf-keys')), join(userHome, '.ssh/config'));
  await rawClick(await find('xpath', button('Save')));
  const configError = await text(await waitFor('the config file message', async () => {
    const el = (await findAll('css selector', '#hf-keys-err'))[0];
    const t = el ? await text(el) : '';
    return t.includes('.ssh/config') ? el : null;
  }, 20000));
  if (!configError.includes('is not a private key file') || !configError.includes('an SSH config file') || !configError.includes('choose your private key')) throw new Error(`key file message for ~/.ssh/config: ${configError}`);
  if (readFileSync(join(home, 'hosts.toml'), 'utf8').includes('.ssh/config"')) throw new Error('~/.ssh/config was saved as a key file');
  await browseKeyFile(`${labKey}.pub`);
  const keyError = await waitFor('the key file message', async () => {
    const el = (await findAll('css selector', '#hf-keys-err'))[0];
    const t = el ? await text(el) : '';
    return t.includes('is a public key') ? t : null;
  }, 20000);
  if (!keyError.includes('is a public key') || !keyError.includes(`choose ${labKey} instead`)) throw new Error(`key file message: ${keyError}`);
  await browseKeyFile(labKey);
  await waitFor('the key file message to go', async () => (await findAll('css selector', '#hf-keys-err')).length === 0, 20000);
  if ((await prop(await find('css selector', '#hf-keys'), 'value')) !== labKey) throw new Error(`key files: ${await prop(await find('css selector', '#hf-keys'), 'value')}`);
  await rawClick(await find('xpath', button('Save')));
  await waitFor('the form to close', async () => (await findAll('css selector', '#hf-keys')).length === 0, 20000);
  if (!readFileSync(join(home, 'hosts.toml'), 'utf8').includes(`"${labKey}"`)) throw new Error(`the chosen key is not saved:\n${readFileSync(join(home, 'hosts.toml'), 'utf8')}`);
  step(`host form: Save refused ~/.ssh/config ("${configError}"), Browse… refused the public key ("${keyError}"); saved ${labKey}`);
  await rawClick(await find('css selector', 'button[aria-label="Delete x11-box"]'));
  const confirm = await text(await find('xpath', `${hostCard('x11-box')}//*[@role='alert']`));
  if (!confirm.includes('Delete x11-box')) throw new Error(`no confirmation: ${confirm}`);
  await rawClick(await find('xpath', `${hostCard('x11-box')}${button('Delete')}`));
  await waitFor('x11-box gone', async () => (await findAll('xpath', hostCard('x11-box'))).length === 0);
  step(`host form: "5O609" refused ("${portError}"), user@host refused ("${hostError}"); Delete asked before deleting`);
}

try {
  await main();
  console.log('e2e-app firstrun: all checks passed');
} catch (e) {
  failed = true;
  console.error(`not ok - ${e.message}`);
  if (session) {
    try {
      writeFileSync(join(tmpdir(), 'tunnelbook-e2e-firstrun-failure.png'), Buffer.from(await wd('GET', s('/screenshot')), 'base64'));
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
  rmSync(home, { recursive: true, force: true });
  rmSync(userHome, { recursive: true, force: true });
  rmSync(sharedEnv, { force: true });
}
process.exit(failed ? 1 : 0);
