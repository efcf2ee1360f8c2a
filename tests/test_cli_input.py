"""Bytes a command reads from stdin: refused with one line and exit 2 unless they are UTF-8 text."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize("command", [["run", "-m", "fake/x@tokens=2", "--json"], ["tokens", "-m", "fake/x"]],
                         ids=["run", "tokens"])
def test_stdin_that_is_not_utf8_is_refused_before_any_call(command: list[str], fake_env: dict[str, str],
                                                           tmp_path: Path) -> None:
    db = tmp_path / "traces.db"
    result = subprocess.run([sys.executable, "-m", "workbench", *command], input=b"caf\xe9 au lait\n",
                            capture_output=True, timeout=60, cwd=tmp_path,
                            env={**os.environ, **fake_env, "WORKBENCH_TRACES": str(db)})
    assert result.returncode == 2
    err = result.stderr.decode()
    assert err.splitlines()[0] == "workbench: stdin is not UTF-8 text (byte 3)" and "Traceback" not in err
    assert not result.stdout and not db.exists()  # nothing sent, nothing traced


@pytest.mark.parametrize(("args", "line"), [
    (["tokens", "-m", "nosuch/model"], "workbench: unknown provider 'nosuch' in 'nosuch/model'"),
    (["tokens", "-m", "fake/x", "--max-tokens", "-1"],
     "workbench: argument --max-tokens: -1: expected a whole number of 1 or more"),
], ids=["unknown-provider", "max-tokens"])
def test_a_bad_flag_gets_one_line_and_exit_2(args: list[str], line: str, tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "workbench", *args], input=b"hi", capture_output=True,
                            timeout=60, cwd=tmp_path)
    err = result.stderr.decode()
    assert result.returncode == 2 and err.splitlines()[0] == line and "Traceback" not in err
    assert "pydantic" not in err and len(err.splitlines()) == 2  # the line and its hint
