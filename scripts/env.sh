# Sourced (not run) by every script of this repository: the build defaults, in one place.
#   . "$ROOT/scripts/env.sh"
# Defines MAI_ROOT, CARGO_TARGET_DIR, CARGO_INCREMENTAL, MAI_VENV and two helpers:
#   mai_build      compiles the workspace the one way every script does (see below)
#   mai_build_ui   builds ui/dist unless it is already newer than the UI sources

MAI_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export MAI_ROOT

# The Cargo target dir lives outside the clone, so reruns of a clone (CI) build on top
# of earlier runs. One per checkout, named after its path: cargo names a workspace
# crate's artifacts by the crate's path *inside* the workspace and judges them fresh by
# source mtimes, so two checkouts sharing a target dir silently link each other's crates
# (seen: a build of one checkout compiled against another's mai-core). Override with
# CARGO_TARGET_DIR.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mai-target-$(printf '%s' "${MAI_ROOT#/}" | tr -c 'A-Za-z0-9._-' '-')}"
# Dependencies stay compiled between runs in the target dir; incremental caches of the
# workspace crates only make it grow (26 GB after a day of runs filled a shared disk).
# The same value everywhere, or each switch rebuilds the workspace crates.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
# cargo-installed tools (tauri-driver, installed by scripts/setup.sh).
case ":$PATH:" in *":$HOME/.cargo/bin:"*) ;; *) export PATH="$HOME/.cargo/bin:$PATH" ;; esac
# Python venv with the PyPI packages the tests drive (created by scripts/setup.sh).
export MAI_VENV="${MAI_VENV:-$HOME/.cache/mai-venv}"
# The real Open WebUI for the end-to-end test (scripts/setup.sh openwebui), pinned.
export OPENWEBUI_VERSION="${OPENWEBUI_VERSION:-0.12.4}"
export MAI_OPENWEBUI_VENV="${MAI_OPENWEBUI_VENV:-$HOME/.cache/mai-openwebui-$OPENWEBUI_VERSION}"

# Every build of the scripts is this one command: the whole workspace with its test
# targets. Cargo resolves features over the packages and targets of each invocation, so
# `cargo build -p X`, `cargo test -p Y` and `cargo test --workspace` each compile shared
# dependencies with other features, i.e. again. One invocation, one feature set: the
# binaries the scripts run (target/debug/mai-sim, mai-tracker, maictl, mai-console) are
# the ones this builds, and a later `cargo test --workspace` finds everything compiled.
mai_build() {
  (cd "$MAI_ROOT" && cargo test --workspace --locked --no-run "$@")
}

# src-tauri/build.rs watches ui/dist: rebuilding it (new mtimes) recompiles the console.
# So build it only when a UI source is newer than the last build.
mai_build_ui() {
  local ui="$MAI_ROOT/ui"
  if [ -f "$ui/dist/index.html" ] && [ -z "$(find "$ui/src" "$ui/index.html" "$ui"/*.json "$ui"/*.js "$ui"/*.ts \
      -newer "$ui/dist/index.html" -print -quit 2>/dev/null)" ]; then
    return 0
  fi
  (cd "$ui" && npm run build --silent)
}
