#!/usr/bin/env bash
# Builds the Linux .deb with the Tauri CLI (the @tauri-apps/cli npm package in ui/, which ships a
# prebuilt binary: no `cargo install tauri-cli` compile), installs it with apt-get, checks that
# the installed app starts under Xvfb and opens its window, then removes it again.
# Run as root (apt-get). Usage: scripts/package-deb.sh [--keep]   (--keep leaves it installed)
#
# By default the package holds a debug build (the same `custom-protocol` build the desktop
# end-to-end test just made, so CI pays only for the packaging); TUNNELBOOK_DEB_RELEASE=1 builds
# the optimized release package instead (about 15-30 minutes from cold on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."

[ -x ui/node_modules/.bin/tauri ] || npm --prefix ui ci --no-audit --no-fund
command -v xdotool >/dev/null || { echo "install xdotool (scripts/setup.sh does)" >&2; exit 2; }

if [ "${TUNNELBOOK_DEB_RELEASE:-0}" = 1 ]; then profile=release; flags=(); else profile=debug; flags=(--debug); fi
echo "== building the .deb ($profile)"
(cd src-tauri && ../ui/node_modules/.bin/tauri build --ci "${flags[@]}" --bundles deb)
deb=$(ls -t "target/$profile/bundle/deb/"*.deb | head -n 1)
echo "built $deb"
dpkg-deb --info "$deb" | sed -n '/Package:/,/Description:/p'

package=$(dpkg-deb --field "$deb" Package)
echo "== installing $package"
apt-get install -y -qq "./$deb" >/dev/null
bin=$(dpkg -L "$package" | grep -E '^/usr/bin/' | head -n 1)
[ -x "$bin" ] || { echo "no executable in /usr/bin from $package" >&2; exit 1; }
dpkg -L "$package" | grep -E '\.desktop$|/icons/' | head -n 5

cleanup() { [ "${1:-}" = "--keep" ] || apt-get remove -y -qq "$package" >/dev/null; }
trap 'cleanup "${1:-}"' EXIT

echo "== starting the installed $bin under Xvfb"
home=$(mktemp -d)
export TUNNELBOOK_HOME="$home"
# The window must appear and the process must stay up; xdotool looks for the window by title.
dbus-run-session -- xvfb-run -a -s "-screen 0 1280x900x24" bash -c '
  "$0" >"$1/app.out" 2>&1 &
  pid=$!
  for _ in $(seq 1 60); do
    if xdotool search --onlyvisible --name "^Tunnelbook$" >/dev/null 2>&1; then break; fi
    kill -0 "$pid" 2>/dev/null || { echo "the app exited early:"; cat "$1/app.out"; exit 1; }
    sleep 0.5
  done
  xdotool search --onlyvisible --name "^Tunnelbook$" >/dev/null || { echo "no Tunnelbook window"; cat "$1/app.out"; kill "$pid"; exit 1; }
  sleep 3
  kill -0 "$pid" 2>/dev/null || { echo "the app died after opening its window:"; cat "$1/app.out"; exit 1; }
  echo "window up, process $pid alive after 3 s"
  kill "$pid"; wait "$pid" 2>/dev/null || true
' "$bin" "$home"
[ -s "$home/logs/tunnelbook.log" ] && echo "log file written: $home/logs/tunnelbook.log ($(wc -l <"$home/logs/tunnelbook.log") lines)"
rm -rf "$home"
echo "package-deb: ok ($deb installs, starts and shows its window)"
