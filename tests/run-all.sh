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

step "kubernetes manifests and Containerfile (offline: generated, kubernetes-validate strict, CRDs, promtool, check-config, BuildKit parser, ldd)"
cargo build --bin tripline
python3 tests/kubernetes_check.py target/debug/tripline
python3 tests/container_check.py target/debug/tripline

step "--version and logs (revision, json lines)"
bash tests/cli_check.sh target/debug/tripline

step "Debian package (cargo-deb, dpkg -i, systemd-analyze verify, installed binary to /readyz, purge)"
bash tests/package/run.sh

step "stack test (real Prometheus + Alertmanager, real kernel, game day)"
bash tests/stack/run.sh

step "fleet test (two real Prometheus: remote_write receiver and federation)"
bash tests/fleet/run.sh
