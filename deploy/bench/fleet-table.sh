#!/usr/bin/env bash
# The fleet table with 200 clients stays responsive (issue 14): builds the UI's page-test
# harness and times, in headless Chromium, the first render and sort / search / filter
# to the next painted frame (ui/tests/bench/fleet-table.mjs). Figures, no pass or fail.
#   deploy/bench/fleet-table.sh
#   RUNS=30 deploy/bench/fleet-table.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT/ui"
npm run --silent build:harness >/dev/null
node tests/bench/fleet-table.mjs
