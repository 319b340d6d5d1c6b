#!/usr/bin/env bash
# Runs all the tests of mAI Fleet: formatting, lints, Rust unit/integration/property
# tests (with a real Secret Service and a real Docker engine), the UI tests, and the
# end-to-end scripts. Installs what it needs first (scripts/setup.sh, idempotent).
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mai-target}"
export CARGO_TERM_COLOR=never
# Dependencies stay compiled between runs in the target dir; incremental caches of the
# workspace crates only make it grow (26 GB after a day of runs filled a shared disk).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

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

stage "a real client library (openai, PyPI) against the OpenRouter simulator"
venv="$HOME/.cache/mai-venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c 'import openai' 2>/dev/null || "$venv/bin/pip" install --quiet openai
cargo build -p mai-sim --locked --quiet
"$venv/bin/python" crates/mai-sim/tests/openrouter_openai_client.py "$CARGO_TARGET_DIR/debug/mai-sim"

stage "keychain against a real Secret Service: unlocked, locked, absent"
tests/run-keyring-tests.sh

stage "console UI: svelte-check, Vitest, page tests in headless Chromium (mockIPC), Tauri command tests"
tests/run-ui-tests.sh

stage "end to end: real tracker containers, the real console over WebDriver under Xvfb, Docker over SSH"
tests/run-e2e.sh

echo
echo "test.sh: all stages passed"
