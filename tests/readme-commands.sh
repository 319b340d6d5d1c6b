#!/usr/bin/env bash
# Runs every command README.md shows under "Running the pieces" exactly as written, in
# order, in one shell at the root of the repository (so `. scripts/env.sh` and `export`
# carry over, as they do for a reader), and fails on the first one that exits non-zero.
#
# - A server (a command with `--listen ADDR` or `MAI_TRACKER_LISTEN=ADDR`, which a reader
#   leaves running in its own terminal) runs in the background until ADDR accepts
#   connections; it must still be running then, and is stopped at the end.
# - Key commands need a Secret Service: without a D-Bus session this script re-runs
#   itself under `dbus-run-session -- scripts/with-keyring.sh` (a throwaway keyring).
# - The demo fleet runs its trackers in Docker (`maictl logs` reads a container's log):
#   scripts/ensure-docker.sh starts an engine first.
# - It uses the README's fixed paths and ports: /tmp/mai-demo (a demo started by
#   ./demo.sh is stopped), 127.0.0.1:18080, :18081, :18082, :8700 and the demo's 18100-18113.
#
# Commands README.md shows elsewhere, and why they are not run here:
#   ./demo.sh      opens the console window and runs until Ctrl-C. Its pieces are run
#                  here (demo-fleet.sh up, traffic.py, maictl on the demo fleet) and the
#                  console on that fleet by tests/run-e2e.sh (WebDriver under Xvfb).
#   ./test.sh      runs this script.
#   cargo bench …  release builds with fat LTO and minutes of measuring each; they are
#                  run by hand and their figures kept in the crates' READMEs.
#   deploy/build-images.sh  builds the release images; the image tests of `cargo test`
#                  (MAI_TEST_DOCKER=1 in test.sh) build the same images.
#   maictl clients add|check|remove  (section "Onboarding and offboarding a client") need
#                  the images on the host and a management key; the same flow runs in
#                  crates/mai-ops/tests/lifecycle_e2e.rs (cargo test, MAI_TEST_DOCKER=1)
#                  and, through maictl, in deploy/bench/onboard.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

if [ -z "${DBUS_SESSION_BUS_ADDRESS:-}" ]; then
  exec dbus-run-session -- "$ROOT/scripts/with-keyring.sh" "$0" "$@"
fi
"$ROOT/scripts/ensure-docker.sh"

LOGS="$(mktemp -d)"
servers=()
cleanup() {
  local rc=$?
  for pid in "${servers[@]}"; do
    pkill -P "$pid" 2>/dev/null || true
    kill "$pid" 2>/dev/null || true
  done
  # A failure midway leaves the demo fleet up; stop it (idempotent).
  "$ROOT/crates/mai-ops/scripts/demo-fleet.sh" down >/dev/null 2>&1 || true
  [ $rc -eq 0 ] && rm -rf "$LOGS" || echo "readme-commands: logs in $LOGS" >&2
}
trap cleanup EXIT

# The commands: the sh blocks of the section, continuation lines joined, comments and
# blank lines dropped.
commands="$LOGS/commands"
awk '
  /^## / { in_section = ($0 == "## Running the pieces") }
  in_section && /^```sh$/ { in_block = 1; next }
  in_block && /^```$/ { in_block = 0; next }
  in_block {
    if (sub(/\\$/, "")) { acc = acc $0; next }
    line = acc $0; acc = ""
    if (line !~ /^[[:space:]]*(#|$)/) print line
  }
' README.md >"$commands"
n=$(wc -l <"$commands")
[ "$n" -ge 10 ] || { echo "readme-commands: found only $n commands in README.md's \"Running the pieces\"" >&2; exit 1; }

wait_listening() { # addr pid log
  local host=${1%:*} port=${1##*:}
  for _ in $(seq 1 300); do
    kill -0 "$2" 2>/dev/null || { echo "readme-commands: the server exited; its log:" >&2; cat "$3" >&2; return 1; }
    (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null && return 0
    sleep 0.2
  done
  echo "readme-commands: nothing listens on $1 after 60 s; log: $3" >&2
  return 1
}

i=0
while IFS= read -r cmd; do
  i=$((i + 1))
  log="$LOGS/$i.log"
  addr=""
  if [[ $cmd =~ --listen[[:space:]=]+([0-9.]+:[0-9]+) ]] || [[ $cmd =~ MAI_TRACKER_LISTEN=([0-9.]+:[0-9]+) ]]; then
    addr=${BASH_REMATCH[1]}
  fi
  printf '[%d/%d] %s\n' "$i" "$n" "$cmd"
  # A reader's shell has neither -e nor -u.
  set +eu
  if [ -n "$addr" ]; then
    eval "$cmd" </dev/null >"$log" 2>&1 &
    servers+=($!)
    set -eu
    wait_listening "$addr" "$!" "$log"
    continue
  fi
  eval "$cmd" </dev/null >"$log" 2>&1
  rc=$?
  set -eu
  # What the reader would see (long outputs cut), then the verdict.
  head -n 40 "$log" | sed 's/^/    /'
  [ "$(wc -l <"$log")" -le 40 ] || echo "    … ($(wc -l <"$log") lines)"
  if [ $rc -ne 0 ]; then
    echo "readme-commands: README command $i exited $rc: $cmd" >&2
    exit 1
  fi
done <"$commands"
echo "readme-commands: all $n README commands ran as written and exited 0"
