#!/usr/bin/env bash
# Runs a command with a real, unlocked Secret Service (gnome-keyring) on the current
# D-Bus session. Call it inside `dbus-run-session -- scripts/with-keyring.sh CMD...`.
# The keyring lives in a throwaway XDG_DATA_HOME so tests never touch a real one.
set -euo pipefail
if [ -z "${DBUS_SESSION_BUS_ADDRESS:-}" ]; then
  echo "with-keyring: no D-Bus session; run me under dbus-run-session" >&2
  exit 1
fi
XDG_DATA_HOME="$(mktemp -d)"
export XDG_DATA_HOME
# The password only protects this throwaway test keyring.
printf 'mai-test' | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1
exec "$@"
