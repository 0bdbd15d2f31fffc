// The one Node API the unit tests use (they run in Node; the app never does), without adding
// @types/node to the UI's dependencies.
declare module 'node:fs' {
  export function readFileSync(path: string | URL, encoding: 'utf8'): string;
}
