#!/usr/bin/env bash
# The console's own footprint (issue 14): the RELEASE console with 100 clients and 12
# months of cached events (730,000 events, filled by crates/mai-ops/benches/footprint.rs;
# their trackers are gone, so the fleet shows last good data from the cache, as after a
# restart while hosts are down). Per run, under Xvfb:
#   cold start   process start -> the fleet table painted with its 100 rows: the app's
#                own mark (MAI_CONSOLE_MARKS=1 prints `console_first_paint rows= ms=`,
#                ms since the kernel started the process, sent by the UI after the paint)
#   memory       RSS and PSS (shared pages split between the processes sharing them) of
#                the app and every process it started (WebKitWebProcess,
#                WebKitNetworkProcess), right after the first paint and after the fleet
#                view's REFRESHES-th refresh (one every 30 s)
# and prints min / median / max over RUNS runs. A benchmark: figures, no pass or fail.
#
#   deploy/bench/console-footprint.sh                 # 5 runs; builds the UI and the console
#   RUNS=3 REFRESHES=2 NO_BUILD=1 deploy/bench/console-footprint.sh
#   FOOTPRINT_DIR=/tmp/fp deploy/bench/console-footprint.sh   # fill once, keep, reuse
#   APP=/path/to/mai-console ...                      # measure another build
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
. "$ROOT/scripts/env.sh"

if [ "${1:-}" = "--inside" ]; then
  # Under dbus-run-session and xvfb-run: the runs themselves.
  descendants() { # the pid and every process below it
    local p=$1 c
    echo "$p"
    for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do descendants "$c"; done
  }
  memory() { # prints "rss_kib pss_kib" summed over the app's process tree
    local rss=0 pss=0 p r s
    for p in $(descendants "$1"); do
      r=$(awk '/^VmRSS:/{print $2}' /proc/"$p"/status 2>/dev/null || true)
      s=$(awk '/^Pss:/{print $2}' /proc/"$p"/smaps_rollup 2>/dev/null || true)
      rss=$((rss + ${r:-0})); pss=$((pss + ${s:-0}))
    done
    echo "$rss $pss"
  }
  wait_for() { # wait_for LOG PATTERN SECONDS: polls the app's output for a line
    local deadline=$((SECONDS + $3))
    until grep -q -- "$2" "$1"; do
      if [ $SECONDS -ge "$deadline" ] || ! kill -0 "$P" 2>/dev/null; then
        echo "console-footprint: no '$2' within $3 s; the app said:" >&2
        tail -n 20 "$1" >&2
        return 1
      fi
      sleep 0.05
    done
  }
  OUT="$RESULTS"
  for run in $(seq 1 "$RUNS"); do
    LOG="$(mktemp)"
    MAI_CONSOLE_MARKS=1 FAKE_TRACKER_TOKEN=bench-token FAKE_TRACKER_READ_TOKEN=read-bench-token \
      NO_AT_BRIDGE=1 "$APP" --fleet "$DIR/fleet.toml" >"$LOG" 2>&1 &
    P=$!
    wait_for "$LOG" console_first_paint 60
    ms=$(sed -n 's/^console_first_paint rows=\([0-9]*\) ms=\([0-9]*\)$/\1 \2/p' "$LOG" | head -n1)
    read -r rows ms <<<"$ms"
    [ "$rows" = 100 ] || echo "console-footprint: first paint had $rows rows, not 100" >&2
    sleep 1 # a benchmark's settling time before a sample, not synchronisation
    read -r rss1 pss1 < <(memory "$P")
    # n=1 is the view's first load; its refreshes follow, one every 30 s.
    wait_for "$LOG" "console_refresh n=$((REFRESHES + 1)) " $((30 * REFRESHES + 30))
    sleep 1
    read -r rss2 pss2 < <(memory "$P")
    printf 'console-footprint: run %d: first paint %5d ms; after it RSS %4d MiB PSS %4d MiB; after %d refreshes RSS %4d MiB PSS %4d MiB\n' \
      "$run" "$ms" $((rss1 / 1024)) $((pss1 / 1024)) "$REFRESHES" $((rss2 / 1024)) $((pss2 / 1024))
    echo "$ms $((rss1 / 1024)) $((pss1 / 1024)) $((rss2 / 1024)) $((pss2 / 1024))" >>"$OUT"
    if [ -n "${VERBOSE:-}" ]; then
      # where the start went: main, window created, first IPC, fleet opened, first overview
      sed -n 's/^console_mark \([a-z_]*\) ms=\([0-9]*\)$/\1 \2/p; s/^console_refresh n=1 rows=[0-9]* ms=\([0-9]*\)$/first_overview \1/p' "$LOG" |
        awk '{ printf "  %s %s ms", $1, $2 } END { print "" }'
      for p in $(descendants "$P"); do
        printf '  %-22s RSS %4d MiB PSS %4d MiB\n' "$(cat /proc/"$p"/comm)" \
          $(($(awk '/^VmRSS:/{print $2}' /proc/"$p"/status) / 1024)) \
          $(($(awk '/^Pss:/{print $2}' /proc/"$p"/smaps_rollup) / 1024))
      done
    fi
    kill "$P"
    wait "$P" 2>/dev/null || true
    rm -f "$LOG"
  done
  exit 0
fi

"$ROOT/scripts/setup.sh"
export RUNS="${RUNS:-5}" REFRESHES="${REFRESHES:-3}"
export APP="${APP:-$CARGO_TARGET_DIR/release/mai-console}"
if [ -z "${NO_BUILD:-}" ]; then
  mai_build_ui
  (cd "$ROOT" && cargo build --release -p mai-console --locked)
fi
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
# The bench writes the fleet file (its data_dir names the folder) into a new folder
# .tmpXXXX under FOOTPRINT_KEEP_DIR; a kept one is found there again.
kept() { ls -d "$1"/.tmp*/fleet.toml 2>/dev/null | head -n1 | xargs -r dirname; }
if [ -n "${FOOTPRINT_DIR:-}" ] && [ -f "$FOOTPRINT_DIR/fleet.toml" ]; then
  DIR="$FOOTPRINT_DIR"
elif [ -n "${FOOTPRINT_DIR:-}" ] && [ -n "$(kept "$FOOTPRINT_DIR")" ]; then
  DIR="$(kept "$FOOTPRINT_DIR")"
else
  KEEP="${FOOTPRINT_DIR:-$TMP/cache}"
  mkdir -p "$KEEP"
  # The same build as every test stage (scripts/env.sh), so nothing compiles twice.
  (cd "$ROOT" && FOOTPRINT_KEEP_DIR="$KEEP" cargo bench -q --workspace --locked --profile dev --bench footprint | grep footprint)
  DIR="$(kept "$KEEP")"
fi
export DIR RESULTS="$TMP/results"
: >"$RESULTS"
echo "console-footprint: $APP, $RUNS runs, cache $(du -m "$DIR/console-cache.sqlite" | cut -f1) MiB"
dbus-run-session -- xvfb-run -a -s "-screen 0 1280x800x24" "$0" --inside
# min / median / max of each column
awk '{ for (i = 1; i <= NF; i++) v[i, NR] = $i } END {
  split("first paint (ms)|RSS after first paint (MiB)|PSS after first paint (MiB)|RSS after refreshes (MiB)|PSS after refreshes (MiB)", name, "|")
  for (i = 1; i <= 5; i++) {
    n = 0; for (r = 1; r <= NR; r++) a[++n] = v[i, r]
    for (x = 1; x <= n; x++) for (y = x + 1; y <= n; y++) if (a[y] < a[x]) { t = a[x]; a[x] = a[y]; a[y] = t }
    med = (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    printf "console-footprint: %-28s min %6s  median %6s  max %6s\n", name[i], a[1], med, a[n]
  }
}' "$RESULTS"
