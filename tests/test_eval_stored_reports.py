"""A stored eval run's report says what the run said: its gate, its verdict, its exit code and the run it was
compared with are stored with it, so ``evals show`` (every format) and ``export report`` render the very
reports ``workbench eval`` wrote; runs stored before that render with "no gate recorded"."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.test_cli import json_lines, workbench
from tests.test_eval_cli import FAILING, PASSING, _eval, _workspace
from workbench.core.errors import ConfigError
from workbench.core.evals import store_schema
from workbench.core.evals.run_store import EvalStore

FROZEN = {
    "create_tables": "66c69cd520697af4b60ce7bbddc2723e3c9e267606dd3753106bc9317462d6d6",
    "run_verdicts": "aa47ab078e28e938f5623b47148b9336529a0c8bdfc709c9e5cd9a8da6e28d04",
    "eval_batches": "65482ae1e823c2d2d9cb8cd7c76f39412ca4793549c20cd4e84c5b0a54fe41a1",
}
"""sha256 of each shipped migration of ``evals.db``. A shipped migration never changes: add one instead."""

FORMATS = {"md": ".md", "json": ".json", "junit": ".xml", "html": ".html"}


def _git_repo(path: Path) -> Path:
    path.mkdir()
    for args in (["init", "-q"], ["config", "user.email", "ci@example.com"], ["config", "user.name", "CI"]):
        subprocess.run(["git", "-C", str(path), *args], check=True)
    return path


def test_evals_show_and_export_report_render_what_the_run_wrote(tmp_path: Path) -> None:
    suite = _workspace(tmp_path, PASSING)
    base = _eval(suite)
    assert base.returncode == 0, base.stderr
    base_id = json_lines(base.stdout)[-1]["run"]
    _workspace(tmp_path, FAILING)
    out = tmp_path / "reports"
    reports = [arg for fmt in FORMATS for arg in ("--report", fmt)]
    failed = _eval(suite, "--gate", "0.9", "--compare", "last", *reports, "--out", str(out))
    assert failed.returncode == 1, failed.stderr
    head_id = str(json_lines(failed.stdout)[-1]["run"])
    written = {path.suffix: path.read_text(encoding="utf-8") for path in out.iterdir()}
    assert set(written) == set(FORMATS.values())

    md = written[".md"]
    assert md.startswith("## ❌ smoke: 0% passed (0/2) · gate 90% · ")
    assert "- pass rate 0% (0/2) is under the gate of 90%" in md and f"### Compared with run {base_id}" in md
    document = json.loads(written[".json"])
    assert document["gate"] == 0.9 and document["totals"]["passed"] is False
    assert document["diff"]["base"]["id"] == base_id
    assert {key: document["run"][key] for key in ("gate_source", "verdict", "exit_code", "compared_with")} == {
        "gate_source": "option", "verdict": "failed", "exit_code": 1, "compared_with": base_id}

    for fmt, suffix in FORMATS.items():
        shown = workbench("evals", "show", head_id, "--format", fmt, cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout == written[suffix], fmt

    repo = _git_repo(tmp_path / "repo")
    exported = workbench("export", "report", head_id, "--to", str(repo), "--commit",
                         *[arg for fmt in FORMATS for arg in ("--format", fmt)], cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    for suffix, text in written.items():
        assert (repo / "evals" / "reports" / f"smoke{suffix}").read_text(encoding="utf-8") == text, suffix


def test_the_default_gate_and_the_exit_code_are_stored_with_the_run(tmp_path: Path) -> None:
    suite = _workspace(tmp_path, PASSING, tests=2)
    suite.write_text(suite.read_text(encoding="utf-8").replace(
        "  - description: case 1\n", "  - description: case 1\n    assert:\n      - type: contains\n"
                                     "        value: never-in-a-fake-reply\n"), encoding="utf-8")
    result = _eval(suite)
    assert result.returncode == 1 and "under the gate of 100%" in json_lines(result.stdout)[-1]["failures"][0]  # type: ignore[index]

    md = workbench("evals", "show", "last", cwd=tmp_path).stdout
    assert md.startswith("## ❌ smoke: 50% passed (1/2) · gate 100% · ")
    assert "- pass rate 50% (1/2) is under the gate of 100%" in md
    document = json.loads(workbench("evals", "show", "last", "--format", "json", cwd=tmp_path).stdout)
    assert document["gate"] == 1.0 and document["totals"]["passed"] is False and document["diff"] is None
    assert (document["run"]["gate_source"], document["run"]["verdict"], document["run"]["exit_code"]) == (
        "default", "failed", 1)


def test_a_budget_stop_is_stored_as_stopped_with_exit_code_3(tmp_path: Path) -> None:
    suite = _workspace(tmp_path, PASSING, tests=6)
    stopped = _eval(suite, "--max-cost", "0.01", "--concurrency", "1")
    assert stopped.returncode == 3, stopped.stderr
    document = json.loads(workbench("evals", "show", "last", "--format", "json", cwd=tmp_path).stdout)
    assert (document["run"]["status"], document["run"]["verdict"], document["run"]["exit_code"]) == (
        "stopped", "stopped", 3)


def _version_1_store(path: Path) -> str:
    """An ``evals.db`` as the first eval stores were: one finished run with one failing result."""
    run_id = "01JOLDRUN00000000000000000"
    with sqlite3.connect(path) as conn:
        for statement in store_schema.MIGRATIONS[0].sql:
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")
        conn.execute("INSERT INTO eval_runs (id, suite, suite_path, suite_digest, started_at, finished_at, status, "
                     "repeat, targets, cost_usd) VALUES (?, 'greet', 'evals/greet.yaml', 'd', 1767225600, "
                     "1767225660, 'done', 1, '[\"fake/x\"]', 0)", (run_id,))
        observation = json.dumps({"text": "hello", "vars": {"name": "Bob"}})
        gradings = json.dumps([{"assertion": "contains", "passed": False, "score": 0.0, "reason": "no 'bye'"}])
        conn.execute("INSERT INTO eval_results (run_id, seq, test, prompt, target, repeat, description, passed, "
                     "score, cached, trace_id, observation, gradings) VALUES (?, 0, 'says bye', 'p', 'fake/x', 0, "
                     "'says bye', 0, 0, 0, NULL, ?, ?)", (run_id, observation, gradings))
    return run_id


def test_a_run_stored_before_verdicts_renders_with_no_gate_recorded(tmp_path: Path) -> None:
    run_id = _version_1_store(tmp_path / "evals.db")
    md = workbench("evals", "show", run_id, cwd=tmp_path)
    assert md.returncode == 0, md.stderr
    headline = md.stdout.splitlines()[0]
    assert headline.startswith("## greet: 0% passed (0/1) · no gate recorded · ")  # no verdict mark
    document = json.loads(workbench("evals", "show", run_id, "--format", "json", cwd=tmp_path).stdout)
    assert document["gate"] is None and document["totals"]["passed"] is None and document["diff"] is None
    for fmt in ("junit", "html"):
        assert workbench("evals", "show", run_id, "--format", fmt, cwd=tmp_path).returncode == 0
    with sqlite3.connect(tmp_path / "evals.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (store_schema.SCHEMA_VERSION,)


def checksum(migration: store_schema.Migration) -> str:
    return hashlib.sha256("\n".join(migration.sql).encode()).hexdigest()


def test_shipped_eval_store_migrations_never_change() -> None:
    assert [m.name for m in store_schema.MIGRATIONS] == list(FROZEN)
    for migration in store_schema.MIGRATIONS:
        assert checksum(migration) == FROZEN[migration.name], f"{migration.name}: add a migration instead"


def test_a_failed_migration_leaves_the_previous_version_whole(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "evals.db"
    run_id = _version_1_store(path)
    broken = store_schema.Migration("run_verdicts", (*store_schema.MIGRATIONS[1].sql, "SELECT * FROM no_such_table"))
    monkeypatch.setattr(store_schema, "MIGRATIONS", (store_schema.MIGRATIONS[0], broken))
    with pytest.raises(ConfigError, match="cannot open the eval store"):
        EvalStore(path)
    conn = sqlite3.connect(path)
    assert store_schema.version(conn) == 1
    assert "gate" not in {row[1] for row in conn.execute("PRAGMA table_info(eval_runs)")}  # no column of it
    conn.close()

    monkeypatch.undo()
    store = EvalStore(path)  # the next open finishes the job
    try:
        assert store_schema.version(store.conn) == store_schema.SCHEMA_VERSION
        assert store.run(run_id).gate is None
    finally:
        store.close()
