#!/usr/bin/env bash
# Onboarding one client end to end, timed, with maictl (issue 13, Performance: goal
# under 30 s with the images present), and offboarding it again.
#
#   deploy/bench/onboard.sh
#   RUNS=5 NO_BUILD=1 deploy/bench/onboard.sh
#
# Starts the OpenRouter simulator (mai-sim, on every address so the tracker containers
# reach it through Docker's host gateway), writes a one-host fleet file (the local
# engine), stores the simulator's management key in a throwaway Secret Service, then per
# run: `maictl clients add` (key with its monthly cap, keychain, network, volumes, secret
# files, tracker and chat containers, both answering, one metered probe, fleet file
# written) and `maictl clients remove --yes` (final check, key disabled, containers
# stopped, ledger exported, volume archived, everything removed). Prints each run's wall
# time and the median. The chat app is the stand-in image (mai-chat-standin, built by
# deploy/build-images.sh): Open WebUI itself takes ~20 s to answer /health
# (../shared/specs/openwebui.md), which adds to the wait-until-healthy step in production.
#
# Environment: RUNS (3), TAG (bench: the images' tag), NO_BUILD=1 (use the built
# binaries and images), MAI_IMAGE_PROFILE (image-test: the test images' profile).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
RUNS=${RUNS:-3}
TAG=${TAG:-bench}
. "$root/scripts/env.sh"   # CARGO_TARGET_DIR, mai_build

# The management key goes into a real Secret Service, a throwaway one.
if [ -z "${DBUS_SESSION_BUS_ADDRESS:-}" ]; then
  exec dbus-run-session -- "$root/scripts/with-keyring.sh" "$0" "$@"
fi
"$root/scripts/ensure-docker.sh"
if [ -z "${NO_BUILD:-}" ]; then
  MAI_IMAGE_PROFILE=${MAI_IMAGE_PROFILE:-image-test} "$root/deploy/build-images.sh" "$TAG"
  mai_build >/dev/null
fi
bin="$CARGO_TARGET_DIR/debug"
work=$(mktemp -d /tmp/mai-onboard-bench.XXXXXX)
MGMT=sk-or-v1-$(printf 'b%.0s' {1..64})

sim_pid=""
ids=()
cleanup() {
  for id in "${ids[@]}"; do
    for c in $(docker ps -aq --filter "label=mai.client=$id"); do docker rm -f "$c" >/dev/null; done
    for n in $(docker network ls -q --filter "label=mai.client=$id"); do docker network rm "$n" >/dev/null; done
    for v in $(docker volume ls -q --filter "label=mai.client=$id"); do docker volume rm -f "$v" >/dev/null; done
  done
  [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null || true
}
trap cleanup EXIT

"$bin/mai-sim" openrouter --listen 0.0.0.0:0 --fast --management-key "$MGMT" >"$work/sim.url" 2>"$work/sim.log" &
sim_pid=$!
for _ in $(seq 1 100); do [ -s "$work/sim.url" ] && break; sleep 0.1; done
port=$(sed -E 's#.*:([0-9]+)/api/v1.*#\1#' "$work/sim.url")
cat >"$work/fleet.toml" <<EOF
# onboard.sh's fleet: the local engine, the simulator as OpenRouter.
[console]
data_dir = "data"

[openrouter]
base_url = "http://127.0.0.1:$port/api/v1"

[[hosts]]
name = "local"
docker = "unix:///var/run/docker.sock"
EOF
export MAI_FLEET="$work/fleet.toml"
printf '%s' "$MGMT" | "$bin/maictl" keys set-management >/dev/null
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }

printf '%-4s %12s %12s\n' run "onboard s" "offboard s"
adds=()
for i in $(seq 1 "$RUNS"); do
  id="bench-$$-$i"
  ids+=("$id")
  t0=$(now)
  "$bin/maictl" clients add --id "$id" --legal-name "Bench $i Sp. z o.o." --nip 526-104-08-28 \
    --address "ul. Prosta 1" --monthly-limit-usd 100 --host local \
    --tracker-port "$(free_port)" --chat-port "$(free_port)" \
    --tracker-image "mai-tracker:$TAG" --chat-image "mai-chat-standin:$TAG" \
    --tracker-openrouter-url "http://host.docker.internal:$port/api/v1" \
    >"$work/add-$i.out" 2>"$work/add-$i.log" || { cat "$work/add-$i.log" >&2; exit 1; }
  t1=$(now)
  "$bin/maictl" clients remove "$id" --yes >"$work/remove-$i.out" 2>"$work/remove-$i.log" \
    || { cat "$work/remove-$i.log" >&2; exit 1; }
  t2=$(now)
  a=$(echo "$t1 - $t0" | bc)
  adds+=("$a")
  printf '%-4s %12.2f %12.2f\n' "$i" "$a" "$(echo "$t2 - $t1" | bc)"
done
median=$(printf '%s\n' "${adds[@]}" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
printf 'onboarding one client end to end: median %.2f s over %d runs (goal: under 30 s)\n' "$median" "$RUNS"
echo "steps of the last run (maictl's stderr):"
sed 's/^/  /' "$work/add-$RUNS.log"
rm -rf "$work"
