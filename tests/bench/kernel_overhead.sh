#!/usr/bin/env bash
# Kernel-side cost of tripline: the same workloads without and with the exporter, in one run, as a ratio.
#   EXECS (default 20000) execve of /bin/true; CONNECTS (default 50000) loopback connect+accept pairs.
# Usage: tests/bench/kernel_overhead.sh   (root; builds release binaries first)
set -euo pipefail
cd "$(dirname "$0")/../.."
EXECS=${EXECS:-20000}
CONNECTS=${CONNECTS:-50000}
PORT=${PORT:-19799}
cargo build --release --bin tripline --example workload >/dev/null
W=./target/release/examples/workload

run() { "$W" "$1" "$2"; }
base_exec=$(run exec "$EXECS")
base_tcp=$(run tcp "$CONNECTS")

./target/release/tripline --web.listen-address "127.0.0.1:$PORT" 2>/tmp/tripline-bench.log &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done

with_exec=$(run exec "$EXECS")
with_tcp=$(run tcp "$CONNECTS")
metrics=$(curl -sf "http://127.0.0.1:$PORT/metrics")
kill -TERM $pid; wait $pid || true
trap - EXIT

lost=$(echo "$metrics" | awk '/^tripline_events_lost_total\{stage="(kernel|pipeline)"\}/ {s+=$2} END {print s+0}')
python3 - "$base_exec" "$with_exec" "$base_tcp" "$with_tcp" "$EXECS" "$CONNECTS" "$lost" <<'PY'
import sys
be, we, bt, wt = map(float, sys.argv[1:5]); ne, nc, lost = int(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
print(f"exec  x{ne}: without {be:.2f}s  with {we:.2f}s  ratio {we/be:.3f}  ({(we-be)/ne*1e6:+.1f} us/exec)")
print(f"tcp   x{nc}: without {bt:.2f}s  with {wt:.2f}s  ratio {wt/bt:.3f}  ({(wt-bt)/nc*1e6:+.1f} us/pair)")
print(f"events lost during the run (kernel+pipeline): {lost}")
PY
