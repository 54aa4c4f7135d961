#!/usr/bin/env bash
# Before/after cost of the file hooks on a shared, noisy host: interleaved rounds of the same small
# open/write/close loop without tripline ("bare"), with binary A and with binary B, reported as medians
# and as ratios to the bare median. Root.
#   tests/bench/file_hooks_ab.sh OLD_BINARY NEW_BINARY
# Env: N (ops per round, default 100000), ROUNDS (default 5), WATCHED=1 to write inside a watched
# directory (every op is then an event) instead of /tmp; BENCH_DIR=/dev/shm keeps disk noise out.
set -euo pipefail
A=${1:?old binary}
B=${2:?new binary}
N=${N:-100000}
ROUNDS=${ROUNDS:-5}
PORT=${PORT:-19796}
CFG=$(mktemp /tmp/tripline-fileab.XXXXXX.yml)
if [ "${WATCHED:-0}" = 1 ]; then
  DIR=/var/lib/tripline-fileab.$$
  mkdir -p "$DIR"
else
  DIR=$(mktemp -d "${BENCH_DIR:-/tmp}/tripline-fileab.XXXXXX")
fi
printf 'sensor:\n  app_dirs: [/var/lib/tripline-fileab.%s]\n' "$$" > "$CFG"
pid=
trap 'rm -rf "$DIR" "$CFG"; [ -n "$pid" ] && kill $pid 2>/dev/null || true' EXIT
loop() {
  python3 - "$DIR" "$N" <<'PY'
import os, sys, time
d, n = sys.argv[1], int(sys.argv[2])
t = time.perf_counter()
for i in range(n):
    fd = os.open(f"{d}/f{i % 64}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, b"x")
    os.close(fd)
print(f"{time.perf_counter() - t:.4f}")
PY
}
with() {
  "$1" --config.file "$CFG" --web.listen-address 127.0.0.1:$PORT >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 300); do curl -sf http://127.0.0.1:$PORT/readyz >/dev/null && break; sleep 0.2; done
  loop
  kill $pid; wait $pid 2>/dev/null || true
  pid=
}
bare=(); a=(); b=()
for r in $(seq "$ROUNDS"); do
  bare+=("$(loop)")
  a+=("$(with "$A")")
  bare+=("$(loop)")
  b+=("$(with "$B")")
done
python3 - "$N" "${bare[*]}" "${a[*]}" "${b[*]}" <<'PY'
import statistics, sys
n = int(sys.argv[1])
bare, a, b = ([float(x) for x in s.split()] for s in sys.argv[2:5])
mb, ma, mB = (statistics.median(v) for v in (bare, a, b))
print(f"rounds: bare {bare}\n        old  {a}\n        new  {b}")
print(f"median s/{n} ops: bare {mb:.3f}  old {ma:.3f} (x{ma/mb:.3f}, {(ma-mb)/n*1e6:+.2f} us/op)"
      f"  new {mB:.3f} (x{mB/mb:.3f}, {(mB-mb)/n*1e6:+.2f} us/op)")
PY
