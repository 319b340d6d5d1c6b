#!/usr/bin/env bash
# Tracker vs LiteLLM proxy, same streaming load, one run, loopback only (issue 4, Performance).
#
#   deploy/bench/litellm-compare.sh
#   REQUESTS=4000 CONCURRENCY="100 1000" deploy/bench/litellm-compare.sh
#
# Starts the OpenRouter simulator (mai-sim), the tracker (release build) and the LiteLLM
# proxy (PyPI `litellm[proxy]` in a venv under $HOME/.cache/mai-litellm, no DB, no
# callbacks, no telemetry), then drives the same closed-loop streaming load (load.py)
# straight at the simulator, through the tracker and through LiteLLM, once per
# concurrency level, and prints latency (TTFB/total p50/p99, added vs direct), peak RSS
# of each proxy, errors, and the LiteLLM/tracker ratio. Last, checks that the tracker's
# ledger equals what the simulator served on the tracker's key (/__sim/truth).
# Each path uses its own OpenRouter key, so the simulator's per-key totals separate them.
#
# Environment: REQUESTS (2000), CONCURRENCY ("100 1000"), CHUNK_MS (0: the simulator's
# --fast; e.g. 2 for streams like cargo bench -p mai-tracker --bench proxy),
# LITELLM_WORKERS (1: LiteLLM's default; the tracker uses every core, so 2 is the fairer
# figure on a 2-core box), LITELLM_VERSION (pip spec, default "litellm[proxy]"),
# NO_BUILD=1 (use the existing release binaries),
# CARGO_TARGET_DIR (default: scripts/env.sh's, one per checkout).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
REQUESTS=${REQUESTS:-2000}
CONCURRENCY=${CONCURRENCY:-"100 1000"}
CHUNK_MS=${CHUNK_MS:-0}
LITELLM_WORKERS=${LITELLM_WORKERS:-1}
LITELLM_SPEC=${LITELLM_VERSION:-"litellm[proxy]"}
. "$root/scripts/env.sh"   # CARGO_TARGET_DIR
venv=$HOME/.cache/mai-litellm   # installed by scripts/setup.sh litellm
work=$(mktemp -d /tmp/mai-litellm-bench.XXXXXX)

KEY_DIRECT=sk-or-v1-00000000000000000000000000000000000000000000000000000000000000d1
KEY_TRACKER=sk-or-v1-00000000000000000000000000000000000000000000000000000000000000b1
KEY_LITELLM=sk-or-v1-00000000000000000000000000000000000000000000000000000000000000c1
PROXY_TOKEN=bench-proxy-token-000
READ_TOKEN=bench-read-token-0000
ADMIN_TOKEN=bench-admin-token-000
LITELLM_MASTER=sk-bench-litellm-master-0000

pids=()
cleanup() {
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${pids[@]}"; do
        # Bounded wait, then SIGKILL: nothing of ours outlives the script.
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

die() { echo "litellm-compare: $*" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_http NAME URL PID SECONDS: poll until URL answers 2xx, the process dies, or the deadline.
wait_http() {
    local name=$1 url=$2 pid=$3 secs=$4 t0=$SECONDS
    until curl -fs -o /dev/null --max-time 2 "$url" 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || die "$name exited during start-up; its log: $work/$name.log
$(tail -20 "$work/$name.log")"
        ((SECONDS - t0 < secs)) || die "$name did not answer $url within ${secs}s; its log: $work/$name.log"
        sleep 0.2
    done
}

# --- binaries -------------------------------------------------------------------------
if [[ ${NO_BUILD:-0} != 1 ]]; then
    echo "building mai-sim and mai-tracker (release)…" >&2
    (cd "$root" && cargo build --release -q -p mai-sim -p mai-tracker --bins) ||
        die "cargo build --release -p mai-sim -p mai-tracker failed (see above); fix the build or rerun with NO_BUILD=1"
fi
sim_bin=$CARGO_TARGET_DIR/release/mai-sim
tracker_bin=$CARGO_TARGET_DIR/release/mai-tracker
[[ -x $sim_bin && -x $tracker_bin ]] || die "no release binaries in $CARGO_TARGET_DIR/release; run without NO_BUILD=1"

LITELLM_VERSION=$LITELLM_SPEC "$root/scripts/setup.sh" litellm >&2 ||
    die "scripts/setup.sh litellm failed (see above)"
py=$venv/bin/python
litellm_version=$("$py" -c 'import importlib.metadata as m; print(m.version("litellm"))')

# --- simulator --------------------------------------------------------------------------
sim_port=$(free_port)
sim_args=(openrouter --listen "127.0.0.1:$sim_port" --seed 1 --fast)
if [[ $CHUNK_MS != 0 ]]; then
    sim_args+=(--keepalive-leading 1 --keepalive-interval-ms 0 --chunk-interval-ms "$CHUNK_MS")
fi
RUST_LOG=warn "$sim_bin" "${sim_args[@]}" >"$work/sim.log" 2>&1 &
pids+=($!)
sim_pid=$!
sim=http://127.0.0.1:$sim_port
wait_http sim "$sim/api/v1/models" "$sim_pid" 20

# --- tracker ------------------------------------------------------------------------------
tr_port=$(free_port)
env -i PATH="$PATH" \
    OPENROUTER_API_KEY=$KEY_TRACKER OPENROUTER_BASE_URL="$sim/api/v1" \
    MAI_ORG_ID=bench MAI_TRACKER_LISTEN="127.0.0.1:$tr_port" MAI_TRACKER_DB="$work/tracker.sqlite" \
    MAI_TRACKER_PROXY_TOKEN=$PROXY_TOKEN MAI_TRACKER_READ_TOKEN=$READ_TOKEN \
    MAI_TRACKER_ADMIN_TOKEN=$ADMIN_TOKEN OPENROUTER_USAGE_SYNC_INTERVAL=0 RUST_LOG=warn \
    "$tracker_bin" >"$work/tracker.log" 2>&1 &
pids+=($!)
tr_pid=$!
tracker=http://127.0.0.1:$tr_port
wait_http tracker "$tracker/readyz" "$tr_pid" 30

# --- LiteLLM ------------------------------------------------------------------------------
ll_port=$(free_port)
cat >"$work/litellm.yaml" <<EOF
model_list:
  - model_name: openai/gpt-4o-mini
    litellm_params:
      # OpenAI-compatible provider pointed at the simulator's OpenRouter base URL.
      model: openai/openai/gpt-4o-mini
      api_base: $sim/api/v1
      api_key: os.environ/MAI_BENCH_LITELLM_KEY
litellm_settings:
  telemetry: false
  callbacks: []
  success_callback: []
  failure_callback: []
  turn_off_message_logging: true
  request_timeout: 120
general_settings:
  master_key: os.environ/MAI_BENCH_LITELLM_MASTER
  disable_spend_logs: true
  disable_error_logs: true
  background_health_checks: false
EOF
# No DATABASE_URL: no Prisma, no spend tracking. The cost map is the bundled copy (no fetch).
env -i PATH="$venv/bin:$PATH" HOME="$work" \
    MAI_BENCH_LITELLM_KEY=$KEY_LITELLM MAI_BENCH_LITELLM_MASTER=$LITELLM_MASTER \
    LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_TELEMETRY=False LITELLM_LOG=ERROR \
    NO_PROXY='*' no_proxy='*' \
    "$venv/bin/litellm" --config "$work/litellm.yaml" --host 127.0.0.1 --port "$ll_port" \
    --num_workers "$LITELLM_WORKERS" >"$work/litellm.log" 2>&1 &
pids+=($!)
ll_pid=$!
litellm=http://127.0.0.1:$ll_port
wait_http litellm "$litellm/health/liveliness" "$ll_pid" 180

# One request through each proxy before measuring: fail fast with a readable reason.
for t in "tracker $tracker/v1/chat/completions $PROXY_TOKEN" "litellm $litellm/v1/chat/completions $LITELLM_MASTER"; do
    read -r name url tok <<<"$t"
    out=$(curl -sS -N --max-time 30 "$url" -H "authorization: Bearer $tok" -H 'content-type: application/json' \
        -d '{"model":"openai/gpt-4o-mini","stream":true,"max_tokens":32,"messages":[{"role":"user","content":"probe"}]}') ||
        die "probe request through $name failed; log: $work/$name.log"
    grep -q '\[DONE\]' <<<"$out" || die "probe stream through $name did not end with [DONE]: ${out:0:400}
log: $(tail -20 "$work/$name.log")"
done

echo "mai-tracker (release, pid $tr_pid) vs LiteLLM $litellm_version ($LITELLM_WORKERS uvicorn worker(s), pid $ll_pid)," \
    "simulator $( [[ $CHUNK_MS == 0 ]] && echo '--fast (no delays, no keep-alive comments)' || echo "chunks ${CHUNK_MS} ms apart")"
tree_rss_mb() { PYTHONDONTWRITEBYTECODE=1 "$py" -c "import sys; sys.path.insert(0, '$here'); import load; print(load.tree_rss_kib($1) // 1024)"; }
echo "idle RSS: tracker $(tree_rss_mb "$tr_pid") MB, LiteLLM $(tree_rss_mb "$ll_pid") MB (with its worker processes)"

ll_alive=1
for conc in $CONCURRENCY; do
    targets=(--target "direct=$sim/api/v1/chat/completions,$KEY_DIRECT"
        --target "tracker=$tracker/v1/chat/completions,$PROXY_TOKEN,$tr_pid")
    if ((ll_alive)); then
        targets+=(--target "litellm=$litellm/v1/chat/completions,$LITELLM_MASTER,$ll_pid")
    else
        echo "  (LiteLLM is no longer running: $conc-stream run without it)"
    fi
    "$py" "$here/load.py" --concurrency "$conc" --requests "$REQUESTS" --json "$work/results.jsonl" \
        "${targets[@]}" || die "load generator failed at $conc concurrent streams"
    kill -0 "$tr_pid" 2>/dev/null || die "the tracker died during the $conc-stream run; log: $(tail -20 "$work/tracker.log")"
    if ((ll_alive)) && ! kill -0 "$ll_pid" 2>/dev/null; then
        ll_alive=0
        echo "  LiteLLM exited during the $conc-stream run; its log ends with:"
        tail -5 "$work/litellm.log" | sed 's/^/    /'
    fi
done

# --- ledger vs simulator truth ----------------------------------------------------------
curl -fsS -o /dev/null -X POST "$tracker/api/v1/sync" -H "authorization: Bearer $ADMIN_TOKEN" ||
    echo "  (POST /api/v1/sync failed; comparing the ledger as it is)"
curl -fsS "$tracker/api/v1/usage/today" -H "authorization: Bearer $READ_TOKEN" >"$work/today.json" ||
    die "GET /api/v1/usage/today on the tracker failed"
curl -fsS "$sim/__sim/truth" >"$work/truth.json" || die "GET /__sim/truth on the simulator failed"
"$py" - "$work/today.json" "$work/truth.json" "$KEY_TRACKER" "$KEY_LITELLM" <<'EOF'
import hashlib, json, sys
from decimal import Decimal
today = json.load(open(sys.argv[1]), parse_float=Decimal)
truth = json.load(open(sys.argv[2]), parse_float=Decimal)
def served(key):
    h = hashlib.sha256(key.encode()).hexdigest()
    k = next((k for k in truth["keys"] if k["hash"] == h), None)
    return (k["generations"], Decimal(k["cost"])) if k else (0, Decimal(0))
n, cost = served(sys.argv[3])
ln, lcost = served(sys.argv[4])
led_n, led_cost = today["requests"], Decimal(today["raw_cost_usd"])
ok = led_n == n and led_cost == cost
print(f"\nledger check: tracker ledger today {led_n} requests, raw cost {led_cost} USD "
      f"(client cost {today['client_cost_usd']} at markup {today['markup_rate']}); "
      f"simulator served {n} generations, {cost} USD on the tracker's key -> "
      + ("EQUAL" if ok else "MISMATCH"))
print(f"(LiteLLM's key: {ln} generations, {lcost} USD served; LiteLLM kept no ledger: no DB)")
sys.exit(0 if ok else 3)
EOF
