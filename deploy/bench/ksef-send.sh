#!/usr/bin/env bash
# 200 invoices of a month through Ops::ksef_send to the KSeF simulator with 100 ms latency
# on every KSeF call (crates/mai-ops/benches/ksef_send.rs); prints the wall time and fails
# over 60 s. KSEF_BENCH_INVOICES and KSEF_BENCH_LATENCY_MS change the load.
# Built with the test profile: the time is KSeF round trips and the client's pacing, not
# CPU, and the bench profile's fat-LTO build of the workspace takes far longer than the run.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
. "$ROOT/scripts/env.sh"
cd "$ROOT"
cargo test -q -p mai-ops --locked --bench ksef_send -- --nocapture
