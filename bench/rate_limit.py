"""Client-side rate limiting against a fake server that enforces a limit (429 beyond it).

The server (another process) enforces LIMIT requests/min (or tokens/min). The client fires CALLS
calls at once through the resilient call path with its limiter set to a share of that limit, and
counts the 429s the server answered and the rate the calls achieved. Targets: zero 429s with the
client at 95% of the server's limit, while achieving at least 90% of it. A misconfigured client
(limit above the server's) shows the adaptive back-off: 429s, then the limiter halves its rate.

    python -m bench.rate_limit [--rpm 1200] [--tpm 120000] [--calls 400]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import urllib.request

from workbench.core.call_record import CallRecord
from workbench.core.httpclient import new_client
from workbench.core.policy import PolicySet
from workbench.core.request import ChatRequest, Params
from workbench.core.resilience.caller import Caller
from workbench.fakeserver.process import fake_server_process

MAX_TOKENS = 100


def limits_state(base: str) -> dict[str, object]:
    with urllib.request.urlopen(f"{base}/_fake/limits") as response:
        state: dict[str, object] = json.load(response)
        return state


def reset(base: str) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{base}/_fake/reset", method="POST")).close()


async def fire(base: str, calls: int, rate_limit: dict[str, float], label: str) -> tuple[float, list[CallRecord]]:
    env = {"WORKBENCH_FAKE_URL": base}
    policies = PolicySet().with_defaults(rate_limit=rate_limit, retry={"max_retries": 6},
                                         breaker={"enabled": False})
    request = ChatRequest.from_prompt("rate limit bench", params=Params(max_tokens=MAX_TOKENS))
    async with new_client() as client:
        caller = Caller(client)
        records = [CallRecord(f"fake/rl@tokens=1,id={label}-{i}", request) for i in range(calls)]
        start = time.perf_counter()
        await asyncio.gather(*(caller.call(r, policies=policies, env=env) for r in records))
        return time.perf_counter() - start, records


def run(base: str, kind: str, limit: float, share: float, calls: int) -> None:
    reset(base)
    seconds, records = asyncio.run(fire(base, calls, {kind: limit * share}, f"{kind}-{share}"))
    state = limits_state(base)
    cost = 1 if kind == "rpm" else sum(e["cost_tokens"] for e in server_log(base, f"{kind}-{share}-")) / calls
    achieved = calls * cost / seconds * 60
    rejected = state["rejected"]
    failed = sum(r.status != "ok" for r in records)
    queue = [r.timing.queue_ms or 0.0 for r in records]
    print(f"  client at {share:.0%} of {limit:.0f} {kind}: {calls} calls in {seconds:.1f} s, "
          f"achieved {achieved:.0f} {kind} = {achieved / limit:.1%} of the limit, 429s: {rejected}, "
          f"failed calls: {failed}, queue p50 {statistics.median(queue):.0f} ms")


def server_log(base: str, marker: str) -> list[dict[str, int]]:
    with urllib.request.urlopen(f"{base}/_fake/log") as response:
        return [e for e in json.load(response) if marker in e["model"] and not e["rate_limited"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rpm", type=float, default=1200)
    parser.add_argument("--tpm", type=float, default=120_000)
    parser.add_argument("--calls", type=int, default=400)
    args = parser.parse_args()
    print("requests/min limit (server: --rpm)")
    with fake_server_process(extra_args=["--rpm", str(args.rpm)]) as server:
        run(server.base_url, "rpm", args.rpm, 0.95, args.calls)
        run(server.base_url, "rpm", args.rpm, 1.20, args.calls)
    print("tokens/min limit (server: --tpm; each call costs its input plus max_tokens)")
    with fake_server_process(extra_args=["--tpm", str(args.tpm)]) as server:
        run(server.base_url, "tpm", args.tpm, 0.95, args.calls // 2)


if __name__ == "__main__":
    main()
