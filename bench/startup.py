"""Start-up and exit cost of ``workbench run``, side by side with a bare httpx2 script.

One fake provider server runs in its own process for the whole benchmark (``WORKBENCH_FAKE_URL`` points
both sides at it). Each run is a fresh process, timed from outside:

* **start → first byte**: the command was started (``time.monotonic_ns()`` right before ``Popen``) →
  the server received the first bytes of the first request (its log, ``received_ns``);
* **last end → exit**: the server wrote the last token of the last stream (``last_token_ns``) → the
  process had exited (``wait`` returned);
* **wall**: start → exit.

Both clocks are the system's ``CLOCK_MONOTONIC``, so the stamps compare across processes. Groups:

* ``workbench run hi -m fake/x --json`` (1 target);
* the same with 16 targets mixing the five wires (``fake``, ``fake-anthropic``, ``fake-gemini``,
  ``fake-ollama``, ``fake-responses``): ``-m fake/x1 -m fake-anthropic/x2 ... -m fake/x16``;
* 16 targets that make settling work: 12 of the above, 2 whose stream reports no usage
  (``@usage=0``: a tokenizer estimate) and 2 ``openai/gpt-4o-mini`` served by the fake server through
  ``OPENAI_BASE_URL`` (priced from the genai-prices data); the fake streams take ~1 ms, less than
  loading a tokenizer or the price data, so this is the worst case for settling;
* the same 16 paced as a model would stream (``@tps=64``: 32 tokens in 0.5 s).

Each group also runs ``bench/bare_stream.py``: the very same requests (URL, headers, body as the
providers build them) POSTed with ``httpx2.AsyncClient``, every stream read to its end; nothing else
imported. With ``--before DIR`` each group also runs ``workbench run`` from another checkout (``DIR``
first on ``PYTHONPATH``, e.g. ``git archive HEAD | tar -x -C DIR``), so before and after are measured
in the same run. Runs are interleaved (one of each case per round); each case first has one unmeasured
warm-up run. ``workbench run`` writes its traces (to a temporary trace log) as it does by default,
from a temporary working directory without a ``workbench.toml``. Byte code is cached (in a temporary
``PYTHONPYCACHEPREFIX``) as for any installed copy, unless ``--no-bytecode-cache``: then every module
of the checkout is compiled from source on every run, as with ``PYTHONDONTWRITEBYTECODE=1``.

    python -m bench.startup [--runs 7] [--targets 16] [--before DIR] [--no-trace] [--no-bytecode-cache]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import httpx2

from workbench.core.registry import make_provider, resolve
from workbench.core.request import ChatRequest, ModelRef
from workbench.fakeserver.process import fake_server_process

WIRES = ("fake", "fake-anthropic", "fake-gemini", "fake-ollama", "fake-responses")
BARE = Path(__file__).with_name("bare_stream.py")
PACE = "tps=64"
"""The fake server's pacing for the last group: 32 tokens at 64 per second, a 0.5 s stream."""


@dataclass
class Case:
    name: str
    argv: list[str]
    streams: int
    env: dict[str, str] = field(default_factory=dict)
    first_ms: list[float] = field(default_factory=list)
    exit_ms: list[float] = field(default_factory=list)
    wall_ms: list[float] = field(default_factory=list)


@dataclass
class Group:
    name: str
    models: list[str]
    cases: list[Case] = field(default_factory=list)


def groups(count: int) -> list[Group]:
    mixed = [f"{WIRES[i % len(WIRES)]}/x{i + 1}" for i in range(count)]
    settling = [*mixed[:-4], "fake/x13@usage=0", "fake-gemini/x14@usage=0", "openai/gpt-4o-mini",
                "openai/gpt-4o-mini"] if count >= 4 else mixed
    paced = [f"{m},{PACE}" if "@" in m else f"{m}@{PACE}" for m in settling]
    return [Group("1 target", ["fake/x"]), Group(f"{count} targets", mixed),
            Group(f"{count} targets, settling (2 without usage, 2 priced)", settling),
            Group(f"{count} targets, settling, 0.5 s streams", paced)]


def bare_requests(models: list[str], env: dict[str, str]) -> list[dict[str, object]]:
    """What the providers send for ``hi`` to each target: URL, headers, body."""
    request = ChatRequest.from_prompt("hi")
    client = httpx2.AsyncClient()
    out: list[dict[str, object]] = []
    for target in models:
        provider = make_provider(resolve(ModelRef.parse(target), env), client)
        resolved = provider.resolve(request)
        headers = {"accept-encoding": "identity", "content-type": "application/json", **provider.headers()}
        out.append({"url": provider.url(resolved), "headers": headers, "body": json.dumps(provider.body(resolved))})
    return out


def _get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _reset(base: str) -> None:
    with urllib.request.urlopen(urllib.request.Request(f"{base}/_fake/reset", method="POST"), timeout=10):
        pass


def measure(case: Case, base: str, cwd: str, record: bool = True) -> None:
    _reset(base)
    start = time.monotonic_ns()
    proc = subprocess.run(case.argv, env=case.env, cwd=cwd, capture_output=True, check=False)
    end = time.monotonic_ns()
    if proc.returncode != 0:
        raise SystemExit(f"{case.name}: exit {proc.returncode}\n{proc.stdout.decode()}\n{proc.stderr.decode()}")
    log = [e for e in _get(f"{base}/_fake/log") if isinstance(e, dict)]  # type: ignore[attr-defined]
    if len(log) != case.streams or any(e["outcome"] != "ok" or e["last_token_ns"] is None for e in log):
        raise SystemExit(f"{case.name}: expected {case.streams} good streams, the server logged {log}")
    if record:
        case.first_ms.append((min(e["received_ns"] for e in log) - start) / 1e6)
        case.exit_ms.append((end - max(e["last_token_ns"] for e in log)) / 1e6)
        case.wall_ms.append((end - start) / 1e6)


def _cell(case: Case, floor: Case | None, attr: str) -> str:
    ours = statistics.median(getattr(case, attr))
    if floor is None:
        return f"{ours:.0f}"
    return f"{ours:.0f} ({ours / statistics.median(getattr(floor, attr)):.1f}×)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--targets", type=int, default=16)
    parser.add_argument("--before", metavar="DIR", help="also run `workbench run` from this checkout")
    parser.add_argument("--no-trace", action="store_true", help="pass --no-trace to workbench run")
    parser.add_argument("--no-bytecode-cache", action="store_true",
                        help="compile every module from source on every run (PYTHONDONTWRITEBYTECODE=1)")
    args = parser.parse_args(argv)

    with fake_server_process() as server, tempfile.TemporaryDirectory(prefix="wb-startup-") as tmp:
        env = {**os.environ, "WORKBENCH_FAKE_URL": server.base_url, "WORKBENCH_TRACES": f"{tmp}/traces.db",
               "WORKBENCH_LOG_DIR": tmp, "OPENAI_BASE_URL": f"{server.base_url}/v1", "OPENAI_API_KEY": "sk-bench"}
        env.pop("PYTHONPATH", None)
        if args.no_bytecode_cache:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        else:  # byte code cached as in any installed copy, but outside the checkout
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = f"{tmp}/pycache"
        all_groups = groups(args.targets)
        for number, group in enumerate(all_groups):
            path = Path(tmp) / f"requests-{number}.json"
            path.write_text(json.dumps(bare_requests(group.models, env)), encoding="utf-8")
            flags = [a for m in group.models for a in ("-m", m)] + (["--no-trace"] if args.no_trace else [])
            command = [sys.executable, "-m", "workbench", "run", "hi", *flags, "--json"]
            group.cases.append(Case("workbench run", command, len(group.models), env))
            if args.before:
                group.cases.append(Case(f"workbench run @ {args.before}", command, len(group.models),
                                        {**env, "PYTHONPATH": str(Path(args.before).resolve())}))
            group.cases.append(Case("bare httpx2", [sys.executable, str(BARE), str(path)], len(group.models), env))
        cases = [case for group in all_groups for case in group.cases]
        for case in cases:  # warm-up: byte-code caches, the trace log's schema
            measure(case, server.base_url, tmp, record=False)
        for _ in range(args.runs):
            for case in cases:
                measure(case, server.base_url, tmp)

    print(f"medians of {args.runs} runs, ms (× bare httpx2); Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, byte code "
          f"{'compiled on every run' if args.no_bytecode_cache else 'cached'}\n")
    print("| targets | client | start → first request byte | last stream end → exit | wall |")
    print("|---|---|---|---|---|")
    for group in all_groups:
        floor = group.cases[-1]
        for case in group.cases:
            ratio = None if case is floor else floor
            cells = " | ".join(_cell(case, ratio, attr) for attr in ("first_ms", "exit_ms", "wall_ms"))
            print(f"| {group.name} | {case.name} | {cells} |")
    print("\nranges (min–max, ms):")
    for group in all_groups:
        for case in group.cases:
            spans = ", ".join(f"{label} {min(values):.0f}–{max(values):.0f}" for label, values in
                              (("first", case.first_ms), ("exit", case.exit_ms), ("wall", case.wall_ms)))
            print(f"  {group.name}, {case.name}: {spans}")


if __name__ == "__main__":
    main()
