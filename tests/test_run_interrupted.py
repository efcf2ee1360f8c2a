"""`workbench run` interrupted (Ctrl-C, SIGTERM) or killed (-9) mid-race: each call is traced as soon as it is
final, the cancelled ones with their partial output and estimated usage, and --json prints JSON lines."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.timing_slack import until

FAST, SLOW = "fake/quick@tokens=3", "fake/slow@tokens=400,tps=20,id=slow-interrupted"
"""One call over at once, one that streams for 20 s: the interruption always lands while it streams."""


def start(tmp_path: Path, fake_env: dict[str, str], *flags: str) -> tuple[subprocess.Popen[str], Path]:
    db = tmp_path / "traces.db"
    env = {**os.environ, **fake_env, "WORKBENCH_TRACES": str(db)}
    process = subprocess.Popen([sys.executable, "-m", "workbench", "run", "Tell me a long story", "-m", FAST,
                                "-m", SLOW, *flags], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env, cwd=tmp_path)
    return process, db


def rows(db: Path) -> list[sqlite3.Row]:
    if not db.exists():
        return []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        connection.row_factory = sqlite3.Row
        try:
            return list(connection.execute("SELECT calls.*, payloads.response_text FROM calls "
                                           "JOIN payloads ON payloads.call_id = calls.id ORDER BY target"))
        except sqlite3.OperationalError:  # the tables are being created
            return []


def the_quick_call_is_traced_while_the_slow_one_streams(db: Path, process: subprocess.Popen[str]) -> None:
    until(lambda: any(r["target"] == FAST for r in rows(db)) or process.poll() is not None,
               "the finished call's trace row")
    assert process.poll() is None, process.communicate()
    assert [r["status"] for r in rows(db) if r["target"] == FAST] == ["ok"]


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_run_traces_every_call_and_prints_json_lines(
        signum: int, code: int, fake_env: dict[str, str], tmp_path: Path) -> None:
    process, db = start(tmp_path, fake_env, "--json")
    the_quick_call_is_traced_while_the_slow_one_streams(db, process)
    until(lambda: _streamed(fake_env), "the slow stream's first tokens")
    process.send_signal(signum)
    out, err = process.communicate(timeout=30)
    assert process.returncode == code, err
    assert "Traceback" not in err and "interrupted" in err
    printed = {line["target"]: line for line in map(json.loads, out.splitlines())}
    assert set(printed) == {FAST, SLOW}
    assert printed[FAST]["status"] == "ok" and printed[FAST]["trace_id"]
    slow = printed[SLOW]
    assert slow["status"] == "error" and slow["text"] and slow["trace_id"]
    assert slow["output_tokens"] > 0 and slow["usage_estimated"] is True  # what it streamed, counted offline
    stored = {r["target"]: r for r in rows(db)}
    assert stored[SLOW]["id"] == slow["trace_id"] and stored[SLOW]["status"] == "error"
    assert stored[SLOW]["response_text"] == slow["text"]
    assert stored[SLOW]["output_tokens"] == slow["output_tokens"] and stored[SLOW]["usage_estimated"] == 1
    assert stored[FAST]["id"] == printed[FAST]["trace_id"]


def _streamed(fake_env: dict[str, str]) -> bool:
    """The fake server has sent the slow call some tokens (its request log counts them as they go out)."""
    import httpx2

    log = httpx2.get(f"{fake_env['WORKBENCH_FAKE_URL']}/_fake/log", timeout=5).json()
    return any(entry.get("scenario_id") == "slow-interrupted" and entry.get("tokens_sent", 0) >= 2 for entry in log)


def test_a_killed_run_keeps_the_calls_that_had_finished(fake_env: dict[str, str], tmp_path: Path) -> None:
    process, db = start(tmp_path, fake_env, "--json")
    the_quick_call_is_traced_while_the_slow_one_streams(db, process)
    process.kill()
    process.communicate(timeout=30)
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert [(r["target"], r["status"]) for r in rows(db)] == [(FAST, "ok")]
