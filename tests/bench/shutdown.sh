#!/usr/bin/env bash
# Clean-stop time: SIGTERM to exit of the exporter, RUNS times for each syscall attach mode
# (`sensor.syscall_hooks`: dispatch, the default, and tracepoints), interleaved; prints each run and the
# medians. The exporter is started with the embedded defaults and an empty state directory.
#   RUNS=3 MODES="dispatch tracepoints" TRIPLINE=./target/release/tripline
# Usage: tests/bench/shutdown.sh   (root)
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-3}
MODES=${MODES:-dispatch tracepoints}
PORT=${PORT:-19796}
TRIPLINE=${TRIPLINE:-./target/release/tripline}
[ -n "${NO_BUILD:-}" ] || cargo build --release --bin tripline >/dev/null
work=$(mktemp -d /tmp/tripline-shutdown.XXXXXX)
trap 'rm -rf "$work"' EXIT
: >"$work/results"
for r in $(seq "$RUNS"); do
  for m in $MODES; do
    printf 'sensor:\n  syscall_hooks: %s\n' "$m" >"$work/$m.yml"
    rm -rf "$work/state" && mkdir "$work/state"
    "$TRIPLINE" --config.file "$work/$m.yml" --state.directory "$work/state" \
      --web.listen-address "127.0.0.1:$PORT" 2>"$work/log" &
    pid=$!
    for _ in $(seq 300); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
    sleep 2
    t0=$(date +%s%N)
    kill -TERM "$pid"
    wait "$pid" || true
    t1=$(date +%s%N)
    ms=$(( (t1 - t0) / 1000000 ))
    echo "$m run $r: ${ms} ms" >&2
    echo "$m $ms" >>"$work/results"
  done
done
python3 - "$work/results" <<'PY'
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    m, v = line.split()
    rows[m].append(int(v))
for m, v in rows.items():
    print(f"{m}: median {statistics.median(v):.0f} ms over {len(v)} runs ({', '.join(map(str, v))})")
PY
