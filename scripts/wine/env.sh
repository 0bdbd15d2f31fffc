# Where the Windows build runs under Wine (sourced by scripts/setup.sh and scripts/test-windows.sh).
# Debian's wine64 package installs only this binary (not on PATH; `wine` would warn about wine32
# on every run). The prefix is private to Tunnelbook's tests; no display is used (console only).
export TB_WINE=/usr/lib/wine/wine64
export TB_WINESERVER=/usr/lib/wine/wineserver
export TB_WINE_DIR=/opt/tunnelbook-test/wine
export WINEPREFIX="$TB_WINE_DIR/prefix"
export WINEDEBUG=-all
# Wine must not try to open windows or ask to install Mono/Gecko.
export WINEDLLOVERRIDES="mscoree,mshtml="
unset DISPLAY WAYLAND_DISPLAY
