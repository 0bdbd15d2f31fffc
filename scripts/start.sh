#!/usr/bin/env bash
# Installs what Tunnelbook needs (Debian 12, as root), builds the UI and starts the desktop app.
# The `tunnelbook` command line is built alongside: target/release/tunnelbook.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm --prefix ui ci --no-audit --no-fund
npm --prefix ui run build
cargo build --release -p tunnelbook-cli
exec cargo run --release -p tunnelbook-app --features custom-protocol
