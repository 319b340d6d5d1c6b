#!/usr/bin/env bash
# End to end with the real chat app: open-webui (PyPI, pinned in scripts/env.sh) in front
# of a real tracker in front of the OpenRouter simulator, plain and signed (JWT) identity;
# the tracker's by-user, by-task, by-group and by-chat reports against the simulator's
# truth (tests/openwebui_e2e.py says exactly what is checked). Installs the venv once
# (about 7 GB, cached in $MAI_OPENWEBUI_VENV) and builds what it runs.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
. "$ROOT/scripts/env.sh"
"$ROOT/scripts/setup.sh" openwebui
mai_build --quiet
WORK="$(mktemp -d /tmp/mai-openwebui-e2e.XXXXXX)"
keep() { echo "openwebui e2e failed; logs kept in $WORK" >&2; }
trap 'rc=$?; if [ $rc -ne 0 ]; then keep; else rm -rf "$WORK"; fi' EXIT
"$MAI_OPENWEBUI_VENV/bin/python" "$ROOT/tests/openwebui_e2e.py" \
  --bin-dir "$CARGO_TARGET_DIR/debug" --open-webui "$MAI_OPENWEBUI_VENV/bin/open-webui" \
  --work "$WORK" "$@"
