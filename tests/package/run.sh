#!/usr/bin/env bash
# The Debian package, end to end on this machine (root): build it (scripts/package.sh --dev), install it
# with dpkg (service start suppressed by policy-rc.d: CI has no systemd and must stay on loopback),
# check the installed files, `systemd-analyze verify` the unit when available, then start the installed
# binary the way the unit does — packaged config, /etc/default/tripline flags, the unit's capability
# bounding set (setpriv), a NOTIFY_SOCKET like systemd's — on a free loopback port, until /readyz answers
# and READY=1 arrives. Checks the JSON log lines, --version, the baseline persisted under the state
# directory at shutdown, and that purging removes it.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export PATH="$HOME/.cargo/bin:$PATH"
WORK=$(mktemp -d /tmp/tripline-package.XXXXXX)
PIDS=()
POLICY_RC=/usr/sbin/policy-rc.d
OWN_POLICY_RC=0
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if dpkg-query -W -f='${Status}' tripline 2>/dev/null | grep -q installed; then dpkg --purge tripline >/dev/null 2>&1 || true; fi
  [ "$OWN_POLICY_RC" = 1 ] && rm -f "$POLICY_RC"
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "PACKAGE TEST FAILED: $*" >&2; for f in "$WORK"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -20 "$f"; }; done >&2; exit 1; }

DEB=${TRIPLINE_DEB:-}
if [ -z "$DEB" ]; then
  bash scripts/package.sh --dev >"$WORK/package.log" 2>&1 || fail "scripts/package.sh --dev"
  DEB=$(ls -t "${CARGO_TARGET_DIR:-$ROOT/target}"/debian/tripline_*.deb | head -1)
fi
echo "package: $DEB"
info=$(dpkg-deb --info "$DEB")
grep -q '^ Package: tripline' <<<"$info" || fail "not a tripline package"

# Never start the service from the maintainer scripts here (invoke-rc.d honours policy-rc.d).
if [ ! -e "$POLICY_RC" ]; then printf '#!/bin/sh\nexit 101\n' > "$POLICY_RC"; chmod 755 "$POLICY_RC"; OWN_POLICY_RC=1; fi
dpkg -i "$DEB" >"$WORK/dpkg.log" 2>&1 || fail "dpkg -i"

for f in /usr/bin/tripline /etc/tripline/tripline.yml /etc/tripline/policy.yml /etc/default/tripline \
         /usr/lib/systemd/system/tripline.service /usr/share/man/man1/tripline.1.gz \
         /usr/share/bash-completion/completions/tripline /usr/share/zsh/vendor-completions/_tripline \
         /usr/share/fish/vendor_completions.d/tripline.fish /usr/share/doc/tripline/configuration.md \
         /usr/share/doc/tripline/config.schema.json /usr/share/tripline/alert-rules/tripline.rules.yml \
         /usr/share/tripline/dashboards/tripline-overview.json; do
  [ -s "$f" ] || fail "$f missing or empty after install"
done
grep -q /etc/tripline/tripline.yml <<<"$(dpkg-query -W -f='${Conffiles}\n' tripline)" || fail "tripline.yml is not a conffile"
grep -q '^\.TH tripline 1' <<<"$(zcat /usr/share/man/man1/tripline.1.gz)" || fail "man page is not roff"
for page in tripline-run tripline-check-config tripline-baseline-merge; do
  [ -s /usr/share/man/man1/$page.1.gz ] || fail "man page $page.1 missing"
done
bash -n /usr/share/bash-completion/completions/tripline || fail "bash completion does not parse"
grep -q 'check-config' /usr/share/bash-completion/completions/tripline || fail "bash completion lacks subcommands"
echo "installed files: ok"

UNIT=/usr/lib/systemd/system/tripline.service
if command -v systemd-analyze >/dev/null 2>&1; then
  # Unknown or misspelt directives are only warnings ("ignoring"): any output fails the test.
  systemd-analyze verify --man=no "$UNIT" >"$WORK/verify.log" 2>&1 || fail "systemd-analyze verify: $(cat "$WORK/verify.log")"
  [ ! -s "$WORK/verify.log" ] || fail "systemd-analyze verify warned: $(cat "$WORK/verify.log")"
  echo "systemd-analyze verify: ok"
else
  echo "systemd-analyze not available: unit not verified"
fi

version=$(/usr/bin/tripline --version)
echo "$version"
grep -Eq '^revision: +[0-9a-f]{7,}' <<<"$version" || fail "--version has no git revision"
/usr/bin/tripline check-config --config.file=/etc/tripline/tripline.yml >/dev/null || fail "packaged config does not check"
/usr/bin/tripline check-config --schema | python3 -c 'import json,sys; s=json.load(sys.stdin); assert s["additionalProperties"] is False' \
  || fail "check-config --schema is not the JSON Schema"

# Start it like the unit: ExecStart's arguments, $ARGS from /etc/default/tripline, the unit's
# capability bounding set, the state directory systemd would create, a notify socket.
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$UNIT" | tr ' ' '\n' | sed 's/^CAP_//' | tr 'A-Z' 'a-z' \
  | while read -r c; do
      # Only what this machine's bounding set has (a container may lack CAP_SYS_RESOURCE).
      if grep -qw "cap_$c" <(capsh --print | grep '^Bounding'); then printf ',+%s' "$c"; fi
    done)
[ -n "$caps" ] || fail "no capabilities parsed from $UNIT"
install -d -m 0700 /var/lib/tripline
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
NOTIFY="$WORK/notify.sock"
python3 - "$NOTIFY" "$WORK/notify.txt" >"$WORK/notify.log" 2>&1 <<'PY' & PIDS+=($!)
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a") as out:
    while True:
        out.write(s.recv(4096).decode() + "\n"); out.flush()
PY
for _ in $(seq 1 50); do [ -S "$NOTIFY" ] && break; sleep 0.1; done
ARGS=""
# shellcheck disable=SC1091
. /etc/default/tripline
# shellcheck disable=SC2086
(cd /var/lib/tripline && NOTIFY_SOCKET=$NOTIFY exec setpriv --bounding-set=-all$caps --inh-caps=-all -- \
  /usr/bin/tripline --config.file=/etc/tripline/tripline.yml $ARGS \
  --web.listen-address=127.0.0.1:$PORT --log.format=json) 2>"$WORK/tripline.log" & TRIP=$!; PIDS+=($TRIP)
echo "started the installed tripline on 127.0.0.1:$PORT with capabilities ${caps//,+/ }"
deadline=$((SECONDS + 90))
until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; do
  kill -0 $TRIP 2>/dev/null || fail "tripline exited before /readyz answered"
  [ $SECONDS -lt $deadline ] || fail "/readyz did not answer within 90s"
  sleep 1
done
echo "/readyz: ready"
for _ in $(seq 1 20); do grep -q '^READY=1' "$WORK/notify.txt" 2>/dev/null && break; sleep 0.2; done
grep -q '^READY=1' "$WORK/notify.txt" || fail "no READY=1 on NOTIFY_SOCKET"
echo "sd_notify: READY=1 received"
metrics=$(curl -sf "http://127.0.0.1:$PORT/metrics")
grep -q '^tripline_probe_attached{probe="exec"} 1' <<<"$metrics" || fail "exec probe not attached with the unit's capabilities"
grep -E '^tripline_build_info\{' <<<"$metrics" | grep -Ev 'revision="(unknown)?"' | grep 'rustc_version="1\.' >/dev/null \
  || fail "tripline_build_info lacks revision/rustc_version: $(echo "$metrics" | grep build_info)"
/bin/true  # an exec for the learning baseline
kill -TERM $TRIP
wait $TRIP || fail "tripline did not exit 0 on SIGTERM"
grep -q '^STOPPING=1' "$WORK/notify.txt" || fail "no STOPPING=1 on NOTIFY_SOCKET"
python3 - "$WORK/tripline.log" <<'PY' || fail "--log.format=json wrote a line that is not a JSON object"
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
assert lines, "no log lines"
for l in lines:
    o = json.loads(l)
    assert isinstance(o, dict) and {"timestamp", "level", "message"} <= o.keys(), l
    assert "Some(" not in l, l
print(f"json logs: {len(lines)} lines parse")
PY
[ -s /var/lib/tripline/baseline.yml ] || fail "baseline not persisted to /var/lib/tripline/baseline.yml"
grep -q '^schema: tripline.baseline/v1' /var/lib/tripline/baseline.yml || fail "baseline file has no schema line"
echo "baseline persisted under the state directory: ok"

dpkg --purge tripline >"$WORK/purge.log" 2>&1 || fail "dpkg --purge"
[ ! -e /var/lib/tripline ] || fail "purge left /var/lib/tripline"
[ ! -e /usr/bin/tripline ] || fail "purge left /usr/bin/tripline"
echo "PACKAGE TEST PASSED"
