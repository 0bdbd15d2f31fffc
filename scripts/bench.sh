#!/usr/bin/env bash
# Benchmarks Tunnelbook against OpenSSH on the same sshd in one run (needs root, like the tests):
# the SSH engine and local forwards (tests/benches/vs_openssh.rs), then the notebook paths — cold
# `up`, `attach`, `ls` (tests/benches/up_vs_openssh.rs) — and at the end the summary table
# of issue 19: each row for Tunnelbook and OpenSSH with the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p tunnelbook-cli
out=$(mktemp)
trap 'rm -f "$out"' EXIT
cargo bench -p tunnelbook-testbed --bench vs_openssh | tee -a "$out"
cargo bench -p tunnelbook-testbed --bench up_vs_openssh | tee -a "$out"
# Keystroke echo latency: `tunnelbook shell` vs `ssh -t` (issue 23).
cargo bench -p tunnelbook-testbed --bench shell_echo | tee -a "$out"
# A folder of small files and one big file over SFTP vs sftp -b / scp -r (issue 21).
cargo bench -p tunnelbook-testbed --bench sftp_vs_openssh | tee -a "$out"
echo
echo "## Summary ($(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg))"
echo
echo "| | Tunnelbook | OpenSSH | ratio |"
echo "| --- | --- | --- | --- |"
grep -P '^row\t' "$out" | awk -F'\t' '{ printf "| %s | %s | %s | %s× |\n", $2, $3, $4, $5 }'
