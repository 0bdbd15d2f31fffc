#!/usr/bin/env bash
# Regenerates the TypeScript twins of the app's wire types (ts-rs) and the IPC contract (ipc.ts:
# every command wrapper, event name and payload, error code; src-tauri/tests/contract) and fails when the committed
# files in ui/src/lib/bindings/ differ from what the Rust types produce.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=ui/src/lib/bindings
rm -rf "$dir"
cargo test -p tunnelbook-app --test app export_bindings -- --exact
if ! git diff --quiet -- "$dir" || [ -n "$(git ls-files --others --exclude-standard -- "$dir")" ]; then
  git status --short -- "$dir"
  git --no-pager diff --stat -- "$dir"
  echo "ui/src/lib/bindings is stale: run scripts/check-bindings.sh and commit the result" >&2
  exit 1
fi
echo "bindings up to date"
