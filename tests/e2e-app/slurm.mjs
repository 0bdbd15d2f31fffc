// JupyterLab on a SLURM compute node from the app (issue 20), through the real app (tauri-driver
// + WebKitWebDriver, plain W3C WebDriver HTTP) against the real SLURM bed (munge, slurmctld,
// slurmd, 4 fake GPUs) behind a real sshd.
//
//   node tests/e2e-app/slurm.mjs <tunnelbook-app> <tunnelbook-e2e-slurm-bed> <tunnelbook CLI>   (under Xvfb)
//
// Checks: connecting to the login node, the GPU step shows the cluster view and the request form
// (not the GPU cards); a plain launch on the login node is refused; an unknown GPU type is refused at its field before anything is queued;
// Check says "expected start ≈ …"; with a blocker job holding every GPU, Launch shows Queued with
// SLURM's reason; the blocker cancelled, the launch goes on to Ready with no user action and the
// same embedded notebook window opens through the login node; a cell in it prints
// CUDA_VISIBLE_DEVICES and it equals the kernel's SLURM_JOB_GPUS; Stop ends the job CANCELLED;
// a 2-minute job shows its time left and the 5-minute warning, then "Time limit reached" (not
// "connection lost") and "Relaunch with the same settings" (about 2.5 minutes of the suite);
// the login node is detected on connect (saved as SLURM before the GPU step opens); a job
// started by `tunnelbook up --slurm` under another TUNNELBOOK_HOME is listed on the Sessions
// screen, opened there (a cell runs on the job's GPU), named with its end time by the quit
// question, and stopped there (CANCELLED); JupyterLab missing on the node shows the job log's
// tail and the launch stops; quitting with "Leave them running" leaves the job RUNNING and the
// notice says until when.
// Screenshots: docs/screenshots/slurm-request.png, slurm-queued.png, slurm-notebook.png,
// slurm-sessions.png.
// Its own bed (the SLURM cluster's user tbslurm, used by no other app suite) and tauri-driver ports.
import { execFileSync, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { ELEMENT, freePort, sleep, waitFor, webdriver } from './webdriver.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const binary = resolve(process.argv[2] ?? join(root, 'target/debug/tunnelbook-app'));
const bedBinary = resolve(process.argv[3] ?? join(root, 'target/debug/tunnelbook-e2e-slurm-bed'));
const cli = resolve(process.argv[4] ?? join(root, 'target/debug/tunnelbook'));
const shots = resolve(process.env.E2E_SHOTS_DIR ?? join(root, 'docs/screenshots'));
const port = Number(process.env.SLURM_DRIVER_PORT ?? 0) || (await freePort());
const nativePort = await freePort();
const wd = webdriver(`http://127.0.0.1:${port}`);
const home = mkdtempSync(join(tmpdir(), 'tunnelbook-e2e-slurm-'));
const userHome = mkdtempSync(join(tmpdir(), 'tunnelbook-e2e-slurm-home-'));
// Another computer's Tunnelbook (step 8).
const otherHome = mkdtempSync(join(tmpdir(), 'tunnelbook-e2e-slurm-other-'));
mkdirSync(shots, { recursive: true });

const step = (name) => console.log(`ok - ${name}`);
let session;
let bed;
let bedLines;
let driver;
let failed = false;
let jobId = null;
let up = null;
let mainWindow = null;

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
  bed = spawn(bedBinary, [], { stdio: ['pipe', 'pipe', 'inherit'] });
  bedLines = createInterface({ input: bed.stdout })[Symbol.asyncIterator]();
  return Promise.race([
    bedLines.next().then((r) => JSON.parse(r.value)),
    new Promise((_, reject) => bed.once('exit', (code) => reject(new Error(`the SLURM bed exited (${code}) before it was ready`)))),
  ]);
}

/** Sends one command to the bed and returns its JSON answer. */
async function ask(line) {
  bed.stdin.write(`${line}\n`);
  const r = await bedLines.next();
  if (r.done) throw new Error(`the SLURM bed ended on "${line}"`);
  return JSON.parse(r.value);
}

const s = (path) => `/session/${session}${path}`;
const find = async (using, value) => (await wd('POST', s('/element'), { using, value }))[ELEMENT];
const findAll = async (using, value) => (await wd('POST', s('/elements'), { using, value })).map((e) => e[ELEMENT]);
const click = async (el) => wd('POST', s(`/element/${el}/click`), {});
const text = async (el) => wd('GET', s(`/element/${el}/text`));
/** Calls an app command from the page, as the UI does; resolves to `{ ok }` or `{ err }`. */
const command = async (cmd, args = {}) =>
  wd('POST', s('/execute/async'), {
    script:
      'const done = arguments[arguments.length - 1];' +
      'window.__TAURI_INTERNALS__.invoke(arguments[0], arguments[1]).then((v) => done({ ok: v }), (e) => done({ err: e }));',
    args: [cmd, args],
  });
const byId = (id) => find('css selector', `[data-testid="${id}"]`);
const script = async (body) => wd('POST', s('/execute/async'), { script: `const done = arguments[arguments.length - 1];\n${body}`, args: [] });
const type = async (el, t) => {
  await wd('POST', s(`/element/${el}/clear`), {});
  await wd('POST', s(`/element/${el}/value`), { text: t });
};
const button = (label) => `//button[normalize-space()=${JSON.stringify(label)}]`;
const hostCard = (name) =>
  `//li[@data-testid='host-entry'][.//div[contains(concat(' ', @class, ' '), ' name ') and normalize-space()=${JSON.stringify(name)}]]`;
const shot = async (name) => {
  await sleep(500);
  writeFileSync(join(shots, name), Buffer.from(await wd('GET', s('/screenshot')), 'base64'));
  console.log(`screenshot docs/screenshots/${name}`);
};

async function main() {
  const box = await startBed();
  const env = { ...process.env, TUNNELBOOK_HOME: home, HOME: userHome };
  // The saved host, as `tunnelbook hosts add` saves it; JupyterLab from the bed's venv (on the
  // cluster's shared filesystem, as a site's module or conda env is).
  execFileSync(cli, ['hosts', 'add', 'login-node', '--host', box.host, '--port', String(box.port), '--user', box.user, '--key', box.key], { env, stdio: ['ignore', 'inherit', 'inherit'] });
  execFileSync(cli, ['hosts', 'edit', 'login-node', '--env', box.venv], { env, stdio: ['ignore', 'inherit', 'inherit'] });

  driver = spawn('tauri-driver', ['--port', String(port), '--native-port', String(nativePort)], { stdio: ['ignore', 'inherit', 'inherit'], env });
  await waitFor('tauri-driver', () => wd('GET', '/status').then(() => true).catch(() => false));
  session = (await wd('POST', '/session', { capabilities: { alwaysMatch: { 'tauri:options': { application: binary } } } })).sessionId;
  const main = await wd('GET', s('/window'));
  mainWindow = main;

  // 1. Connect; the GPU step is the cluster view and the request form (detected: SLURM).
  await click(await waitFor('login-node Connect', () => find('xpath', `${hostCard('login-node')}${button('Connect')}`), 30000));
  await click(await waitFor('the host key dialog', () => find('xpath', button('Trust and connect')), 30000));
  await waitFor('the connection', () => find('xpath', button('Choose a GPU')), 30000);
  // Detected on connect by the host session (not when the GPU step first opens): saved with the
  // host before anything opens the GPU step.
  const connected = Date.now();
  await waitFor('scheduler: slurm saved on connect', async () =>
    execFileSync(cli, ['hosts', 'show', 'login-node'], { env }).toString().includes('scheduler: slurm') ? true : null, 10000);
  step(`the login node was detected as SLURM on connect (saved ${((Date.now() - connected) / 1000).toFixed(1)} s after the connection, before the GPU step opened)`);
  await click(await byId('tab-gpus'));
  await waitFor('the request form', () => byId('slurm-form'), 30000);
  const pools = await Promise.all((await findAll('css selector', '[data-testid="slurm-pool"]')).map(text));
  if (!pools.some((p) => p.includes('a100')) || !pools.some((p) => p.includes('v100'))) throw new Error(`cluster view: ${JSON.stringify(pools)}`);
  if ((await findAll('css selector', '[data-testid="gpu-card"]')).length !== 0) throw new Error('GPU cards on a SLURM login node');
  const saved = execFileSync(cli, ['hosts', 'show', 'login-node'], { env }).toString();
  if (!saved.includes('scheduler: slurm')) throw new Error(`the host was not saved as SLURM: ${saved}`);
  step(`the GPU step shows the cluster view (${pools.length} pools) and the request form; the host is saved as scheduler: slurm`);

  // 1a. Today's bug: a plain launch (the Connect screen's, the tray's) started JupyterLab on the
  // login node. It is refused there now, and nothing runs.
  const [sess] = (await command('list_sessions')).ok;
  const plain = await command('launch_notebook', { sessionId: sess.id, gpu: null, env: null });
  if (plain.err?.code !== 'unsupported' || !plain.err.message.includes('SLURM login node')) throw new Error(`a plain launch on the login node: ${JSON.stringify(plain)}`);
  await sleep(2000);
  const { processes } = await ask('processes');
  if (processes.some((p) => /jupyter/i.test(p))) throw new Error(`JupyterLab runs on the login node: ${processes.join('; ')}`);
  step(`a plain launch on the login node is refused ("${plain.err.message.slice(0, 60)}…"); no JupyterLab runs there`);

  // 2. An unknown GPU type is refused at its field, before anything is queued.
  await type(await byId('slurm-gpu-type'), 'h100');
  await type(await byId('slurm-time'), '10');
  await click(await byId('slurm-check'));
  const refused = await text(await waitFor('the refusal at the GPU type', () => byId('slurm-error-gpuType'), 30000));
  if (!refused.includes('h100') || !refused.includes('v100')) throw new Error(`refusal: ${refused}`);
  const { jobs } = await ask('jobs');
  if (jobs.length !== 0) throw new Error(`jobs queued after a refused check: ${jobs}`);
  step(`an unknown GPU type is refused at its field: ${refused}`);

  // 3. v100:1 checked: expected start shown.
  await type(await byId('slurm-gpu-type'), 'v100');
  await click(await byId('slurm-check'));
  const expected = await text(await waitFor('the expected start', () => byId('slurm-expected'), 30000));
  if (!expected.startsWith('Expected start ≈ ')) throw new Error(`expected: ${expected}`);
  await shot('slurm-request.png');
  step(`Check: ${expected}`);

  // 4. A blocker holds every GPU: Launch shows Queued with SLURM's reason.
  const { blocker } = await ask('blocker');
  const t0 = Date.now();
  await click(await byId('slurm-launch'));
  const queued = await text(await waitFor('Queued with a reason', async () => {
    const q = await text(await byId('slurm-queued'));
    return q.includes('Resources') ? await byId('slurm-queued') : null;
  }, 20000));
  const queuedAfter = (Date.now() - t0) / 1000;
  jobId = /job (\d+)/.exec(queued)?.[1] ?? null;
  if (!jobId) throw new Error(`no job id in "${queued}"`);
  if ((await ask(`state ${jobId}`)).state !== 'PENDING') throw new Error(`job ${jobId} is not pending`);
  await shot('slurm-queued.png');
  step(`queued after ${queuedAfter.toFixed(1)} s: ${queued}`);

  // 5. The blocker ends: Ready with no user action, the notebook window opens.
  await ask(`cancel ${blocker}`);
  await waitFor('Ready', () => byId('slurm-ready'), 120000);
  const ready = await text(await byId('slurm-ready'));
  step(`ready without a click: ${ready}`);
  const handles = await waitFor('the notebook window', async () => {
    const all = await wd('GET', s('/window/handles'));
    return all.length === 2 ? all : null;
  }, 30000);
  await wd('POST', s('/window'), { handle: handles.find((h) => h !== main) });
  await waitFor('JupyterLab in the notebook window', () => find('css selector', '.jp-LabShell'), 90000);
  const card = '.jp-LauncherCard[data-category="Notebook"]';
  await waitFor('the Python 3 card', () => find('css selector', card), 60000);
  await sleep(2000);
  await waitFor('a click on the Python 3 card', async () => {
    await click(await find('css selector', card));
    return true;
  });
  const editorSelector = '.jp-NotebookPanel .jp-Cell .cm-content';
  await waitFor('the first cell', () => find('css selector', editorSelector), 60000);
  await sleep(2000);
  await waitFor('typing in the first cell', async () => {
    const editor = await find('css selector', editorSelector);
    await click(editor);
    await wd('POST', s(`/element/${editor}/value`), {
      text: 'import os; print(os.environ.get("CUDA_VISIBLE_DEVICES"), os.getpid())\uE008\uE007\uE000',
    });
    return true;
  });
  const output = await waitFor('the cell output', async () => {
    const outs = await findAll('css selector', '.jp-NotebookPanel .jp-OutputArea-output');
    return outs.length > 0 ? (await text(outs[0])).trim() : null;
  }, 90000);
  const [cuda, pid] = output.split(/\s+/);
  if (/Jupyter news/i.test(await script('done(document.body.innerText);'))) throw new Error('JupyterLab asks about Jupyter news');
  const { jobGpus } = await ask(`job-gpus ${pid}`);
  if (!jobGpus || cuda !== jobGpus) throw new Error(`the kernel's CUDA_VISIBLE_DEVICES=${cuda}, its SLURM_JOB_GPUS=${jobGpus}`);
  if (!['2', '3'].includes(cuda)) throw new Error(`v100s are GPUs 2 and 3, the kernel has ${cuda}`);
  await shot('slurm-notebook.png');
  step(`a cell in the notebook window printed CUDA_VISIBLE_DEVICES=${cuda}, the job's SLURM_JOB_GPUS=${jobGpus}`);

  // 6. Stop: JupyterLab shut down, the job CANCELLED, the window closed.
  await wd('POST', s('/window'), { handle: main });
  await click(await byId('slurm-stop'));
  const ended = await text(await waitFor('the end', () => byId('slurm-ended'), 90000));
  if (!ended.includes('CANCELLED')) throw new Error(`stop said: ${ended}`);
  const state = (await ask(`state ${jobId}`)).state;
  if (state !== 'CANCELLED') throw new Error(`job ${jobId} is ${state} after Stop`);
  await waitFor('the notebook window to close', async () => (await wd('GET', s('/window/handles'))).length === 1, 20000);
  jobId = null;
  step(`Stop: ${ended}; SLURM says ${state}`);

  // 6b. JupyterLab missing on the node (an environment without it): the launch ends with the
  // job's log tail (what to install or choose) within a poll of the job's end; nothing is left
  // queued and the form is back.
  const launchedAt = Date.now();
  const missing = await command('launch_slurm_notebook', {
    sessionId: sess.id,
    request: { partition: null, gpuType: null, gpuCount: 0, time: '5', account: null },
    env: '/usr',
  });
  if (missing.err) throw new Error(`launch without JupyterLab: ${JSON.stringify(missing.err)}`);
  const failure = await text(await waitFor('the job log\'s tail', () => byId('slurm-failure'), 60000));
  const failedAfter = (Date.now() - launchedAt) / 1000;
  if (!failure.includes('FAILED') || !failure.includes('JupyterLab is not installed for /usr/bin/python')) throw new Error(`the failure said: ${failure}`);
  if (failedAfter > 20) throw new Error(`the log tail came ${failedAfter} s after the launch`);
  await byId('slurm-form');
  if ((await ask('jobs')).jobs.length !== 0) throw new Error('a job is left in the queue after the failure');
  step(`JupyterLab missing on the node: after ${failedAfter.toFixed(1)} s the app shows the job log's tail: ${failure.split('\n').slice(-1)[0]}`);

  // 7. A 2-minute job: time left and the 5-minute warning while it runs, then "time limit
  // reached" (not "connection lost") when SLURM ends it, with "Relaunch with the same settings".
  await type(await waitFor('the form again', () => byId('slurm-time'), 30000), '2');
  await click(await byId('slurm-launch'));
  await waitFor('Ready (2-minute job)', () => byId('slurm-ready'), 120000);
  const short = /job (\d+)/.exec(await text(await byId('slurm-queued')))?.[1];
  if (!short) throw new Error('no job id for the 2-minute job');
  jobId = short;
  const warning = await text(await waitFor('the time-left warning', () => byId('slurm-warning'), 30000));
  if (!warning.includes('5 minutes or less left')) throw new Error(`warning: ${warning}`);
  const left = await text(await byId('slurm-time-left'));
  step(`2-minute job ${short}: "${left}", warning "${warning}"`);
  const over = await text(await waitFor('the end of the 2-minute job', () => byId('slurm-ended'), 240000));
  if (!over.startsWith('Time limit reached') || /connection/i.test(over)) throw new Error(`the end said: ${over}`);
  await byId('slurm-relaunch');
  const final = (await ask(`state ${short}`)).state;
  if (!['TIMEOUT', 'COMPLETING'].includes(final)) throw new Error(`job ${short} is ${final}`);
  jobId = null;
  step(`"${over}" (SLURM: ${final}); Relaunch with the same settings offered`);

  // 8. A job started elsewhere: `tunnelbook up --slurm` under another TUNNELBOOK_HOME (another
  // computer). The app's Sessions screen lists it (state, node, GPUs, time left), Open attaches
  // to it in the same notebook window through the login node and a cell runs on the job's GPU;
  // the quit question says until when it keeps running (its end time from SLURM); Stop from
  // Sessions ends it CANCELLED.
  const otherEnv = { ...process.env, TUNNELBOOK_HOME: otherHome, HOME: userHome };
  execFileSync(cli, ['hosts', 'add', 'login-node', '--host', box.host, '--port', String(box.port), '--user', box.user, '--key', box.key], { env: otherEnv, stdio: ['ignore', 'inherit', 'inherit'] });
  execFileSync(cli, ['hosts', 'edit', 'login-node', '--env', box.venv], { env: otherEnv, stdio: ['ignore', 'inherit', 'inherit'] });
  // A fresh JupyterLab workspace: the launcher shows, not the notebook of step 5.
  rmSync(`/home/${box.user}/.jupyter/lab/workspaces`, { recursive: true, force: true });
  up = spawn(cli, ['--host-key-policy', 'accept-new', 'up', 'login-node', '--slurm', '--gpus', 'v100:1', '--time', '10', '--json'], {
    env: otherEnv,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const upLine = await Promise.race([
    createInterface({ input: up.stdout })[Symbol.asyncIterator]().next().then((r) => r.value),
    sleep(180000).then(() => null),
  ]);
  if (!upLine) throw new Error('`tunnelbook up --slurm` under another home printed no URL');
  const elsewhere = JSON.parse(upLine);
  jobId = elsewhere.jobId;
  // The other computer goes away: its tunnel closes, the job keeps running.
  up.kill('SIGINT');
  await new Promise((r) => (up.exitCode !== null ? r() : up.once('exit', r)));
  up = null;
  if ((await ask(`state ${jobId}`)).state !== 'RUNNING') throw new Error(`job ${jobId} is not running after the CLI left`);
  const [listed] = JSON.parse(execFileSync(cli, ['--host-key-policy', 'accept-new', 'ls', 'login-node', '--json'], { env: otherEnv }).toString()).filter((j) => j.row.id === jobId);
  const endTime = listed?.row?.endTime;
  if (!endTime || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/.test(endTime)) throw new Error(`job ${jobId}'s end time: ${JSON.stringify(listed)}`);
  step(`job ${jobId} started by \`tunnelbook up --slurm\` under another TUNNELBOOK_HOME on ${elsewhere.node} (CUDA_VISIBLE_DEVICES=${elsewhere.cudaVisibleDevices}); the CLI left, the job runs until ${endTime}`);

  await click(await byId('tab-sessions'));
  const row = `[data-testid="slurm-job-row"][data-job-id="${jobId}"]`;
  const rowText = await text(await waitFor('the job in Sessions', () => find('css selector', row), 30000));
  if (!rowText.includes('RUNNING') || !rowText.includes(`CUDA_VISIBLE_DEVICES=${elsewhere.cudaVisibleDevices}`) || !rowText.includes(endTime.replace('T', ' '))) {
    throw new Error(`the Sessions row: ${rowText}`);
  }
  await shot('slurm-sessions.png');
  step(`Sessions lists it: ${rowText.replace(/\s+/g, ' ')}`);
  const before = await wd('GET', s('/window/handles'));
  await click(await find('css selector', `${row} [data-testid="slurm-job-open"]`));
  const opened = await waitFor('the notebook window of the job', async () => {
    const all = await wd('GET', s('/window/handles'));
    return all.find((h) => !before.includes(h)) ?? null;
  }, 60000);
  await wd('POST', s('/window'), { handle: opened });
  await waitFor('JupyterLab in the job\'s window', () => find('css selector', '.jp-LabShell'), 90000);
  await waitFor('the Python 3 card', () => find('css selector', card), 60000);
  await sleep(2000);
  await waitFor('a click on the Python 3 card', async () => {
    await click(await find('css selector', card));
    return true;
  });
  await waitFor('the first cell', () => find('css selector', editorSelector), 60000);
  await sleep(2000);
  await waitFor('typing in the first cell', async () => {
    const editor = await find('css selector', editorSelector);
    await click(editor);
    await wd('POST', s(`/element/${editor}/value`), {
      text: 'import os; print(os.environ.get("CUDA_VISIBLE_DEVICES"), os.getpid())\uE008\uE007\uE000',
    });
    return true;
  });
  const out2 = await waitFor('the cell output in the job\'s window', async () => {
    const outs = await findAll('css selector', '.jp-NotebookPanel .jp-OutputArea-output');
    return outs.length > 0 ? (await text(outs[0])).trim() : null;
  }, 90000);
  const [cuda2, pid2] = out2.split(/\s+/);
  const { jobGpus: jobGpus2 } = await ask(`job-gpus ${pid2}`);
  if (cuda2 !== elsewhere.cudaVisibleDevices || cuda2 !== jobGpus2) throw new Error(`the kernel's CUDA_VISIBLE_DEVICES=${cuda2}, the job's ${elsewhere.cudaVisibleDevices}, its SLURM_JOB_GPUS=${jobGpus2}`);
  step(`opened from Sessions: a cell printed CUDA_VISIBLE_DEVICES=${cuda2} = the job's SLURM_JOB_GPUS=${jobGpus2}`);

  // Quit: the question says until when the job keeps running; Cancel keeps the app.
  await wd('POST', s('/window'), { handle: main });
  const quitItem = (await command('tray_menu')).ok.items.find((e) => e.kind === 'action' && e.label === 'Quit');
  await command('tray_action', { id: quitItem.id });
  const said = await text(await waitFor('the quit question about the job', () => byId('quit-slurm-job'), 30000));
  if (!said.includes(`job ${jobId}`) || !said.includes(`until ${endTime.replace('T', ' ')}`)) throw new Error(`the quit question said: ${said}`);
  await click(await find('xpath', button('Cancel')));
  step(`the quit question says: ${said}`);

  // Stop from Sessions: JupyterLab shut down, scancel, the end confirmed.
  await click(await waitFor('Stop of the job', () => find('css selector', `${row} [data-testid="slurm-job-stop"]`), 10000));
  const stopped = await text(await waitFor('the job stopped', () => byId('slurm-job-stopped'), 90000));
  const after = (await ask(`state ${jobId}`)).state;
  if (!stopped.includes('CANCELLED') || after !== 'CANCELLED') throw new Error(`Stop said "${stopped}", SLURM says ${after}`);
  jobId = null;
  step(`Stop from Sessions: "${stopped}"; SLURM says ${after}`);

  // 8b. Quit leaving a job running: the app's own launch (10 minutes), Quit → "Leave them running
  // and quit": the app exits, SLURM still runs the job, and the notice says until when.
  await click(await byId('tab-gpus'));
  await type(await waitFor('the form', () => byId('slurm-time'), 30000), '10');
  await click(await byId('slurm-launch'));
  await waitFor('Ready (a job to leave running)', () => byId('slurm-ready'), 120000);
  const kept = /job (\d+)/.exec(await text(await byId('slurm-queued')))?.[1];
  if (!kept) throw new Error('no job id for the job to leave running');
  jobId = kept;
  await wd('POST', s('/window'), { handle: main });
  const quit2 = (await command('tray_menu')).ok.items.find((e) => e.kind === 'action' && e.label === 'Quit');
  await command('tray_action', { id: quit2.id });
  const asked = await text(await waitFor('the quit question', () => byId('quit-slurm-job'), 30000));
  if (!asked.includes(`job ${kept}`) || !/until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d/.test(asked)) throw new Error(`the quit question said: ${asked}`);
  // The app may be gone before WebDriver answers the click.
  await click(await find('xpath', button('Leave them running and quit'))).catch(() => {});
  await waitFor('the app to exit', async () => (appPids().length === 0 ? true : null), 60000);
  session = null;
  const runsOn = (await ask(`state ${kept}`)).state;
  if (runsOn !== 'RUNNING') throw new Error(`job ${kept} is ${runsOn} after quitting without stopping`);
  const log = readFileSync(join(home, 'logs', 'tunnelbook.log'), 'utf8');
  const notice = log.split('\n').find((l) => l.includes('Notebooks left running') && l.includes(`SLURM job ${kept} on login-node keeps running until`));
  if (!notice) throw new Error(`no notice that job ${kept} keeps running`);
  step(`quit leaving job ${kept}: the app exited, SLURM says ${runsOn}; the notice: ${notice.replace(/^.*body=/, '')}`);
}

try {
  await main();
  console.log('e2e-app slurm: all checks passed');
} catch (e) {
  failed = true;
  console.error(`not ok - ${e.message}`);
  if (session) {
    try {
      const handles = await wd('GET', s('/window/handles'));
      await wd('POST', s('/window'), { handle: mainWindow ?? handles[0] });
      writeFileSync(join(tmpdir(), 'tunnelbook-e2e-slurm-failure.png'), Buffer.from(await wd('GET', s('/screenshot')), 'base64'));
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
  // The bed cancels the user's jobs (this run's, and a blocker a failure left) and stops.
  if (bed) {
    bed.stdin.end();
    await new Promise((r) => (bed.exitCode !== null ? r() : bed.once('exit', r)));
  }
  driver?.kill('SIGTERM');
  up?.kill('SIGTERM');
  rmSync(otherHome, { recursive: true, force: true });
  rmSync(home, { recursive: true, force: true });
  rmSync(userHome, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
