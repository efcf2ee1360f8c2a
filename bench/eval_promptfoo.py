"""A promptfoo suite of CASES tests run end to end (`workbench eval SUITE --json --no-cache`, a subprocess, as a
user runs it) against the fake server (another process), twice per round: with a JavaScript assertion per case
(run in the warm Node process) and with an equivalent assertion that needs no Node (a regex).

The suite is generated: one prompt written in promptfoo's Nunjucks (a filter and a loop:
``{{ customer | upper }}`` and ``{% for tag in ticket.tags %}``), one target (``openai:chat:...@tokens=12``,
answering at once unless ``--latency-ms``), CASES tests with their own variables. Both assertions pass when the
reply has 12 words. Printed per round and as medians of ``--runs`` rounds: the wall time of each command, its
CPU (the command and its children: Node included), and the Node bridge's cost per case: the difference
between the two, in wall time and in CPU, divided by CASES.

    python -m bench.eval_promptfoo [--cases 1000] [--runs 5] [--concurrency 50] [--latency-ms 0]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from workbench.fakeserver.process import fake_server_process

PROMPT = ("Ticket {{ id }} from {{ customer | upper }}, tagged:"
          "{% for tag in ticket.tags %} #{{ tag }}{% endfor %}. Summarise it in one line.")
JAVASCRIPT = {"type": "javascript", "value": "output.split(' ').length === 12 && context.vars.customer.length > 0"}
PLAIN = {"type": "regex", "value": r"^\S+( \S+){11}$"}


def write_suite(folder: Path, cases: int, latency_ms: float, concurrency: int, check: dict[str, str]) -> Path:
    scenario = f"tokens=12,ttft={latency_ms:g}" if latency_ms else "tokens=12"
    suite = {
        "description": "generated promptfoo suite",
        "prompts": [PROMPT],
        "providers": [f"openai:chat:bench@{scenario}"],
        "evaluateOptions": {"maxConcurrency": concurrency},
        "tests": [{"description": f"case {i}",
                   "vars": {"id": i, "customer": f"customer {i % 97}", "ticket": {"tags": [f"t{i % 7}", "billing"]}},
                   "assert": [check]} for i in range(cases)],
    }
    path = folder / f"{check['type']}.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False), encoding="utf-8")
    return path


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_suite(path: Path, env: dict[str, str]) -> tuple[float, float, int]:
    """The command's wall time, its CPU and its children's (Node's), and how many cases passed."""
    cpu, start = children_cpu(), time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "workbench", "eval", path.name, "--json", "--no-cache"],
                          cwd=path.parent, env=env, capture_output=True, text=True, timeout=600)
    wall, cpu = time.perf_counter() - start, children_cpu() - cpu
    if done.returncode not in (0, 1):
        raise SystemExit(f"workbench eval {path.name} failed ({done.returncode}): {done.stderr.strip()}")
    summary = json.loads(done.stdout.splitlines()[-1])
    return wall, cpu, int(summary["passes"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--latency-ms", type=float, default=0)
    args = parser.parse_args()
    figures: dict[str, list[tuple[float, float]]] = {"javascript": [], "regex": []}
    with fake_server_process() as server, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "workbench.toml").write_text("", encoding="utf-8")
        suites = [write_suite(folder, args.cases, args.latency_ms, args.concurrency, check)
                  for check in (JAVASCRIPT, PLAIN)]
        env = {**{k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))},
               "OPENAI_BASE_URL": f"{server.base_url}/v1", "OPENAI_API_KEY": "sk-bench-0000",
               "WORKBENCH_TRACES": str(folder / "traces.db")}
        for round_ in range(1, args.runs + 1):
            for path in suites:
                wall, cpu, passed = run_suite(path, env)
                figures[path.stem].append((wall, cpu))
                print(f"  round {round_}, {path.stem:>10}: {wall:.3f} s wall, {cpu:.3f} s CPU, "
                      f"{passed}/{args.cases} passed")
    (js_wall, js_cpu), (plain_wall, plain_cpu) = (
        (statistics.median(w for w, _ in figures[kind]), statistics.median(c for _, c in figures[kind]))
        for kind in ("javascript", "regex"))
    print(f"{args.cases} cases, concurrency {args.concurrency}, {args.latency_ms:g} ms latency, medians of "
          f"{args.runs} runs: javascript {js_wall:.3f} s wall / {js_cpu:.3f} s CPU; regex {plain_wall:.3f} s wall / "
          f"{plain_cpu:.3f} s CPU; Node bridge per case: {(js_wall - plain_wall) / args.cases * 1000:.3f} ms wall, "
          f"{(js_cpu - plain_cpu) / args.cases * 1000:.3f} ms CPU")


if __name__ == "__main__":
    main()
