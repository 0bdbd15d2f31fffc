// Plain W3C WebDriver over HTTP (no npm dependencies) and small waiting helpers, shared by the
// e2e scripts (run.mjs, tray.mjs).
import { createServer } from 'node:net';

// The key under which WebDriver returns an element reference.
export const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A `wd(method, path, body)` for the WebDriver server at `base`: returns the response's `value`,
// throws with the server's message on an error status.
export function webdriver(base) {
  return async function wd(method, path, body) {
    const res = await fetch(base + path, {
      method,
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json.value ?? json)}`);
    return json.value;
  };
}

// Polls `fn` every 250 ms until it returns something truthy; throws after `timeoutMs`, naming
// `what` and the last error.
export async function waitFor(what, fn, timeoutMs = 20000) {
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

// A TCP port on 127.0.0.1 that was free a moment ago.
export async function freePort() {
  const server = createServer();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}
