"""Output paths that cannot be written (a file where a folder is wanted, a folder where a file is, a place
nobody may create anything) are refused before any call is made or anything is read: exit 2, one line."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.resilience_helpers import requests_for
from tests.test_cli import workbench
from tests.test_eval_cli import PASSING, _eval, _workspace
from workbench.fakeserver.process import FakeServerProcess


def _one_clear_line(stderr: str, *words: str) -> None:
    lines = stderr.splitlines()
    assert "Traceback" not in stderr
    assert lines and lines[0].startswith("workbench: ") and all(word in lines[0] for word in words), stderr
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("  hint: ")), stderr


@pytest.mark.parametrize("where", ["a-file", "/proc/x"])
def test_eval_out_is_checked_before_any_call(tmp_path: Path, fake_server: FakeServerProcess, where: str) -> None:
    marker = uuid.uuid4().hex[:8]
    suite = _workspace(tmp_path, PASSING, marker=marker)
    out = tmp_path / where if where == "a-file" else Path(where)
    if where == "a-file":
        out.write_text("not a folder", encoding="utf-8")
    result = _eval(suite, "--report", "md", "--out", str(out), env={"WORKBENCH_FAKE_URL": fake_server.base_url})
    assert result.returncode == 2
    _one_clear_line(result.stderr, "--out", str(out))
    assert requests_for(fake_server.base_url, marker) == 0
    assert workbench("evals", "list", "--json", cwd=tmp_path).stdout == ""  # no run was started


def test_export_to_a_file_is_refused_before_anything_is_exported(tmp_path: Path) -> None:
    suite = _workspace(tmp_path, PASSING)
    assert _eval(suite).returncode == 0
    target = tmp_path / "a-file"
    target.write_text("not a folder", encoding="utf-8")
    result = workbench("export", "report", "last", "--to", str(target), cwd=tmp_path)
    assert result.returncode == 2
    _one_clear_line(result.stderr, "--to", str(target))
    assert target.read_text(encoding="utf-8") == "not a folder"

    inside = workbench("export", "report", "last", "--to", str(target / "repo"), cwd=tmp_path)
    assert inside.returncode == 2
    _one_clear_line(inside.stderr, "--to")


def test_traces_export_to_a_folder_is_refused_with_one_line(tmp_path: Path) -> None:
    assert workbench("run", "hi", "-m", "fake/x@tokens=2", "--json", cwd=tmp_path).returncode == 0
    folder = tmp_path / "out"
    folder.mkdir()
    result = workbench("traces", "export", "-o", str(folder), cwd=tmp_path)
    assert result.returncode == 2
    _one_clear_line(result.stderr, str(folder))
