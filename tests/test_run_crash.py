"""Crash consistency of `workbench run`: killed (-9) at random moments, it leaves a trace log that passes SQLite's
and FTS5's integrity checks, holds no call the server did not answer, and holds every call the server had
finished answering well before the kill."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx2

from workbench.fakeserver.process import FakeServerProcess

SEEDS = range(20)
BATCH = 4
"""Runs killed at once (each with its own trace log), so that 20 seeds take a few seconds."""
SETTLED_WITHIN_S = 1.5
"""A call the server finished this long before the kill must be in the log: settling and the writer's commit
(every 100 ms) take far less, even on a busy machine."""


def targets(seed: int) -> list[str]:
    """Four calls ending at different moments (~0.05 to ~1.2 s after they start)."""
    return [f"fake/crash@tokens={tokens},tps=50,id=crash-{seed}-{k}" for k, tokens in enumerate((3, 15, 35, 60))]


def test_a_run_killed_at_random_moments_leaves_a_sound_log_with_every_finished_call(
        fake_server: FakeServerProcess, tmp_path: Path) -> None:
    env = {**os.environ, "WORKBENCH_FAKE_URL": fake_server.base_url}
    killed_at: dict[int, int] = {}
    for batch in range(0, len(SEEDS), BATCH):
        runs = []
        for seed in SEEDS[batch:batch + BATCH]:
            rng = random.Random(seed)
            db = tmp_path / f"traces-{seed}.db"
            args = [sys.executable, "-m", "workbench", "run", f"crash test {seed}", "--json"]
            for target in targets(seed):
                args += ["-m", target]
            process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                       env={**env, "WORKBENCH_TRACES": str(db)}, cwd=tmp_path)
            runs.append((seed, process, time.monotonic() + rng.uniform(0.3, 2.2)))
        for seed, process, at in sorted(runs, key=lambda run: run[2]):
            time.sleep(max(0.0, at - time.monotonic()))  # the kill's moment is the test's input, not a wait
            killed_at[seed] = time.monotonic_ns()
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
    log = httpx2.get(f"{fake_server.base_url}/_fake/log", timeout=10).json()
    answered = {entry["scenario_id"]: entry for entry in log
                if str(entry.get("scenario_id", "")).startswith("crash-") and entry["outcome"] == "ok"}
    traced_total = 0
    for seed in SEEDS:
        db = tmp_path / f"traces-{seed}.db"
        if not db.exists():  # killed before the log was created: then nothing had finished long before
            assert not [k for k, e in answered.items() if k.startswith(f"crash-{seed}-")
                        and killed_at[seed] - e["last_token_ns"] > SETTLED_WITHIN_S * 1e9], seed
            continue
        with sqlite3.connect(db) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",), seed
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "payloads_fts" in tables:
                connection.execute("INSERT INTO payloads_fts(payloads_fts) VALUES ('integrity-check')")
            rows = connection.execute("SELECT target, status FROM calls").fetchall() if "calls" in tables else []
        traced = {target.rpartition("id=")[2]: status for target, status in rows}
        traced_total += len(traced)
        for label, status in traced.items():  # nothing traced that the server did not answer
            assert status != "ok" or label in answered, (seed, label)
        for label, entry in answered.items():
            if label.startswith(f"crash-{seed}-") and killed_at[seed] - entry["last_token_ns"] > SETTLED_WITHIN_S * 1e9:
                assert traced.get(label) == "ok", (seed, label, "finished long before the kill, not traced")
    assert traced_total > 0  # the kills did land after some calls had ended
