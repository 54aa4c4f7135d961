#!/usr/bin/env bash
# Exporter conventions of the command line, on the real binary (root, real kernel):
# --version names version, git revision, build date and rustc; --log.format=json writes one JSON object
# per line; logfmt lines are key=value without Rust Debug formatting (Some(..), quoted enums) and without
# colour when stderr is not a terminal; bad flags exit non-zero with a clear message.
set -euo pipefail
BIN=${1:-target/debug/tripline}
WORK=$(mktemp -d /tmp/tripline-cli.XXXXXX)
TRIP=
cleanup() { [ -n "$TRIP" ] && kill "$TRIP" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
fail() { echo "CLI CHECK FAILED: $*" >&2; exit 1; }

v=$("$BIN" --version)
grep -Eq '^tripline [0-9]+\.[0-9]+\.[0-9]+$' <<<"$(head -1 <<<"$v")" || fail "--version first line: $v"
grep -Eq '^revision: +[0-9a-f]{7,}(-dirty)?$' <<<"$v" || fail "--version has no git revision: $v"
grep -Eq '^build date: +[0-9]{4}-[0-9]{2}-[0-9]{2}T' <<<"$v" || fail "--version has no build date: $v"
grep -Eq '^rustc: +1\.[0-9]+\.[0-9]+' <<<"$v" || fail "--version has no rustc version: $v"
echo "--version: ok ($(echo "$v" | sed -n 's/^revision: *//p'))"

if "$BIN" --log.format=xml check-config >/dev/null 2>"$WORK/bad.txt"; then fail "--log.format=xml accepted"; fi
grep -q "possible values: logfmt, json" "$WORK/bad.txt" || fail "bad --log.format message: $(cat "$WORK/bad.txt")"

run_until_ready() { # FORMAT LOGFILE
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$BIN" --web.listen-address "127.0.0.1:$port" --log.format "$1" --log.level debug 2>"$2" & TRIP=$!
  local deadline=$((SECONDS + 90))
  until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; do
    kill -0 $TRIP 2>/dev/null || fail "tripline ($1) exited: $(tail -5 "$2")"
    [ $SECONDS -lt $deadline ] || fail "tripline ($1) not ready in 90s"
    sleep 1
  done
  kill -TERM $TRIP; wait $TRIP || fail "tripline ($1) did not exit 0 on SIGTERM"; TRIP=
}
run_until_ready json "$WORK/json.log"
python3 - "$WORK/json.log" <<'PY' || fail "--log.format=json"
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
assert len(lines) > 5, f"only {len(lines)} log lines"
for l in lines:
    o = json.loads(l)
    assert isinstance(o, dict) and {"timestamp", "level", "message", "target"} <= o.keys(), l
    assert "Some(" not in l and "\x1b[" not in l, l
print(f"--log.format=json: {len(lines)} lines, each one JSON object")
PY
run_until_ready logfmt "$WORK/logfmt.log"
python3 - "$WORK/logfmt.log" <<'PY' || fail "--log.format=logfmt"
import re, sys
lines = [l.rstrip("\n") for l in open(sys.argv[1]) if l.strip()]
assert len(lines) > 5, f"only {len(lines)} log lines"
pair = re.compile(r'([A-Za-z0-9_.]+)=("(?:[^"\\]|\\.)*"|\S*)(?: |$)')
for l in lines:
    assert "\x1b[" not in l, f"colour on a non-terminal: {l!r}"
    assert "Some(" not in l and "None" not in l, f"Rust Debug formatting: {l!r}"
    assert l.startswith("ts="), l
    assert "".join(m.group(0) for m in pair.finditer(l)).strip() == l.strip(), f"not key=value: {l!r}"
    assert re.search(r"\blevel=(error|warn|info|debug|trace)\b", l), l
print(f"--log.format=logfmt: {len(lines)} lines, all key=value")
PY
echo "CLI CHECK PASSED"
