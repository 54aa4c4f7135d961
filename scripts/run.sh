#!/usr/bin/env bash
# Builds tripline (probes embedded) and runs it with the embedded defaults on :9799.
# Installs the build chain first if missing (idempotent). Extra arguments go to tripline.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
bash scripts/install-deps.sh
cargo build --release --bin tripline
exec ./target/release/tripline "$@"
