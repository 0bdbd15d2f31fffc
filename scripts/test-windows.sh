#!/usr/bin/env bash
# The Windows build, actually run: the x86_64-pc-windows-gnu unit and integration tests of core
# and the CLI under Wine (cargo's target runner), then the Windows CLI end to end against the test
# bed's real sshd (tests/tests/windows_cli.rs). Needs what scripts/setup.sh installs (wine64, the
# prefix with its bcryptprimitives.dll, MinGW, the Windows Rust target); run as root (the test
# bed starts sshd). Called by scripts/test-all.sh after the Linux suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/wine/env.sh

if ! rustup target list --installed 2>/dev/null | grep -qx x86_64-pc-windows-gnu; then
  echo "the x86_64-pc-windows-gnu Rust target is missing: run scripts/setup.sh" >&2
  exit 1
fi
if [[ ! -x $TB_WINE || ! -f $WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll ]]; then
  echo "Wine or its prefix ($WINEPREFIX) is not set up: run scripts/setup.sh" >&2
  exit 1
fi
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=$TB_WINE

# The prefix's wineserver outlives each program by a few seconds; wait for it at the end so
# nothing is left running.
trap '"$TB_WINESERVER" -w || true' EXIT

echo "== Windows: build the tests and the CLI for x86_64-pc-windows-gnu"
start=$SECONDS
cargo test --target x86_64-pc-windows-gnu -p tunnelbook-core -p tunnelbook-cli --locked --no-run
echo "(built in $((SECONDS - start)) s)"

echo "== Windows: core and CLI tests under Wine"
start=$SECONDS
cargo test --target x86_64-pc-windows-gnu -p tunnelbook-core -p tunnelbook-cli --locked --no-fail-fast
echo "(ran in $((SECONDS - start)) s)"

echo "== Windows: the CLI under Wine against a real sshd"
exe="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/x86_64-pc-windows-gnu/debug/tunnelbook.exe"
[[ -f $exe ]] || cargo build --target x86_64-pc-windows-gnu -p tunnelbook-cli --locked
start=$SECONDS
# The OpenSSH agent's named pipe, served by crates/core/examples/pipe_agent.rs (built by the tests).
export TUNNELBOOK_WINDOWS_PIPE_AGENT=${exe%/tunnelbook.exe}/examples/pipe_agent.exe
TUNNELBOOK_WINDOWS_CLI=$exe cargo nextest run -p tunnelbook-testbed --locked \
  --test windows_cli --run-ignored only --no-fail-fast
echo "(ran in $((SECONDS - start)) s)"

echo "== Windows: the desktop app without WebView2 says so (message box, log, status 1)"
bash scripts/wine/app-without-webview2.sh
