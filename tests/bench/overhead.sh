#!/usr/bin/env bash
# Kernel-side overhead, four ways on the same workloads, interleaved: bare / tripline / a bpftrace program
# that only counts on the same tracepoints / auditd with exec+network rules and an /etc watch. Each round
# runs every configuration once (in order), ROUNDS rounds (default 3); the table shows the median µs per
# operation and the ratio to bare. With HOG=1 (or HOG=both) a CPU hog (one busy loop per CPU) runs during
# the measurements. `tripline-tp` is tripline with `sensor.syscall_hooks: tracepoints` (one `syscalls:`
# tracepoint per hooked syscall instead of the sys_enter/sys_exit dispatcher); `tripline-raw` is tripline
# with `syscall_hooks: raw_dispatch` (the dispatcher's exit on the raw tracepoint, not the BTF one); `tripline-b` is the
# build at TRIPLINE_B (another commit's binary: interleaved A/B of two builds). `bpftrace` counts on the
# per-syscall `syscalls:` tracepoints (the hooks of `tripline-tp`); `bpftrace-raw` counts on the
# `raw_syscalls:` sys_enter/sys_exit tracepoints that tripline's default dispatcher hooks (plus the same
# sched and sock tracepoints). bpftrace 0.17 has no raw tracepoint probes, so `bpftrace-raw` attaches
# them as perf-event tracepoints, which cost more per call than the raw tracepoint links tripline uses.
#   EXECS=3000 CONNECTS=20000 FILES=20000 SYSCALLS=2000000 ROUNDS=3 HOG=0|1|both CONFIGS="bare tripline bpftrace auditd"
# Usage: tests/bench/overhead.sh   (root; installs bpftrace and auditd with apt-get if missing; leaves
# auditd as it found it: stopped/started, rules restored)
set -euo pipefail
cd "$(dirname "$0")/../.."
EXECS=${EXECS:-3000}
CONNECTS=${CONNECTS:-20000}
FILES=${FILES:-20000}
SYSCALLS=${SYSCALLS:-2000000}
ROUNDS=${ROUNDS:-3}
HOG=${HOG:-both}
CONFIGS=${CONFIGS:-bare tripline bpftrace auditd}
PORT=${PORT:-19797}
TRIPLINE=${TRIPLINE:-./target/release/tripline}
W=./target/release/examples/workload
[ -n "${NO_BUILD:-}" ] || cargo build --release --bin tripline --example workload >/dev/null
need=()
command -v bpftrace >/dev/null || need+=(bpftrace)
command -v auditctl >/dev/null || need+=(auditd)
if [ ${#need[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
work=$(mktemp -d /tmp/tripline-overhead.XXXXXX)
WATCHED=/etc/tripline-overhead.tmp

# auditd: remember its state and rules, restore on exit.
audit_enabled_before=$(auditctl -s 2>/dev/null | awk '/^enabled/ {print $2}')
audit_daemon_before=$(auditctl -s 2>/dev/null | awk '/^pid/ {print $2}')
auditctl -l >"$work/audit.rules.before" 2>/dev/null || true
started_auditd=
restore() {
  set +e
  [ -n "${cfg_pid:-}" ] && kill "$cfg_pid" 2>/dev/null && wait "$cfg_pid" 2>/dev/null
  [ -n "${hog_pids:-}" ] && kill $hog_pids 2>/dev/null
  auditctl -D >/dev/null 2>&1
  if grep -q '^-' "$work/audit.rules.before" 2>/dev/null; then
    while read -r rule; do auditctl $rule >/dev/null 2>&1; done <"$work/audit.rules.before"
  fi
  # Only the daemon this script started is stopped (by its pid file); the enabled flag goes back.
  if [ -n "$started_auditd" ] && [ "$started_auditd" != 0 ]; then
    kill "$started_auditd" 2>/dev/null
  fi
  [ -n "$audit_enabled_before" ] && auditctl -e "$audit_enabled_before" >/dev/null 2>&1
  rm -f "$WATCHED"
  rm -rf "$work"
}
trap restore EXIT

cat >"$work/count.bt" <<'BT'
tracepoint:sched:sched_process_exec, tracepoint:sched:sched_process_fork, tracepoint:sched:sched_process_exit,
tracepoint:sock:inet_sock_set_state,
tracepoint:syscalls:sys_enter_connect, tracepoint:syscalls:sys_exit_connect,
tracepoint:syscalls:sys_exit_accept, tracepoint:syscalls:sys_exit_accept4,
tracepoint:syscalls:sys_enter_openat, tracepoint:syscalls:sys_exit_openat,
tracepoint:syscalls:sys_enter_unlinkat, tracepoint:syscalls:sys_exit_unlinkat,
tracepoint:syscalls:sys_enter_renameat2, tracepoint:syscalls:sys_exit_renameat2
{ @[probe] = count(); }
BT
cat >"$work/count-raw.bt" <<'BT'
tracepoint:sched:sched_process_exec, tracepoint:sched:sched_process_fork, tracepoint:sched:sched_process_exit,
tracepoint:sock:inet_sock_set_state,
tracepoint:raw_syscalls:sys_enter, tracepoint:raw_syscalls:sys_exit
{ @[probe] = count(); }
BT

start() {
  cfg_pid=
  case $1 in
    bare) ;;
    tripline|tripline-tp|tripline-raw|tripline-b)
      bin=$TRIPLINE
      [ "$1" = tripline-b ] && bin=${TRIPLINE_B:?TRIPLINE_B must name the other build}
      conf=()
      if [ "$1" = tripline-tp ] || [ "$1" = tripline-raw ]; then
        hooks=tracepoints
        [ "$1" = tripline-raw ] && hooks=raw_dispatch
        printf 'sensor:\n  syscall_hooks: %s\n' "$hooks" >"$work/hooks.yml"
        conf=(--config.file "$work/hooks.yml")
      fi
      "$bin" "${conf[@]}" --web.listen-address "127.0.0.1:$PORT" 2>"$work/tripline.log" &
      cfg_pid=$!
      for _ in $(seq 150); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done ;;
    bpftrace|bpftrace-raw)
      script=$work/count.bt
      [ "$1" = bpftrace-raw ] && script=$work/count-raw.bt
      bpftrace "$script" >"$work/bpftrace.out" 2>&1 &
      cfg_pid=$!
      for _ in $(seq 100); do grep -q Attaching "$work/bpftrace.out" 2>/dev/null && break; sleep 0.2; done
      sleep 1 ;;
    auditd)
      auditctl -D >/dev/null
      auditctl -a always,exit -F arch=b64 -S execve,execveat -k tl_exec >/dev/null
      auditctl -a always,exit -F arch=b64 -S connect,accept,accept4 -k tl_net >/dev/null
      auditctl -w /etc -p wa -k tl_etc >/dev/null
      auditctl -e 1 >/dev/null ;;
  esac
}
stop() {
  case $1 in
    auditd) auditctl -D >/dev/null ;;
    *) if [ -n "$cfg_pid" ]; then
         # INT first (bpftrace prints its counts); TERM if it is still there after 5 s.
         kill -INT "$cfg_pid" 2>/dev/null || true
         for _ in $(seq 50); do kill -0 "$cfg_pid" 2>/dev/null || break; sleep 0.1; done
         kill -TERM "$cfg_pid" 2>/dev/null || true
         wait "$cfg_pid" 2>/dev/null || true
       fi ;;
  esac
  cfg_pid=
}

measure() { # config hog -> lines "config hog workload us_per_op"
  local c=$1 h=$2
  start "$c"
  echo "$c $h fork+exec $("$W" exec "$EXECS" | awk -v n="$EXECS" '{print $1/n*1e6}')"
  echo "$c $h connect+accept $("$W" tcp "$CONNECTS" | awk -v n="$CONNECTS" '{print $1/n*1e6}')"
  echo "$c $h open/write/close(unwatched) $(WORKLOAD_FILE=/dev/shm/tripline-overhead.tmp "$W" file "$FILES" | awk -v n="$FILES" '{print $1/n*1e6}')"
  echo "$c $h open/write/close(watched) $(WORKLOAD_FILE=$WATCHED "$W" file "$FILES" | awk -v n="$FILES" '{print $1/n*1e6}')"
  echo "$c $h getppid(unhooked) $("$W" syscall "$SYSCALLS" | awk -v n="$SYSCALLS" '{print $1/n*1e6}')"
  stop "$c"
}

# The audit daemon (when none runs) is started here, in the main shell, so the exit trap knows to stop it.
if [[ " $CONFIGS " == *" auditd "* ]] && [ "${audit_daemon_before:-0}" = 0 ]; then
  /sbin/auditd && sleep 1 && started_auditd=$(auditctl -s | awk '/^pid/ {print $2}')
fi
case $HOG in both) hogs="0 1" ;; *) hogs=$HOG ;; esac
: >"$work/results"
for h in $hogs; do
  hog_pids=
  if [ "$h" = 1 ]; then
    for _ in $(seq "$(nproc)"); do (while :; do :; done) & hog_pids="$hog_pids $!"; done
  fi
  for r in $(seq "$ROUNDS"); do
    for c in $CONFIGS; do measure "$c" "$h" | tee -a "$work/results" >&2; done
  done
  [ -n "$hog_pids" ] && kill $hog_pids 2>/dev/null; hog_pids=
done

python3 - "$work/results" "$CONFIGS" <<'PY'
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    c, h, w, v = line.split()
    rows[(h, w, c)].append(float(v))
configs = sys.argv[2].split()
for h in sorted({k[0] for k in rows}):
    print(f"\n{'CPU hog running' if h == '1' else 'quiet'}: median µs/op (ratio to bare), {len(rows[next(iter(rows))])} rounds")
    print("| workload | " + " | ".join(configs) + " |")
    print("|---|" + "---|" * len(configs))
    for w in ["fork+exec", "connect+accept", "open/write/close(unwatched)", "open/write/close(watched)", "getppid(unhooked)"]:
        base = statistics.median(rows[(h, w, "bare")]) if rows[(h, w, "bare")] else None
        cells = []
        for c in configs:
            v = rows[(h, w, c)]
            if not v:
                cells.append("-"); continue
            m = statistics.median(v)
            cells.append(f"{m:.2f}" + (f" ({m/base:.2f}x, {m-base:+.2f})" if base and c != "bare" else ""))
        print(f"| {w} | " + " | ".join(cells) + " |")
PY
