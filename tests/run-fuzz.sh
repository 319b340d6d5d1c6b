#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for a bounded time, starting from its committed
# seed corpus (fuzz/corpus/<target>/: real-form inputs, e.g. an OpenRouter SSE stream and
# an OTLP webhook body from ../shared/specs/openrouter-api.md). Fails on the first crash,
# panic or broken invariant, and leaves the input in fuzz/artifacts/<target>/: turn it
# into a #[test] in the owning crate, then fix.
#   tests/run-fuzz.sh [TARGET...]     (default: every target in fuzz/Cargo.toml)
# Env: FUZZ_SECONDS (60) per target.
#
# Why RUSTC_BOOTSTRAP=1: cargo-fuzz builds with nightly-only flags (-Zsanitizer=address,
# -Cpasses=sancov-module options, --cfg fuzzing with -Z flags to cargo). This machine and
# CI have only the stable toolchain and none can be downloaded, so we tell stable rustc
# to accept them. The sanitizer runtimes ship with stable's rust-std for
# x86_64-unknown-linux-gnu, so nothing else is missing. The flag is set here, for the
# fuzz build only; the workspace's own builds never see it.
#
# The fuzz build has its own target dir ($HOME/.cache/mai-fuzz-target-<checkout>; override
# with MAI_FUZZ_TARGET_DIR): other RUSTFLAGS
# (sanitizer, coverage) in the main target dir would rebuild every dependency there and
# again on the next normal build. fuzz/ is its own Cargo workspace (root Cargo.toml
# excludes it) with its own lock, kept in step with the main one: checked --locked below.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
export RUSTC_BOOTSTRAP=1
# One per checkout, like the main target dir: cargo would otherwise link another
# checkout's workspace crates built from the same relative paths.
export CARGO_TARGET_DIR="${MAI_FUZZ_TARGET_DIR:-$HOME/.cache/mai-fuzz-target-$(printf '%s' "${MAI_ROOT#/}" | tr -c 'A-Za-z0-9._-' '-')}"
seconds="${FUZZ_SECONDS:-60}"

command -v cargo-fuzz >/dev/null 2>&1 || scripts/setup.sh fuzz

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^mai-fuzz$')
fi

# The lock must already hold every dependency (what --locked means for the workspace).
cargo metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null

# One build of every target (one cargo invocation, one feature set). Release with debug
# assertions and overflow checks, AddressSanitizer (cargo-fuzz defaults); 16 codegen units
# so that a fresh CI machine compiles the dependencies in minutes.
build_flags=(--codegen-units 16)
nice cargo fuzz build "${build_flags[@]}"

status=0
for t in "${targets[@]}"; do
  corpus="fuzz/corpus/$t"
  [ -d "$corpus" ] || { echo "run-fuzz: no seed corpus $corpus" >&2; exit 1; }
  # New inputs go to a scratch corpus dir (not committed), seeds are read only.
  work="$CARGO_TARGET_DIR/fuzz-corpus/$t"
  mkdir -p "$work" "fuzz/artifacts/$t"
  echo "run-fuzz: $t for ${seconds}s (seeds: $(ls "$corpus" | wc -l))"
  log="$(mktemp)"
  if nice cargo fuzz run "${build_flags[@]}" "$t" "$work" "$corpus" -- \
      -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 >"$log" 2>&1; then
    # The last status line: total executions, their rate, coverage.
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    echo "run-fuzz: $t ok: ${execs:-?} runs, ${rate:-?} exec/s, ${cov:-cov: ?}"
  else
    status=1
    echo "run-fuzz: $t FAILED; the log's end:" >&2
    tail -40 "$log" >&2
    echo "run-fuzz: crashing input in fuzz/artifacts/$t/ (reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run $t fuzz/artifacts/$t/<file>)" >&2
  fi
  rm -f "$log"
done
exit $status
