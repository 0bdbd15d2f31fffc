#!/usr/bin/env bash
# Prepares Wine to run the x86_64-pc-windows-gnu build (tests and CLI): a private prefix with a
# bcryptprimitives.dll that Debian 12's Wine 8.0 lacks (see bcryptprimitives.c). Run as root by
# scripts/setup.sh after wine64 and gcc-mingw-w64-x86-64 are installed. Idempotent.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/env.sh"

mkdir -p "$TB_WINE_DIR"
dll="$TB_WINE_DIR/bcryptprimitives.dll"
if [[ ! -f $dll || $here/bcryptprimitives.c -nt $dll || $here/bcryptprimitives.def -nt $dll ]]; then
  x86_64-w64-mingw32-gcc -shared -O2 -s -o "$dll" \
    "$here/bcryptprimitives.c" "$here/bcryptprimitives.def" -ladvapi32
fi
system32="$WINEPREFIX/drive_c/windows/system32"
if [[ ! -d $system32 ]]; then
  "$TB_WINE" wineboot --init >/dev/null 2>&1
  "$TB_WINESERVER" -w
fi
cmp -s "$dll" "$system32/bcryptprimitives.dll" || cp "$dll" "$system32/bcryptprimitives.dll"
echo "wine: $("$TB_WINE" --version), prefix $WINEPREFIX"
