#!/usr/bin/env bash
# Console UI tests: type check, Vitest unit tests, the production build, and page tests
# of the app in headless Chromium (Debian's /usr/bin/chromium through playwright-core,
# Tauri's mockIPC). The Tauri command tests (src-tauri/tests, tauri's mock runtime) are
# Rust tests: `cargo test --workspace` runs them. Exits non-zero on any failure.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
. "$ROOT/scripts/env.sh"
"$ROOT/scripts/setup.sh"
cd "$ROOT/ui"
npm run check
npm test
mai_build_ui
npm run test:page
echo "run-ui-tests: all passed (screenshots in test-output/ui)"
