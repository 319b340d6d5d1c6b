#!/usr/bin/env bash
# Runs all the tests of mAI Fleet: formatting, lints, Rust unit/integration/property
# tests (with a real Secret Service and a real Docker engine), the UI tests, and the
# end-to-end scripts. Installs what it needs first (scripts/setup.sh, idempotent).
# Where each kind of test lives and what it needs: ARCHITECTURE.md, "Testing".
set -euo pipefail
cd "$(dirname "$0")"
. scripts/env.sh   # CARGO_TARGET_DIR, CARGO_INCREMENTAL, MAI_VENV, mai_build, mai_build_ui
export CARGO_TERM_COLOR=never

# Each stage's wall time and CPU time (user+sys of everything it ran), summed up at exit:
# on a shared 2-core machine the CPU figure is the one that other builds do not inflate.
times_file="$(mktemp)"; summary=""; cur=""; t_wall=0; t_cpu=0
cpu_seconds() { awk 'NR==2 { split($1,u,"m"); split($2,s,"m"); printf "%d", u[1]*60+u[2]+s[1]*60+s[2] }' "$times_file"; }
stage_done() {
  [ -n "$cur" ] || return 0
  times >"$times_file"   # in this shell: a subshell would not count what we ran
  summary+="$(printf '%5ds %5ds  %s' $((SECONDS - t_wall)) $(($(cpu_seconds) - t_cpu)) "$cur")"$'\n'
  cur=""
}
stage() {
  stage_done
  cur="$*"; t_wall=$SECONDS; times >"$times_file"; t_cpu=$(cpu_seconds)
  printf '\n=== %s ===\n' "$*"
}
trap 'stage_done; printf "\ntest.sh: wall, CPU per stage (%ds in all)\n%s" "$SECONDS" "$summary"; rm -f "$times_file"' EXIT

stage setup
# With the real chat app (open-webui, about 7 GB, installed once into a cached venv),
# cargo-fuzz and cargo-deny (the stages below).
scripts/setup.sh openwebui fuzz deny
scripts/ensure-docker.sh
# The console embeds ui/dist (src-tauri/build.rs builds it when missing, and watches it):
# build it before any cargo command, so that no cargo command does and the next one
# finds it changed.
mai_build_ui
# The Docker-dependent Rust tests run only when told an engine answers (it does now);
# their images are built with the image-test profile, not the shipped fat-LTO release.
export MAI_TEST_DOCKER=1 MAI_IMAGE_PROFILE=image-test

stage "cargo fmt --check"
cargo fmt --all --check

stage "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

stage "supply chain: cargo deny (licenses, bans, sources; advisories when the DB is reachable)"
tests/run-deny.sh

# One build for every stage below: the whole workspace with its tests, with one feature
# set (scripts/env.sh). Later stages only run what this built.
stage "build: the workspace with its tests"
mai_build

stage "cargo test (real gnome-keyring Secret Service, real Docker engine)"
dbus-run-session -- scripts/with-keyring.sh cargo test --workspace --locked

stage "a real client library (openai, PyPI) against the OpenRouter simulator, and through a tracker"
"$MAI_VENV/bin/python" crates/mai-sim/tests/openrouter_openai_client.py "$CARGO_TARGET_DIR/debug/mai-sim"
"$MAI_VENV/bin/python" crates/mai-tracker/tests/openai_client_through_tracker.py "$CARGO_TARGET_DIR/debug/mai-sim" "$CARGO_TARGET_DIR/debug/mai-tracker"

stage "keychain against a real Secret Service: unlocked, locked, absent"
tests/run-keyring-tests.sh

stage "console UI: svelte-check, Vitest, page tests in headless Chromium (mockIPC)"
tests/run-ui-tests.sh

stage "README commands, exactly as written, against the demo fleet without the console"
tests/readme-commands.sh

stage "end to end: the real Open WebUI in front of a real tracker (plain and signed identity)"
tests/run-openwebui-e2e.sh

stage "end to end: real tracker containers, the real console over WebDriver under Xvfb, Docker over SSH"
tests/run-e2e.sh

stage "fuzz: each cargo-fuzz target for ${FUZZ_SECONDS:-60} s from its seed corpus (tests/run-fuzz.sh)"
tests/run-fuzz.sh

echo
echo "test.sh: all stages passed"
