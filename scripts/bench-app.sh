#!/usr/bin/env bash
# Memory and CPU of the desktop app with one notebook open and the GPU picker refreshing
# (every 2 s), against the e2e bed (real sshd, nvidia-smi shim, real JupyterLab): RSS of the
# tunnelbook-app process and of each WebKit child, CPU % over 60 s of idling.
#
# Usage: scripts/bench-app.sh [--release] [seconds]    (run as root; prints `bench:` lines)
# It is the e2e runner (tests/e2e-app/run.mjs) with E2E_BENCH=1; screenshots go to a temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=debug
if [ "${1:-}" = "--release" ]; then profile=release; shift; fi
secs=${1:-60}

[ -d ui/node_modules ] || npm --prefix ui ci --no-audit --no-fund
npm --prefix ui run build
flags=(-p tunnelbook-app --features custom-protocol)
[ "$profile" = release ] && flags+=(--release)
cargo build "${flags[@]}"
cargo build -p tunnelbook-testbed --bin tunnelbook-e2e-bed
command -v tauri-driver >/dev/null || cargo install tauri-driver --version '^2' --locked

shots=$(mktemp -d)
trap 'rm -rf "$shots"' EXIT
E2E_BENCH=1 E2E_BENCH_SECS=$secs E2E_SHOTS_DIR=$shots dbus-run-session -- \
  xvfb-run -a -s "-screen 0 1280x900x24" \
  node tests/e2e-app/run.mjs "target/$profile/tunnelbook-app" target/debug/tunnelbook-e2e-bed 2>&1 |
  grep -E '^(ok|not ok|bench|BENCH|e2e-app)'
