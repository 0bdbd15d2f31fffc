#!/usr/bin/env bash
# Builds the app with its bundled UI and drives it under Xvfb through tauri-driver.
# Usage: tests/e2e-app/run.sh   (from anywhere; exits non-zero when a check fails)
set -euo pipefail
cd "$(dirname "$0")/../.."

[ -d ui/node_modules ] || npm --prefix ui ci --no-audit --no-fund
npm --prefix ui run build
# custom-protocol: serve ui/dist from inside the binary instead of the Vite dev server.
cargo build -p tunnelbook-app --features custom-protocol
# The bed: sshd, the nvidia-smi shim, the JupyterLab venv (see tests/src/bin/tunnelbook-e2e-bed.rs).
cargo build -p tunnelbook-testbed --bin tunnelbook-e2e-bed
command -v tauri-driver >/dev/null || cargo install tauri-driver --version '^2' --locked
command -v WebKitWebDriver >/dev/null || { echo "install the Debian package webkit2gtk-driver" >&2; exit 2; }

xvfb-run -a -s "-screen 0 1280x900x24" node tests/e2e-app/run.mjs target/debug/tunnelbook-app target/debug/tunnelbook-e2e-bed
# Tray model, Tunnels (a rule carrying traffic through a real sshd) and Settings across a restart.
xvfb-run -a -s "-screen 0 1280x900x24" node tests/e2e-app/tray.mjs target/debug/tunnelbook-app
# First hour: ~/.ssh/config imported on first start, a shared /opt venv added by path and kept,
# later launches (Hosts, tray) with no choice; its own bed user and tauri-driver ports.
xvfb-run -a -s "-screen 0 1280x900x24" node tests/e2e-app/firstrun.mjs target/debug/tunnelbook-app target/debug/tunnelbook-e2e-bed
# Terminal tabs (issue 23): a login shell over the open connection, python3 in it, resize, one
# authentication in sshd's log, "Open in my terminal" (runs the CLI), a dropped connection; its
# own sshd and tauri-driver ports.
cargo build -p tunnelbook-cli
xvfb-run -a -s "-screen 0 1280x900x24" node tests/e2e-app/terminal.mjs target/debug/tunnelbook-app
# Files view (SFTP over the host's connection): upload, download, rename, delete; its own bed user
# (tbfiles) and tauri-driver ports.
xvfb-run -a -s "-screen 0 1280x900x24" node tests/e2e-app/files.mjs target/debug/tunnelbook-app target/debug/tunnelbook-e2e-bed target/debug/tunnelbook
# SLURM (issue 20): the GPU step's cluster view and request form, Queued behind a blocker job,
# Ready with no click, a cell's CUDA_VISIBLE_DEVICES = the job's SLURM_JOB_GPUS, Stop → CANCELLED;
# its own SLURM bed (user tbslurm, used by no other app suite) and tauri-driver ports.
cargo build -p tunnelbook-testbed --bin tunnelbook-e2e-slurm-bed
xvfb-run -a -s "-screen 0 1280x900x24" node tests/e2e-app/slurm.mjs target/debug/tunnelbook-app target/debug/tunnelbook-e2e-slurm-bed target/debug/tunnelbook
