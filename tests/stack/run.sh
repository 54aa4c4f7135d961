#!/usr/bin/env bash
# The stack test: real Prometheus and Alertmanager (Debian packages) on loopback, the shipped alert rules
# (with `for:` shortened to 5s in a test copy), a webhook receiver, and the real tripline (real kernel)
# in auto mode with a short learning window. Runs `tripline gameday`, then asserts that the expected alerts
# reached the webhook with their labels and annotations, that every dashboard expression returns data from
# Prometheus, that killing tripline brings TriplineExporterDown, and that restarting it after the kill
# brings TriplineTamperDetected (unclean stop). Root; loopback only.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BIN=${TRIPLINE_BIN:-$ROOT/target/debug/tripline}
[ -x "$BIN" ] || cargo build --bin tripline
# Free loopback ports, so parallel runs (and other services) do not collide.
read -r P_TRIP P_PROM P_AM P_HOOK < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')
WORK=$(mktemp -d /tmp/tripline-stack.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${KEEP_WORK:-0}" = 1 ]; then echo "work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
fail() { echo "STACK TEST FAILED: $*" >&2; for f in "$WORK"/*.log; do echo "--- $f"; tail -20 "$f"; done >&2; exit 1; }
wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do [ $SECONDS -lt $deadline ] || fail "timed out waiting for $what"; sleep 1; done
}

bash tests/alert_rules_check.sh

sed -E 's/^( +for:) .*/\1 5s/' alert-rules/tripline.rules.yml > "$WORK/rules.yml"
cat > "$WORK/prometheus.yml" <<YAML
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [rules.yml]
alerting:
  alertmanagers: [{static_configs: [{targets: ['127.0.0.1:$P_AM']}]}]
scrape_configs:
  - job_name: tripline
    static_configs: [{targets: ['127.0.0.1:$P_TRIP']}]
  - job_name: app
    static_configs: [{targets: ['127.0.0.1:$P_HOOK']}]
YAML
cat > "$WORK/alertmanager.yml" <<YAML
route: {receiver: hook, group_by: [alertname, instance], group_wait: 1s, group_interval: 1s, repeat_interval: 1h}
receivers:
  - name: hook
    webhook_configs: [{url: 'http://127.0.0.1:$P_HOOK/hook', send_resolved: false}]
YAML

python3 tests/stack/webhook.py $P_HOOK "$WORK/alerts.jsonl" >"$WORK/webhook.log" 2>&1 & PIDS+=($!)
"$BIN" --web.listen-address 127.0.0.1:$P_TRIP --baseline.mode auto --baseline.learn-for 20s \
  --state.directory "$WORK/state" >"$WORK/tripline.log" 2>&1 & TRIP=$!; PIDS+=($TRIP)
prometheus --config.file "$WORK/prometheus.yml" --storage.tsdb.path "$WORK/data" \
  --web.listen-address 127.0.0.1:$P_PROM >"$WORK/prometheus.log" 2>&1 & PIDS+=($!)
prometheus-alertmanager --config.file "$WORK/alertmanager.yml" --storage.path "$WORK/am" \
  --web.listen-address 127.0.0.1:$P_AM --cluster.listen-address= >"$WORK/alertmanager.log" 2>&1 & PIDS+=($!)

wait_for 60 "tripline ready" curl -sf http://127.0.0.1:$P_TRIP/readyz
wait_for 60 "prometheus ready" curl -sf http://127.0.0.1:$P_PROM/-/ready
wait_for 60 "alertmanager ready" curl -sf http://127.0.0.1:$P_AM/-/ready
learning() { curl -sf http://127.0.0.1:$P_TRIP/metrics | grep -q '^tripline_baseline_learning{model="network_process"} 0'; }
wait_for 90 "the learning window to end" learning

echo "=== game day"
"$BIN" gameday --target http://127.0.0.1:$P_TRIP --timeout 30s || fail "gameday missed scenarios"

alert_arrived() { # alert_arrived NAME SEVERITY
  python3 - "$WORK/alerts.jsonl" "$1" "$2" <<'PY'
import json, sys
path, name, sev = sys.argv[1:4]
try:
    lines = open(path).read().splitlines()
except FileNotFoundError:
    sys.exit(1)
for l in lines:
    for a in json.loads(l).get("alerts", []):
        lab, ann = a["labels"], a["annotations"]
        if lab.get("alertname") == name and a["status"] == "firing":
            assert lab.get("severity") == sev, f"{name}: severity {lab.get('severity')} != {sev}"
            assert ann.get("summary") and ann.get("description"), f"{name}: missing summary/description"
            anchor = name.lower()
            assert ann.get("runbook_url", "").endswith("docs/runbooks.md#" + anchor), f"{name}: runbook_url {ann.get('runbook_url')}"
            print(f"alert {name} ({sev}) arrived: {ann['summary']}")
            sys.exit(0)
sys.exit(1)
PY
}
for spec in TriplineHighSeverityRuleMatch:critical TriplineBaselineAnomaly:warning TriplineThreatLevelHigh:critical; do
  name=${spec%%:*}; sev=${spec##*:}
  wait_for 120 "alert $name at the webhook" alert_arrived "$name" "$sev"
  alert_arrived "$name" "$sev"
done

echo "=== every dashboard expression returns data"
sleep 5
python3 tests/dashboards_check.py --prometheus http://127.0.0.1:$P_PROM || fail "dashboard expressions without data"

echo "=== stopping tripline: TriplineExporterDown must page"
kill -KILL "$TRIP"
wait_for 120 "alert TriplineExporterDown at the webhook" alert_arrived TriplineExporterDown critical
alert_arrived TriplineExporterDown critical

echo "=== restarting tripline after the kill: the unclean stop must page (TriplineTamperDetected)"
"$BIN" --web.listen-address 127.0.0.1:$P_TRIP --state.directory "$WORK/state" \
  >"$WORK/tripline-restart.log" 2>&1 & PIDS+=($!)
wait_for 60 "tripline ready again" curl -sf http://127.0.0.1:$P_TRIP/readyz
wait_for 120 "alert TriplineTamperDetected at the webhook" alert_arrived TriplineTamperDetected critical
alert_arrived TriplineTamperDetected critical
echo "stack test: OK"
