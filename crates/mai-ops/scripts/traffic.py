#!/usr/bin/env python3
"""Synthetic chat traffic through the trackers: several users per client, several models.

usage: traffic.py FLEET_STATE_JSON [--requests N] [--rate PER_SECOND] [--seed S] [--client ID]
Runs until N requests were sent (0 = forever). Prints one line per 20 requests.
"""
import json, random, sys, time, urllib.request, urllib.error, argparse

p = argparse.ArgumentParser()
p.add_argument("state")
p.add_argument("--requests", type=int, default=0)
p.add_argument("--rate", type=float, default=3.0)
p.add_argument("--seed", type=int, default=7)
p.add_argument("--client", help="only this client's tracker")
a = p.parse_args()
state = json.load(open(a.state))
if a.client:
    state["clients"] = [c for c in state["clients"] if c["id"] == a.client]
    if not state["clients"]:
        sys.exit(f"traffic: no client {a.client} in {a.state}")
rng = random.Random(a.seed)
MODELS = ["openai/gpt-4o-mini", "deepseek/deepseek-chat-v3-0324", "anthropic/claude-3.5-sonnet",
          "google/gemini-2.5-flash", "meta-llama/llama-3.3-70b-instruct"]
USERS = [("anna", "Anna Nowak"), ("jan", "Jan Kowalski"), ("ola", "Aleksandra Wisniewska"),
         ("piotr", "Piotr Zielinski"), ("kasia", "Katarzyna Lewandowska")]
PROMPTS = ["Summarise this contract clause.", "Draft a polite reminder e-mail.", "Translate to English: Dzień dobry!",
           "List three risks of this plan.", "Write a haiku about invoices."]
sent = ok = 0
while a.requests == 0 or sent < a.requests:
    c = rng.choice(state["clients"])
    uid, name = rng.choice(USERS[: 2 + (hash(c["id"]) % 4)])
    body = {"model": rng.choice(MODELS), "stream": rng.random() < 0.5,
            "messages": [{"role": "user", "content": rng.choice(PROMPTS) * rng.randint(1, 6)}]}
    req = urllib.request.Request(c["tracker_url"] + "/v1/chat/completions", data=json.dumps(body).encode(),
        headers={"Authorization": "Bearer " + state["proxy_token"], "Content-Type": "application/json",
                 "X-OpenWebUI-User-Id": f"{c['id']}-{uid}", "X-OpenWebUI-User-Email": f"{uid}@{c['id']}.example.pl",
                 "X-OpenWebUI-User-Name": name}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            r.read()
            ok += 1
    except urllib.error.HTTPError as e:
        print(f"traffic: {c['id']}: HTTP {e.code}: {e.read()[:200]!r}", file=sys.stderr)
    except Exception as e:  # tracker restarting, etc.
        print(f"traffic: {c['id']}: {e}", file=sys.stderr)
    sent += 1
    if sent % 20 == 0:
        print(f"traffic: {sent} sent, {ok} ok", flush=True)
    if a.rate > 0:
        time.sleep(rng.expovariate(a.rate))
print(f"traffic: done, {sent} sent, {ok} ok", flush=True)
sys.exit(0 if ok == sent else 1)
