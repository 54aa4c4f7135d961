#!/usr/bin/env bash
# Cost of the file-integrity hooks on a write-heavy loop OUTSIDE the watched paths: N small
# open/write/close in /tmp, without and with tripline, in one run, as a ratio. Root.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${N:-200000}
PORT=${PORT:-19797}
cargo build --release --bin tripline >/dev/null
DIR=$(mktemp -d /tmp/tripline-filebench.XXXXXX)
trap 'rm -rf "$DIR"; kill $pid 2>/dev/null || true' EXIT
loop() {
  python3 - "$DIR" "$N" <<'PY'
import os, sys, time
d, n = sys.argv[1], int(sys.argv[2])
t = time.perf_counter()
for i in range(n):
    fd = os.open(f"{d}/f{i % 64}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, b"x")
    os.close(fd)
print(f"{time.perf_counter() - t:.3f}")
PY
}
pid=
base=$(loop)
./target/release/tripline --web.listen-address 127.0.0.1:$PORT 2>/dev/null &
pid=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:$PORT/readyz >/dev/null && break; sleep 0.2; done
with=$(loop)
filtered=$(curl -sf http://127.0.0.1:$PORT/metrics | awk '/^tripline_file_events_filtered_total/ {print $2}')
python3 -c "b,w=$base,$with; print(f'file hooks x$N (outside watched paths): without {b:.2f}s with {w:.2f}s ratio {w/b:.3f} ({(w-b)/$N*1e6:+.2f} us/op); filtered in kernel: $filtered')"
