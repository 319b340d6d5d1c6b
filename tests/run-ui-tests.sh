#!/usr/bin/env bash
# Console UI tests: type check, Vitest unit tests, page tests of the built UI in headless
# Chromium (Debian's /usr/bin/chromium through playwright-core, Tauri's mockIPC), and the
# Tauri command tests on tauri's mock runtime. Idempotent; exits non-zero on any failure.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mai-target}"
if ! command -v npm >/dev/null 2>&1 || [ ! -x /usr/bin/chromium ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq nodejs npm chromium >/dev/null
fi
cd "$ROOT/ui"
[ -d node_modules ] || npm install --no-audit --no-fund
npm run check
npm test
npm run build
npm run test:page
cd "$ROOT"
cargo test -p mai-console --features test
echo "run-ui-tests: all passed (screenshots in test-output/ui)"
