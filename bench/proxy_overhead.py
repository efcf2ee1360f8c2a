"""What ``workbench proxy`` adds to a streamed call, side by side in one run: TTFT through the proxy minus TTFT
straight from the provider at 50 concurrent streams, and the CPU the proxy spends per event it relays.

The fake server and the proxy each run in their own process (the proxy as ``workbench proxy --port 0``, its
trace log in a temporary directory). Rounds alternate: 50 concurrent OpenAI chat streams straight to the fake
server, then 50 through the proxy (with ``--baseline``, the two proxies take turns to come second): 50 workers,
each streaming 3 calls one after the other, their starts spread over one call's length, so that about 50 streams
are open at any time (not 50 requests in the same millisecond). Each call has a server-side TTFT of ``--ttft`` ms
and paced tokens (one event per chunk: the proxy's per-chunk path at its busiest), and asks for the provider's
usage (``include_usage``: the proxy estimates none). TTFT is measured by the client: request sent → the first
chunk holding text. The proxy's CPU (user + system, from ``/proc/PID/stat``: Linux) is read before and after the
proxied rounds and divided by the events it relayed; the client's own CPU per event is shown for both ways.
Targets: p99 TTFT added ≤ 1 ms; proxy CPU per event ≤ 20 µs.

    python -m bench.proxy_overhead [--streams 50] [--rounds 10] [--tokens 100] [--ttft 50] [--tps 100]
                                   [--baseline DIR]

``--baseline DIR``: a third way in every round, the proxy of another version (its ``workbench`` package in DIR,
e.g. ``git archive REV workbench | tar -x -C DIR``), so that a change is compared with what it replaced under
the same load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2

from workbench.core.capture.server import event_loop
from workbench.fakeserver.process import fake_server_process

STREAMS_PER_WORKER = 3
_TEXT = re.compile(rb'"content":"[^"]')
_TICK_S = 1 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * _TICK_S


@contextlib.contextmanager
def proxy_process(upstream: str, source: Path | None = None) -> Iterator[tuple[str, int]]:
    """``workbench proxy --port 0`` in front of ``upstream``: its base URL and pid; ``source``: a directory
    holding another version's ``workbench`` package, run instead of this one."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "OPENAI_BASE_URL": f"{upstream}/v1", "WORKBENCH_TRACES": f"{tmp}/traces.db",
               "WORKBENCH_LOG_DIR": f"{tmp}/logs"}
        if source is not None:
            env["PYTHONPATH"] = os.pathsep.join((str(source.resolve()), *env.get("PYTHONPATH", "").split(os.pathsep)))
        process = subprocess.Popen([sys.executable, "-m", "workbench", "proxy", "--port", "0"], env=env, cwd=tmp,
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            if "listening on " not in line:
                raise RuntimeError(f"the proxy did not start (it printed {line!r})")
            yield line.split("listening on ", 1)[1].split()[0], process.pid
        finally:
            process.terminate()
            process.wait(timeout=60)


async def stream(client: httpx2.AsyncClient, url: str, model: str) -> tuple[float, int]:
    """One streamed call: its TTFT in ms (request sent → first chunk with text) and its events."""
    body = {"model": model, "messages": [{"role": "user", "content": "Count"}], "stream": True,
            "stream_options": {"include_usage": True}}  # the provider's usage: the proxy estimates none
    started = time.perf_counter()
    ttft: float | None = None
    events, last = 0, b""
    async with client.stream("POST", f"{url}/chat/completions", json=body) as response:
        assert response.status_code == 200, response.status_code
        async for chunk in response.aiter_raw():
            if ttft is None and _TEXT.search(chunk):
                ttft = (time.perf_counter() - started) * 1000
            events += (last + chunk).count(b"\n\n")
            last = chunk[-1:]
    assert ttft is not None
    return ttft, events


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def measure(ways: dict[str, tuple[str, int | None]], args: argparse.Namespace) -> dict[str, object]:
    """``ways``: name → (base URL, the pid of the proxy serving it, or None when straight to the server)."""
    model = f"bench@tokens={args.tokens},ttft={args.ttft},tps={args.tps}"
    limits = httpx2.Limits(max_connections=args.streams * 2 * len(ways),
                           max_keepalive_connections=args.streams * 2 * len(ways))
    ttfts: dict[str, list[float]] = {way: [] for way in ways}
    client_cpu = dict.fromkeys(ways, 0.0)
    events = dict.fromkeys(ways, 0)
    proxy_cpu = dict.fromkeys(ways, 0.0)
    async with httpx2.AsyncClient(timeout=120, limits=limits) as client:
        for url, _ in ways.values():  # warm-up: connections, the proxy's imports and pool
            await asyncio.gather(*(stream(client, url, model) for _ in range(args.streams)))
        period_s = (args.ttft + args.tokens / args.tps * 1000) / 1000

        async def worker(index: int, url: str) -> list[tuple[float, int]]:
            """``STREAMS_PER_WORKER`` streams one after the other, the first after this worker's share of a
            stream's length: the workers' streams overlap evenly, ``--streams`` open at any time."""
            await asyncio.sleep(index * period_s / args.streams)
            return [await stream(client, url, model) for _ in range(STREAMS_PER_WORKER)]

        order = list(ways)
        for _ in range(args.rounds):
            for way in order:  # the proxied ways take turns to come right after the direct one
                url, pid = ways[way]
                before, proxy_before = time.process_time(), cpu_s(pid) if pid is not None else 0.0
                results = [one for ones in await asyncio.gather(*(worker(i, url) for i in range(args.streams)))
                           for one in ones]
                client_cpu[way] += time.process_time() - before
                if pid is not None:
                    proxy_cpu[way] += cpu_s(pid) - proxy_before
                ttfts[way] += [ttft for ttft, _ in results]
                events[way] += sum(n for _, n in results)
            order[1:] = order[2:] + order[1:2]
    return {"ttfts": ttfts, "client_cpu": client_cpu, "events": events, "proxy_cpu": proxy_cpu}


def report(args: argparse.Namespace, result: dict[str, object]) -> None:
    ttfts: dict[str, list[float]] = result["ttfts"]  # type: ignore[assignment]
    client_cpu: dict[str, float] = result["client_cpu"]  # type: ignore[assignment]
    events: dict[str, int] = result["events"]  # type: ignore[assignment]
    proxy_cpu: dict[str, float] = result["proxy_cpu"]  # type: ignore[assignment]
    print(f"{args.streams} concurrent streams ({STREAMS_PER_WORKER} a worker) x {args.rounds} rounds each way, "
          f"{args.tokens} tokens at {args.tps} tokens/s, server TTFT {args.ttft} ms; load average "
          f"{' '.join(f'{n:.2f}' for n in os.getloadavg())}")
    p50 = {way: statistics.median(v) for way, v in ttfts.items()}
    p99 = {way: percentile(v, 0.99) for way, v in ttfts.items()}
    per_event = {way: proxy_cpu[way] / events[way] * 1e6 for way in ttfts}
    for way in ttfts:
        proxy = f"   proxy CPU {per_event[way]:5.1f} µs/event" if way != "direct" else ""
        print(f"  {way:<8} TTFT p50 {p50[way]:7.2f} ms   p99 {p99[way]:7.2f} ms   client CPU "
              f"{client_cpu[way] / events[way] * 1e6:5.1f} µs/event{proxy}")
    added_p50, added_p99 = p50["proxy"] - p50["direct"], p99["proxy"] - p99["direct"]
    print(f"  added by the proxy: TTFT p50 {added_p50:+.2f} ms, p99 {added_p99:+.2f} ms (target p99 <= 1 ms: "
          f"{'met' if added_p99 <= 1 else 'NOT met'})")
    print(f"  proxy CPU {per_event['proxy']:.1f} µs per relayed event ({events['proxy']} events; target <= 20 µs: "
          f"{'met' if per_event['proxy'] <= 20 else 'NOT met'})")
    if "baseline" in per_event:
        print(f"  proxy CPU per event, this version / the baseline's: {per_event['proxy'] / per_event['baseline']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--ttft", type=float, default=50.0, help="the server's TTFT, ms")
    parser.add_argument("--tps", type=float, default=100.0, help="tokens per second after the first")
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="a directory holding another version's workbench package (e.g. from `git archive`): "
                             "its proxy measured in the same rounds")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(fake_server_process())
        proxied, pid = stack.enter_context(proxy_process(server.base_url))
        ways: dict[str, tuple[str, int | None]] = {"direct": (f"{server.base_url}/v1", None),
                                                   "proxy": (f"{proxied}/openai/v1", pid)}
        if args.baseline is not None:
            base, base_pid = stack.enter_context(proxy_process(server.base_url, args.baseline))
            ways["baseline"] = (f"{base}/openai/v1", base_pid)
        with asyncio.Runner(loop_factory=event_loop) as runner:  # the proxy's loop: the client's CPU is lighter
            result = runner.run(measure(ways, args))
    report(args, result)


if __name__ == "__main__":
    main()
