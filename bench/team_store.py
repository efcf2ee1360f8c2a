"""The team store on PostgreSQL at a million calls: ``--team`` pages and filters, ``evals diff`` local vs team, push.

    python -m bench.team_store [--rows 1000000] [--samples 200] [--push-rows 1000000] [--url postgresql://...]

Without ``--url`` a throwaway server is started (``tests/postgres_server.py``: initdb, TLS on 127.0.0.1, fsync off)
and removed at the end; with one, a new database is created in it (the URL's role must be allowed to).

1. Loads ``--rows`` synthetic calls (20 targets, 30 prompts with versions, tags, sessions, eval runs, 2% errors, 60
   days, 13 users on 4 hosts) straight into ``calls`` and ``call_tags`` with COPY, then times
   :class:`~workbench.core.team.queries.TeamTraces` pages: the first page, a deep keyset page, and each indexed
   filter, ``--samples`` times each with a different value (target: p99 ≤ 20 ms).
2. ``evals diff`` of a local run against a team run of 1,000 cells (the team's pushed with ``workbench sync``'s own
   :func:`~workbench.core.team.sync.sync`): in process, and the whole CLI once (target: ≤ 200 ms).
3. Pushes ``--push-rows`` calls of a local trace store (written first by ``bench.traces``' generator through the
   real TraceWriter; its pages are timed beside the team's, as a baseline taken under the same load) with
   :func:`~workbench.core.team.sync.sync` (target: ≥ 20k rows/s); ``--push-rows 0`` skips both.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg

from bench.traces import DAYS, TAG_WEIGHTS, TAGS, TARGETS, Report, _timed, generate
from workbench.core.evals.diff import diff_runs
from workbench.core.evals.model import CellKey, CellResult, Grading, Observation, RunInfo, RunReport
from workbench.core.evals.report_data import cells_of
from workbench.core.evals.run_store import EvalStore
from workbench.core.team import migrations, tables
from workbench.core.team.push import LocalStores
from workbench.core.team.queries import TeamRuns, TeamTraces, page_query
from workbench.core.team.sync import sync
from workbench.core.team.target import parse_target
from workbench.core.traces.filters import Filters
from workbench.core.traces.ids import new_id
from workbench.core.traces.redact import Redactor
from workbench.core.traces.store import TraceStore

PAGE_TARGET_MS = 20.0
DIFF_TARGET_MS = 200.0
PUSH_TARGET_RATE = 20_000.0
USERS = [f"dev{i}" for i in range(12)] + ["ci"]
HOSTS = ["laptop-a", "laptop-b", "build-1", "build-2"]
COPY_CHUNK = 50_000


@contextlib.contextmanager
def server(url: str | None) -> Iterator[str]:
    """An admin URL to a new database: on ``url``'s server, or on a throwaway one."""
    if url is not None:
        name = f"bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"'.encode())
        yield url.rsplit("/", 1)[0] + "/" + name
        return
    from tests.postgres_server import ADMIN_PASSWORD, postgres_server

    with postgres_server() as pg:
        yield pg.url(database=pg.create_database("bench"), password=ADMIN_PASSWORD)


def call_rows(rows: int, seed: int = 5) -> Iterator[tuple[tuple[Any, ...], list[str]]]:
    """(the ``calls`` row in :func:`tables.columns` order, its tags), oldest first over ``DAYS`` days."""
    rng = random.Random(seed)
    names = tables.columns("calls")
    end = time.time()
    start = end - DAYS * 86_400
    prompts = [(f"prompt-{i}", rng.randint(1, 3), rng.sample(range(len(TARGETS)), rng.randint(2, 4)))
               for i in range(30)]
    target_cum = list(itertools.accumulate(t[1] for t in TARGETS))
    prompt_cum = list(itertools.accumulate(1 / (i + 1) ** 0.8 for i in range(len(prompts))))
    tag_cum = list(itertools.accumulate(TAG_WEIGHTS))
    for i in range(rows):
        ts = start + (i + rng.random()) * (end - start) / rows
        if rng.random() < 0.15:
            index, prompt, version = rng.choices(range(len(TARGETS)), cum_weights=target_cum)[0], None, None
        else:
            prompt, versions, used_with = rng.choices(prompts, cum_weights=prompt_cum)[0]
            version, index = max(1, versions - (rng.random() < 0.2)), rng.choice(used_with)
        target = TARGETS[index][0]
        provider, _, model = target.partition("/")
        error = rng.random() < 0.02
        tags = sorted(set(rng.choices(TAGS, cum_weights=tag_cum, k=rng.choice((0, 1, 1, 2)))))
        ttft = rng.lognormvariate(5.9, 0.5)
        values: dict[str, Any] = {
            "id": new_id(ts), "ts": ts, "provider": provider, "model": model, "target": target,
            "prompt_name": prompt, "prompt_version": version,
            "session_id": f"s{i // 40}" if rng.random() < 0.3 else None,
            "eval_run_id": f"run-{i // 5000}" if "eval" in tags else None,
            "status": "error" if error else "ok", "error_class": "http" if error else None,
            "finish_reason": None if error else "stop", "input_tokens": rng.randint(50, 3000),
            "output_tokens": rng.randint(1, 800), "usage_estimated": False, "cost_usd": rng.random() / 100,
            "ttft_ms": ttft, "latency_ms": ttft + rng.lognormvariate(7, 0.6), "attempt_count": 1,
            "team_user": rng.choice(USERS), "team_host": rng.choice(HOSTS)}
        yield tuple(values.get(name) for name in names), tags


def load(url: str, rows: int) -> float:
    """COPY ``rows`` calls and their tags into a migrated store; the seconds it took (indexes maintained)."""
    names = ", ".join(tables.columns("calls"))
    tag_names = ", ".join(tables.columns("call_tags"))
    start = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        migrations.migrate(conn)
        source = call_rows(rows)
        done = 0
        while chunk := list(itertools.islice(source, COPY_CHUNK)):
            with conn.transaction(), conn.cursor() as cur:
                with cur.copy(f"COPY calls ({names}) FROM STDIN".encode()) as copy:
                    for row, _ in chunk:
                        copy.write_row(row)
                with cur.copy(f"COPY call_tags ({tag_names}) FROM STDIN".encode()) as copy:
                    for row, tags in chunk:
                        for tag in tags:
                            copy.write_row((row[0], tag, row[-2], row[-1]))
            done += len(chunk)
            print(f"\r  loaded {done:>9,} calls  {done / (time.perf_counter() - start):,.0f} calls/s", end="",
                  flush=True)
        print()
        conn.execute(b"VACUUM ANALYZE calls")
        conn.execute(b"VACUUM ANALYZE call_tags")
    return time.perf_counter() - start


def timed_page(store: TeamTraces, filters: Filters, before: str | None = None) -> float:
    """One page's milliseconds (50 calls)."""
    start = time.perf_counter()
    store.page(filters, before, limit=50)
    return (time.perf_counter() - start) * 1000


def plan(conn: psycopg.Connection[tuple[object, ...]], filters: Filters) -> str:
    """How the server runs one page: the index it walks, the buffers it touched and its own execution time (the
    figure the machine's load disturbs least)."""
    query, args = page_query(filters, None, 50)
    row = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {query}".encode(), args).fetchone()
    assert row is not None
    found: Any = row[0]
    top = found[0]
    indexes: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        if "Index Name" in node:
            indexes.append(f"{node['Node Type']} {node['Index Name']}")
        elif node["Node Type"] == "Seq Scan":
            indexes.append(f"Seq Scan {node['Relation Name']}")
        for child in node.get("Plans", ()):
            walk(child)

    walk(top["Plan"])
    buffers = top["Plan"].get("Shared Hit Blocks", 0) + top["Plan"].get("Shared Read Blocks", 0)
    return f"{' + '.join(indexes)}; {buffers} buffers; {top['Execution Time']:.2f} ms on the server"


BASELINE = ("first page, no filter", "model (target)", "provider", "status=error", "tag", "one day (since + until)",
            "model + last 7 days", "tag + provider")
"""The cases timed on the local store too (its targets and tags are the same; its prompts, sessions and runs not)."""


def pages(url: str, samples: int, report: Report, local: TraceStore | None) -> bool:
    """Time the first page, a deep keyset page and each indexed filter (and, on ``local``, the same filters
    alternately: the machine's load falls on both alike); did every p99 meet the target?"""
    rng = random.Random(9)
    with psycopg.connect(url, autocommit=True) as conn:
        store = TeamTraces(conn)
        ids = [str(r[0]) for r in conn.execute(b"SELECT id FROM calls TABLESAMPLE SYSTEM (1) LIMIT 5000")]
        sessions = [str(r[0]) for r in conn.execute(
            b"SELECT DISTINCT session_id FROM calls TABLESAMPLE SYSTEM (1) WHERE session_id IS NOT NULL")]
        runs = [str(r[0]) for r in conn.execute(
            b"SELECT DISTINCT eval_run_id FROM calls WHERE eval_run_id IS NOT NULL")]
        prompts = [(str(r[0]), int(str(r[1]))) for r in conn.execute(
            b"SELECT DISTINCT prompt_name, prompt_version FROM calls WHERE prompt_name IS NOT NULL")]
        (newest,) = conn.execute(b"SELECT max(ts) FROM calls").fetchone() or (time.time(),)
        day = 86_400.0
        cases: list[tuple[str, Callable[[], Filters]]] = [
            ("first page, no filter", lambda: Filters()),
            ("model (target)", lambda: Filters(model=rng.choice(TARGETS)[0])),
            ("provider", lambda: Filters(provider=rng.choice(TARGETS)[0].split("/")[0])),
            ("status=error", lambda: Filters(status="error")),
            ("prompt (any version)", lambda: Filters(prompt=rng.choice(prompts)[0])),
            ("prompt + version", lambda: Filters(prompt=(p := rng.choice(prompts))[0], prompt_version=p[1])),
            ("tag", lambda: Filters(tag=rng.choice(TAGS))),
            ("session", lambda: Filters(session=rng.choice(sessions))),
            ("eval run", lambda: Filters(eval_run=rng.choice(runs))),
            ("one day (since + until)", lambda: Filters(since=(s := float(str(newest)) - rng.uniform(1, DAYS - 1)
                                                               * day), until=s + day)),
            ("model + last 7 days", lambda: Filters(model=rng.choice(TARGETS)[0], since=float(str(newest)) - 7 * day)),
            ("tag + provider", lambda: Filters(tag=rng.choice(TAGS), provider=rng.choice(TARGETS)[0].split("/")[0])),
        ]
        ok = True
        for label, make in cases:
            for _ in range(5):  # warm the plans and the cache
                store.page(make(), limit=50)
            times, baseline = [], []
            for _ in range(samples):
                filters = make()
                times.append(timed_page(store, filters))
                if local is not None and label in BASELINE:
                    baseline.append(_timed(lambda f=filters: local.page(f, limit=50)))  # type: ignore[misc]
            ok &= report.row(label, times, PAGE_TARGET_MS) <= PAGE_TARGET_MS
            if baseline:
                report.row("   the same on the local SQLite store (baseline)", baseline)
            print(f"      plan: {plan(conn, make())}")
        times = [timed_page(store, Filters(), rng.choice(ids)) for _ in range(samples)]
        ok &= report.row("deep keyset page (--before a random id)", times, PAGE_TARGET_MS) <= PAGE_TARGET_MS
    return ok


def eval_run(store: EvalStore, cells: int, seed: int) -> RunInfo:
    """A done run of ``cells`` cells (a few of them failing, by ``seed``) in ``store``."""
    rng = random.Random(seed)
    run = RunInfo(id=new_id(), suite="bench", suite_path="evals/bench.yaml", suite_digest="d" * 64,
                  started_at=time.time(), targets=("openai/gpt-4.1-mini", "anthropic/claude-sonnet-4"))
    store.start(run)
    results = []
    for i in range(cells):
        passed = rng.random() > 0.05
        observation = Observation(text=f"reply {i} " * 8, finish="stop", latency_ms=rng.uniform(300, 2000),
                                  ttft_ms=rng.uniform(100, 600), cost_usd=rng.random() / 1000, input_tokens=300,
                                  output_tokens=60, vars={"n": str(i)})
        grading = Grading("contains", passed, 1.0 if passed else 0.0, "ok" if passed else "missing")
        key = CellKey(f"case {i // 2}", "bench", run.targets[i % 2])
        results.append((CellResult(key, 0, observation, [grading], passed, grading.score), f"case {i // 2}", i))
    store.add(run.id, results)
    run.status = "done"
    store.finish(run)
    return run


def evals_diff(url: str, samples: int, report: Report) -> bool:
    """A local run against a team run of 1,000 cells: in process ``samples`` times, then the CLI once."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        local = EvalStore(folder / "evals.db")
        head = eval_run(local, 1_000, seed=1)
        target = parse_target(url, "bench", in_file=False)
        sync(target, LocalStores(folder / "traces.db", None), Redactor(()), push=True, pull=False)
        base = eval_run(local, 1_000, seed=2)  # local only
        with psycopg.connect(url, autocommit=True) as conn:
            team = TeamRuns(conn)

            def diff() -> None:
                theirs = team.run(head.id)
                mine = local.run(base.id)
                diff_runs(RunReport(mine, cells_of(local, mine)), RunReport(theirs, cells_of(team, theirs)))

            def local_diff() -> None:  # the baseline: both runs local, as `evals diff` without the team
                mine, other = local.run(base.id), local.run(head.id)
                diff_runs(RunReport(mine, cells_of(local, mine)), RunReport(other, cells_of(local, other)))

            for _ in range(3):
                diff()
            times, baseline = [], []
            for _ in range(samples):  # interleaved: the machine's load falls on both alike
                times.append(_timed(diff))
                baseline.append(_timed(local_diff))
        ok = report.row("evals diff local vs team, 1,000 cells (in process)", times, DIFF_TARGET_MS) <= DIFF_TARGET_MS
        report.row("evals diff local vs local, the same runs (baseline)", baseline)
        local.close()
        env = {**os.environ, "WORKBENCH_TRACES": str(folder / "traces.db"), "WORKBENCH_TEAM_URL": url}
        command = [sys.executable, "-m", "workbench", "evals", "diff", base.id, f"team:{head.id}"]
        walls = []
        for _ in range(5):
            start = time.perf_counter()
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            walls.append((time.perf_counter() - start) * 1000)
            assert done.returncode in (0, 1), done.stderr
        report.row("the same, `workbench evals diff BASE team:HEAD` (whole process)", walls)
    return ok


def push(url: str, folder: Path) -> float:
    """Push the local store in ``folder`` with ``sync --push``'s function; its rate (calls a second)."""
    target = parse_target(url, "bench", in_file=False)
    start = time.perf_counter()
    pushed = sync(target, LocalStores(folder / "traces.db", None), Redactor.build(("api_key",)), push=True,
                  pull=False)
    seconds = time.perf_counter() - start
    assert pushed.pushed is not None
    calls = pushed.pushed.rows.get("calls", 0)
    print(f"  pushed {calls:,} calls (their payloads and {pushed.pushed.rows.get('call_tags', 0):,} tags) in "
          f"{seconds:.1f} s: {calls / seconds:,.0f} calls/s")
    return calls / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--push-rows", type=int, default=1_000_000)
    parser.add_argument("--url", help="an admin URL to an existing server (default: a throwaway one)")
    args = parser.parse_args()
    report = Report()
    with server(args.url) as url, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        local = None
        if args.push_rows:
            print(f"writing a local store of {args.push_rows:,} calls (bench.traces' generator, the real "
                  "TraceWriter): the pages' baseline, then the push …")
            generate(folder / "traces.db", args.push_rows, 500)
            local = TraceStore(folder / "traces.db")
        print(f"loading {args.rows:,} calls with COPY …")
        seconds = load(url, args.rows)
        print(f"  {args.rows:,} calls in {seconds:.1f} s ({args.rows / seconds:,.0f} calls/s, indexes maintained)")
        print(f"team pages (TeamTraces.page, 50 calls, {args.samples} samples each; target p99 ≤ "
              f"{PAGE_TARGET_MS:g} ms)")
        pages_ok = pages(url, args.samples, report, local)
        if local is not None:
            local.close()
        print(f"evals diff (target ≤ {DIFF_TARGET_MS:g} ms)")
        diff_ok = evals_diff(url, max(20, args.samples // 4), report)
        verdicts = [("pages and filters p99", pages_ok), ("evals diff", diff_ok)]
        if args.push_rows:
            print(f"push (target ≥ {PUSH_TARGET_RATE:,.0f} calls/s), into the same store")
            rate = push(url, folder)
            verdicts.append((f"push ≥ {PUSH_TARGET_RATE:,.0f} calls/s", rate >= PUSH_TARGET_RATE))
    for name, ok in verdicts:
        print(f"{name}: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
