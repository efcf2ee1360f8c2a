"""``workbench eval`` stopped the hard way: killed (-9) at any moment, or sent SIGTERM (CI, ``timeout``).

A finished cell's result is in ``evals.db`` within a second; a run whose process died is shown as interrupted
and resumes; ``--resume`` grades the answers the trace log already holds instead of calling again; both
stores stay whole. Everything runs against the fake server, in real ``workbench`` processes.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.resilience_helpers import server_log
from tests.test_cli import json_lines, workbench
from tests.timing_slack import until
from workbench.core.evals.run_store import EvalStore
from workbench.fakeserver.process import FakeServerProcess


def _suite(root: Path, targets: list[str], *, concurrency: int) -> Path:
    """A workspace at ``root`` whose suite runs one test on each of ``targets`` (one cell per target)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "workbench.toml").write_text("", encoding="utf-8")
    (root / "evals").mkdir(exist_ok=True)
    listed = "\n".join(f"  - {target}" for target in targets)
    suite = root / "evals" / "durable.yaml"
    suite.write_text(f"""description: durable
prompts:
  - "Write one line about {{{{topic}}}}"
providers:
{listed}
concurrency: {concurrency}
tests:
  - description: the one test
    vars: {{topic: ships}}
    assert:
      - type: regex
        value: '\\w+'
""", encoding="utf-8")
    return suite


def _env(root: Path, fake_server: FakeServerProcess) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    return {**base, "WORKBENCH_FAKE_URL": fake_server.base_url, "WORKBENCH_TRACES": str(root / "traces.db")}


def _start(suite: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "workbench", "eval", str(suite), "--json", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=suite.parent.parent)


def _query(db: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    """Rows of a store another process writes (none while it does not exist or is being created)."""
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return list(conn.execute(sql, args))
    except sqlite3.OperationalError:  # the tables are being created
        return []


def _whole(db: Path, fts: str | None = None) -> None:
    """SQLite's integrity check of ``db`` (and of its FTS5 index ``fts``) finds nothing."""
    if not db.exists():
        return
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)], db
        if fts is not None and conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (fts,)).fetchone():
            conn.execute(f"INSERT INTO {fts}({fts}) VALUES('integrity-check')")  # raises when damaged


def _requests(fake_server: FakeServerProcess, marker: str) -> Counter[str]:
    """Requests the fake server received per model name holding ``marker``."""
    return Counter(str(e["model"]) for e in server_log(fake_server.base_url) if marker in str(e["model"]))


def _answered(traces: Path, run_id: str) -> set[str]:
    """The targets of the cells whose answer the trace log holds for the run (cancelled calls are no answer)."""
    rows = _query(traces, "SELECT eval_cell FROM calls WHERE eval_run_id = ? AND eval_cell IS NOT NULL "
                          "AND coalesce(error_class, '') != 'cancelled'", run_id)
    return {json.loads(str(cell))[2] for (cell,) in rows}


def _results(evals: Path, run_id: str) -> list[tuple[object, ...]]:
    return _query(evals, "SELECT target, repeat, trace_id FROM eval_results WHERE run_id = ?", run_id)


def test_a_finished_cell_is_stored_within_a_second_and_a_killed_run_shows_as_interrupted(
        tmp_path: Path, fake_server: FakeServerProcess) -> None:
    marker = uuid.uuid4().hex[:8]
    fast, slow = f"fake/fast-{marker}@tokens=3", f"fake/slow-{marker}@hang=headers"
    suite = _suite(tmp_path, [fast, slow], concurrency=2)
    env = _env(tmp_path, fake_server)
    process = _start(suite, env)
    try:
        traced = until(lambda: _query(tmp_path / "traces.db", "SELECT 1 FROM calls WHERE target = ?", fast),
                            "the fast call's trace")
        stored = until(lambda: _query(tmp_path / "evals.db", "SELECT 1 FROM eval_results WHERE target = ?",
                                           fast), "the fast cell's result", timeout=10)
        assert process.poll() is None  # the slow cell still waits for its answer
        assert stored - traced <= 1.0
    finally:
        process.kill()
        process.communicate()
    assert [row[0] for row in _query(tmp_path / "evals.db", "SELECT target FROM eval_results")] == [fast]

    listed = workbench("evals", "list", "--json", cwd=tmp_path, env={"WORKBENCH_TRACES": env["WORKBENCH_TRACES"]})
    (run,) = json_lines(listed.stdout)
    assert (run["status"], run["stop_reason"]) == ("stopped", "interrupted"), run
    shown = workbench("evals", "list", cwd=tmp_path, env={"WORKBENCH_TRACES": env["WORKBENCH_TRACES"]})
    assert "interrupted" in shown.stdout and "running" not in shown.stdout


def test_resume_grades_the_answers_the_trace_log_holds_instead_of_calling_again(
        tmp_path: Path, fake_server: FakeServerProcess) -> None:
    """The state a kill -9 leaves between a call's trace (0.1 s) and its result (a second): calls traced, their
    results not stored, the run left running by a process that is gone."""
    marker = uuid.uuid4().hex[:8]
    targets = [f"fake/r{i}-{marker}@tokens=4" for i in range(4)]
    suite = _suite(tmp_path, targets, concurrency=4)
    env = _env(tmp_path, fake_server)
    first = workbench("eval", str(suite), "--json", "--no-cache", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    run_id = str(json_lines(first.stdout)[-1]["run"])
    evals = tmp_path / "evals.db"
    traced_before = {row[0]: row[1] for row in _query(tmp_path / "traces.db",
                                                      "SELECT target, id FROM calls WHERE eval_run_id = ?", run_id)}
    with sqlite3.connect(evals) as conn:
        conn.execute("DELETE FROM eval_results WHERE run_id = ? AND target IN (?, ?)", (run_id, *targets[:2]))
        conn.execute("UPDATE eval_runs SET status = 'running', finished_at = NULL, verdict = NULL WHERE id = ?",
                     (run_id,))
    before = _requests(fake_server, marker)

    resumed = workbench("eval", str(suite), "--json", "--no-cache", "--resume", run_id, cwd=tmp_path, env=env)
    assert resumed.returncode == 0, resumed.stderr
    preflight, summary = json_lines(resumed.stdout)
    assert preflight["preflight"]["calls"] == 0 and preflight["preflight"]["reused"] == 2  # type: ignore[index]
    assert summary["status"] == "done" and summary["runs"] == 4 and summary["passes"] == 4
    assert _requests(fake_server, marker) == before  # nothing called again
    stored = {target: trace_id for target, _, trace_id in _results(evals, run_id)}
    assert stored == traced_before  # each result points at the call that answered it


def test_sigterm_stops_the_run_as_ctrl_c_does_and_resume_finishes_it(
        tmp_path: Path, fake_server: FakeServerProcess) -> None:
    marker = uuid.uuid4().hex[:8]
    targets = [f"fake/t{i}-{marker}@tokens=20,tps=20" for i in range(6)]  # each streams for about a second
    suite = _suite(tmp_path, targets, concurrency=2)
    env = _env(tmp_path, fake_server)
    evals = tmp_path / "evals.db"
    process = _start(suite, env)
    try:
        until(lambda: _query(evals, "SELECT 1 FROM eval_results") or process.poll() is not None,
                   "a first stored result")
        assert process.poll() is None
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert "Traceback" not in err
    (run_id,) = {str(row[0]) for row in _query(evals, "SELECT id FROM eval_runs")}
    assert f"interrupted: resume with `workbench eval {suite} --resume {run_id}`" in err
    (run,) = _query(evals, "SELECT status, stop_reason, verdict, exit_code FROM eval_runs")
    assert run == ("stopped", "interrupted", "interrupted", 130)
    done = {str(target) for target, _, _ in _results(evals, run_id)}
    assert 0 < len(done) < len(targets)
    cancelled = _query(tmp_path / "traces.db", "SELECT target FROM calls WHERE error_class = 'cancelled'")
    assert cancelled, "the calls in flight are traced, as cancelled"
    before = _requests(fake_server, marker)

    resumed = workbench("eval", str(suite), "--json", "--resume", run_id, cwd=tmp_path, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert json_lines(resumed.stdout)[-1]["runs"] == len(targets)
    again = _requests(fake_server, marker) - before
    assert not {target.split("/", 1)[1] for target in done} & set(again)  # no finished cell is called again
    assert sum(again.values()) == len(targets) - len(done)


CRASH_SEEDS = 20
CRASH_CELLS = 8


def _crash_once(seed: int, root: Path, fake_server: FakeServerProcess) -> str:
    """Kill ``workbench eval`` -9 at a moment drawn from ``seed``, check both stores, resume, check again.
    One seed in four kills during start-up (a delay from the start); the others a delay after the run was
    stored, so that however busy the machine, most kills land while cells run. Returns where the kill
    landed: before the run, mid-run, or after it."""
    rng = random.Random(seed)
    during_start_up, delay = rng.random() < 0.25, rng.uniform(0.0, 3.0)
    marker = f"{uuid.uuid4().hex[:6]}s{seed}"
    targets = [f"fake/k{i}-{marker}@tokens=8,tps=10" for i in range(CRASH_CELLS)]  # ~0.7 s a cell
    suite = _suite(root, targets, concurrency=3)
    env = _env(root, fake_server)
    evals, traces = root / "evals.db", root / "traces.db"
    process = _start(suite, env)
    try:
        if during_start_up:
            process.wait(timeout=delay / 2)
        else:
            until(lambda: _query(evals, "SELECT 1 FROM eval_runs") or process.poll() is not None,
                       "the run's start")
            process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        pass
    process.kill()
    process.communicate()
    _whole(evals)
    _whole(traces, "payloads_fts")

    store = EvalStore(evals)  # reading the runs settles one whose process died
    try:
        runs = store.runs()
    finally:
        store.close()
    if not runs:
        assert not _requests(fake_server, marker), f"seed {seed}: calls made for a run that was never stored"
        return "before"
    (run,) = runs
    assert run.status != "running", f"seed {seed}: a killed run must not stay running"
    if run.status == "done":
        assert len(_results(evals, run.id)) == CRASH_CELLS
        return "after"
    answered = {target.split("/", 1)[1] for target in _answered(traces, run.id)}
    before = _requests(fake_server, marker)
    resumed = workbench("eval", str(suite), "--json", "--resume", run.id, cwd=root, env=env)
    assert resumed.returncode == 0, f"seed {seed}: {resumed.stderr}"
    again = _requests(fake_server, marker) - before
    assert not answered & set(again), f"seed {seed}: --resume called again {sorted(answered & set(again))}"
    results = _results(evals, run.id)
    assert sorted(str(target) for target, _, _ in results) == sorted(targets), f"seed {seed}"
    assert all(trace_id for _, _, trace_id in results)
    _whole(evals)
    _whole(traces, "payloads_fts")
    return "mid-run"


@pytest.mark.timeout(600)
def test_kill_9_at_random_moments_leaves_whole_stores_and_resume_never_calls_an_answered_cell(
        tmp_path: Path, fake_server: FakeServerProcess) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        landed = list(pool.map(lambda seed: _crash_once(seed, tmp_path / f"seed-{seed}", fake_server),
                               range(CRASH_SEEDS)))
    counts = Counter(landed)
    assert counts["mid-run"] >= CRASH_SEEDS // 2, counts  # most kills land while cells run
