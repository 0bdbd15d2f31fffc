#!/usr/bin/env bash
# Benchmarks Tunnelbook against OpenSSH on the same sshd in one run (needs root, like the tests).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p tunnelbook-cli
cargo bench -p tunnelbook-testbed --bench vs_openssh
# Keystroke echo latency: `tunnelbook shell` vs `ssh -t` (issue 23).
cargo bench -p tunnelbook-testbed --bench shell_echo
cargo bench -p tunnelbook-testbed --bench sftp_vs_openssh
