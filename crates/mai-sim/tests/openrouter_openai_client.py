"""A real client library against the OpenRouter simulator: the `openai` package from PyPI.

Usage (CI step, after `cargo build -p mai-sim`):
    python3 -m venv .venv && .venv/bin/pip install openai
    .venv/bin/python crates/mai-sim/tests/openrouter_openai_client.py <path to mai-sim binary>

Starts `mai-sim openrouter` on a free port with keep-alive comments between events,
then checks that the library's SSE parser survives `: OPENROUTER PROCESSING`, reads the
usage chunk (captured shape: one choice with an empty delta), and that the cost seen by
the client equals the simulator's ground truth exactly (decimal text, never floats).
"""

import json
import subprocess
import sys
import urllib.request
from decimal import Decimal

import openai

KEY = "sk-or-v1-" + "ab" * 32


def main() -> int:
    binary = sys.argv[1]
    proc = subprocess.Popen(
        [binary, "openrouter", "--listen", "127.0.0.1:0", "--seed", "5",
         "--keepalive-leading", "3", "--keepalive-every", "2", "--generation-ready-delay", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        base = proc.stdout.readline().strip()
        assert base.startswith("http://127.0.0.1:") and base.endswith("/api/v1"), base
        client = openai.OpenAI(base_url=base, api_key=KEY, max_retries=0)
        msgs = [{"role": "user", "content": "How are invoices computed?"}]

        # Streaming with usage.
        stream = client.chat.completions.create(
            model="anthropic/claude-3.5-sonnet", messages=msgs, stream=True,
            stream_options={"include_usage": True}, extra_body={"usage": {"include": True}, "user": "u-1"},
        )
        text, usage, finish, ids = "", None, None, set()
        for chunk in stream:
            ids.add(chunk.id)
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
                finish = chunk.choices[0].finish_reason or finish
            if chunk.usage is not None:
                usage = chunk.usage
        assert len(ids) == 1 and next(iter(ids)).startswith("gen-"), ids
        assert finish == "stop", finish
        assert text, "content received"
        assert usage is not None, "usage chunk parsed"
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
        streamed_cost = usage.model_extra["cost"]

        # Non-streaming.
        resp = client.chat.completions.with_raw_response.create(
            model="openai/gpt-4o-mini", messages=msgs, extra_body={"user": "u-1"},
        )
        gen_id = resp.headers["x-generation-id"]
        completion = resp.parse()
        assert completion.id == gen_id
        assert completion.choices[0].message.content
        plain_cost = completion.usage.model_extra["cost"]

        # Errors surface as the library's typed exceptions with our envelope.
        try:
            client.chat.completions.create(
                model="openai/gpt-4o-mini", messages=msgs,
                extra_headers={"X-Sim-Fault": "status=429;retry_after=1"},
            )
            raise AssertionError("429 expected")
        except openai.RateLimitError as e:
            assert e.status_code == 429
            assert e.body["code"] == 429 and e.body["message"] == "Provider returned error", e.body

        with urllib.request.urlopen(base.replace("/api/v1", "/__sim/truth")) as r:
            truth = json.loads(r.read())
        costs = [Decimal(g["cost"]) for g in truth["generations"]]
        assert len(costs) == 2, truth
        # The library parses JSON numbers as floats; compare through their repr only.
        assert Decimal(repr(streamed_cost)) == costs[0], (streamed_cost, costs[0])
        assert Decimal(repr(plain_cost)) == costs[1], (plain_cost, costs[1])
        print(f"openai {openai.__version__}: stream + plain + 429 OK; costs {costs[0]} and {costs[1]} USD match the truth")
        return 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
