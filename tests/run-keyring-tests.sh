#!/usr/bin/env bash
# mai-ops against a real Secret Service: unlocked (gnome-keyring --unlock in a private
# D-Bus session), locked (daemon without unlock on a fresh keyring), and absent (no bus);
# OpenRouter keys, tracker tokens and the KSeF token.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
. "$ROOT/scripts/env.sh"
"$ROOT/scripts/setup.sh"
cd "$ROOT"
mai_build --quiet
# keychain_real: the OpenRouter keys and tracker tokens; ksef_token_real: the seller's KSeF
# token, through Ops and the real maictl.
run() { cargo test -q --workspace --locked --test keychain_real --test ksef_token_real -- --nocapture; }
echo "== unlocked"; dbus-run-session -- env MAI_KEYCHAIN_EXPECT=unlocked "$ROOT/scripts/with-keyring.sh" bash -c "$(declare -f run); run"
echo "== locked"; dbus-run-session -- env MAI_KEYCHAIN_EXPECT=locked bash -c "
  export XDG_DATA_HOME=\$(mktemp -d)
  gnome-keyring-daemon --components=secrets --daemonize >/dev/null 2>&1
  $(declare -f run); run"
echo "== absent"; env -u DBUS_SESSION_BUS_ADDRESS MAI_KEYCHAIN_EXPECT=absent XDG_RUNTIME_DIR=/nonexistent bash -c "$(declare -f run); run"
echo "run-keyring-tests: all passed"
