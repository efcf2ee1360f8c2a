"""``sync --push`` of one local trace store, by this tree and by others (older commits), side by side in one run.

    python -m bench.team_push [--calls 100000] [--rounds 3] [--preload 200000] [--against DIR ...]

``--against DIR``: another tree of the project (``git archive COMMIT | tar -x -C DIR``) whose push runs the same
way; each round pushes with every tree in turn, so the machine's load falls on all of them alike. A local store of
``--calls`` calls is written once (``bench.traces``' generator through the real TraceWriter); each push goes into a
new database of one throwaway server (``tests/postgres_server.py``), first loaded with ``--preload`` calls (every
index maintained, as ``bench.team_store`` loads them), in its own process. Printed per push: the wall time and rate,
the client's CPU, and the server's CPU (its processes' user + system time, from ``/proc``: the figure the load
disturbs least).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.team_store import load
from bench.traces import generate

_PUSH = """
import json, sys, time
from pathlib import Path
from workbench.core.team.push import LocalStores
from workbench.core.team.sync import sync
from workbench.core.team.target import parse_target
from workbench.core.traces.redact import Redactor
url, folder = sys.argv[1], Path(sys.argv[2])
start, cpu = time.perf_counter(), time.process_time()
report = sync(parse_target(url, "bench", in_file=False), LocalStores(folder / "traces.db", None),
              Redactor.build(("api_key",)), push=True, pull=False)
print(json.dumps({"seconds": time.perf_counter() - start, "client_cpu": time.process_time() - cpu,
                  "calls": report.pushed.rows.get("calls", 0) if report.pushed else 0}))
"""


def server_cpu(root: Path) -> float:
    """The CPU seconds (user + system) the server's processes have used so far: the postmaster's running children,
    and those that ended (a backend ends with its connection: its time is then counted in the postmaster's)."""
    postmaster = int((root / "data" / "postmaster.pid").read_text().split()[0])
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # from the state on: utime is [11], cutime [13]
        except OSError:
            continue
        if int(fields[1]) == postmaster:  # the parent pid
            total += (int(fields[11]) + int(fields[12])) / tick
        elif stat.parent.name == str(postmaster):
            total += (int(fields[13]) + int(fields[14])) / tick
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--preload", type=int, default=200_000)
    parser.add_argument("--against", action="append", default=[], help="another tree of the project")
    args = parser.parse_args()
    from tests.postgres_server import ADMIN_PASSWORD, postgres_server

    trees = [("this tree", str(Path(__file__).resolve().parents[1]))] + [(d, d) for d in args.against]
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _ in trees}
    with postgres_server() as pg, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"writing a local store of {args.calls:,} calls …")
        generate(folder / "traces.db", args.calls, 500)
        print(f"load average {os.getloadavg()[0]:.1f}")
        for round_ in range(args.rounds):
            for n, (name, path) in enumerate(trees):
                url = pg.url(database=pg.create_database(f"push_{round_}_{n}"), password=ADMIN_PASSWORD)
                if args.preload:
                    load(url, args.preload)
                work = folder / f"push_{round_}_{n}"
                work.mkdir()
                shutil.copy(folder / "traces.db", work / "traces.db")
                before = server_cpu(pg.root)
                done = subprocess.run([sys.executable, "-c", _PUSH, url, str(work)], capture_output=True, text=True,
                                      check=True, env={**os.environ, "PYTHONPATH": path})
                result = json.loads(done.stdout.splitlines()[-1])
                result["server_cpu"] = server_cpu(pg.root) - before
                results[name].append(result)
                print(f"  round {round_ + 1}, {name}: {result['calls']:,} calls in {result['seconds']:.2f} s "
                      f"({result['calls'] / result['seconds']:,.0f} calls/s), client CPU {result['client_cpu']:.2f} s, "
                      f"server CPU {result['server_cpu']:.2f} s; load average {os.getloadavg()[0]:.1f}")
                shutil.rmtree(work)
    print("medians:")
    for name, rows in results.items():
        rate = statistics.median(r["calls"] / r["seconds"] for r in rows)
        print(f"  {name}: {rate:,.0f} calls/s, client CPU {statistics.median(r['client_cpu'] for r in rows):.2f} s, "
              f"server CPU {statistics.median(r['server_cpu'] for r in rows):.2f} s")


if __name__ == "__main__":
    main()
