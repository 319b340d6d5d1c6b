"""The real chat app end to end: open-webui (PyPI, pinned) -> a real tracker -> the
OpenRouter simulator, and the tracker's reports against the simulator's truth.

Usage (tests/run-openwebui-e2e.sh runs it; needs the venv of `scripts/setup.sh openwebui`):
    python3 tests/openwebui_e2e.py --bin-dir <cargo target>/debug \
        --open-webui <venv>/bin/open-webui --work <empty dir> [--mode plain|jwt|both]

For each mode, a fresh tracker (its own ledger and OpenRouter key) and a fresh Open WebUI
(its own DATA_DIR: settings given by environment are persisted on first start) are
started, configured as crates/mai-tracker/README.md tells the operator:
  plain  ENABLE_FORWARD_USER_INFO_HEADERS=true: X-OpenWebUI-User-* headers, the name
         percent-encoded by Open WebUI;
  jwt    plus FORWARD_USER_INFO_HEADER_JWT_SECRET = the tracker's MAI_OPENWEBUI_JWT_SECRET:
         one signed X-OpenWebUI-User-Jwt, plain headers ignored by the tracker;
both with OPENAI_API_CONFIGS adding X-Mai-Task ({{TASK}}) and X-Mai-User-Groups
({{USER_GROUPS}}). Users with Polish names sign up, join groups (departments), and chat
through Open WebUI's own API: streaming and not, inside a chat and outside one, plus
title generation (a background task, a separate paid request). Then, exactly (decimal
text, never floats):
  by-user   every user named correctly (Polish letters intact), cost per user = the
            simulator's cost for that user's id (the `user` the tracker sends upstream);
  by-task   "title_generation" = the simulator's cost of the title calls' generations,
            the user's own messages = the rest; requests counted per kind;
  by-group  each department = the sum over its members;
  by-chat   the chat's requests and cost;
  totals    every report sums to the simulator's total for this tracker's key.
In jwt mode a request carrying forged plain headers and no JWT is refused (401) and
spends nothing upstream.
"""

import argparse
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import defaultdict
from decimal import Decimal

PROXY_TOKEN = "owui-e2e-proxy-token-0001"
READ_TOKEN = "owui-e2e-read-token-00001"
ADMIN_TOKEN = "owui-e2e-admin-token-0001"
JWT_SECRET = "owui-e2e-jwt-secret-with-enough-entropy-0001"
PASSWORD = "Haslo-123-abc"
MODEL = "openai/gpt-4o-mini"
# Name, email, departments. Polish letters in names and in a group name on purpose.
USERS = [
    ("Zofia Łukasiewicz", "zofia@firma.pl", ["Księgowość"]),
    ("Łukasz Żółćiński", "lukasz@firma.pl", ["Sprzedaż", "Księgowość"]),
    ("Anna Nowak", "anna@firma.pl", []),
]
GROUPS = ["Księgowość", "Sprzedaż"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, token=None, headers=None, timeout=120):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, method=method, data=data)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait_for(url, what, proc, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.25)
    raise SystemExit(f"{what} did not answer {url} within {seconds} s")


class Procs:
    def __init__(self):
        self.procs = []

    def start(self, args, env, log_path):
        log = open(log_path, "w")
        p = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def run_mode(mode, args, procs, sim_base, seed_byte):
    work = os.path.join(args.work, mode)
    os.makedirs(work, exist_ok=True)
    key = "sk-or-v1-" + (seed_byte * 32)
    key_hash = hashlib.sha256(key.encode()).hexdigest()

    # ---- the tracker, configured as its README says
    tport = free_port()
    tenv = dict(os.environ,
                MAI_ORG_ID=f"owui-{mode}", MAI_TRACKER_LISTEN=f"127.0.0.1:{tport}",
                MAI_TRACKER_DB=os.path.join(work, "tracker.sqlite"),
                MAI_TRACKER_PROXY_TOKEN=PROXY_TOKEN, MAI_TRACKER_READ_TOKEN=READ_TOKEN,
                MAI_TRACKER_ADMIN_TOKEN=ADMIN_TOKEN, OPENROUTER_API_KEY=key,
                OPENROUTER_BASE_URL=sim_base, RUST_LOG="info")
    if mode == "jwt":
        tenv["MAI_OPENWEBUI_JWT_SECRET"] = JWT_SECRET
    tracker = procs.start([os.path.join(args.bin_dir, "mai-tracker")], tenv,
                          os.path.join(work, "tracker.log"))
    tbase = f"http://127.0.0.1:{tport}"
    wait_for(tbase + "/readyz", "mai-tracker", tracker, 30)

    # ---- the real Open WebUI, offline, as ../shared/specs/openwebui.md starts it
    wport = free_port()
    wenv = dict(os.environ,
                DATA_DIR=os.path.join(work, "open-webui"), OFFLINE_MODE="true",
                HF_HUB_OFFLINE="1", ENABLE_OLLAMA_API="false",
                ENABLE_FORWARD_USER_INFO_HEADERS="true", WEBUI_SECRET_KEY="owui-e2e-secret",
                BYPASS_MODEL_ACCESS_CONTROL="true",
                OPENAI_API_BASE_URL=f"{tbase}/v1", OPENAI_API_KEY=PROXY_TOKEN,
                OPENAI_API_CONFIGS=json.dumps({"0": {"headers": {
                    "X-Mai-Task": "{{TASK}}", "X-Mai-User-Groups": "{{USER_GROUPS}}"}}}))
    if mode == "jwt":
        wenv["FORWARD_USER_INFO_HEADER_JWT_SECRET"] = JWT_SECRET
    webui = procs.start([args.open_webui, "serve", "--host", "127.0.0.1", "--port", str(wport)],
                        wenv, os.path.join(work, "open-webui.log"))
    wbase = f"http://127.0.0.1:{wport}"
    t0 = time.monotonic()
    wait_for(wbase + "/health", "open-webui", webui, 240)
    print(f"[{mode}] open-webui {wbase} up in {time.monotonic() - t0:.0f} s, tracker {tbase}")

    def ok(status_body, what):
        status, body = status_body
        check(status == 200, f"[{mode}] {what}: HTTP {status}: {body[:500]}")
        return json.loads(body) if body and body != "null" else None

    # ---- users and departments, through Open WebUI's own API
    admin = ok(http("POST", wbase + "/api/v1/auths/signup",
                    {"name": "Administrator", "email": "admin@firma.pl", "password": PASSWORD}),
               "admin sign-up")
    atok = admin["token"]
    users = {}
    for name, email, _ in USERS:
        u = ok(http("POST", wbase + "/api/v1/auths/add",
                    {"name": name, "email": email, "password": PASSWORD, "role": "user"}, atok),
               f"add user {email}")
        users[email] = {"id": u["id"], "name": name}
    for g in GROUPS:
        grp = ok(http("POST", wbase + "/api/v1/groups/create", {"name": g, "description": g}, atok),
                 f"create group {g}")
        members = [users[e]["id"] for _, e, gs in USERS if g in gs]
        ok(http("POST", wbase + f"/api/v1/groups/id/{grp['id']}/users/add", {"user_ids": members}, atok),
           f"add members to {g}")

    # ---- chats: streaming and not, in a chat and outside one, plus title generation
    title_ids, chats = [], {}
    expected_requests = 0
    for name, email, _ in USERS:
        s = ok(http("POST", wbase + "/api/v1/auths/signin", {"email": email, "password": PASSWORD}),
               f"sign in {email}")
        tok = s["token"]
        msgs = [{"role": "user", "content": f"Dzień dobry, tu {name}. Ile kosztuje faktura?"}]
        # Outside a chat, not streamed.
        r = ok(http("POST", wbase + "/api/chat/completions",
                    {"model": MODEL, "messages": msgs, "stream": False}, tok), "chat")
        check(r["id"].startswith("gen-"), f"[{mode}] reply id {r['id']}")
        # Outside a chat, streamed: read the SSE to its end.
        status, body = http("POST", wbase + "/api/chat/completions",
                            {"model": MODEL, "messages": msgs, "stream": True}, tok)
        check(status == 200 and "data: [DONE]" in body, f"[{mode}] streamed chat: {status} {body[-300:]}")
        # Inside a chat: the chat id reaches the tracker (X-OpenWebUI-Chat-Id).
        chat = ok(http("POST", wbase + "/api/v1/chats/new",
                       {"chat": {"title": "Faktury", "messages": []}}, tok), "new chat")
        cid = chat["id"]
        ok(http("POST", wbase + "/api/chat/completions",
                {"model": MODEL, "messages": msgs, "stream": False, "chat_id": cid,
                 "id": str(uuid.uuid4())}, tok), "chat in a chat")
        # The title of that chat: a background task, billed like any request.
        t = ok(http("POST", wbase + "/api/v1/tasks/title/completions",
                    {"model": MODEL, "messages": msgs, "chat_id": cid}, tok), "title generation")
        check(t["id"].startswith("gen-"), f"[{mode}] title reply {t}")
        title_ids.append(t["id"])
        chats[cid] = email
        expected_requests += 4

    # ---- forged identity in jwt mode: refused, nothing spent upstream
    truth_before = ok(http("GET", sim_base.replace("/api/v1", "/__sim/truth")), "sim truth")
    if mode == "jwt":
        status, body = http("POST", tbase + "/v1/chat/completions",
                            {"model": MODEL, "messages": [{"role": "user", "content": "x"}]},
                            PROXY_TOKEN, headers={"X-OpenWebUI-User-Id": users["anna@firma.pl"]["id"],
                                                  "X-OpenWebUI-User-Email": "anna@firma.pl",
                                                  "X-OpenWebUI-User-Name": "Anna Nowak"})
        check(status == 401, f"[jwt] forged plain headers: expected 401, got {status} {body[:300]}")
        print(f"[jwt] forged plain headers refused: {body[:160]}")

    # ---- truth
    truth = ok(http("GET", sim_base.replace("/api/v1", "/__sim/truth")), "sim truth")
    check(len(truth["generations"]) == len(truth_before["generations"]),
          f"[{mode}] a refused request reached the simulator")
    gens = [g for g in truth["generations"] if g["key_hash"] == key_hash]
    check(len(gens) == expected_requests,
          f"[{mode}] simulator saw {len(gens)} generations, expected {expected_requests}")
    cost = {g["id"]: Decimal(str(g["cost"])) for g in gens}
    total = sum(cost.values(), Decimal(0))
    by_user_truth = defaultdict(Decimal)
    for g in gens:
        by_user_truth[g["external_user"]] += cost[g["id"]]
    title_truth = sum((cost[i] for i in title_ids), Decimal(0))

    # ---- the tracker's reports (the ledger writes asynchronously: wait until it holds all)
    day = time.strftime("%Y-%m-%d")  # Warsaw day; widen by a day on each side to be safe
    q = "?from=" + time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86400)) \
        + "&to=" + time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))
    deadline = time.monotonic() + 30
    while True:
        by_user = ok(http("GET", tbase + "/api/v1/usage/by-user" + q, token=READ_TOKEN), "by-user")
        n = sum(r["requests"] for r in by_user["users"])
        if n == expected_requests or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    check(n == expected_requests, f"[{mode}] tracker by-user counts {n} requests, expected {expected_requests}")

    rows = {r["user_id"]: r for r in by_user["users"]}
    for name, email, _ in USERS:
        u = users[email]
        r = rows.get(u["id"])
        check(r is not None, f"[{mode}] no by-user row for {email} ({u['id']}): {by_user}")
        check(r["name"] == name, f"[{mode}] name of {email}: tracker has {r['name']!r}, Open WebUI {name!r}")
        check(r["email"] == email, f"[{mode}] email {r['email']!r} != {email!r}")
        check(Decimal(r["raw_cost_usd"]) == by_user_truth[u["id"]],
              f"[{mode}] cost of {email}: tracker {r['raw_cost_usd']} != simulator {by_user_truth[u['id']]}")
    check(sum(Decimal(r["raw_cost_usd"]) for r in by_user["users"]) == total, f"[{mode}] by-user total")

    by_task = ok(http("GET", tbase + "/api/v1/usage/by-task" + q, token=READ_TOKEN), "by-task")
    trows = {r["key"]: r for r in by_task["tasks"]}
    check(set(trows) == {"chat", "title_generation"}, f"[{mode}] task kinds {sorted(trows)}")
    check(trows["title_generation"]["requests"] == len(USERS), f"[{mode}] title requests {trows['title_generation']}")
    check(Decimal(trows["title_generation"]["raw_cost_usd"]) == title_truth,
          f"[{mode}] title cost {trows['title_generation']['raw_cost_usd']} != {title_truth}")
    check(Decimal(trows["chat"]["raw_cost_usd"]) == total - title_truth, f"[{mode}] own-message cost")

    by_group = ok(http("GET", tbase + "/api/v1/usage/by-group" + q, token=READ_TOKEN), "by-group")
    grows = {r["key"]: r for r in by_group["groups"]}
    expect_group = defaultdict(Decimal)
    for name, email, gs in USERS:
        label = ", ".join(sorted(gs)) if gs else "(no group)"
        expect_group[label] += by_user_truth[users[email]["id"]]
    check(set(grows) == set(expect_group), f"[{mode}] groups {sorted(grows)} != {sorted(expect_group)}")
    for g, c in expect_group.items():
        check(Decimal(grows[g]["raw_cost_usd"]) == c, f"[{mode}] group {g!r}: {grows[g]['raw_cost_usd']} != {c}")

    by_chat = ok(http("GET", tbase + "/api/v1/usage/by-chat" + q, token=READ_TOKEN), "by-chat")
    crows = {r["key"]: r for r in by_chat["chats"]}
    for cid in chats:
        check(cid in crows and crows[cid]["requests"] == 2, f"[{mode}] chat {cid}: {crows.get(cid)}")
    check(sum(Decimal(r["raw_cost_usd"]) for r in by_chat["chats"]) == total, f"[{mode}] by-chat total")
    check(sum(r["requests"] for r in by_chat["chats"]) == expected_requests, f"[{mode}] by-chat requests")

    print(f"[{mode}] ok: {expected_requests} generations, ${total} in all, "
          f"title generation ${title_truth}; users {[users[e]['name'] for _, e, _ in USERS]}")
    # Leave the next mode a quiet machine.
    for p in (webui, tracker):
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(timeout=30)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--open-webui", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--mode", default="both", choices=["plain", "jwt", "both"])
    args = ap.parse_args()
    procs = Procs()
    try:
        sim = subprocess.Popen(
            [os.path.join(args.bin_dir, "mai-sim"), "openrouter", "--listen", "127.0.0.1:0",
             "--seed", "11", "--generation-ready-delay", "0"],
            stdout=subprocess.PIPE, stderr=open(os.path.join(args.work, "sim.log"), "w"),
            text=True, start_new_session=True)
        procs.procs.append(sim)
        sim_base = sim.stdout.readline().strip()
        check(sim_base.endswith("/api/v1"), f"simulator printed {sim_base!r}")
        modes = ["plain", "jwt"] if args.mode == "both" else [args.mode]
        for i, mode in enumerate(modes):
            run_mode(mode, args, procs, sim_base, ["c1", "c2"][i])
    finally:
        procs.stop_all()
    print("openwebui e2e: all modes passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
