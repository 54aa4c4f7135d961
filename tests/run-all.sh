#!/usr/bin/env bash
# Runs every test: formatting and lints, unit and kernel tests (root), and the suites below.
# Installs what it needs first (idempotent). Used by CI (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TERM_COLOR=never
bash scripts/install-deps.sh --test

step() { printf '\n=== %s\n' "$*"; }

step "format"
cargo fmt --all --check

step "clippy (userspace)"
cargo clippy --all-targets -- -D warnings

step "clippy (eBPF crate, bpfel-unknown-none)"
(cd exporter-ebpf && cargo +nightly clippy --release --target bpfel-unknown-none -Z build-std=core -- -D warnings)

step "alert rules (promtool check/test, amtool), runbook anchors"
bash tests/alert_rules_check.sh

step "dashboards (offline: structure, datasource variables, promtool parse)"
python3 tests/dashboards_check.py

step "unit, decode, replay and kernel tests (cargo test)"
# Kernel tests each start their own exporter; run them one at a time on 2 cores.
cargo test -- --test-threads=2

step "stack test (real Prometheus + Alertmanager, real kernel, game day)"
bash tests/stack/run.sh
