"""One record the trace writer cannot store never stops it: the record is said on stderr and skipped, the others
are written, and no face reports a trace id for a row that does not exist."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_cli import json_lines
from tests.test_traces import synthetic
from workbench.core.call_record import CallRecord
from workbench.core.request import ChatRequest
from workbench.core.traces.context import CallContext
from workbench.core.traces.store import TraceStore
from workbench.core.traces.writer import TraceWriter

ROOT = Path(__file__).resolve().parents[1]


def bad_records() -> list[CallRecord]:
    surrogate_reply = CallRecord("fake/reply", ChatRequest.from_prompt("fine"))
    surrogate_reply.text_parts = ["caf\udcff"]  # what non-UTF-8 input decoded with surrogateescape holds
    surrogate_prompt = CallRecord("fake/prompt", ChatRequest.from_prompt("na\udcefve"))
    not_text = CallRecord("fake/bytes", ChatRequest.from_prompt("fine"))
    not_text.text_parts = ["ok", b"raw"]  # type: ignore[list-item]  # a provider's text that is not a string
    return [surrogate_reply, surrogate_prompt, not_text]


def test_bad_records_are_said_and_skipped_the_others_written(tmp_path: Path,
                                                            capfd: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "w.db"
    good = synthetic(6, time.time() - 100)
    bad = bad_records()
    writer = TraceWriter(path)
    mixed = [good[0], bad[0], good[1], bad[1], good[2], bad[2], good[3]]  # bad ones in the same batch as good ones
    ids = [writer.write(record, CallContext(tags=("t",))) for record in mixed]
    confirmed = writer.confirm(ids)
    assert [call_id is not None for call_id in confirmed] == [True, False, True, False, True, False, True]
    assert writer.lost == 3
    later = [writer.write(record) for record in good[4:]]  # the thread is still there
    assert writer.confirm(later) == later
    writer.close()

    stored = {row["id"] for row in TraceStore(path).page(limit=100)}
    assert stored == {call_id for call_id in confirmed if call_id} | set(later)
    err = capfd.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 3 and all(line.startswith("workbench: call ") for line in lines), err
    for call_id, record in zip(ids, mixed, strict=True):
        if record in bad:
            assert any(call_id in line and record.target in line for line in lines)
    said = {target: next(line for line in lines if f"({target})" in line) for target in ("fake/reply", "fake/prompt",
                                                                                          "fake/bytes")}
    assert "not valid Unicode" in said["fake/reply"] and "not valid Unicode" in said["fake/prompt"]
    assert "TypeError" in said["fake/bytes"]
    assert "Traceback" not in err


def test_run_json_shows_no_trace_id_for_a_call_not_written(tmp_path: Path) -> None:
    """A prompt given as non-UTF-8 bytes on the command line (Python decodes it with surrogateescape): its
    calls cannot be stored. Every call is still shown, without a trace id, and the run exits 1."""
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    env["WORKBENCH_TRACES"] = str(tmp_path / "r.db")
    ran = subprocess.run([sys.executable, "-m", "workbench", "run", b"caf\xe9 latte", "-m", "fake/a@tokens=3",
                          "-m", "fake/b@tokens=2", "--json"], capture_output=True, env=env, cwd=ROOT, timeout=60)
    out, err = ran.stdout.decode(), ran.stderr.decode(errors="replace")
    rows = json_lines(out)
    assert [row["target"] for row in rows] == ["fake/a@tokens=3", "fake/b@tokens=2"]
    assert [row["trace_id"] for row in rows] == [None, None], out
    assert ran.returncode == 1 and "was not written to the trace log" in err and "Traceback" not in err
    assert TraceStore(tmp_path / "r.db").page() == []
