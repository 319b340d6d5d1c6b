#!/usr/bin/env python3
"""Streaming load generator for deploy/bench/litellm-compare.sh.

Drives the same closed-loop load (N concurrent streams, a fixed number of requests)
at several targets one after the other, samples each proxy's RSS while it is under
load, and prints one comparison table. Only loopback URLs are accepted, so a typo
cannot send load anywhere else.

    load.py --target direct=URL,TOKEN[,PID] --target tracker=URL,TOKEN,PID ...
            --concurrency 100 --requests 2000 --json out.json

Money is never touched here; latencies are floats in seconds, which is fine for timing.
"""

import argparse
import asyncio
import json
import os
import sys
import time
from urllib.parse import urlparse

import aiohttp

try:
    import uvloop
except ImportError:  # still works, only a little slower
    uvloop = None

BODY = json.dumps(
    {
        "model": "openai/gpt-4o-mini",
        "stream": True,
        "max_tokens": 32,
        "messages": [{"role": "user", "content": "benchmark"}],
    }
).encode()


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_kib(pid):
    """RSS of a process and its descendants (LiteLLM may fork workers)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss_kib(p)
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return total


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[round((len(v) - 1) * p)]


async def one(session, url, token, timeout):
    t0 = time.perf_counter()
    first = None
    async with session.post(
        url,
        data=BODY,
        headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
        timeout=aiohttp.ClientTimeout(total=timeout),
    ) as r:
        if r.status != 200:
            await r.read()
            raise RuntimeError(f"HTTP {r.status}")
        saw_done = False
        async for chunk in r.content.iter_any():
            if first is None:
                first = time.perf_counter() - t0
            if b"[DONE]" in chunk:
                saw_done = True
        if not saw_done:
            raise RuntimeError("stream ended without [DONE]")
    return first, time.perf_counter() - t0


async def run(url, token, concurrency, requests, timeout, pid=None):
    conn = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    ttfb, total, errors = [], [], {}
    peak = [0]
    nxt = [0]

    async def worker(session):
        while nxt[0] < requests:
            nxt[0] += 1
            try:
                a, b = await one(session, url, token, timeout)
                ttfb.append(a)
                total.append(b)
            except Exception as e:  # counted and shown, never hidden
                k = type(e).__name__ + (f": {e}" if str(e) else "")
                errors[k[:80]] = errors.get(k[:80], 0) + 1

    async def sampler():
        while True:
            peak[0] = max(peak[0], tree_rss_kib(pid))
            await asyncio.sleep(0.05)

    async with aiohttp.ClientSession(connector=conn) as session:
        s = asyncio.create_task(sampler()) if pid else None
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        wall = time.perf_counter() - t0
        if s:
            s.cancel()
    return {
        "ok": len(total),
        "errors": errors,
        "wall_s": wall,
        "rps": len(total) / wall if wall else 0.0,
        "ttfb_p50": pct(ttfb, 0.5),
        "ttfb_p99": pct(ttfb, 0.99),
        "total_p50": pct(total, 0.5),
        "total_p99": pct(total, 0.99),
        "rss_peak_kib": peak[0] if pid else None,
    }


def parse_target(s):
    name, _, rest = s.partition("=")
    parts = rest.split(",")
    if not name or len(parts) not in (2, 3):
        sys.exit(f"load.py: bad --target {s!r}: expected NAME=URL,TOKEN[,PID]")
    url = parts[0]
    host = urlparse(url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit(f"load.py: refusing target {url!r}: only loopback URLs are allowed")
    return name, url, parts[1], int(parts[2]) if len(parts) == 3 else None


def ms(x):
    return f"{x * 1000:9.2f}"


def table(title, results, base="direct"):
    print(f"\n== {title} ==")
    print(
        f"{'path':<9}{'ok':>6}{'err':>6}{'req/s':>8}"
        f"{'TTFB p50':>10}{'p99':>10}{'total p50':>10}{'p99':>10}"
        f"{'+TTFB p50':>10}{'p99':>10}{'+tot p50':>10}{'p99':>10}{'RSS peak':>11}"
    )
    d = results.get(base)
    for name, r in results.items():
        if r is None:
            print(f"{name:<9}  skipped")
            continue
        added = ""
        for k in ("ttfb_p50", "ttfb_p99", "total_p50", "total_p99"):
            added += f"{(r[k] - d[k]) * 1000:+10.2f}" if d and name != base else f"{'':>10}"
        rss = f"{r['rss_peak_kib'] / 1024:7.1f} MiB" if r["rss_peak_kib"] else f"{'-':>11}"
        print(
            f"{name:<9}{r['ok']:>6}{sum(r['errors'].values()):>6}{r['rps']:>8.0f}"
            f" {ms(r['ttfb_p50'])} {ms(r['ttfb_p99'])} {ms(r['total_p50'])} {ms(r['total_p99'])}"
            f"{added}{rss}"
        )
    for name, r in results.items():
        if r and r["errors"]:
            print(f"  {name} errors: {r['errors']}")
    print("  (latencies in ms; + = added vs direct)")
    t, l = results.get("tracker"), results.get("litellm")
    if t and l and d:
        def ratio(k):
            a, b = l[k] - d[k], t[k] - d[k]
            return f"{a / b:.1f}x" if b > 0 else f"n/a (tracker {b * 1000:+.2f} ms)"

        thr = f"; tracker throughput {t['rps'] / l['rps']:.1f}x LiteLLM's" if l["rps"] else ""
        print(
            "  LiteLLM/tracker: added TTFB p50 "
            + ratio("ttfb_p50") + ", p99 " + ratio("ttfb_p99")
            + "; added total p50 " + ratio("total_p50") + ", p99 " + ratio("total_p99")
            + thr
        )
        print(
            f"  LiteLLM/tracker absolute: TTFB p50 {l['ttfb_p50'] / t['ttfb_p50']:.1f}x,"
            f" total p50 {l['total_p50'] / t['total_p50']:.1f}x, total p99 {l['total_p99'] / t['total_p99']:.1f}x"
        )
        if t["rss_peak_kib"] and l["rss_peak_kib"]:
            print(f"  LiteLLM/tracker RSS peak: {l['rss_peak_kib'] / t['rss_peak_kib']:.1f}x")


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", action="append", required=True, type=parse_target)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--timeout", type=float, default=120.0, help="per request, seconds")
    ap.add_argument("--json", help="append the results as one JSON line to this file")
    a = ap.parse_args()
    if a.requests > 100_000 or a.concurrency > 5_000:
        sys.exit("load.py: bounded load only: --requests <= 100000, --concurrency <= 5000")
    results = {}
    for name, url, token, pid in a.target:
        # Warm-up: fill connection pools and let the target allocate what it keeps.
        await run(url, token, min(a.concurrency, 100), min(a.concurrency, 100), a.timeout)
        print(f"  {name}: {a.requests} requests at {a.concurrency} concurrent …", file=sys.stderr)
        results[name] = await run(url, token, a.concurrency, a.requests, a.timeout, pid)
        if pid:
            results[name]["rss_after_kib"] = tree_rss_kib(pid)
    table(f"{a.concurrency} concurrent streams, {a.requests} requests per path", results)
    if a.json:
        with open(a.json, "a") as f:
            f.write(json.dumps({"concurrency": a.concurrency, "results": results}) + "\n")


if __name__ == "__main__":
    if uvloop:
        uvloop.install()
    asyncio.run(main())
