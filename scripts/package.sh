#!/usr/bin/env bash
# Builds the Debian package: target/debian/tripline_<version>-1_<arch>.deb
#   scripts/package.sh            release build (what you ship)
#   scripts/package.sh --dev      reuse the debug build (CI: same files, faster)
# Installs cargo-deb and the eBPF build chain first if missing (scripts/install-deps.sh --package).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
bash scripts/install-deps.sh --package

profile=release
[ "${1:-}" = "--dev" ] && profile=debug
target=${CARGO_TARGET_DIR:-$PWD/target}
if [ "$profile" = release ]; then
  cargo build --release --bin tripline
else
  cargo build --bin tripline
fi
bin="$target/$profile/tripline"

# Generated assets: man page and shell completions, from the same clap definition as --help.
assets="$target/$profile/package"
rm -rf "$assets" && mkdir -p "$assets/man"
"$bin" man --dir "$assets/man"
gzip -9n "$assets"/man/*.1
"$bin" completions bash > "$assets/tripline.bash"
"$bin" completions zsh > "$assets/_tripline"
"$bin" completions fish > "$assets/tripline.fish"

args=(--no-build -p tripline --output "$target/debian/")
[ "$profile" = debug ] && args+=(--profile dev --no-strip)
cargo deb "${args[@]}"
ls -1 "$target"/debian/*.deb
