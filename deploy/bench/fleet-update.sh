#!/usr/bin/env bash
# A fleet update of N clients on the local Docker engine (issue 13, Performance): how long
# `maictl fleet update` takes with a health gate of GATE seconds per client and PARALLELISM
# clients at once after the canary.
#
#   deploy/bench/fleet-update.sh
#   CLIENTS=20 GATE=5 PARALLELISM=4 CHAT=1 deploy/bench/fleet-update.sh
#
# Deploys the OpenRouter simulator and CLIENTS clients, each a tracker (deploy/build-images.sh,
# its ledger on an anonymous volume, a published port) and a stand-in chat app FROM scratch
# with a Docker health check (deploy/build-update-test-images.sh), labelled as the console
# finds them; sends one chat through each tracker; writes a fleet file for them; then runs
# `maictl fleet update --tracker-image mai-tracker:TAG-next [--chat-image ...]` and prints
# the wall time, the summary, and per-client times (canary alone, then the rest). Every
# client's gate is the real one: /readyz, a probe metered in its ledger, the chat app's
# health check. Last, every tracker's ledger is checked: the events from before, plus the
# probe. Everything it started is removed at the end.
#
# Environment: CLIENTS (20), GATE (5, seconds: the health gate's limit per client),
# PARALLELISM (4), CHAT (1: update the chat apps too; 0: trackers only), TAG (bench),
# NO_BUILD=1 (use the images and maictl already built), MAI_IMAGE_PROFILE (image-test),
# CARGO_TARGET_DIR (default: scripts/env.sh's, one per checkout).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
CLIENTS=${CLIENTS:-20}
GATE=${GATE:-5}
PARALLELISM=${PARALLELISM:-4}
CHAT=${CHAT:-1}
TAG=${TAG:-bench}
. "$root/scripts/env.sh"   # CARGO_TARGET_DIR
work=$(mktemp -d /tmp/mai-fleet-update-bench.XXXXXX)
run_id="fub$$"
net="mai-$run_id"
MGMT=sk-or-v1-3333333333333333333333333333333333333333333333333333333333333333
READ_TOKEN=bench-read-token-0000
ADMIN_TOKEN=bench-admin-token-000
PROXY_TOKEN=bench-proxy-token-000

cleanup() {
    local ids
    ids=$(docker ps -aq --filter "label=mai.bench=$run_id" 2>/dev/null || true)
    [ -n "$ids" ] && docker rm -f -v $ids >/dev/null 2>&1 || true
    # The engine may still be detaching the removed containers' endpoints.
    for _ in 1 2 3 4 5; do
        docker network rm "$net" >/dev/null 2>&1 && break
        docker network inspect "$net" >/dev/null 2>&1 || break
        sleep 1
    done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
die() { echo "fleet-update: $*" >&2; exit 1; }

if [ "${NO_BUILD:-}" != 1 ]; then
    MAI_IMAGE_PROFILE=${MAI_IMAGE_PROFILE:-image-test} "$root/deploy/build-images.sh" "$TAG"
    "$root/deploy/build-update-test-images.sh" "$TAG" 2> >(grep -v -e DEPRECATED -e buildx -e '^ *$' -e docs.docker.com >&2)
    (cd "$root" && cargo build --locked -p mai-ops --bin maictl)
fi
maictl="$CARGO_TARGET_DIR/debug/maictl"
[ -x "$maictl" ] || die "no $maictl; run without NO_BUILD=1"

echo "fleet-update: deploying $CLIENTS clients (tracker + chat app each) on the local engine"
docker network create "$net" >/dev/null
docker run -d --name "$run_id-sim" --network "$net" -l "mai.bench=$run_id" \
    -e "MAI_SIM_MANAGEMENT_KEY=$MGMT" "mai-sim:$TAG" --fast >/dev/null
fleet="$work/fleet.toml"
cat >"$fleet" <<EOF
# fleet-update benchmark ($CLIENTS clients)
[console]
data_dir = "$work/console"
concurrency = 32

[[hosts]]
name = "local"
docker = "unix:///var/run/docker.sock"
timeout_ms = 10000
EOF
for i in $(seq 1 "$CLIENTS"); do
    id="$run_id-c$i"
    key="$work/$id.key"
    printf 'sk-or-v1-%064x\n' "$((8192 + i))" >"$key"
    chmod 0444 "$key"
    docker run -d --name "$id-tracker" --network "$net" --network-alias "$id-tracker" \
        -l "mai.bench=$run_id" -l "mai.client=$id" -l mai.role=tracker \
        -v "$key:/run/secrets/openrouter-key:ro" \
        -e OPENROUTER_API_KEY_FILE=/run/secrets/openrouter-key \
        -e "OPENROUTER_BASE_URL=http://$run_id-sim:8090/api/v1" \
        -e "MAI_ORG_ID=$id" -e "MAI_TRACKER_PROXY_TOKEN=$PROXY_TOKEN" \
        -e "MAI_TRACKER_READ_TOKEN=$READ_TOKEN" -e "MAI_TRACKER_ADMIN_TOKEN=$ADMIN_TOKEN" \
        -e MAI_TRACKER_TLS=off -e OPENROUTER_USAGE_SYNC_INTERVAL=0 \
        -p 127.0.0.1::8080 --restart unless-stopped "mai-tracker:$TAG" >/dev/null
    docker run -d --name "$id-chat" --network "$net" \
        -l "mai.bench=$run_id" -l "mai.client=$id" -l mai.role=chat \
        -e "OPENAI_API_BASE_URL=http://$id-tracker:8080/v1" "mai-chat-standin:$TAG" >/dev/null
done
for i in $(seq 1 "$CLIENTS"); do
    id="$run_id-c$i"
    url="http://$(docker port "$id-tracker" 8080/tcp | head -1)"
    for _ in $(seq 300); do curl -fsS "$url/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
    curl -fsS "$url/readyz" >/dev/null || die "$id's tracker never became ready"
    curl -fsS -o /dev/null "$url/v1/chat/completions" -H "authorization: Bearer $PROXY_TOKEN" \
        -H 'content-type: application/json' -H 'x-openwebui-user-id: bench-user' \
        -d '{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"before the update"}]}'
    cat >>"$fleet" <<EOF

[[clients]]
id = "$id"
legal_name = "Bench Client $i Sp. z o.o."
nip = "526-104-08-28"
address = "ul. Prosta $i"
host = "local"
markup = "1.3"
tracker_url = "$url"
tracker_read_token = "env:BENCH_READ_TOKEN"
tracker_admin_token = "env:BENCH_ADMIN_TOKEN"
EOF
done
export BENCH_READ_TOKEN=$READ_TOKEN BENCH_ADMIN_TOKEN=$ADMIN_TOKEN

args=(--fleet "$fleet" fleet update --tracker-image "mai-tracker:$TAG-next"
      --parallelism "$PARALLELISM" --gate-timeout "$GATE" --json)
[ "$CHAT" = 1 ] && args+=(--chat-image "mai-chat-standin:$TAG-next")
echo "fleet-update: maictl ${args[*]:2}"
start=$(date +%s.%N)
set +e
"$maictl" "${args[@]}" >"$work/summary.json" 2>"$work/progress.log"
rc=$?
set -e
end=$(date +%s.%N)
[ -s "$work/summary.json" ] || { cat "$work/progress.log" >&2; die "maictl exited $rc without a summary"; }

python3 - "$work/summary.json" "$start" "$end" "$CLIENTS" "$GATE" "$PARALLELISM" "$CHAT" <<'PY'
import json, sys, statistics
s = json.load(open(sys.argv[1]))
wall = float(sys.argv[3]) - float(sys.argv[2])
n, gate, par, chat = sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7]
cs = s["clients"]
canary = [c for c in cs if c["canary"]]
rest = [c["elapsed_ms"] / 1000 for c in cs if not c["canary"] and c["outcome"] == "updated"]
print(f"\n{n} clients, gate {gate} s, parallelism {par}, {'tracker + chat' if chat == '1' else 'tracker'} images")
print(f"wall time (maictl, plan to summary): {wall:.1f} s  (library: {s['elapsed_ms'] / 1000:.1f} s)")
print(f"updated {s['updated']}, rolled back {s['rolled_back']}, skipped {s['skipped']}, failed {s['failed']}")
if canary:
    print(f"canary {canary[0]['client_id']}: {canary[0]['elapsed_ms'] / 1000:.1f} s")
if rest:
    print(f"other clients: p50 {statistics.median(rest):.1f} s, max {max(rest):.1f} s each")
gates = [g for c in cs for g in c["gate"]]
for check in ("tracker_ready", "probe_metered", "chat_healthy"):
    t = [g["elapsed_ms"] / 1000 for g in gates if g["check"] == check]
    if t:
        print(f"  gate {check}: p50 {statistics.median(t):.2f} s, max {max(t):.2f} s")
bad = [c for c in cs if c["outcome"] != "updated"]
for c in bad:
    print(f"  {c['client_id']}: {c['outcome']}: {c['detail']}")
sys.exit(1 if bad else 0)
PY

# Every ledger: the chat from before, plus the gate's probe, on the new image.
for i in $(seq 1 "$CLIENTS"); do
    id="$run_id-c$i"
    url="http://$(docker port "$id-tracker" 8080/tcp | head -1)"
    img=$(docker inspect -f '{{.Config.Image}}' "$id-tracker")
    [ "$img" = "mai-tracker:$TAG-next" ] || die "$id runs $img"
    n=$(curl -fsS -H "authorization: Bearer $READ_TOKEN" "$url/api/v1/usage/today" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])')
    [ "$n" = 2 ] || die "$id's ledger has $n requests today, expected 2 (the chat before + the probe)"
done
echo "ledgers: every client's chat from before the update is there, plus its probe"
