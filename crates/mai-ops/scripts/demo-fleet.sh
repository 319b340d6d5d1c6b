#!/usr/bin/env bash
# Starts a live demo fleet: OpenRouter + NBP simulators, N trackers (Docker containers
# with a chat container each when an engine answers, else plain processes), and writes
# $DEMO_DIR/fleet.toml plus $DEMO_DIR/state.json. Used by ./demo.sh, the e2e test and
# the README's commands (tests/readme-commands.sh), which rely on these files:
#   $DEMO_DIR/fleet.toml           the fleet file (billing.toml next to it)
#   $DEMO_DIR/tracker-token        the trackers' admin token, read by the fleet file (file:)
#   $DEMO_DIR/tracker-read-token   the trackers' read token (routine polling), likewise
#   $DEMO_DIR/keys/<client>.key    each client's (simulated) OpenRouter key
#   $DEMO_DIR/keys/management.key  the simulator's management key, for key rotation
#
#   demo-fleet.sh up            start everything (idempotent: stops an earlier run first)
#   demo-fleet.sh down          stop everything this script started
#   demo-fleet.sh tracker ID    start client ID's tracker again after its container (and,
#                               in Docker, its data volume) was removed: the same container
#                               as `up` made, on a new empty volume (the e2e backup test)
#
# Env: DEMO_DIR (/tmp/mai-demo), DEMO_CLIENTS (4), DEMO_MODE (auto|docker|process),
#      DEMO_PORT_BASE (18100), CARGO_TARGET_DIR.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"
. "$ROOT/scripts/env.sh"   # CARGO_TARGET_DIR, mai_build
DEMO_DIR="${DEMO_DIR:-/tmp/mai-demo}"
N="${DEMO_CLIENTS:-4}"
MODE="${DEMO_MODE:-auto}"
BASE="${DEMO_PORT_BASE:-18100}"
BIN="$CARGO_TARGET_DIR/debug"
TAG="$(basename "$DEMO_DIR")"   # names and labels containers of this run only
OR_PORT=$BASE; NBP_PORT=$((BASE + 1)); KSEF_PORT=$((BASE + 2)); TR_BASE=$((BASE + 10))
PROXY_TOKEN="demo-proxy-token-0123456789"
READ_TOKEN="demo-read-token-0123456789"
ADMIN_TOKEN="demo-admin-token-0123456789"
SELLER_NIP="1234563218"   # billing.toml's seller, the KSeF context
KSEF_TOKEN="demo-ksef-token-0123456789"
MGMT_KEY="sk-or-v1-$(printf 'f%.0s' $(seq 64))"
IDS=(acme kowalski-law nowak-dental baltic-logistics mazur-design orion-it pixel-media zielony-ogrod)
NAMES=("ACME Sp. z o.o." "Kancelaria Kowalski sp.k." "Nowak Dental s.c." "Baltic Logistics S.A." "Mazur Design" "Orion IT Sp. z o.o." "Pixel Media" "Zielony Ogród")
MARKUPS=("1.3" "1.25" "1.3" "1.4" "1.3" "1.35" "1.3" "1.2")
LIMITS=("50" "20" "5" "100" "10" "30" "15" "8")
# Invoice data (mai-billing): checksum-valid NIPs; baltic-logistics is invoiced in USD.
BNIPS=(5261040805 7770001105 6750002302 5830003409 9440004509 8960005609 6210006704 1130007805)
CITIES=("00-950 Warszawa" "31-042 Kraków" "60-101 Poznań" "80-001 Gdańsk" "50-001 Wrocław" "90-001 Łódź" "20-001 Lublin" "70-001 Szczecin")
CURRENCIES=(PLN PLN PLN USD PLN PLN PLN PLN)

log() { echo "demo-fleet: $*" >&2; }

docker_ok() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

down() {
  if [ -f "$DEMO_DIR/pids" ]; then
    while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$DEMO_DIR/pids"
    rm -f "$DEMO_DIR/pids"
  fi
  if docker_ok; then
    ids=$(docker ps -aq --filter label=mai.demo=$TAG || true)
    [ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1 || true
    vols=$(docker volume ls -q --filter label=mai.demo=$TAG || true)
    [ -n "$vols" ] && docker volume rm $vols >/dev/null 2>&1 || true
  fi
}

# Client $1's tracker (index into IDS): a container on a data volume of its own (labelled,
# so `down` removes it) in docker mode, else a process; `up` and `tracker` both start it.
start_tracker() {
  local i=$1 id=${IDS[$1]} port=$((TR_BASE + $1)) key ver
  key="sk-or-v1-$(printf '%064x' $((0xdead0000 + i)))"
  # Markup and limit are not the tracker's settings: they are the fleet file's, pushed to
  # each tracker by the console (PUT /api/v1/admin/terms).
  local env=(-e MAI_ORG_ID="$id" -e MAI_ORG_NAME="${NAMES[$i]}"
    -e MAI_TRACKER_LISTEN="127.0.0.1:$port" -e MAI_TRACKER_PROXY_TOKEN="$PROXY_TOKEN"
    -e MAI_TRACKER_READ_TOKEN="$READ_TOKEN" -e MAI_TRACKER_ADMIN_TOKEN="$ADMIN_TOKEN"
    -e OPENROUTER_API_KEY="$key" -e OPENROUTER_BASE_URL="http://127.0.0.1:$OR_PORT/api/v1"
    -e OPENROUTER_USAGE_SYNC_INTERVAL=60)
  if [ "$MODE" = docker ]; then
    ver=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)
    docker volume create --label mai.demo=$TAG --label mai.client="$id" "$TAG-$id-tracker-data" >/dev/null
    docker run -d --name "$TAG-$id-tracker" --network host --label mai.demo=$TAG \
      --label mai.client="$id" --label mai.role=tracker --label mai.version="$ver" \
      -v "$TAG-$id-tracker-data:/data" \
      "${env[@]}" -e MAI_TRACKER_DB=/data/tracker.sqlite "mai-demo-tracker:$ver" /bin/mai-tracker >/dev/null
  else
    mkdir -p "$DEMO_DIR/$id"
    (for e in "${env[@]}"; do [ "$e" = -e ] || export "$e"; done
     export MAI_TRACKER_DB="$DEMO_DIR/$id/tracker.sqlite"
     exec "$BIN/mai-tracker") >>"$DEMO_DIR/$id.tracker.log" 2>&1 &
    echo $! >>"$DEMO_DIR/pids"
  fi
}

wait_http() { # url, what
  for _ in $(seq 1 150); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  log "$2 did not answer on $1"; return 1
}

# A tiny image of a dynamically linked binary plus the libraries ldd names (no registry needed).
import_image() { # name:tag binary
  local tag="$1" bin="$2" root; root=$(mktemp -d)
  mkdir -p "$root/bin" "$root/data" "$root/tmp"
  cp "$bin" "$root/bin/"
  for lib in $(ldd "$bin" | grep -o '/[^ ]*' | sort -u); do
    mkdir -p "$root$(dirname "$lib")"; cp -L "$lib" "$root$lib"
  done
  mkdir -p "$root/etc/ssl/certs"; cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/" 2>/dev/null || true
  tar -C "$root" -c . | docker import - "$tag" >/dev/null
  rm -rf "$root"
}

busybox_image() {
  docker image inspect mai-demo-busybox:1 >/dev/null 2>&1 && return 0
  local root; root=$(mktemp -d); mkdir -p "$root/bin"
  cp "$(command -v busybox)" "$root/bin/busybox"
  for t in sh sleep date echo; do ln -s busybox "$root/bin/$t"; done
  tar -C "$root" -c . | docker import - mai-demo-busybox:1 >/dev/null
  rm -rf "$root"
}

up() {
  down
  # A fresh demo: simulators and trackers start empty, so must the console's cache.
  rm -rf "$DEMO_DIR/console"
  mkdir -p "$DEMO_DIR"
  : >"$DEMO_DIR/pids"
  if [ "$MODE" = auto ]; then if docker_ok; then MODE=docker; else MODE=process; fi; fi
  log "mode: $MODE, $N clients, state in $DEMO_DIR"
  mai_build --quiet   # the same build as test.sh's: a no-op after it, and the reverse

  "$BIN/mai-sim" openrouter --listen "127.0.0.1:$OR_PORT" --seed 1 --management-key "$MGMT_KEY" \
    --generation-ready-delay 200 >"$DEMO_DIR/openrouter.log" 2>&1 &
  echo $! >>"$DEMO_DIR/pids"
  "$BIN/mai-sim" nbp --listen "127.0.0.1:$NBP_PORT" >"$DEMO_DIR/nbp.log" 2>&1 &
  echo $! >>"$DEMO_DIR/pids"
  # KSeF 2.0 (TEST-like): accepts the seller's demo token; invoices are really checked
  # (FA(3) XSD with xmllint, hashes, duplicates) and get KSeF numbers and UPOs.
  "$BIN/mai-sim" ksef --listen "127.0.0.1:$KSEF_PORT" --token "$SELLER_NIP=$KSEF_TOKEN" \
    >"$DEMO_DIR/ksef.log" 2>&1 &
  echo $! >>"$DEMO_DIR/pids"
  wait_http "http://127.0.0.1:$OR_PORT/api/v1/models" "OpenRouter simulator"
  wait_http "http://127.0.0.1:$KSEF_PORT/v2/security/public-key-certificates" "KSeF simulator"

  if [ "$MODE" = docker ]; then
    ver=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)
    import_image "mai-demo-tracker:$ver" "$BIN/mai-tracker"
    busybox_image
  fi

  local clients_json="" fleet ver=""
  # Demo secrets as files, so every maictl command works with the fleet file alone.
  mkdir -p "$DEMO_DIR/keys"
  (umask 077
   printf '%s\n' "$ADMIN_TOKEN" >"$DEMO_DIR/tracker-token"
   printf '%s\n' "$READ_TOKEN" >"$DEMO_DIR/tracker-read-token"
   printf '%s\n' "$MGMT_KEY" >"$DEMO_DIR/keys/management.key"
   printf '%s\n' "$KSEF_TOKEN" >"$DEMO_DIR/keys/ksef.token")
  [ "$MODE" = docker ] && ver=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)
  fleet="$DEMO_DIR/fleet.toml"
  cat >"$fleet" <<TOML
# Demo fleet written by crates/mai-ops/scripts/demo-fleet.sh ($MODE mode)
[console]
data_dir = "$DEMO_DIR/console"
tracker_timeout_ms = 2000
docker_timeout_ms = 3000

[openrouter]
base_url = "http://127.0.0.1:$OR_PORT/api/v1"

[nbp]
base_url = "http://127.0.0.1:$NBP_PORT/api"

[billing]
# The seller and invoice numbering, written next to this file; each client's invoice data
# is in its [[clients]] entry below. The store defaults to the console data dir.
config = "billing.toml"

[ksef]
# The KSeF simulator; production: environment = "prd" (the token: maictl ksef token set).
base_url = "http://127.0.0.1:$KSEF_PORT/v2"

[[hosts]]
name = "local"
docker = "unix:///var/run/docker.sock"
TOML
  cat >"$DEMO_DIR/billing.toml" <<TOML
# Demo billing config written by crates/mai-ops/scripts/demo-fleet.sh (see crates/mai-billing/README.md)
invoice_number_format = "FV/{yyyy}/{mm}/{seq:04}"
payment_days = 14

[seller]
name = "mAI Odsprzedaż Sp. z o.o."
nip = "$SELLER_NIP"
address_line1 = "ul. Świętokrzyska 12"
address_line2 = "00-916 Warszawa"
bank_account = "PL61 1090 1014 0000 0712 1981 2874"
bank_name = "Bank Przykładowy S.A."
email = "faktury@example.pl"
TOML
  for i in $(seq 0 $((N - 1))); do
    local id=${IDS[$i]} port=$((TR_BASE + i)) key
    key="sk-or-v1-$(printf '%064x' $((0xdead0000 + i)))"
    (umask 077; printf '%s\n' "$key" >"$DEMO_DIR/keys/$id.key")
    start_tracker "$i"
    if [ "$MODE" = docker ]; then
      docker run -d --name "$TAG-$id-chat" --network none --label mai.demo=$TAG \
        --label mai.client="$id" --label mai.role=chat --label mai.version=demo-1 \
        mai-demo-busybox:1 sh -c 'while true; do echo "$(date -u) chat: heartbeat"; sleep 5; done' >/dev/null
    fi
    cat >>"$fleet" <<TOML

[[clients]]
id = "$id"
legal_name = "${NAMES[$i]}"
nip = "${BNIPS[$i]}"
address = "ul. Demo $((i + 1))"
address_line2 = "${CITIES[$i]}"
invoice_currency = "${CURRENCIES[$i]}"
vat = "23"
invoice_lines = "by_model"
host = "local"
markup = "${MARKUPS[$i]}"
monthly_limit_usd = "${LIMITS[$i]}"
tracker_url = "http://127.0.0.1:$port"
tracker_read_token = "file:tracker-read-token"
tracker_admin_token = "file:tracker-token"
TOML
    clients_json+="${clients_json:+,}{\"id\":\"$id\",\"tracker_url\":\"http://127.0.0.1:$port\",\"key\":\"$key\",\"markup\":\"${MARKUPS[$i]}\"}"
  done
  for i in $(seq 0 $((N - 1))); do wait_http "http://127.0.0.1:$((TR_BASE + i))/readyz" "tracker ${IDS[$i]}"; done
  cat >"$DEMO_DIR/state.json" <<JSON
{"mode":"$MODE","openrouter":"http://127.0.0.1:$OR_PORT","nbp":"http://127.0.0.1:$NBP_PORT",
 "proxy_token":"$PROXY_TOKEN","admin_token":"$ADMIN_TOKEN","management_key":"$MGMT_KEY","clients":[$clients_json]}
JSON
  log "up: fleet file $fleet (maictl --fleet $fleet status)"
}

# `tracker ID`: the client's tracker again, in the mode `up` used (state.json).
tracker() {
  local id=$1 i
  MODE=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["mode"])' "$DEMO_DIR/state.json")
  for i in "${!IDS[@]}"; do
    if [ "${IDS[$i]}" = "$id" ]; then
      start_tracker "$i"
      wait_http "http://127.0.0.1:$((TR_BASE + i))/readyz" "tracker $id"
      log "tracker of $id started"
      return 0
    fi
  done
  log "no demo client $id"; return 2
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  tracker) tracker "${2:?usage: $0 tracker CLIENT_ID}" ;;
  *) echo "usage: $0 up|down|tracker ID" >&2; exit 2 ;;
esac
