// Drives the real app through tauri-driver + WebKitWebDriver with plain W3C WebDriver HTTP
// (no npm dependencies). Run under Xvfb; see README.md for the full command.
//
//   node tests/e2e-app/run.mjs <path-to-tunnelbook-app-binary>
//
// Checks: the Hosts screen lists "This computer"; the add-host form shows the backend's
// per-field message; a valid host is saved (and lands in hosts.toml); "This computer" connects
// and the Connect screen shows its steps. Screenshots go to docs/screenshots/.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const binary = resolve(process.argv[2] ?? join(root, 'target/debug/tunnelbook-app'));
const shots = join(root, 'docs/screenshots');
const port = Number(process.env.TAURI_DRIVER_PORT ?? 4444);
const base = `http://127.0.0.1:${port}`;
const home = mkdtempSync(join(tmpdir(), 'tunnelbook-e2e-'));
mkdirSync(shots, { recursive: true });

const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function wd(method, path, body) {
  const res = await fetch(base + path, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json.value ?? json)}`);
  return json.value;
}

async function waitFor(what, fn, timeoutMs = 20000) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

const driver = spawn('tauri-driver', ['--port', String(port)], {
  stdio: ['ignore', 'inherit', 'inherit'],
  env: { ...process.env, TUNNELBOOK_HOME: home },
});
let session;
let failed = false;

async function main() {
  await waitFor('tauri-driver', () => wd('GET', '/status').then(() => true).catch(() => false));
  const created = await wd('POST', '/session', {
    capabilities: { alwaysMatch: { 'tauri:options': { application: binary } } },
  });
  session = created.sessionId;
  const s = (path) => `/session/${session}${path}`;
  const find = async (using, value) => (await wd('POST', s('/element'), { using, value }))[ELEMENT];
  const findAll = async (using, value) => (await wd('POST', s('/elements'), { using, value })).map((e) => e[ELEMENT]);
  const xpathText = (tag, text) => `//${tag}[contains(normalize-space(.), ${JSON.stringify(text)})]`;
  const click = async (el) => wd('POST', s(`/element/${el}/click`), {});
  const type = async (el, text) => {
    await wd('POST', s(`/element/${el}/clear`), {});
    await wd('POST', s(`/element/${el}/value`), { text });
  };
  const text = async (el) => wd('GET', s(`/element/${el}/text`));
  const shot = async (name) => {
    await sleep(400); // let WebKit paint the last change before capturing
    const png = await wd('GET', s('/screenshot'));
    writeFileSync(join(shots, name), Buffer.from(png, 'base64'));
    console.log(`screenshot docs/screenshots/${name}`);
  };
  const step = (name) => console.log(`ok - ${name}`);

  // 1. Hosts screen with "This computer".
  const local = await waitFor('"This computer"', () => find('xpath', xpathText('li', 'This computer')));
  if (!(await text(local)).includes('This computer')) throw new Error('host entry text');
  step('hosts screen lists "This computer"');
  await shot('hosts.png');

  // 2. The form: empty host is refused with the backend's per-field message.
  await click(await find('xpath', "//button[normalize-space()='Add host']"));
  const name = await waitFor('the name field', () => find('css selector', '#hf-name'));
  await type(name, 'e2e-box');
  await click(await find('xpath', "//button[normalize-space()='Save']"));
  const hostError = await waitFor('the host field message', () => find('css selector', '#hf-host-err'));
  const message = await text(hostError);
  if (!/host/i.test(message)) throw new Error(`unexpected field message: ${message}`);
  step(`empty host refused: "${message}"`);
  await shot('host-form-validation.png');

  // 3. A valid host is saved and listed.
  await type(await find('css selector', '#hf-host'), '127.0.0.1');
  await type(await find('css selector', '#hf-port'), '2222');
  await type(await find('css selector', '#hf-user'), 'e2e');
  await click(await find('xpath', "//button[normalize-space()='Save']"));
  await waitFor('the new host in the list', async () => (await findAll('xpath', xpathText('li', 'e2e@127.0.0.1:2222'))).length === 1);
  const saved = readFileSync(join(home, 'hosts.toml'), 'utf8');
  if (!saved.includes('name = "e2e-box"')) throw new Error(`hosts.toml lacks the host:\n${saved}`);
  step('host added through the form and saved to hosts.toml');
  await shot('hosts-added.png');

  // 4. "This computer" connects; the step list shows.
  const connect = await find('xpath', `${xpathText('li', 'This computer')}//button[normalize-space()='Connect']`);
  await click(connect);
  await waitFor('the connected state', () => find('xpath', "//button[normalize-space()='Choose a GPU']"));
  step('"This computer" session reaches connected');
  await shot('connect-local.png');

  // 5. Sessions list.
  await click(await find('css selector', '[data-testid="tab-sessions"]'));
  await waitFor('the session row', () => find('xpath', "//td[normalize-space()='connected']"));
  step('sessions list shows the session');
  await shot('sessions.png');
}

try {
  await main();
  console.log('e2e-app: all checks passed');
} catch (e) {
  failed = true;
  console.error(`not ok - ${e.message}`);
} finally {
  if (session) await wd('DELETE', `/session/${session}`).catch(() => {});
  driver.kill('SIGTERM');
  rmSync(home, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
