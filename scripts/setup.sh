#!/usr/bin/env bash
# Installs everything Tunnelbook needs to build, run and test on Debian 12 (run as root).
# Idempotent: safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
  echo "setup.sh installs system packages and test users: run it as root (sudo)." >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt_packages=(
  # build
  build-essential pkg-config curl file git ca-certificates
  # Tauri 2 on Linux (see shared/reference/environment.md; not libappindicator3-dev: it conflicts)
  libwebkit2gtk-4.1-dev libxdo-dev libssl-dev libayatana-appindicator3-dev librsvg2-dev
  # the test bed: real sshd, agent, PAM OTP, PuTTY keys, keychain, display, webdriver, JupyterLab
  openssh-server openssh-client libpam-oath oathtool putty-tools
  gnome-keyring dbus-x11 libsecret-tools xvfb webkit2gtk-driver imagemagick xdotool
  python3 python3-venv python3-pip socat procps
  # terminal tabs (issue 23): tmux on the host, which the lost-connection notice suggests
  tmux
  # the Windows code is type-checked by cross-compiling (ring's build script needs the C compiler)
  gcc-mingw-w64-x86-64
  # drag out of the Files view (issue 21): the e2e's real drop target is a GTK 3 window in Python
  python3-gi gir1.2-gtk-3.0
)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

command -v cargo >/dev/null || { echo "cargo (Rust 1.90+) is required: https://rustup.rs" >&2; exit 1; }
command -v cargo-nextest >/dev/null || cargo install cargo-nextest --locked
command -v node >/dev/null || { echo "Node.js 20+ is required for the UI" >&2; exit 1; }
command -v tauri-driver >/dev/null || cargo install tauri-driver --version '^2' --locked
# Windows is the first audience but cannot run here: its code is at least compiled and linted.
if command -v rustup >/dev/null; then
  rustup target add x86_64-pc-windows-gnu ||
    echo "warning: could not add the x86_64-pc-windows-gnu target; test-all.sh will skip the Windows check" >&2
fi

# The test bed's login users (password logins, "two different users" GPU tests).
for user in tbtest tbother; do
  id "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$user"
done
printf 'tbtest:tb-Test-pw-1\ntbother:tb-Test-pw-1\n' | chpasswd
mkdir -p /run/sshd

# --- server zoo (issue 16): login shells as real users have them -------------------------------
# One test user per login shell, one whose ~/.bash_profile execs zsh, one whose ~/.bashrc prints a
# banner and calls stty, one whose ~/.jupyter config the tests write. Their startup files are (re)written by the test bed (tests/src/zoo.rs).
# tblmod: a site with Lmod (Debian's lmod); the test bed writes its module tree under /opt/tunnelbook-test/modules.
zoo_packages=(zsh tcsh fish ksh dash lmod)
zoo_missing=()
for p in "${zoo_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || zoo_missing+=("$p")
done
if ((${#zoo_missing[@]})); then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${zoo_missing[@]}"
fi
for entry in tbzsh:/usr/bin/zsh tbtcsh:/usr/bin/tcsh tbfish:/usr/bin/fish tbksh:/usr/bin/ksh \
  tbdash:/usr/bin/dash tbexeczsh:/bin/bash tbbanner:/bin/bash tbjupcfg:/bin/bash tblmod:/bin/bash; do
  user=${entry%%:*} shell=${entry#*:}
  id "$user" >/dev/null 2>&1 || useradd --create-home --shell "$shell" "$user"
  usermod --shell "$shell" --password '*' "$user" # not locked: sshd (UsePAM no) refuses those
done
# --- end server zoo ---------------------------------------------------------------------------

# --- Windows under Wine (issue 22): scripts/test-windows.sh runs the x86_64-pc-windows-gnu tests
# and CLI under Debian's Wine 8.0 (64-bit only: no i386 architecture needed).
if ! dpkg-query -W -f='${Status}' wine64 2>/dev/null | grep -q "install ok installed"; then
  apt-get update -qq
  apt-get install -y -qq -o DPkg::Lock::Timeout=900 --no-install-recommends wine64
fi
bash scripts/wine/setup-wine.sh
# --- end Windows under Wine

# --- SLURM test bed (issue 20): slurm-wlm 22.05 + munge; the tests start their own private
# munged/slurmctld/slurmd on free 127.0.0.1 ports (tests/src/slurm.rs), nothing runs at boot.
slurm_missing=()
for p in slurm-wlm munge; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || slurm_missing+=("$p")
done
if ((${#slurm_missing[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=900 "${slurm_missing[@]}"
fi
# The packages enable the system's daemons; the test bed runs its own, so keep these off.
for svc in slurmctld slurmd munge; do
  systemctl disable --now "$svc" >/dev/null 2>&1 || true
done
id tbslurm >/dev/null 2>&1 || useradd --create-home --shell /bin/bash tbslurm
usermod --password '*' tbslurm # not locked: sshd refuses locked users even with a key
# --- end SLURM test bed

echo "setup: done"
