#!/bin/sh
# On a machine with a real NVIDIA GPU: runs Tunnelbook's remote GPU query (the exact command
# `tunnelbook gpus HOST` sends over SSH) locally through sh, and the NVML path
# (`tunnelbook gpus local`), and prints both, so the two can be compared by eye.
#
#   scripts/gpu-check.sh [path/to/tunnelbook]
#
# Without an argument it uses target/release/tunnelbook or target/debug/tunnelbook, building the
# latter if neither exists. The remote command comes from the binary itself
# (`tunnelbook gpus local --print-query`), so it is never out of step with the code; its output is
# parsed by the same binary (`--from-stdin`).
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-}
if [ -z "$bin" ]; then
    for b in "$here/target/release/tunnelbook" "$here/target/debug/tunnelbook"; do
        if [ -x "$b" ]; then bin=$b; break; fi
    done
fi
if [ -z "$bin" ]; then
    (cd "$here" && cargo build -p tunnelbook-cli) || exit 1
    bin="$here/target/debug/tunnelbook"
fi

echo "=== machine"
uname -a
nvidia-smi -L 2>&1 || echo "(no nvidia-smi)"

echo "=== remote query run locally through sh"
query=$("$bin" gpus local --print-query) || exit 1
start=$(date +%s%N 2>/dev/null || echo 0)
# The query reads its marker token and fields on stdin (a fixed token here; empty: all fields).
raw=$(printf 'tunnelbook-gpu\n\n' | sh -c "$query")
end=$(date +%s%N 2>/dev/null || echo 0)
printf '%s\n' "$raw"
echo "(took $(( (end - start) / 1000000 )) ms)"
echo "=== that output parsed: --json, then the table"
printf '%s\n' "$raw" | "$bin" gpus "$(hostname)" --from-stdin --json
printf '%s\n' "$raw" | "$bin" gpus "$(hostname)" --from-stdin

echo "=== NVML: tunnelbook gpus local --json"
"$bin" gpus local --json
echo "=== NVML: tunnelbook gpus local"
"$bin" gpus local
