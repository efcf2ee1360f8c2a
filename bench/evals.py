"""Eval runner throughput and memory against the fake server (another process).

CASES tests, each one call to a fake target answering after LATENCY ms, at CONCURRENCY calls in
flight, graded by three assertions (finish-reason, contains-any, latency), every call traced and
every result stored, the response cache off. The ideal wall time is CASES / CONCURRENCY × LATENCY;
target: at most 1.15× that. Scheduling overhead per case = (wall − ideal) × CONCURRENCY / CASES: the
time a worker spends per case besides waiting for the provider. Memory: the live Python heap
(tracemalloc, after a collection) and the resident set after 10%, 50% and 100% of a 10,000-case run
(flat means the runner holds nothing per case; the resident set also holds SQLite's page caches,
which fill up to their limit as the stores grow).

    python -m bench.evals [--cases 1000] [--concurrency 50] [--latency-ms 100] [--memory-cases 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

from workbench.core.evals.model import AssertionSpec, CellResult, Suite, SuitePrompt, SuiteTarget, TestCase
from workbench.core.evals.run_store import EvalStore
from workbench.core.evals.runner import EvalRunner, ResultHook, RunOptions
from workbench.core.httpclient import new_client
from workbench.core.policy import PolicySet
from workbench.core.prompts.model import Prompt, PromptMessage
from workbench.core.resilience.caller import Caller
from workbench.core.traces.writer import TraceWriter
from workbench.fakeserver.process import fake_server_process
from workbench.process_settings import eval_run_settings

CHECKS = (AssertionSpec("finish-reason", "stop"), AssertionSpec("contains-any", ["the", "a", "of", "and"]),
          AssertionSpec("latency", threshold=5000))


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def suite(cases: int, latency_ms: float) -> Suite:
    prompt = Prompt(name="bench", messages=[PromptMessage(role="user", content="Summarise ticket {{n}}")])
    return Suite(name="bench", path="bench.yaml", prompts=(SuitePrompt("bench", prompt),),
                 targets=(SuiteTarget(f"fake/bench@ttft={latency_ms:g},tokens=12", "fake"),),
                 tests=tuple(TestCase({"n": str(i)}, CHECKS, description=f"case {i}") for i in range(cases)))


async def run_once(base: str, folder: Path, cases: int, concurrency: int, latency_ms: float,
                   on_result: ResultHook | None = None) -> tuple[float, float, int]:
    store = EvalStore(folder / "evals.db")
    writer = TraceWriter(folder / "traces.db")
    policies = PolicySet().with_defaults(breaker={"enabled": False})
    runner = EvalRunner(suite(cases, latency_ms), store, options=RunOptions(concurrency=concurrency, use_cache=False),
                        policies=policies, on_result=on_result)
    run = runner.new_run()
    async with new_client() as client:
        start, cpu = time.perf_counter(), time.process_time()
        with eval_run_settings():  # as `workbench eval` does: this script is the entry point
            await runner.run(run, Caller(client), {"WORKBENCH_FAKE_URL": base}, writer)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    writer.close()
    passed = sum(r.passed for r, _ in store.results(run.id))
    store.close()
    return wall, cpu, passed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--latency-ms", type=float, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--memory-cases", type=int, default=10_000)
    args = parser.parse_args()
    ideal = args.cases / args.concurrency * args.latency_ms / 1000
    with fake_server_process() as server:
        walls, cpus = [], []
        for _ in range(args.rounds):
            gc.collect()  # each round as the first run of a process: no garbage left by the one before
            with tempfile.TemporaryDirectory() as tmp:
                wall, cpu, passed = asyncio.run(run_once(server.base_url, Path(tmp), args.cases, args.concurrency,
                                                    args.latency_ms))
            walls.append(wall)
            cpus.append(cpu)
            print(f"  round: {wall:.3f} s wall, {cpu:.3f} s CPU (all threads), {passed}/{args.cases} passed")
        wall = statistics.median(walls)
        overhead_ms = (wall - ideal) * args.concurrency / args.cases * 1000
        print(f"{args.cases} cases, concurrency {args.concurrency}, {args.latency_ms:g} ms latency: "
              f"median wall {wall:.3f} s vs ideal {ideal:.3f} s = {wall / ideal:.3f}× (target ≤ 1.15×); "
              f"scheduling overhead {overhead_ms:.2f} ms per case; client CPU "
              f"{statistics.median(cpus) / args.cases * 1000:.2f} ms per case")

        if args.memory_cases < 10:
            print("memory run skipped: --memory-cases below 10")
            return
        marks = {args.memory_cases * p // 100: p for p in (10, 50, 100)}
        samples: dict[int, tuple[float, float]] = {}
        done = 0

        def sample(_: CellResult) -> None:
            nonlocal done
            done += 1
            if done in marks:
                gc.collect()  # live objects only: cyclic garbage waits for a collection otherwise
                samples[marks[done]] = rss_mib(), tracemalloc.get_traced_memory()[0] / 2**20

        tracemalloc.start()
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(run_once(server.base_url, Path(tmp), args.memory_cases, args.concurrency, args.latency_ms,
                                 sample))
        tracemalloc.stop()
        for label, index in (("Python heap (tracemalloc)", 1), ("RSS, SQLite page caches included", 0)):
            print(f"memory over {args.memory_cases} cases, {label}, MiB: "
                  + ", ".join(f"{p}%: {samples[p][index]:.1f}" for p in sorted(samples))
                  + f"; growth 10%→100%: {samples[100][index] - samples[10][index]:+.1f}")


if __name__ == "__main__":
    main()
