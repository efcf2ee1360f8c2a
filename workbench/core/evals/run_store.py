"""Eval runs, their results, and the response cache, in a SQLite file beside the trace store.

Results are appended as they arrive (batched by the runner), so a 10,000-case run never holds its
results in memory, and a stopped run is resumed from what is on disk. A run's results are keyed by
cell and repeat, so resuming can never record one twice.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from workbench.core.errors import ConfigError
from workbench.core.evals.model import CellKey, CellResult, Grading, Observation, RunInfo, StoredBatch
from workbench.core.evals.redaction import cacheable, stored_grading, stored_observation
from workbench.core.evals.run_lock import RunLock, is_alive
from workbench.core.evals.store_schema import migrate
from workbench.core.sqlite_file import open_private
from workbench.core.traces.redact import Redactor


def default_path(trace_path: Path) -> Path:
    """``evals.db`` beside the trace store (so ``WORKBENCH_TRACES`` moves both)."""
    return trace_path.with_name("evals.db")


def _run(row: sqlite3.Row) -> RunInfo:
    return RunInfo(id=row["id"], suite=row["suite"], suite_path=row["suite_path"], suite_digest=row["suite_digest"],
                   started_at=row["started_at"], finished_at=row["finished_at"], status=row["status"],
                   stop_reason=row["stop_reason"], repeat=row["repeat"], targets=tuple(json.loads(row["targets"])),
                   cost_usd=row["cost_usd"], gate=row["gate"], gate_source=row["gate_source"],
                   compared_with=row["compared_with"], verdict=row["verdict"],
                   failures=None if row["failures"] is None else tuple(json.loads(row["failures"])),
                   exit_code=row["exit_code"])


__all__ = ["EvalStore", "StoredBatch", "default_path"]


def _fields(value: Observation) -> dict[str, Any]:
    """A flat dataclass as a dict (shallow: its fields are plain values, a str → str mapping at most)."""
    return {f.name: getattr(value, f.name) for f in fields(value)}


def _json(observation: Observation) -> str:
    return json.dumps(_fields(observation), ensure_ascii=False, default=str)  # metadata may hold YAML dates


def _observation(text: str) -> Observation:
    return Observation(**json.loads(text))


class EvalStore:
    def __init__(self, path: Path, redactor: Redactor | None = None) -> None:
        self.path = path
        self.redactor = redactor or Redactor.build()
        """What every text of a result passes before it is written (the settings' ``redactor()``)."""
        self.conn = open_private(path, migrate, "the eval store",
                                 "check the path and its permissions, or point WORKBENCH_TRACES elsewhere")
        self._locks: dict[str, RunLock] = {}
        """The runs this process runs now (see :mod:`workbench.core.evals.run_lock`)."""

    def close(self) -> None:
        for lock in self._locks.values():
            lock.release()
        self._locks.clear()
        self.conn.close()

    # runs

    def start(self, run: RunInfo) -> None:
        """Store a new run as running (its gate with it), this process holding its lock until :meth:`finish`."""
        self._locks[run.id] = RunLock(self.path, run.id)
        with self.conn:
            self.conn.execute(
                "INSERT INTO eval_runs (id, suite, suite_path, suite_digest, started_at, status, repeat, targets, "
                "gate, gate_source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run.id, run.suite, run.suite_path, run.suite_digest, run.started_at, run.status, run.repeat,
                 json.dumps(list(run.targets)), run.gate, run.gate_source))

    def reopen(self, run: RunInfo) -> None:
        """Mark a stopped run running again (``--resume``): a :class:`ConfigError` when another process runs
        it. Its verdict goes (it concludes again); so does its gate when ``run`` carries none."""
        if run.id not in self._locks:
            self._locks[run.id] = RunLock(self.path, run.id)
        run.status, run.stop_reason, run.finished_at = "running", None, None
        run.verdict = run.failures = run.exit_code = None
        with self.conn:
            self.conn.execute("UPDATE eval_runs SET status = 'running', stop_reason = NULL, finished_at = NULL, "
                              "verdict = NULL, failures = NULL, exit_code = NULL, gate = ?, gate_source = ? "
                              "WHERE id = ?", (run.gate, run.gate_source, run.id))

    def finish(self, run: RunInfo) -> None:
        """Store the run's end (done or stopped) and its spend, then let go of its lock."""
        run.finished_at = time.time()
        with self.conn:
            self.conn.execute("UPDATE eval_runs SET status = ?, stop_reason = ?, finished_at = ?, cost_usd = ? "
                              "WHERE id = ?", (run.status, run.stop_reason, run.finished_at, run.cost_usd, run.id))
        lock = self._locks.pop(run.id, None)
        if lock is not None:
            lock.release()

    def spent(self, run: RunInfo) -> None:
        """Store the run's spend so far (with each batch of results: a run that dies keeps it)."""
        with self.conn:
            self.conn.execute("UPDATE eval_runs SET cost_usd = ? WHERE id = ?", (run.cost_usd, run.id))

    def conclude(self, run: RunInfo, verdict: str, failures: Iterable[str] | None, exit_code: int | None) -> None:
        """Store what the run concluded, with the gate and the comparison it was judged by (``run``'s)."""
        run.verdict, run.exit_code = verdict, exit_code
        run.failures = None if failures is None else tuple(failures)
        with self.conn:
            self.conn.execute(
                "UPDATE eval_runs SET gate = ?, gate_source = ?, compared_with = ?, verdict = ?, failures = ?, "
                "exit_code = ? WHERE id = ?",
                (run.gate, run.gate_source, run.compared_with, verdict,
                 None if run.failures is None else json.dumps(list(run.failures), ensure_ascii=False), exit_code,
                 run.id))

    def _settled(self, row: sqlite3.Row) -> RunInfo:
        """The run of ``row``; one left running by a process that died (killed, crashed) is stored as
        stopped, interrupted, first: it is resumable, and never shown running forever."""
        run = _run(row)
        if run.status != "running" or run.id in self._locks or is_alive(self.path, run.id):
            return run
        self.conn.execute("BEGIN IMMEDIATE")  # a process resuming it takes its lock, then waits for this
        try:
            if not is_alive(self.path, run.id):
                self.conn.execute("UPDATE eval_runs SET status = 'stopped', stop_reason = 'interrupted' "
                                  "WHERE id = ? AND status = 'running'", (run.id,))
            self.conn.commit()
        except BaseException:
            self.conn.rollback()
            raise
        return _run(self.conn.execute("SELECT * FROM eval_runs WHERE id = ?", (run.id,)).fetchone())

    def run(self, ref: str, suite: str | None = None) -> RunInfo:
        """A run by id (or a unique prefix of it), or ``last`` (of ``suite`` when given)."""
        if ref == "last":
            row = self.conn.execute(
                "SELECT * FROM eval_runs WHERE (? IS NULL OR suite = ?) ORDER BY id DESC LIMIT 1",
                (suite, suite)).fetchone()
            if row is None:
                raise ConfigError("no earlier eval run" + (f" of suite '{suite}'" if suite else ""),
                                  "run the suite once first")
            return self._settled(row)
        rows = self.conn.execute("SELECT * FROM eval_runs WHERE id >= ? AND id < ? ORDER BY id LIMIT 2",
                                 (ref.upper(), ref.upper() + "~")).fetchall()
        if len(rows) != 1:
            raise ConfigError(f"no eval run '{ref}'" if not rows else f"eval run '{ref}' is ambiguous",
                              "see `workbench evals list` for the ids")
        return self._settled(rows[0])

    def previous(self, run: RunInfo) -> RunInfo | None:
        """The latest run of the same suite before ``run``."""
        row = self.conn.execute("SELECT * FROM eval_runs WHERE suite = ? AND id < ? ORDER BY id DESC LIMIT 1",
                                (run.suite, run.id)).fetchone()
        return None if row is None else self._settled(row)

    def runs(self, suite: str | None = None, limit: int = 50) -> list[RunInfo]:
        rows = self.conn.execute("SELECT * FROM eval_runs WHERE (? IS NULL OR suite = ?) ORDER BY id DESC LIMIT ?",
                                 (suite, suite, limit)).fetchall()
        return [self._settled(r) for r in rows]

    # results

    def add(self, run_id: str, results: Iterable[tuple[CellResult, str, int]]) -> None:
        """Add (result, test description, place in the plan) in one transaction; a run's results read back
        in plan order (suite order), however they finished."""
        rows = []
        for result, description, place in results:
            key = result.key
            redact = self.redactor
            rows.append((run_id, place, key.test, key.prompt, key.target, result.repeat, description,
                         int(result.passed), result.score, int(result.cached), result.trace_id,
                         _json(stored_observation(result.observation, redact)),
                         json.dumps([asdict(stored_grading(g, redact)) for g in result.gradings], ensure_ascii=False)))
        with self.conn:
            self.conn.executemany(
                "INSERT OR REPLACE INTO eval_results (run_id, seq, test, prompt, target, repeat, description, passed,"
                " score, cached, trace_id, observation, gradings) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows)

    def regrade(self, run_id: str, results: Iterable[CellResult]) -> None:
        """Store the verdicts, scores and gradings ``results`` (recorded cells of ``run_id``) have now: a comparison
        of a test's cells (select-best, max-score) graded once they were all done."""
        rows = [(int(r.passed), r.score,
                 json.dumps([asdict(stored_grading(g, self.redactor)) for g in r.gradings], ensure_ascii=False),
                 run_id, r.key.test, r.key.prompt, r.key.target, r.repeat) for r in results]
        with self.conn:
            self.conn.executemany("UPDATE eval_results SET passed = ?, score = ?, gradings = ? WHERE run_id = ? AND "
                                  "test = ? AND prompt = ? AND target = ? AND repeat = ?", rows)

    def done_cells(self, run_id: str) -> set[tuple[CellKey, int]]:
        rows = self.conn.execute("SELECT test, prompt, target, repeat FROM eval_results WHERE run_id = ?", (run_id,))
        return {(CellKey(r[0], r[1], r[2]), r[3]) for r in rows}

    def failing_tests(self, run_id: str) -> set[str]:
        """The tests of the run with a cell that failed or errored (``--filter-failing``)."""
        rows = self.conn.execute("SELECT DISTINCT test FROM eval_results WHERE run_id = ? AND passed = 0", (run_id,))
        return {r[0] for r in rows}

    def errored_cells(self, run_id: str) -> set[tuple[CellKey, int]]:
        """The run's cells (and repeats) whose call errored."""
        rows = self.conn.execute("SELECT test, prompt, target, repeat FROM eval_results WHERE run_id = ? AND "
                                 "json_extract(observation, '$.error') IS NOT NULL", (run_id,))
        return {(CellKey(r[0], r[1], r[2]), r[3]) for r in rows}

    def forget_errors(self, run_id: str) -> None:
        """Drop the run's results whose call errored, so that resuming it calls those cells again
        (``--retry-errors``)."""
        with self.conn:
            self.conn.execute("DELETE FROM eval_results WHERE run_id = ? AND "
                              "json_extract(observation, '$.error') IS NOT NULL", (run_id,))

    def results(self, run_id: str) -> Iterator[tuple[CellResult, str]]:
        """(result, test description) in plan order (test, prompt, target, repeat as the suite lists them)."""
        rows = self.conn.execute("SELECT * FROM eval_results WHERE run_id = ? ORDER BY seq", (run_id,))
        for r in rows:
            result = CellResult(CellKey(r["test"], r["prompt"], r["target"]), r["repeat"],
                                _observation(r["observation"]),
                                [Grading.from_fields(g) for g in json.loads(r["gradings"])],
                                bool(r["passed"]), r["score"], bool(r["cached"]), r["trace_id"])
            yield result, r["description"]

    # provider batches (``eval --batch``)

    def add_batch(self, batch: StoredBatch) -> None:
        """Store a batch once submitted (committed at once: a process killed next can resume it)."""
        with self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO eval_batches (run_id, batch_id, api, target, submitted_at, state, succeeded, "
                "failed, requests, collected_at, cells) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (batch.run_id, batch.batch_id, batch.api, batch.target, batch.submitted_at, batch.state,
                 batch.succeeded, batch.failed, batch.requests, batch.collected_at, json.dumps(batch.cells)))

    def update_batch(self, batch: StoredBatch) -> None:
        """Store a batch's state, counts and collection time."""
        with self.conn:
            self.conn.execute("UPDATE eval_batches SET state = ?, succeeded = ?, failed = ?, collected_at = ? "
                              "WHERE run_id = ? AND batch_id = ?",
                              (batch.state, batch.succeeded, batch.failed, batch.collected_at, batch.run_id,
                               batch.batch_id))

    def batches(self, run_id: str) -> list[StoredBatch]:
        """The batches ``run_id`` submitted, in the order it submitted them."""
        rows = self.conn.execute("SELECT * FROM eval_batches WHERE run_id = ? ORDER BY submitted_at, batch_id",
                                 (run_id,))
        return [StoredBatch(r["run_id"], r["batch_id"], r["api"], r["target"], r["submitted_at"],
                            json.loads(r["cells"]), r["state"], r["succeeded"], r["failed"], r["collected_at"])
                for r in rows]

    # response cache

    def cached(self, key: str) -> Observation | None:
        row = self.conn.execute("SELECT observation FROM eval_cache WHERE key = ?", (key,)).fetchone()
        return None if row is None else _observation(row[0])

    def remember(self, items: Iterable[tuple[str, Observation]]) -> None:
        now = time.time()
        with self.conn:
            self.conn.executemany("INSERT OR REPLACE INTO eval_cache (key, observation, created_at) VALUES (?, ?, ?)",
                                  [(k, _json(kept), now) for k, o in items
                                   if (kept := cacheable(o, self.redactor)) is not None])
