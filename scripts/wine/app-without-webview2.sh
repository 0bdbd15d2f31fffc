#!/usr/bin/env bash
# The desktop app built for Windows, started under Wine, where there is no WebView2 runtime (as on
# a PC without it): it must not vanish silently. Expected: a native message box titled
# "Tunnelbook cannot start" that names the WebView2 Runtime and where to get it, the same text in
# logs/tunnelbook.log, and exit status 1 once the box is closed. Uses Xvfb (Wine draws the box
# there) and xdotool to find and close it. Called by scripts/test-windows.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/wine/env.sh

target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
start=$SECONDS
cargo build --target x86_64-pc-windows-gnu -p tunnelbook-app --locked
echo "(app built in $((SECONDS - start)) s)"
exe=$target_dir/x86_64-pc-windows-gnu/debug/tunnelbook-app.exe

work=$(mktemp -d /tmp/tb-wine-app.XXXXXX)
xvfb_pid= app_pid=
cleanup() {
  [[ -n $app_pid ]] && kill -KILL "$app_pid" 2>/dev/null || true
  [[ -n $xvfb_pid ]] && kill "$xvfb_pid" 2>/dev/null || true
  "$TB_WINESERVER" -w || true
  rm -rf "$work"
}
trap cleanup EXIT

# A display of our own (Xvfb -displayfd picks a free number).
Xvfb -displayfd 3 -screen 0 1024x768x24 -nolisten tcp 3>"$work/display" 2>"$work/xvfb.log" &
xvfb_pid=$!
for _ in $(seq 100); do [[ -s $work/display ]] && break; sleep 0.1; done
export DISPLAY=":$(cat "$work/display")"

home_win="Z:${work//\//\\}\\home"
TUNNELBOOK_HOME=$home_win "$TB_WINE" "$exe" >"$work/stdout" 2>"$work/stderr" &
app_pid=$!

fail() {
  echo "FAIL: $*" >&2
  echo "--- stderr"; tail -20 "$work/stderr" >&2
  echo "--- log"; cat "$work/home/logs/tunnelbook.log" >&2 2>/dev/null || true
  exit 1
}
window=$(timeout 90 xdotool search --sync --name '^Tunnelbook cannot start$' | head -1) ||
  fail "no 'Tunnelbook cannot start' message box within 90 s"
echo "message box shown (window $window)"
grep -q "WebView2 Runtime" "$work/home/logs/tunnelbook.log" || fail "the log does not name the WebView2 Runtime"
grep -q "go.microsoft.com" "$work/home/logs/tunnelbook.log" || fail "the log does not say where to get WebView2"
# The user presses OK.
xdotool windowactivate --sync "$window" key Return 2>/dev/null || xdotool key --window "$window" Return
for _ in $(seq 300); do kill -0 "$app_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$app_pid" 2>/dev/null && fail "the app still runs 30 s after its message box was closed"
status=0; wait "$app_pid" || status=$?
app_pid=
[[ $status == 1 ]] || fail "exit status $status, expected 1"
echo "ok: without WebView2 the app says so in a message box and the log, and exits with 1"
