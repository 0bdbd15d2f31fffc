// Tray, Tunnels and Settings through the real app (tauri-driver + WebKitWebDriver, plain W3C
// WebDriver HTTP, no npm dependencies), against a real OpenSSH sshd started here on 127.0.0.1.
//
//   node tests/e2e-app/tray.mjs <path-to-tunnelbook-app-binary>     (under Xvfb; see run.sh)
//
// Checks:
//  1. After "This computer" connects, the tray menu model (read through the app's own
//     `tray_menu` command) lists its session.
//  2. A saved host on the test sshd connects; a local forwarding rule added in the Tunnels view
//     carries traffic to an echo server (the view's counters move); switching it off stops the
//     listener and is saved in hosts.toml; a one-off forward runs and stops.
//  3. The tray model lists both sessions and the free-GPU lines (drawn by this test for
//     tray-menu.png); settings saved in the Settings view survive an app restart.
// Screenshots: docs/screenshots/tunnels.png, tray-menu.png, settings.png.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { ELEMENT, freePort, sleep, waitFor, webdriver } from './webdriver.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const binary = resolve(process.argv[2] ?? join(root, 'target/debug/tunnelbook-app'));
const shots = join(root, 'docs/screenshots');
// Free ports unless given: other suites (or other people's) may run a tauri-driver on 4444.
const port = Number(process.env.TAURI_DRIVER_PORT ?? 0) || (await freePort());
const nativePort = await freePort();
const base = `http://127.0.0.1:${port}`;
const wd = webdriver(base);
const home = mkdtempSync(join(tmpdir(), 'tunnelbook-e2e-tray-'));
const sshdDir = mkdtempSync(join(tmpdir(), 'tunnelbook-e2e-sshd-'));
mkdirSync(shots, { recursive: true });

const step = (name) => console.log(`ok - ${name}`);

// --- the test bed: sshd on 127.0.0.1 (root login with a throwaway key) and an echo server ---
function startSshd(sshdPort) {
  chmodSync(sshdDir, 0o755);
  for (const name of ['host_ed25519', 'id']) {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'tb-e2e', '-f', join(sshdDir, name)]);
  }
  const authorized = join(sshdDir, 'authorized_keys');
  writeFileSync(authorized, readFileSync(join(sshdDir, 'id.pub')));
  chmodSync(authorized, 0o644);
  mkdirSync('/run/sshd', { recursive: true });
  const cfg = join(sshdDir, 'sshd_config');
  writeFileSync(
    cfg,
    [
      `Port ${sshdPort}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(sshdDir, 'host_ed25519')}`,
      `AuthorizedKeysFile ${authorized}`,
      `PidFile ${join(sshdDir, 'sshd.pid')}`,
      'StrictModes no',
      'PermitRootLogin yes',
      'AllowTcpForwarding yes',
      'UsePAM no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      '',
    ].join('\n'),
  );
  const proc = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  proc.stderr.on('data', () => {});
  return proc;
}

function startEcho() {
  const server = createServer((sock) => sock.pipe(sock));
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r(server)));
}

function echoThrough(addr, payload) {
  const [host, p] = [addr.slice(0, addr.lastIndexOf(':')), Number(addr.slice(addr.lastIndexOf(':') + 1))];
  return new Promise((resolveEcho, reject) => {
    const sock = tcpConnect(p, host, () => sock.write(payload));
    let got = Buffer.alloc(0);
    sock.on('data', (d) => {
      got = Buffer.concat([got, d]);
      if (got.length >= payload.length) {
        sock.end();
        resolveEcho(got.toString());
      }
    });
    sock.on('error', reject);
    setTimeout(() => reject(new Error(`no echo through ${addr}`)), 10000);
  });
}

function listens(addr) {
  const p = Number(addr.slice(addr.lastIndexOf(':') + 1));
  return new Promise((r) => {
    const sock = tcpConnect(p, '127.0.0.1', () => {
      sock.destroy();
      r(true);
    });
    sock.on('error', () => r(false));
  });
}

// The app's processes from this binary (to wait for the first one to be gone before a restart:
// single-instance would otherwise hand the second launch to the first).
function appPids() {
  try {
    return execFileSync('pgrep', ['-f', `^${binary}`]).toString().trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

const driver = spawn('tauri-driver', ['--port', String(port), '--native-port', String(nativePort)], {
  stdio: ['ignore', 'inherit', 'inherit'],
  env: { ...process.env, TUNNELBOOK_HOME: home },
});
let session;
let sshd;
let echo;
let failed = false;

async function newSession() {
  const created = await wd('POST', '/session', {
    capabilities: { alwaysMatch: { 'tauri:options': { application: binary } } },
  });
  session = created.sessionId;
}

async function endSession() {
  if (!session) return;
  await wd('DELETE', `/session/${session}`).catch(() => {});
  session = undefined;
  // Closing the window only hides it (the app stays in the tray): end the app itself.
  const end = Date.now() + 5000;
  while (appPids().length > 0 && Date.now() < end) await sleep(200);
  for (const pid of appPids()) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {}
  }
  await waitFor('the app to exit', () => appPids().length === 0, 10000);
}

const s = (path) => `/session/${session}${path}`;
const find = async (using, value) => (await wd('POST', s('/element'), { using, value }))[ELEMENT];
const findAll = async (using, value) => (await wd('POST', s('/elements'), { using, value })).map((e) => e[ELEMENT]);
const xpathText = (tag, t) => `//${tag}[contains(normalize-space(.), ${JSON.stringify(t)})]`;
const click = async (el) => wd('POST', s(`/element/${el}/click`), {});
const type = async (el, t) => {
  await wd('POST', s(`/element/${el}/clear`), {});
  await wd('POST', s(`/element/${el}/value`), { text: t });
};
const text = async (el) => wd('GET', s(`/element/${el}/text`));
const prop = async (el, name) => wd('GET', s(`/element/${el}/property/${name}`));
const tab = async (name) => click(await find('css selector', `[data-testid="tab-${name}"]`));
const shot = async (name) => {
  await sleep(500);
  const png = await wd('GET', s('/screenshot'));
  writeFileSync(join(shots, name), Buffer.from(png, 'base64'));
  console.log(`screenshot docs/screenshots/${name}`);
};
/** Calls an app command from the page, as the UI does (the main window's capability allows it). */
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
const menuLabels = (items) =>
  items.map((e) => (e.kind === 'separator' ? '---' : e.kind === 'submenu' ? `${e.label} ▸` : e.label));
const submenu = (items, label) => {
  const found = items.find((e) => e.kind === 'submenu' && e.label === label);
  if (!found) throw new Error(`no "${label}" submenu in ${JSON.stringify(menuLabels(items))}`);
  return found.items;
};

async function main() {
  const sshdPort = await freePort();
  sshd = startSshd(sshdPort);
  echo = await startEcho();
  const echoPort = echo.address().port;
  await waitFor('sshd', () => listens(`127.0.0.1:${sshdPort}`));
  // The host is saved and its key trusted beforehand (the host-key dialog has its own test).
  const hostKey = readFileSync(join(sshdDir, 'host_ed25519.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ');
  writeFileSync(join(home, 'known_hosts'), `[127.0.0.1]:${sshdPort} ${hostKey}\n`);
  writeFileSync(
    join(home, 'hosts.toml'),
    [
      'version = 1',
      '',
      '[[host]]',
      'name = "gpu-box"',
      'host = "127.0.0.1"',
      `port = ${sshdPort}`,
      'user = "root"',
      'auth = ["key-file"]',
      `identityFiles = [${JSON.stringify(join(sshdDir, 'id'))}]`,
      '',
    ].join('\n'),
  );

  await waitFor('tauri-driver', () => wd('GET', '/status').then(() => true).catch(() => false));
  await newSession();

  // 1. "This computer" connects; the tray model lists its session.
  await waitFor('the host list', () => find('xpath', xpathText('li', 'This computer')));
  const before = await command('tray_menu');
  const idle = submenu(before.items, 'This computer');
  if (idle[0]?.label !== 'Connect and open notebook') throw new Error(`idle tray: ${JSON.stringify(idle)}`);
  await click(await find('xpath', `${xpathText('li', 'This computer')}//button[normalize-space()='Connect']`));
  await waitFor('the connected state', () => find('xpath', "//button[normalize-space()='Choose a GPU']"));
  const tray = await waitFor('the session in the tray model', async () => {
    const m = await command('tray_menu');
    return menuLabels(submenu(m.items, 'This computer')).includes('Connected ▸') ? m : null;
  });
  step(`tray menu after a local session: ${JSON.stringify(menuLabels(tray.items))}`);

  // 2. The sshd host connects; a rule added in the Tunnels view carries traffic.
  await tab('hosts');
  await click(await waitFor('gpu-box Connect', () => find('xpath', `${xpathText('li', 'gpu-box')}//button[normalize-space()='Connect']`)));
  await waitFor('gpu-box connected', () => find('xpath', "//button[normalize-space()='Choose a GPU']"), 30000);
  await tab('tunnels');
  await waitFor('the connected host', async () => (await text(await find('css selector', '[data-testid="tunnels-connected"]'))).includes('connected'));
  await click(await find('xpath', "//button[normalize-space()='New rule']"));
  await type(await find('css selector', '#tn-host-to'), '127.0.0.1');
  await type(await find('css selector', '#tn-host-port'), String(echoPort));
  await click(await find('xpath', "//button[normalize-space()='Add rule']"));
  const row = await waitFor('the running rule', async () => {
    const rows = await findAll('css selector', '[data-testid="rule-row"]');
    return rows.length === 1 && (await text(rows[0])).includes('running') ? rows[0] : null;
  });
  const local = (await text(await find('css selector', '[data-testid="rule-listen"]'))).trim();
  if (!/^127\.0\.0\.1:\d+$/.test(local) || local.endsWith(`:${echoPort}`)) throw new Error(`no local address in "${await text(row)}"`);
  const reply = await echoThrough(local, 'hello through sshd');
  if (reply !== 'hello through sshd') throw new Error(`echo: ${reply}`);
  await waitFor('the counters to move', async () => {
    const c = await text(await find('css selector', '[data-testid="rule-connections"]'));
    return c.startsWith('1 ');
  }, 10000);
  step(`rule added in the UI forwards ${local} -> 127.0.0.1:${echoPort} through sshd; counters moved`);

  // A one-off forward next to it, for the screenshot and the record.
  await type(await find('css selector', '#oo-port'), String(echoPort));
  await click(await find('xpath', "//button[normalize-space()='Forward']"));
  await waitFor('the one-off forward', () => find('css selector', '[data-testid="oneoff-row"]'));
  await shot('tunnels.png');

  // Off: the listener stops and the profile says so.
  await click(await find('css selector', 'input[aria-label="Enable rule 1"]'));
  await waitFor('the rule to stop', async () => (await text(await find('css selector', '[data-testid="rule-row"]'))).includes('stopped'));
  await waitFor('the listener to close', async () => !(await listens(local)));
  const hosts = readFileSync(join(home, 'hosts.toml'), 'utf8');
  if (!/enabled = false/.test(hosts)) throw new Error(`hosts.toml lacks the disabled rule:\n${hosts}`);
  step('switching the rule off stops it and is saved in hosts.toml');
  await click(await find('css selector', 'input[aria-label="Enable rule 1"]'));
  await waitFor('the rule to run again', async () => (await text(await find('css selector', '[data-testid="rule-row"]'))).includes('running'));

  // 3. The tray's model with both sessions and the free-GPU lines, drawn by this test for the
  // record (Xvfb has no tray host; the user's Settings do not show it), then Settings: a change
  // that must survive a restart.
  const both = await waitFor('both sessions and the GPU lines in the tray model', async () => {
    const m = await command('tray_menu');
    const top = menuLabels(m.items);
    const ok =
      menuLabels(submenu(m.items, 'This computer')).includes('Connected ▸') &&
      menuLabels(submenu(m.items, 'gpu-box')).includes('Connected ▸') &&
      top.some((l) => l.startsWith('gpu-box: '));
    return ok ? m : null;
  }, 30000);
  await wd('POST', s('/execute/sync'), {
    script: `
      const draw = (items) => {
        const ul = document.createElement('ul');
        ul.style.cssText = 'list-style:none;margin:0.2rem 0 0.2rem 1rem;padding:0.25rem 0;border:1px solid #999;border-radius:6px;min-width:16rem;background:#fff';
        for (const e of items) {
          const li = document.createElement('li');
          li.style.padding = '0.2rem 0.75rem';
          if (e.kind === 'separator') { li.style.cssText = 'border-top:1px solid #999;margin:0.25rem 0;padding:0'; }
          else if (e.kind === 'submenu') { li.textContent = e.label + ' ▸'; li.appendChild(draw(e.items)); }
          else { li.textContent = e.label; if (e.kind === 'info') li.style.color = '#666'; }
          ul.appendChild(li);
        }
        return ul;
      };
      const box = document.createElement('div');
      box.id = 'e2e-tray-model';
      box.style.cssText = 'position:fixed;inset:0;overflow:auto;background:#f4f4f4;padding:1rem;font:14px sans-serif;z-index:9999';
      const h = document.createElement('h2');
      h.textContent = 'Tray menu model (tray_menu), drawn by tests/e2e-app/tray.mjs';
      box.append(h, draw(arguments[0].items));
      document.body.appendChild(box);`,
    args: [both],
  });
  await shot('tray-menu.png');
  await wd('POST', s('/execute/sync'), { script: "document.getElementById('e2e-tray-model').remove()", args: [] });
  step(`tray model with both sessions: ${JSON.stringify(menuLabels(both.items))}`);
  await tab('settings');
  // The form renders, then again once the settings are loaded: each element is looked up when it
  // is used (a lookup right after the first render could miss the second one's elements).
  await waitFor('the settings form', () => find('css selector', '#st-refresh'));
  await waitFor('the loaded settings', async () => String(await prop(await find('css selector', '#st-refresh'), 'value')) !== '');
  // A new user's finding 6: the fields overflowed their card. Each field lies inside the form's
  // card, at this window's size and at a narrow one.
  const outside = () => wd('POST', s('/execute/sync'), {
    script: `const form = document.querySelector('form[aria-label="Settings"]').getBoundingClientRect();
      return [...document.querySelectorAll('form[aria-label="Settings"] input, form[aria-label="Settings"] select')]
        .map((e) => [e.id || e.type, e.getBoundingClientRect()])
        .filter(([, r]) => r.right > form.right + 0.5 || r.left < form.left - 0.5)
        .map(([id, r]) => id + ' ' + Math.round(r.left) + '..' + Math.round(r.right) + ' outside ' + Math.round(form.left) + '..' + Math.round(form.right));`,
    args: [],
  });
  const wide = await outside();
  const rect = await wd('GET', s('/window/rect'));
  await wd('POST', s('/window/rect'), { width: 760, height: rect.height });
  const narrow = await waitFor('the narrow window', async () => ((await wd('GET', s('/window/rect'))).width <= 780 ? outside() : null));
  await wd('POST', s('/window/rect'), { width: rect.width, height: rect.height });
  if (wide.length || narrow.length) throw new Error(`settings fields outside their card: ${JSON.stringify({ wide, narrow })}`);
  step('the settings fields stay inside their card (also in a 760 px window)');
  await type(await waitFor('the interval field', () => find('css selector', '#st-refresh')), '7');
  await click(await waitFor('the theme list', () => find('css selector', '#st-theme')));
  await click(await waitFor('the dark theme', () => find('css selector', '#st-theme option[value="dark"]')));
  await click(await waitFor('Save settings', () => find('xpath', "//button[normalize-space()='Save settings']")));
  await waitFor('saved', () => find('xpath', "//*[@role='status' and normalize-space()='Saved.']"));
  await shot('settings.png');
  await endSession();
  const saved = readFileSync(join(home, 'settings.toml'), 'utf8');
  if (!saved.includes('refreshIntervalSecs = 7') || !saved.includes('theme = "dark"')) throw new Error(`settings.toml:\n${saved}`);

  await newSession();
  await tab('settings');
  const refresh = await waitFor('the settings form', () => find('css selector', '#st-refresh'));
  await waitFor('the saved interval', async () => String(await prop(refresh, 'value')) === '7');
  const theme = await prop(await find('css selector', '#st-theme'), 'value');
  if (theme !== 'dark') throw new Error(`theme after restart: ${theme}`);
  const applied = await wd('POST', s('/execute/sync'), { script: 'return document.documentElement.dataset.theme ?? null', args: [] });
  if (applied !== 'dark') throw new Error(`theme not applied after restart: ${applied}`);
  step('settings survive an app restart (interval 7 s, dark theme applied)');

  // Trial of #14, finding 7: here (Xvfb, no StatusNotifierWatcher on the session bus) no tray is
  // shown, so closing the main window by its close button (WM_DELETE_WINDOW, as a window manager
  // sends it) must not hide it out of reach: with no notebook running, the app quits.
  if (appPids().length === 0) throw new Error('the app is not running before the close');
  const mainIds = execFileSync('xdotool', ['search', '--name', '^Tunnelbook$'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim().split('\n').filter(Boolean);
  execFileSync('python3', [join(root, 'tests/e2e-app/wm-close.py'), ...mainIds]);
  await waitFor('the app to quit after its window was closed with no tray shown', () => appPids().length === 0, 20000);
  session = undefined;
  step('with no tray shown, closing the main window quit the app (no window left hidden out of reach)');
}

try {
  await main();
  console.log('e2e-app tray: all checks passed');
} catch (e) {
  failed = true;
  console.error(`not ok - ${e.message}`);
} finally {
  await endSession().catch((e) => console.error(e.message));
  driver.kill('SIGTERM');
  sshd?.kill('SIGTERM');
  echo?.close();
  rmSync(home, { recursive: true, force: true });
  rmSync(sshdDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
