#!/usr/bin/env bash
# Fleet test (docs/fleet.md): two real Prometheus servers (Debian's) on loopback carry tripline series
# end to end. "edge" scrapes a real tripline (root, real kernel) that runs a fleet baseline built with
# `tripline baseline merge --set-version`, and remote-writes everything into "central"
# (--web.enable-remote-write-receiver); central also federates edge's tripline_ series. Asserts on
# central: remote-written series carry edge's external label, the baseline version, the build
# revision and real event counts; the federated series arrive too; a cross-host dashboard query works.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BIN=${TRIPLINE_BIN:-$ROOT/target/debug/tripline}
[ -x "$BIN" ] || cargo build --bin tripline
WORK=$(mktemp -d /tmp/tripline-fleet.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${KEEP_WORK:-0}" = 1 ]; then echo "work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
fail() { echo "FLEET TEST FAILED: $*" >&2; for f in "$WORK"/*.log; do echo "--- $f"; tail -20 "$f"; done >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P_TRIP=$(free_port) P_EDGE=$(free_port) P_CENTRAL=$(free_port)
wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do [ $SECONDS -lt $deadline ] || fail "timed out waiting for $what"; sleep 1; done
}
# query PORT PROMQL -> prints the result vector as "labels value" lines (python, no jq needed)
query() {
  curl -sf --get "http://127.0.0.1:$1/api/v1/query" --data-urlencode "query=$2" | python3 -c '
import json, sys
r = json.load(sys.stdin)["data"]["result"]
for s in r:
    print(json.dumps(s["metric"], sort_keys=True), s["value"][1])'
}
has() { [ -n "$(query "$@")" ]; }

# A fleet baseline, as CI would publish it: merged from reviewed files, versioned.
cat > "$WORK/reviewed.yml" <<'YAML'
schema: tripline.baseline/v1
models: {}
YAML
"$BIN" baseline merge "$WORK/reviewed.yml" --set-version fleet-2026.11-1 -o "$WORK/baseline.yml" 2>"$WORK/merge.log" \
  || fail "baseline merge --set-version"
grep -q 'version: fleet-2026.11-1' "$WORK/baseline.yml" || fail "merged baseline has no version"

cat > "$WORK/edge.yml" <<YAML
global: {scrape_interval: 1s, external_labels: {region: edge-1}}
scrape_configs:
  - job_name: tripline
    static_configs: [{targets: ['127.0.0.1:$P_TRIP'], labels: {team: platform}}]
remote_write:
  - url: http://127.0.0.1:$P_CENTRAL/api/v1/write
    queue_config: {batch_send_deadline: 1s, min_backoff: 100ms, max_backoff: 1s}
YAML
cat > "$WORK/central.yml" <<YAML
global: {scrape_interval: 1s}
scrape_configs:
  - job_name: federate
    honor_labels: false
    metrics_path: /federate
    params: {'match[]': ['{__name__=~"tripline_.+"}']}
    static_configs: [{targets: ['127.0.0.1:$P_EDGE']}]
YAML

"$BIN" --web.listen-address 127.0.0.1:$P_TRIP --baseline.file "$WORK/baseline.yml" --baseline.mode monitor \
  --log.format json >"$WORK/tripline.log" 2>&1 & PIDS+=($!)
prometheus --config.file "$WORK/central.yml" --storage.tsdb.path "$WORK/central" --web.enable-remote-write-receiver \
  --web.listen-address 127.0.0.1:$P_CENTRAL >"$WORK/central.log" 2>&1 & PIDS+=($!)
prometheus --config.file "$WORK/edge.yml" --storage.tsdb.path "$WORK/edge" \
  --web.listen-address 127.0.0.1:$P_EDGE >"$WORK/edge.log" 2>&1 & PIDS+=($!)

wait_for 90 "tripline ready" curl -sf http://127.0.0.1:$P_TRIP/readyz
wait_for 60 "edge prometheus ready" curl -sf http://127.0.0.1:$P_EDGE/-/ready
wait_for 60 "central prometheus ready" curl -sf http://127.0.0.1:$P_CENTRAL/-/ready
for _ in 1 2 3; do /bin/true; done

echo "remote_write: edge -> central"
wait_for 60 "remote-written tripline_build_info on central" \
  has $P_CENTRAL 'tripline_build_info{job="tripline",region="edge-1",team="platform"}'
grep -Eq '"revision": "[0-9a-f]{7,}' <<<"$(query $P_CENTRAL 'tripline_build_info{job="tripline",region="edge-1"}')" \
  || fail "build_info on central has no git revision: $(query $P_CENTRAL tripline_build_info)"
wait_for 30 "the fleet baseline version on central" \
  has $P_CENTRAL 'tripline_baseline_info{region="edge-1",version="fleet-2026.11-1"} == 1'
[ "$(query $P_CENTRAL 'count(tripline_baseline_info{job="tripline"})' | awk '{print $2}')" = 1 ] \
  || fail "tripline_baseline_info must be one series"
wait_for 30 "exec events counted on central" has $P_CENTRAL 'tripline_events_total{kind="exec",region="edge-1"} > 0'
wait_for 30 "probe status on central" has $P_CENTRAL 'min(tripline_probe_attached{region="edge-1"}) == 1'

echo "federation: central scrapes edge's /federate"
wait_for 60 "federated tripline_build_info on central" \
  has $P_CENTRAL 'tripline_build_info{job="federate",exported_job="tripline",region="edge-1"}'

echo "fleet dashboard query (across hosts, by region and team)"
wait_for 30 "a cross-host aggregation" has $P_CENTRAL \
  'sum by (region, team) (rate(tripline_events_total{job="tripline"}[30s])) > 0'
echo "FLEET TEST PASSED"
