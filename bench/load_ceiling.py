"""The load generator's own ceiling: how many streaming calls a second ``workbench load`` sustains against the fake
server (another process) on this machine, and how late its schedule starts them.

Each step runs the generator exactly as the command does (:class:`~workbench.core.load.generator.LoadRun` on one
loop, the resilient call path, every call settled and written to a real trace log by the background writer, the
process settings of a run) at an open-loop RATE for DURATION seconds, then prints the rate achieved, the calls that
ended ok, the schedule's lateness (start minus due: p50, p99, max), the most calls in flight and the client's CPU
(process time over wall time: 2.0 is both cores). The ceiling is the fastest step that kept within 1 % of its rate
with a p99 lateness under 50 ms.

    python -m bench.load_ceiling [--rates 100,250,500,750] [--duration 10] [--tokens 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

from workbench.core.httpclient import LOAD_LIMITS, new_client
from workbench.core.load.generator import LoadRun, Planned
from workbench.core.load.schedule import OpenLoop
from workbench.core.load.stats import percentiles
from workbench.core.policy import PolicySet
from workbench.core.request import ChatRequest, Params
from workbench.core.resilience.caller import Caller
from workbench.core.traces.redact import Redactor
from workbench.core.traces.writer import TraceWriter
from workbench.fakeserver.process import fake_server_process
from workbench.process_settings import eval_run_settings

LATENESS_P99_MS = 50.0


async def step(base: str, rate: float, duration: float, tokens: int, traces: Path) -> dict[str, object]:
    request = ChatRequest.from_prompt("load ceiling bench", params=Params(max_tokens=64))
    plan = [Planned(f"fake/ceiling@tokens={tokens}", request)]
    policies = PolicySet().with_defaults(breaker={"enabled": False})
    load = LoadRun(plan, OpenLoop(rate, duration), policies=policies)
    writer = TraceWriter(traces, Redactor())
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            await asyncio.sleep(0.05)
            peak = max(peak, load.stats.sent - len(load.stats.calls))

    try:
        async with new_client(limits=LOAD_LIMITS) as client:
            watcher = asyncio.create_task(watch())
            cpu, wall = time.process_time(), time.perf_counter()
            await load.run(Caller(client), {"WORKBENCH_FAKE_URL": base}, writer)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            watcher.cancel()
    finally:
        writer.close()
    stats = load.stats
    span = (stats.last_sent or 0) - (stats.first_sent or 0)
    achieved = (stats.sent - 1) / span if span > 0 else 0.0
    late = percentiles(stats.lateness_ms)
    ok = sum(c.status == "ok" for c in stats.calls)
    errors = Counter(c.error_class for c in stats.calls if c.status != "ok")
    return {"rate": rate, "achieved": round(achieved, 1), "calls": stats.sent, "ok": ok, "errors": dict(errors),
            "lateness_p50_ms": round(late["p50"] or 0, 2), "lateness_p99_ms": round(late["p99"] or 0, 2),
            "lateness_max_ms": round(max(stats.lateness_ms, default=0), 2), "in_flight_max": peak,
            "client_cpu": round(cpu / wall, 2),
            "kept_up": achieved >= 0.99 * rate and (late["p99"] or 0) < LATENESS_P99_MS and ok == stats.sent}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="100,250,500,750", help="open-loop rates to try, per second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of each step")
    parser.add_argument("--tokens", type=int, default=16, help="streamed tokens of each reply")
    args = parser.parse_args()
    results = []
    with fake_server_process() as server, tempfile.TemporaryDirectory() as folder, eval_run_settings():
        for n, rate in enumerate(float(r) for r in args.rates.split(",")):
            result = asyncio.run(step(server.base_url, rate, args.duration, args.tokens,
                                      Path(folder) / f"traces-{n}.db"))
            print(json.dumps(result), flush=True)
            results.append(result)
    kept = [float(str(r["rate"])) for r in results if r["kept_up"]]
    print(json.dumps({"ceiling_per_s": max(kept) if kept else None}))


if __name__ == "__main__":
    main()
