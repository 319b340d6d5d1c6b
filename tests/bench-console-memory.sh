#!/usr/bin/env bash
# Memory of the desktop console with 100 clients and 12 months of cached events:
# fills a console cache with the footprint bench (730,000 events), opens the real app on
# it under Xvfb (trackers unreachable: the fleet shows last-good data from the cache),
# waits for it to settle and prints the RSS of the app and its WebKit processes.
# A benchmark, not a test: prints figures, exits 0 unless something fails to start.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
. "$ROOT/scripts/env.sh"
"$ROOT/scripts/setup.sh"
KEEP="$(mktemp -d)"
trap 'rm -rf "$KEEP"' EXIT
(cd "$ROOT" && FOOTPRINT_KEEP_DIR="$KEEP" cargo bench -q -p mai-ops --bench footprint | grep footprint)
mai_build_ui
mai_build --quiet
DIR="$(ls -d "$KEEP"/.tmp*)"
export DIR APP="$CARGO_TARGET_DIR/debug/mai-console" SETTLE="${SETTLE:-20}"
dbus-run-session -- xvfb-run -a -s "-screen 0 1280x800x24" bash -c '
  FAKE_TRACKER_TOKEN=bench-token NO_AT_BRIDGE=1 "$APP" --fleet "$DIR/fleet.toml" >/dev/null 2>&1 &
  P=$!
  sleep "$SETTLE"   # a benchmark settling period, not test synchronisation
  total=0
  for pid in $P $(pgrep -f WebKitWebProcess) $(pgrep -f WebKitNetworkProcess); do
    kb=$(awk "/VmRSS/{print \$2}" /proc/$pid/status 2>/dev/null || true)
    [ -n "$kb" ] || continue
    printf "console-memory: %-22s %6d MiB\n" "$(cat /proc/$pid/comm)" $((kb / 1024))
    total=$((total + kb))
  done
  printf "console-memory: total                  %6d MiB (debug build, 100 clients, 12 months cached)\n" $((total / 1024))
  kill $P
' 2>/dev/null
