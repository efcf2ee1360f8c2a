"""A command whose reader goes away (`| head -1`, or gone before it writes) stops quietly: no traceback, exit 141
as for SIGPIPE."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_ui_snapshots import records
from workbench.core.traces.writer import TraceWriter


@pytest.fixture
def big_log(tmp_path: Path) -> Path:
    """A trace log whose listings are far larger than a pipe's buffer."""
    path = tmp_path / "traces.db"
    writer = TraceWriter(path)
    for _ in range(600):
        for record in records():
            writer.write(record)
    writer.close()
    return path


@pytest.mark.parametrize("command", [["traces", "list", "--json", "-n", "2000"], ["traces", "export"],
                                     ["traces", "export", "--format", "csv"], ["traces", "list", "-n", "2000"]],
                         ids=["list-json", "export-jsonl", "export-csv", "list-table"])
def test_a_reader_that_goes_away_ends_the_command_quietly(command: list[str], big_log: Path) -> None:
    process = subprocess.Popen([sys.executable, "-m", "workbench", "traces", "--db", str(big_log), *command[1:]],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "COLUMNS": "200"})
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader is gone before the command writes: its first write fails
    err = process.stderr.read().decode()
    assert process.wait(timeout=60) == 141, err
    assert err == ""


def test_head_takes_the_first_line_and_the_command_ends_quietly(big_log: Path) -> None:
    process = subprocess.Popen([sys.executable, "-m", "workbench", "traces", "--db", str(big_log), "list", "--json",
                                "-n", "2000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    process.stdout.close()  # as `head -1` does once it has its line
    err = process.stderr.read().decode()
    assert process.wait(timeout=60) == 141, err
    assert first.startswith(b"{") and err == ""
