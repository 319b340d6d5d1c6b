#!/usr/bin/env bash
# First run: opens the operator console on a live demo fleet (simulated OpenRouter and
# NBP, real trackers in Docker containers or processes, synthetic chat traffic from
# several users on several models). Numbers move within a minute. Ctrl-C stops it all.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")" && pwd)"
export DEMO_DIR="${DEMO_DIR:-/tmp/mai-demo}"
. "$ROOT/scripts/env.sh"   # CARGO_TARGET_DIR, mai_build_ui
# A fresh machine: install what is missing (idempotent), start a Docker engine if one
# can be had (the demo falls back to plain processes otherwise), build the UI.
"$ROOT/scripts/setup.sh"
"$ROOT/scripts/ensure-docker.sh" || echo "demo: no Docker engine; trackers run as processes"
mai_build_ui
FLEET_SH="$ROOT/crates/mai-ops/scripts/demo-fleet.sh"
cleanup() { kill "${TRAFFIC_PID:-}" 2>/dev/null || true; "$FLEET_SH" down; }
trap cleanup EXIT INT TERM
"$FLEET_SH" up
export MAI_DEMO_TRACKER_TOKEN="$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["admin_token"])' "$DEMO_DIR/state.json")"
python3 "$ROOT/crates/mai-ops/scripts/traffic.py" "$DEMO_DIR/state.json" --rate 3 >"$DEMO_DIR/traffic.log" 2>&1 &
TRAFFIC_PID=$!
echo "demo: traffic running (log: $DEMO_DIR/traffic.log); fleet file: $DEMO_DIR/fleet.toml"
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ -z "${DEMO_HEADLESS:-}" ]; then
  "$CARGO_TARGET_DIR/debug/mai-console" --fleet "$DEMO_DIR/fleet.toml"
else
  echo "demo: no display; showing \`maictl status\` every 10 s instead (Ctrl-C to stop)"
  while true; do
    "$CARGO_TARGET_DIR/debug/maictl" --fleet "$DEMO_DIR/fleet.toml" status || true
    sleep 10
  done
fi
