// Terminal tabs (issue 23) through the real app (tauri-driver + WebKitWebDriver, plain W3C
// WebDriver HTTP), against a real OpenSSH sshd started here on 127.0.0.1.
//
//   node tests/e2e-app/terminal.mjs <path-to-tunnelbook-app-binary>     (under Xvfb; see run.sh)
//
// Checks:
//  1. A saved host connects; a terminal tab opens a login shell over that connection; typing
//     `python3 -c 'print(6*7)'` prints 42 in the terminal's buffer.
//  2. Resizing the window resizes the remote pty: `stty size` prints the tab's new rows and
//     columns. é, Backspace, x typed into a line that the kernel reads (bash's `read`) arrives as
//     "x": the tab's pty is told IUTF8 and DEL as erase, as xterm.js sends.
//  3. sshd's log shows one authentication for the connection and the shell together.
//  4. Colours and UTF-8 render (screenshot docs/screenshots/terminal.png), a second tab opens
//     on the same host.
//  5. "Open in my terminal" starts x-terminal-emulator (a stand-in that records its arguments and
//     runs them) on `tunnelbook shell gpu-box`, which logs in and runs a line.
//  6. The connection drops under the shell: the tab says so (naming the saved host, commands as
//     code) and keeps its scrollback.
//  First-use findings: each tab keeps its own search text; closing a tab whose shell runs asks
//  once, naming the host; non-ASCII text entered through xterm.js's input path (the `input`
//  event an input method or the emoji picker sends with the composed text: WebKitWebDriver's key
//  actions cannot type non-ASCII keys) and through a paste reaches the host, which prints it back
//  as the same bytes.
// Own tauri-driver ports (TAURI_DRIVER_PORT or free ones), own sshd and app home.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { ELEMENT, freePort, sleep, waitFor, webdriver } from './webdriver.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const binary = resolve(process.argv[2] ?? join(root, 'target/debug/tunnelbook-app'));
const shots = join(root, 'docs/screenshots');
const port = Number(process.env.TAURI_DRIVER_PORT ?? 0) || (await freePort());
const nativePort = await freePort();
const base = `http://127.0.0.1:${port}`;
const wd = webdriver(base);
const home = mkdtempSync(join(tmpdir(), 'tunnelbook-e2e-term-'));
const sshdDir = mkdtempSync(join(tmpdir(), 'tunnelbook-e2e-term-sshd-'));
mkdirSync(shots, { recursive: true });

const step = (name) => console.log(`ok - ${name}`);

// "Open in my terminal": the CLI built next to the app on PATH as `tunnelbook`, and a stand-in
// for Debian's x-terminal-emulator (Xvfb has no one to look at a window): it records what it was
// asked to run and runs it the way a terminal would, feeding the shell one line.
const bin = mkdtempSync(join(tmpdir(), 'tunnelbook-e2e-term-bin-'));
const externalOut = join(bin, 'external.out');
symlinkSync(join(dirname(binary), 'tunnelbook'), join(bin, 'tunnelbook'));
writeFileSync(
  join(bin, 'x-terminal-emulator'),
  `#!/bin/sh\nprintf '%s\\n' "$*" > ${externalOut}.args\n[ "$1" = -e ] && shift\necho 'echo via-$((40+2)); exit 5' | "$@" > ${externalOut} 2>&1\necho "status=$?" >> ${externalOut}\n`,
);
chmodSync(join(bin, 'x-terminal-emulator'), 0o755);

// sshd on 127.0.0.1 (root login with a throwaway key); its log (stderr) is kept to count
// authentications.
let sshdLog = '';
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
      'UsePAM no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PrintMotd no',
      'LogLevel INFO',
      // Debian's default: the app sends LANG, so the login shell runs in UTF-8.
      'AcceptEnv LANG LC_*',
      '',
    ].join('\n'),
  );
  const proc = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  proc.stderr.on('data', (d) => (sshdLog += d.toString()));
  return proc;
}

function listens(p) {
  return new Promise((r) => {
    const sock = tcpConnect(p, '127.0.0.1', () => {
      sock.destroy();
      r(true);
    });
    sock.on('error', () => r(false));
  });
}

function appPids() {
  try {
    return execFileSync('pgrep', ['-f', `^${binary}`]).toString().trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

const driver = spawn('tauri-driver', ['--port', String(port), '--native-port', String(nativePort)], {
  stdio: ['ignore', 'inherit', 'inherit'],
  env: { ...process.env, TUNNELBOOK_HOME: home, PATH: `${bin}:${process.env.PATH}` },
});
let session;
let sshd;
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
/** The active terminal's buffer as the user sees it: the rendered rows, trailing blanks cut. */
const screenText = async () =>
  wd('POST', s('/execute/sync'), {
    script:
      "const rows = document.querySelectorAll('[data-testid=\"terminal-active\"] .xterm-rows > div');" +
      "return [...rows].map((r) => r.textContent.replace(/\\u00a0/g, ' ').trimEnd()).join('\\n');",
    args: [],
  });
const rowCount = async () =>
  wd('POST', s('/execute/sync'), {
    script: "return document.querySelectorAll('[data-testid=\"terminal-active\"] .xterm-rows > div').length;",
    args: [],
  });
/** Types `text` into the active terminal, then Enter: key events into xterm.js's input, as a
 * person typing (the element is xterm's off-screen textarea, so W3C key actions, not send-keys). */
const typeLine = async (text) => {
  await wd('POST', s('/execute/sync'), {
    script: "document.querySelector('[data-testid=\"terminal-active\"] textarea.xterm-helper-textarea').focus();",
    args: [],
  });
  const actions = [];
  for (const ch of [...text, '\uE007']) actions.push({ type: 'keyDown', value: ch }, { type: 'keyUp', value: ch });
  await wd('POST', s('/actions'), { actions: [{ type: 'key', id: 'kbd', actions }] });
  await wd('DELETE', s('/actions')).catch(() => {});
};
const lines = async () => (await screenText()).split('\n').map((l) => l.trim());
/** Enters `text` into the active terminal as an input method commits it: an `input` event with
 * the composed text on xterm.js's textarea (its onData path), then Enter as a key. */
const composeLine = async (text) => {
  await wd('POST', s('/execute/sync'), {
    script:
      "const ta = document.querySelector('[data-testid=\"terminal-active\"] textarea.xterm-helper-textarea');" +
      "ta.focus(); ta.dispatchEvent(new InputEvent('input', { data: arguments[0], inputType: 'insertText', bubbles: true }));",
    args: [text],
  });
  await wd('POST', s('/actions'), { actions: [{ type: 'key', id: 'kbd', actions: [{ type: 'keyDown', value: '\uE007' }, { type: 'keyUp', value: '\uE007' }] }] });
  await wd('DELETE', s('/actions')).catch(() => {});
};
/** Pastes `text` into the active terminal as the system's paste does: a `paste` event carrying
 * the clipboard's text on xterm.js's textarea, then Enter as a key. */
const pasteLine = async (text) => {
  await wd('POST', s('/execute/sync'), {
    script:
      "const ta = document.querySelector('[data-testid=\"terminal-active\"] textarea.xterm-helper-textarea');" +
      "const dt = new DataTransfer(); dt.setData('text/plain', arguments[0]);" +
      "ta.focus(); ta.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));",
    args: [text],
  });
  await wd('POST', s('/actions'), { actions: [{ type: 'key', id: 'kbd', actions: [{ type: 'keyDown', value: '\uE007' }, { type: 'keyUp', value: '\uE007' }] }] });
  await wd('DELETE', s('/actions')).catch(() => {});
};
/** `stty size` in the active terminal: [rows, cols]. */
async function sttySize(tag) {
  await typeLine(`echo ${tag}-$((1+1)); stty size; echo ${tag}-end`);
  return waitFor(`stty size (${tag})`, async () => {
    const ls = await lines();
    const at = ls.indexOf(`${tag}-2`);
    if (at < 0 || !ls.includes(`${tag}-end`)) return null;
    const m = /^(\d+) (\d+)$/.exec(ls[at + 1] ?? '');
    return m ? [Number(m[1]), Number(m[2])] : null;
  });
}

async function main() {
  const sshdPort = await freePort();
  sshd = startSshd(sshdPort);
  await waitFor('sshd', () => listens(sshdPort));
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
  await wd('POST', s('/window/rect'), { width: 1200, height: 820 }).catch(() => {});

  // 1. Connect, open a terminal tab, run python3 there.
  await click(await waitFor('gpu-box Connect', () => find('xpath', `${xpathText('li', 'gpu-box')}//button[normalize-space()='Connect']`)));
  await waitFor('gpu-box connected', () => find('xpath', "//button[normalize-space()='Choose a GPU']"), 30000);
  await tab('terminal');
  await click(await find('css selector', '[data-testid="terminal-new"]'));
  await waitFor('the shell to open', async () => {
    const el = await find('css selector', '[data-testid="terminal-active"]');
    return (await wd('GET', s(`/element/${el}/attribute/data-terminal-id`))) ? el : null;
  }, 30000);
  await waitFor('the prompt', async () => /[#$] ?$/m.test(await screenText()), 30000);
  await typeLine("python3 -c 'print(6*7)'");
  await waitFor('42 in the terminal', async () => (await lines()).includes('42'), 30000);
  step("typed python3 -c 'print(6*7)' in a terminal tab; 42 read from the terminal's buffer");

  // 2. Resize the window: the remote pty follows.
  const before = await sttySize('a');
  const rowsBefore = await rowCount();
  if (before[0] !== rowsBefore) throw new Error(`stty size ${before} but the tab shows ${rowsBefore} rows`);
  await wd('POST', s('/window/rect'), { width: 900, height: 600 });
  await waitFor('the tab to shrink', async () => (await rowCount()) < rowsBefore);
  await sleep(500);
  const after = await sttySize('b');
  const rowsAfter = await rowCount();
  if (after[0] !== rowsAfter || after[1] >= before[1]) {
    throw new Error(`after the resize stty size is ${after}, the tab shows ${rowsAfter} rows (before: ${before})`);
  }
  step(`window resized: stty size ${before.join('x')} -> ${after.join('x')}, as the tab shows`);
  await wd('POST', s('/window/rect'), { width: 1200, height: 820 });

  // 2b. The tab's pty erases whole characters: a line read without an editor of its own (bash's
  //     `read`, the kernel's line discipline) gets what the screen shows after é, Backspace, x.
  // Typed only once the shell runs `read`: bash's line editor keeps the pty raw until then, and
  // keys that arrive raw are not erased by the ones after them (a race the test would lose).
  await typeLine('echo u8-ready; read -r v; echo "u8-$v-${#v}-end"');
  await waitFor('the shell to run read', async () => (await lines()).includes('u8-ready'), 20000);
  await wd('POST', s('/execute/sync'), {
    script:
      "const ta = document.querySelector('[data-testid=\"terminal-active\"] textarea.xterm-helper-textarea');" +
      "ta.focus(); ta.dispatchEvent(new InputEvent('input', { data: '\u00e9', inputType: 'insertText', bubbles: true }));",
    args: [],
  });
  const keys = ['\uE003', 'x', '\uE007'].flatMap((k) => [{ type: 'keyDown', value: k }, { type: 'keyUp', value: k }]);
  await wd('POST', s('/actions'), { actions: [{ type: 'key', id: 'kbd', actions: keys }] });
  await wd('DELETE', s('/actions')).catch(() => {});
  await waitFor('é, Backspace, x read as "x"', async () => (await lines()).some((l) => l === 'u8-x-1-end'), 20000);
  step('typed é, Backspace, x into a line read by the kernel: "x" arrived (the pty erases a whole UTF-8 character)');

  // 3. One authentication: the shell used the open connection.
  const accepted = (sshdLog.match(/Accepted publickey/g) ?? []).length;
  if (accepted !== 1) throw new Error(`sshd accepted ${accepted} authentications:\n${sshdLog}`);
  step("sshd's log has one authentication for the connection and the shell");

  // 4. Colours, UTF-8 and a second tab, for the screenshot.
  await typeLine('clear; printf "\\033[1;32mgreen\\033[0m \\033[1;31mred\\033[0m \\033[44m blue \\033[0m  UTF-8: h\\303\\251llo w\\303\\266rld \\342\\234\\223 \\316\\273 \\342\\206\\222\\n"; ls --color=always / | head -n 8; python3 -c "print(6*7)"');
  await waitFor('UTF-8 in the terminal', async () => (await screenText()).includes('héllo wörld ✓ λ →'), 20000);
  const colored = await wd('POST', s('/execute/sync'), {
    script: "return [...document.querySelectorAll('[data-testid=\"terminal-active\"] .xterm-rows span')].some((e) => /xterm-fg-|xterm-bg-/.test(e.className));",
    args: [],
  });
  if (!colored) throw new Error('no coloured text in the terminal');
  await shot('terminal.png');
  await click(await find('css selector', '[data-testid="terminal-new"]'));
  await waitFor('a second tab', async () => (await findAll('css selector', '[data-testid="terminal-tab"]')).length === 2);
  await waitFor('the second prompt', async () => /[#$] ?$/m.test(await screenText()), 30000);
  await click((await findAll('css selector', '[data-testid="terminal-tab"]'))[0]);
  step('colours and UTF-8 render; a second tab opens on the same host');

  // Non-ASCII input: composed text and a paste reach the host as the same UTF-8 bytes.
  await composeLine("echo =''é日本=; printf %s é日本 | od -An -tx1");
  await waitFor('composed UTF-8 back from the host', async () => {
    const ls = await lines();
    return ls.includes('=é日本=') && ls.includes('c3 a9 e6 97 a5 e6 9c ac');
  }, 20000);
  await pasteLine("echo =''ünï中文=; printf %s ünï中文 | od -An -tx1");
  await waitFor('pasted UTF-8 back from the host', async () => {
    const ls = await lines();
    return ls.includes('=ünï中文=') && ls.includes('c3 bc 6e c3 af e4 b8 ad e6 96 87');
  }, 20000);
  step('é日本 (input-method path) and ünï中文 (paste) reached the host: it printed them and their UTF-8 bytes');

  // Each tab keeps its own search text.
  const searchBox = () => find('css selector', '[data-testid="terminal-search"]');
  await type(await searchBox(), 'needle');
  await click((await findAll('css selector', '[data-testid="terminal-tab"]'))[1]);
  const other = await prop(await searchBox(), 'value');
  await click((await findAll('css selector', '[data-testid="terminal-tab"]'))[0]);
  const back = await prop(await searchBox(), 'value');
  if (other !== '' || back !== 'needle') throw new Error(`search box: "${other}" on the second tab, "${back}" back on the first`);
  step('the search text stays with its tab');

  // Closing a tab whose shell runs asks once, naming the host; "Keep it" keeps it.
  const closeSecond = async () => click((await findAll('css selector', '[data-testid="terminal-close"]'))[1]);
  await closeSecond();
  const ask = await waitFor('the close question', () => find('css selector', '[data-testid="terminal-close-confirm"]'));
  const question = await text(ask);
  if (!question.includes('The shell on gpu-box is still running')) throw new Error(`close question: ${question}`);
  await click(await find('xpath', "//button[normalize-space()='Keep it']"));
  await waitFor('the question to go', async () => (await findAll('css selector', '[data-testid="terminal-close-confirm"]')).length === 0);
  if ((await findAll('css selector', '[data-testid="terminal-tab"]')).length !== 2) throw new Error('"Keep it" closed the tab');
  await closeSecond();
  await click(await waitFor('the close question again', () => find('css selector', '[data-testid="terminal-close-yes"]')));
  await waitFor('one tab left', async () => (await findAll('css selector', '[data-testid="terminal-tab"]')).length === 1);
  step(`closing a running shell asked "${question.split('?')[0]}?"; Keep it kept it, Close closed it`);

  // "Open in my terminal": the system terminal runs `tunnelbook shell gpu-box`, which logs in on
  // its own (same hosts, keys and known_hosts) and runs what is typed there.
  await click(await find('css selector', '[data-testid="terminal-external"]'));
  await waitFor('the external terminal to finish', () => existsSync(externalOut) && /status=\d+/.test(readFileSync(externalOut, 'utf8')), 30000);
  const args = readFileSync(`${externalOut}.args`, 'utf8').trim();
  const got = readFileSync(externalOut, 'utf8');
  if (args !== '-e tunnelbook shell gpu-box' || !got.includes('via-42') || !got.includes('status=5')) {
    throw new Error(`external terminal got "${args}", printed:\n${got}`);
  }
  step(`"Open in my terminal" ran x-terminal-emulator ${args}: the shell there printed via-42 and exited 5`);

  // 6. The connection drops under the shell (its sshd process is killed): the tab says so and
  // keeps its scrollback.
  await typeLine('kill -9 $PPID');
  const banner = await waitFor('the lost-connection notice', () => find('css selector', '[data-testid="terminal-ended"]'), 30000);
  const notice = await text(banner);
  if (!/was lost/.test(notice) || !/cannot survive/.test(notice)) throw new Error(`notice: ${notice}`);
  // The saved host by name, not root@127.0.0.1:PORT; commands shown as code, not in backticks.
  if (!notice.includes('connection to gpu-box was lost') || notice.includes('127.0.0.1') || notice.includes('`')) {
    throw new Error(`notice: ${notice}`);
  }
  const codes = await wd('POST', s('/execute/sync'), {
    script: "return [...document.querySelectorAll('[data-testid=\"terminal-ended\"] code')].map((c) => c.textContent);",
    args: [],
  });
  if (!codes.includes('tmux attach')) throw new Error(`code in the notice: ${JSON.stringify(codes)} (${notice})`);
  if (!(await lines()).includes('42')) throw new Error('the scrollback is gone after the drop');
  // The shell has ended: its tab closes without a question.
  await click((await findAll('css selector', '[data-testid="terminal-close"]'))[0]);
  await waitFor('the ended tab to close', async () => (await findAll('css selector', '[data-testid="terminal-tab"]')).length === 0);
  if ((await findAll('css selector', '[data-testid="terminal-close-confirm"]')).length !== 0) throw new Error('asked before closing an ended shell');
  step(`connection dropped: "${notice.split('\n')[0]}" (code: ${codes.join(', ')}); scrollback kept; the ended tab closed without asking`);
}

try {
  await main();
  console.log('e2e-app terminal: all checks passed');
} catch (e) {
  failed = true;
  console.error(`not ok - ${e.message}`);
  // What the window showed, for the log (not kept in docs/).
  const png = await wd('GET', s('/screenshot')).catch(() => null);
  if (png) {
    const at = join(tmpdir(), `tunnelbook-e2e-terminal-failure-${process.pid}.png`);
    writeFileSync(at, Buffer.from(png, 'base64'));
    console.error(`screenshot of the failure: ${at}`);
  }
} finally {
  await endSession().catch((e) => console.error(e.message));
  driver.kill('SIGTERM');
  sshd?.kill('SIGTERM');
  rmSync(home, { recursive: true, force: true });
  rmSync(sshdDir, { recursive: true, force: true });
  rmSync(bin, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
