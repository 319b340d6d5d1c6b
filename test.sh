#!/usr/bin/env bash
# Runs all the tests of mAI Fleet: formatting, lints, Rust unit/integration/property
# tests (with a real Secret Service and a real Docker engine), the UI tests, and the
# end-to-end scripts. Installs what it needs first (scripts/setup.sh, idempotent).
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mai-target}"
export CARGO_TERM_COLOR=never

stage() { printf '\n=== %s ===\n' "$*"; }

stage setup
scripts/setup.sh
scripts/ensure-docker.sh

stage "cargo fmt --check"
cargo fmt --all --check

stage "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

stage "cargo test (real gnome-keyring Secret Service, real Docker engine)"
dbus-run-session -- scripts/with-keyring.sh cargo test --workspace --locked
