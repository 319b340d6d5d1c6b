#!/usr/bin/env bash
# Supply-chain checks of the workspace's dependency tree with cargo-deny (deny.toml):
# licenses, bans (duplicates, wildcards) and sources (crates.io only) always run, for
# real; advisories (the RustSec database) run when the database can be fetched. It is a
# git repository on GitHub, which some machines (this project's CI among them) cannot
# reach: then this says so loudly and does not count it as a pass.
#   tests/run-deny.sh          MAI_DENY_REQUIRE_ADVISORIES=1 makes an unreachable DB fail;
#                              MAI_ADVISORY_DB=<clone of rustsec/advisory-db> checks offline
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
command -v cargo-deny >/dev/null 2>&1 || scripts/setup.sh deny

# Errors in full; the duplicate-version warnings (Tauri's tree has a few dozen) as a count.
echo "run-deny: licenses, bans, sources"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
if ! cargo deny --locked check --hide-inclusion-graph licenses bans sources >"$out" 2>&1; then
  cat "$out" >&2
  exit 1
fi
grep -E '^(warning|error)' "$out" | grep -v '^warning\[duplicate\]' || true
echo "run-deny: $(grep -c '^warning\[duplicate\]' "$out" || true) crates in two or more versions (cargo deny check bans lists them); $(tail -1 "$out")"

echo "run-deny: advisories"
fetch_log="$(mktemp)"
trap 'rm -f "$out" "$fetch_log"' EXIT
# MAI_ADVISORY_DB: a local clone of the RustSec database, for machines that cannot reach
# GitHub (e.g. one brought by a mirror). cargo-deny has no "database from this path"
# option, so the clone is placed where cargo-deny's failed fetch said it would clone to,
# in a private db-path, and the check runs --offline. Its age is printed: a stale
# snapshot misses newer advisories.
local_db_check() {
  local cfg dbp dest
  dbp="$(mktemp -d)"
  cfg="$dbp/deny.toml"
  sed "s|^db-urls = .*|&\ndb-path = \"$dbp\"|" deny.toml >"$cfg"
  cargo deny --locked --config "$cfg" fetch db >"$fetch_log" 2>&1 || true
  dest="$(sed -n "s/^Cloning into '\(.*\)'.*/\1/p" "$fetch_log" | head -1)"
  [ -n "$dest" ] || { echo "run-deny: cannot tell where cargo-deny keeps its database" >&2; return 1; }
  rm -rf "$dest"
  git clone -q "$MAI_ADVISORY_DB" "$dest"
  echo "run-deny: advisories from the local snapshot $MAI_ADVISORY_DB (last change $(git -C "$dest" log -1 --format=%cs))"
  cargo deny --locked --offline --config "$cfg" check --hide-inclusion-graph advisories
}

if cargo deny --locked fetch db >"$fetch_log" 2>&1; then
  cargo deny --locked check --hide-inclusion-graph advisories
elif [ -n "${MAI_ADVISORY_DB:-}" ]; then
  local_db_check
else
  why="$(grep -m1 '^fatal:' "$fetch_log" || grep -m1 -i 'error' "$fetch_log" || tail -1 "$fetch_log")"
  cat >&2 <<MSG

############################################################################
SKIPPED advisories: the RustSec advisory database could not be fetched
from https://github.com/rustsec/advisory-db:
  ${why:-no detail}
Known vulnerabilities in dependencies were NOT checked on this machine.
Run tests/run-deny.sh where GitHub is reachable, or with
MAI_ADVISORY_DB=<a local clone of rustsec/advisory-db>.
############################################################################

MSG
  if [ "${MAI_DENY_REQUIRE_ADVISORIES:-0}" = 1 ]; then exit 1; fi
fi
