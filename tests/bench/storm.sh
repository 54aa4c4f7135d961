#!/usr/bin/env bash
# Event storms against a running tripline that writes every event as JSON lines: events made vs delivered
# (lines in the JSON-lines file that belong to the storm) vs lost by stage, tripline's CPU and RSS.
#   KIND=tcp|exec|file (default tcp)  RATE=operations/s (default 50000 pairs = 100k events/s for tcp;
#   exec: 3 events per operation; file: 1 file_write per open+write+close of a file in a watched
#   application directory)  DURATION=30  THREADS=2  PORT=19798
#   STORM_OUT=/tmp (where the JSON-lines file goes; /dev/shm takes the disk out of the measurement;
#   STORM_OUT=pipe writes to a FIFO read by `workload count`, which counts lines as they come and keeps
#   nothing: neither a disk nor page-cache growth is measured — on a VM whose fresh memory is slow to
#   touch, gigabytes of new page cache cost more than tripline does)
#   TRIPLINE=./target/release/tripline (another binary: compare builds in interleaved runs)
#   WORKLOAD=./target/release/examples/workload (the generator and counter; another build of it likewise)
# Usage: tests/bench/storm.sh   (root; builds release binaries first; prints one summary block)
set -euo pipefail
cd "$(dirname "$0")/../.."
KIND=${KIND:-tcp}
RATE=${RATE:-50000}
SECS=${DURATION:-30}
THREADS=${THREADS:-2}
PORT=${PORT:-19798}
TRIPLINE=${TRIPLINE:-./target/release/tripline}
W=${WORKLOAD:-./target/release/examples/workload}
if [ -z "${NO_BUILD:-}" ]; then
  cargo build --release --bin tripline --example workload >/dev/null
fi
if [ "${STORM_OUT:-}" = pipe ]; then
  out=$(mktemp -d /tmp/tripline-storm.XXXXXX)
  mkfifo "$out/events.jsonl"
  "$W" count <"$out/events.jsonl" >"$out/counts" &
  counter=$!
else
  out=$(mktemp -d ${STORM_OUT:-/tmp}/tripline-storm.XXXXXX)
  counter=
fi
# Every event as a JSON line, no rotation (a rotated-away file would look like loss).
# The file storm's application directory on tmpfs: the disk's own cost would hide tripline's.
app=$(mktemp -d /dev/shm/tripline-storm-app.XXXXXX)
cat >"$out/config.yml" <<YML
sensor:
  app_dirs: [$app]
sinks:
  jsonl:
    path: $out/events.jsonl
    events: all
    max_bytes: 0
YML
"$TRIPLINE" --config.file "$out/config.yml" --web.listen-address "127.0.0.1:$PORT" \
  --baseline.mode monitor ${TRIPLINE_ARGS:-} 2>"$out/tripline.log" &
pid=$!
trap 'kill $pid $counter 2>/dev/null || true' EXIT
for _ in $(seq 150); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done
sleep 2
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$pid/stat"; }
idle_rss=$(rss_kib)
cpu0=$(cpu_ticks)
lost0=$(curl -sf "http://127.0.0.1:$PORT/metrics" | awk '/^tripline_events_lost_total/ {print}')

( max=0; while kill -0 $pid 2>/dev/null; do r=$(rss_kib); [ "$r" -gt "$max" ] && max=$r && echo $max >"$out/rss_max.tmp" && mv "$out/rss_max.tmp" "$out/rss_max"; sleep 0.5; done ) &
sampler=$!
WORKLOAD_FILE="$app/storm.dat" "$W" "$KIND-storm" "$RATE" "$SECS" "$THREADS" >"$out/made" &
wpid=$!
wait $wpid
sleep 3   # let the pipeline drain
cpu1=$(cpu_ticks)
metrics=$(curl -sf "http://127.0.0.1:$PORT/metrics"); echo "$metrics" >"$out/metrics"
storm_rss=$(cat "$out/rss_max" 2>/dev/null || rss_kib)
kill $sampler 2>/dev/null || true
kill -TERM $pid; wait $pid || true
trap - EXIT
if [ -n "$counter" ]; then
  # Open and close the FIFO once (read-write: never blocks) so that the counter sees its end even when
  # tripline never opened it.
  exec 3<>"$out/events.jsonl"
  exec 3>&-
  wait "$counter"
else
  "$W" count <"$out/events.jsonl" >"$out/counts"
fi

python3 - "$out" "$wpid" "$KIND" "$SECS" "$idle_rss" "$storm_rss" "$cpu0" "$cpu1" "$(getconf CLK_TCK)" <<PY
import sys, re
out, wpid, kind, secs, idle, storm, c0, c1, hz = sys.argv[1:]
wpid = int(wpid); secs = float(secs)
made_line = open(f"{out}/made").read().split()
ops = int(made_line[0].split("=")[1]); elapsed = float(made_line[1].split("=")[1])
per = {"tcp": 2, "exec": 3, "file": 1}[kind]
made = ops * per
delivered = 0
# Rows of "workload count": event name, pid, parent pid, lines.
for row in open(f"{out}/counts"):
    name, pid, ppid, n = row.split()
    pid, ppid, n = int(pid), int(ppid), int(n)
    if kind == "tcp" and name in ("tripline.network.connect", "tripline.network.accept") and pid == wpid:
        delivered += n
    elif kind == "file" and name == "tripline.file.write" and pid == wpid:
        delivered += n
    elif kind == "exec":
        if name == "tripline.process.fork" and pid == wpid:
            delivered += n
        elif name in ("tripline.process.exec", "tripline.process.exit") and ppid == wpid:
            delivered += n
metrics = """$metrics"""
lost = {m.group(1): float(m.group(2)) for m in re.finditer(r'^tripline_events_lost_total\{stage="(\w+)"\} (\S+)', metrics, re.M)}
base = {m.group(1): float(m.group(2)) for m in re.finditer(r'^tripline_events_lost_total\{stage="(\w+)"\} (\S+)', """$lost0""", re.M)}
cpu = (int(c1) - int(c0)) / int(hz)
print(f"storm {kind}: {ops} operations in {elapsed:.1f}s ({made/elapsed:,.0f} events/s made)")
print(f"  made {made}  delivered {delivered} ({100*delivered/max(made,1):.2f}%)  missing {made-delivered}")
print("  lost by stage (during the storm): " + "  ".join(f"{k}={v-base.get(k,0):.0f}" for k, v in sorted(lost.items())))
print(f"  tripline CPU {cpu:.1f}s = {100*cpu/elapsed:.0f}% of one core;  RSS idle {int(idle)/1024:.1f} MiB, storm max {int(storm)/1024:.1f} MiB")
PY
rm -rf "$app"
[ -n "${KEEP:-}" ] && echo "kept $out" || rm -rf "$out"
