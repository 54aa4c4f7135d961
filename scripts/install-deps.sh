#!/usr/bin/env bash
# Installs the eBPF build chain and test dependencies. Idempotent: every step checks first.
# Usage: scripts/install-deps.sh [--test|--package]
#   --package  also cargo-deb (scripts/package.sh)
#   --test     also prometheus, alertmanager, protoc, cargo-deb; kubernetes-validate, dockerfile (PyPI)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
export PATH="$HOME/.cargo/bin:$PATH"

want_test=0 want_package=0
[ "${1:-}" = "--test" ] && want_test=1 && want_package=1
[ "${1:-}" = "--package" ] && want_package=1

apt_pkgs=()
need_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed" || apt_pkgs+=("$1"); }
need_pkg llvm-22-dev
need_pkg libpolly-22-dev
need_pkg pkg-config
need_pkg libzstd-dev
need_pkg zlib1g-dev
if [ "$want_test" = 1 ]; then
  need_pkg prometheus
  need_pkg prometheus-alertmanager
  need_pkg protobuf-compiler
  need_pkg curl
  need_pkg util-linux   # setpriv: the non-root capability test
fi
if [ "${#apt_pkgs[@]}" -gt 0 ]; then
  echo "install-deps: apt-get install ${apt_pkgs[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}" >/dev/null
fi

if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
if ! rustup component list --toolchain nightly --installed 2>/dev/null | grep -q '^rust-src'; then
  rustup component add rust-src --toolchain nightly
fi

if ! command -v bpf-linker >/dev/null 2>&1; then
  echo "install-deps: building bpf-linker (takes ~5 minutes)"
  LLVM_PREFIX=/usr/lib/llvm-22 cargo install --locked bpf-linker --no-default-features --features llvm-22
fi
# cargo-deb 3.8.0 builds with rustc 1.85+ (we have 1.95).
if [ "$want_package" = 1 ] && ! cargo deb --version 2>/dev/null | grep -q '3\.8\.0'; then
  echo "install-deps: building cargo-deb (takes ~4 minutes)"
  cargo install cargo-deb --version 3.8.0 --locked
fi
if [ "$want_test" = 1 ] && ! python3 -c 'import kubernetes_validate, dockerfile' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate==1.37.0 dockerfile==3.4.0
fi
echo "install-deps: ok"
