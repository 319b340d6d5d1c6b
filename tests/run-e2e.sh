#!/usr/bin/env bash
# End-to-end test of the console:
#   1. a demo fleet of real tracker containers on the local Docker engine, the OpenRouter
#      and NBP simulators, and a fixed burst of synthetic chat traffic;
#   2. the real console binary under Xvfb driven over WebDriver (tauri-driver 2.1.0 +
#      WebKitWebDriver) inside a D-Bus session with an unlocked gnome-keyring: the fleet
#      table shows every client with today's cost = simulator truth x markup, a sync runs,
#      a restart shows, a key is set and masked; a stopped tracker raises its alerts
#      (debounced) and they clear when it is started again; screenshots in test-output/e2e/;
#      a restart shows, a key is set and masked; then (e2e_overview.rs) the table sorted by
#      today's cost both ways, searched and filtered, and the totals strip; last
#      (e2e_backup.rs, it replaces a tracker) a client's ledger backed up from its Backups
#      panel, more usage, the tracker's container and Docker volume deleted, a new tracker
#      on an empty volume (demo-fleet.sh tracker), the restore (backup + the cache's later
#      events) and the month = simulator truth x markup; screenshots in test-output/e2e/;
#   3. Docker over SSH: maictl lists the same containers through a local sshd on loopback.
# Installs/starts what it needs (idempotent). Exits non-zero on any failure.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
. "$ROOT/scripts/env.sh"
OUT="$ROOT/test-output/e2e"
export DEMO_DIR="${E2E_DIR:-/tmp/mai-e2e}" DEMO_MODE=docker DEMO_PORT_BASE="${E2E_PORT_BASE:-18500}" DEMO_CLIENTS="${E2E_CLIENTS:-3}"
FLEET_SH="$ROOT/crates/mai-ops/scripts/demo-fleet.sh"
mkdir -p "$OUT"
"$ROOT/scripts/setup.sh"
"$ROOT/scripts/ensure-docker.sh"

cleanup() {
  [ -n "${DRIVER_PID:-}" ] && kill "$DRIVER_PID" 2>/dev/null || true
  "$FLEET_SH" down || true
}
trap cleanup EXIT

# The console embeds ui/dist; then the one workspace build (scripts/env.sh), which
# demo-fleet.sh and the WebDriver test below find done.
mai_build_ui
mai_build --quiet
"$FLEET_SH" up
python3 "$ROOT/crates/mai-ops/scripts/traffic.py" "$DEMO_DIR/state.json" --requests 40 --rate 0
export MAI_DEMO_TRACKER_TOKEN
MAI_DEMO_TRACKER_TOKEN="$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["admin_token"])' "$DEMO_DIR/state.json")"

# ---- 2. WebDriver session against the real app
export E2E_STATE="$DEMO_DIR/state.json" E2E_FLEET="$DEMO_DIR/fleet.toml" E2E_APP="$CARGO_TARGET_DIR/debug/mai-console" E2E_OUT="$OUT"
export NO_AT_BRIDGE=1
# tauri-driver's port (its native port is the next one); another run on this machine
# needs its own (e2e_support reads E2E_DRIVER_PORT too).
export E2E_DRIVER_PORT="${E2E_DRIVER_PORT:-4444}"
# The one setting the console under test does not take from its defaults: WebKit's
# accelerated compositing stays on here. With the console's default (compositing off,
# issue 14) every WebDriver screenshot in these tests times out (WebKitWebDriver waits
# for a presentation update of the non-composited page that does not come; seen
# 2026-12-07, WebKitGTK 2.50.6), although the same screenshots complete outside this
# flow. Everything else (JIT off, the code-split UI, the fleet opened in the
# background) is what the operator runs. See ARCHITECTURE.md, Performance.
export WEBKIT_DISABLE_COMPOSITING_MODE=0
dbus-run-session -- "$ROOT/scripts/with-keyring.sh" xvfb-run -a -s "-screen 0 1280x800x24" bash -c '
  set -euo pipefail
  tauri-driver --port "$E2E_DRIVER_PORT" --native-port $((E2E_DRIVER_PORT + 1)) >"$E2E_OUT/tauri-driver.log" 2>&1 &
  DRIVER=$!
  trap "kill $DRIVER 2>/dev/null || true" EXIT
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/"$E2E_DRIVER_PORT") 2>/dev/null && break; sleep 0.1; done
  # A real notification server, and a record of what the console asks it to show.
  dunst >"$E2E_OUT/dunst.log" 2>&1 &
  dbus-monitor --session "interface=org.freedesktop.Notifications,member=Notify" >"$E2E_OUT/notifications.log" 2>&1 &
  export E2E_NOTIFY_LOG="$E2E_OUT/notifications.log"
  cargo test --workspace --locked --test e2e -- --nocapture
  # Alerts (issue 14): a tracker container stopped and started, the alerts follow.
  cargo test --workspace --locked --test e2e_alerts -- --nocapture
  # The fleet overview: sorting and filtering in the real window (issue 14).
  cargo test --workspace --locked --test e2e_overview -- --nocapture
  # Backup, a lost volume, restore (issue 14); last: it replaces a tracker container.
  cargo test --workspace --locked --test e2e_backup -- --nocapture
'

# ---- 3. Docker over SSH through a local sshd on loopback
SSH_PORT="${E2E_SSH_PORT:-2222}"
mkdir -p "$HOME/.ssh" && chmod 700 "$HOME/.ssh"
[ -f "$HOME/.ssh/mai_e2e" ] || ssh-keygen -q -t ed25519 -N '' -f "$HOME/.ssh/mai_e2e"
grep -qF "$(cat "$HOME/.ssh/mai_e2e.pub")" "$HOME/.ssh/authorized_keys" 2>/dev/null || cat "$HOME/.ssh/mai_e2e.pub" >>"$HOME/.ssh/authorized_keys"
chmod 600 "$HOME/.ssh/authorized_keys"
if ! grep -q "Host mai-e2e-ssh" "$HOME/.ssh/config" 2>/dev/null; then
  cat >>"$HOME/.ssh/config" <<CFG

# added by mAI Fleet tests/run-e2e.sh
Host mai-e2e-ssh
  HostName 127.0.0.1
  Port $SSH_PORT
  User $(id -un)
  IdentityFile $HOME/.ssh/mai_e2e
  StrictHostKeyChecking accept-new
  UserKnownHostsFile $HOME/.ssh/mai_e2e_known_hosts
  BatchMode yes
CFG
fi
if ! (exec 3<>/dev/tcp/127.0.0.1/"$SSH_PORT") 2>/dev/null; then
  ssh-keygen -A >/dev/null
  mkdir -p /run/sshd
  /usr/sbin/sshd -p "$SSH_PORT" -o ListenAddress=127.0.0.1 -o PasswordAuthentication=no -o PidFile=/run/sshd-mai-e2e.pid
fi
ssh mai-e2e-ssh true
sed -e 's|docker = "unix:///var/run/docker.sock"|docker = "ssh://mai-e2e-ssh"|' -e 's|name = "local"|name = "ssh-local"|' -e 's|host = "local"|host = "ssh-local"|' \
  "$DEMO_DIR/fleet.toml" >"$DEMO_DIR/fleet-ssh.toml"
"$CARGO_TARGET_DIR/debug/maictl" --fleet "$DEMO_DIR/fleet-ssh.toml" status --json >"$OUT/status-over-ssh.json"
python3 - "$OUT/status-over-ssh.json" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
bad = [r["client_id"] for r in rows if not r["container"] or r["container"]["state"] != "running" or r["docker_error"]]
print("ssh: " + ", ".join(f'{r["client_id"]}={r["container"]["state"] if r["container"] else None}' for r in rows))
sys.exit(f"containers not seen over ssh: {bad}" if bad else 0)
PY
echo "run-e2e: all passed; screenshots in $OUT"
