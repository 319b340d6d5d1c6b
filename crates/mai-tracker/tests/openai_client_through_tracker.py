"""A real client library through a real tracker in front of the OpenRouter simulator.

Usage (test.sh's openai stage, after the workspace build):
    $MAI_VENV/bin/python crates/mai-tracker/tests/openai_client_through_tracker.py \
        <path to mai-sim binary> <path to mai-tracker binary>

Starts `mai-sim openrouter` and `mai-tracker` (its upstream: the simulator) on free
ports, then drives the `openai` package from PyPI against the tracker's `/v1`: chat,
legacy completions, Responses (plain and streamed) and embeddings, plain and streamed
where the API streams. Each must reach the client intact (the library parses every
shape and stream event), and the tracker's ledger (its events API) must equal the
simulator's ground truth exactly: the same generation ids, once each, the same costs
as decimal text, all confirmed. Finally a write the tracker does not meter is refused.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from decimal import Decimal

import openai

KEY = "sk-or-v1-" + "cd" * 32
PROXY = "proxy-token-0123456789"
READ = "read-token-0123456789"
ADMIN = "admin-token-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str, token: str):
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def wait_ready(url: str, proc: subprocess.Popen) -> None:
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"mai-tracker exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    raise AssertionError(f"{url} not ready")


def main() -> int:
    sim_bin, tracker_bin = sys.argv[1], sys.argv[2]
    sim = subprocess.Popen(
        [sim_bin, "openrouter", "--listen", "127.0.0.1:0", "--seed", "9",
         "--keepalive-leading", "2", "--keepalive-every", "2", "--generation-ready-delay", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    tracker = None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            sim_base = sim.stdout.readline().strip()
            assert sim_base.startswith("http://127.0.0.1:"), sim_base
            port = free_port()
            env = dict(os.environ)
            env.update({
                "OPENROUTER_API_KEY": KEY,
                "OPENROUTER_BASE_URL": sim_base,
                "MAI_ORG_ID": "acme",
                "MAI_TRACKER_LISTEN": f"127.0.0.1:{port}",
                "MAI_TRACKER_DB": os.path.join(tmp, "acme.db"),
                "MAI_TRACKER_PROXY_TOKEN": PROXY,
                "MAI_TRACKER_READ_TOKEN": READ,
                "MAI_TRACKER_ADMIN_TOKEN": ADMIN,
                "OPENROUTER_USAGE_SYNC_INTERVAL": "0",
            })
            tracker = subprocess.Popen([tracker_bin], env=env, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
            base = f"http://127.0.0.1:{port}"
            wait_ready(f"{base}/healthz", tracker)
            client = openai.OpenAI(base_url=f"{base}/v1", api_key=PROXY, max_retries=0)
            msgs = [{"role": "user", "content": "How are invoices computed?"}]
            seen = {}  # generation id -> what the client saw

            # Chat, streamed (as Open WebUI calls it).
            ids = set()
            for chunk in client.chat.completions.create(
                    model="openai/gpt-4o-mini", messages=msgs, stream=True):
                ids.add(chunk.id)
            assert len(ids) == 1, ids
            seen[ids.pop()] = "chat stream"

            # Legacy completions, plain and streamed.
            raw = client.completions.with_raw_response.create(
                model="openai/gpt-4o-mini", prompt="Invoices are", max_tokens=40)
            c = raw.parse()
            assert c.id == raw.headers["x-generation-id"] and c.choices[0].text, c
            assert c.usage.completion_tokens > 0
            seen[c.id] = "completions"
            text, ids = "", set()
            for chunk in client.completions.create(
                    model="openai/gpt-4o-mini", prompt="Invoices are", stream=True):
                ids.add(chunk.id)
                if chunk.choices:
                    text += chunk.choices[0].text
            assert len(ids) == 1 and text, (ids, text)
            seen[ids.pop()] = "completions stream"

            # Responses, plain and streamed (typed events; usage in response.completed).
            raw = client.responses.with_raw_response.create(
                model="openai/gpt-4o-mini", input="How are invoices computed?")
            r = raw.parse()
            assert r.output_text, r
            assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0, r.usage
            assert raw.headers["x-generation-id"] == r.id
            seen[r.id] = "responses"
            kinds, completed, deltas = [], None, ""
            for ev in client.responses.create(
                    model="openai/gpt-4o-mini", input="How are invoices computed?", stream=True):
                kinds.append(ev.type)
                if ev.type == "response.output_text.delta":
                    deltas += ev.delta
                if ev.type == "response.completed":
                    completed = ev.response
            assert kinds[0] == "response.created" and kinds[-1] == "response.completed", kinds
            assert completed is not None and completed.output_text == deltas
            assert completed.usage.total_tokens == completed.usage.input_tokens + completed.usage.output_tokens
            seen[completed.id] = "responses stream"

            # Embeddings (the library asks for base64 by default and accepts floats).
            raw = client.embeddings.with_raw_response.create(
                model="openai/gpt-4o-mini", input=["invoice", "credit note"])
            e = raw.parse()
            assert len(e.data) == 2 and len(e.data[0].embedding) > 0, e
            assert e.usage.prompt_tokens > 0
            seen[raw.headers["x-generation-id"]] = "embeddings"

            # A write the tracker cannot meter is refused, never forwarded.
            try:
                client.images.generate(model="openai/dall-e-3", prompt="an invoice")
                raise AssertionError("404 expected")
            except openai.NotFoundError as err:
                assert "/v1/images/generations" in str(err) and "/v1/embeddings" in str(err), err

            with urllib.request.urlopen(sim_base.replace("/api/v1", "/__sim/truth")) as t:
                truth = {g["id"]: Decimal(g["cost"]) for g in json.loads(t.read())["generations"]}
            assert set(truth) == set(seen), (sorted(truth), seen)

            # The ledger is written off the request path: wait for all of it.
            deadline = time.time() + 15
            while True:
                events = get_json(f"{base}/api/v1/events?after=0&limit=1000", READ)["events"]
                if len(events) >= len(truth) or time.time() > deadline:
                    break
                time.sleep(0.1)
            ledger = {}
            for ev in events:
                assert ev["generation_id"] not in ledger, f"{ev['generation_id']} metered twice"
                ledger[ev["generation_id"]] = ev
            assert set(ledger) == set(truth), (sorted(ledger), sorted(truth))
            for gid, cost in truth.items():
                ev = ledger[gid]
                assert Decimal(ev["cost_usd"]) == cost, (seen[gid], ev["cost_usd"], cost)
                assert ev["state"] == "confirmed", (seen[gid], ev)
            total = sum(truth.values(), Decimal(0))
            print(f"openai {openai.__version__} through the tracker: {len(truth)} generations "
                  f"({', '.join(seen.values())}) metered once each; ledger {total} USD == simulator's truth")
            return 0
        finally:
            for p in (tracker, sim):
                if p is not None:
                    p.terminate()
                    p.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
