"""``workbench run --tools FILE --tool-choice ...``: a bad tools file or choice is one line and exit 2; the
reply's tool calls are in ``--json``'s ``tool_calls`` and in ``traces show``."""

from __future__ import annotations

from pathlib import Path

from tests.test_cli import workbench


def test_a_bad_tools_file_is_one_line_with_its_place_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "tools.yaml"
    bad.write_text("- type: function\n  function:\n    name: get weather\n")
    result = workbench("run", "hi", "-m", "fake/m", "--tools", str(bad), "--json")
    assert result.returncode == 2 and result.stdout == ""
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"workbench: {bad}:3: tool 1: its name must be") and "Traceback" not in result.stderr


def test_a_tool_choice_that_names_no_tool_or_has_no_tools_exits_2(tmp_path: Path) -> None:
    tools = tmp_path / "tools.json"
    tools.write_text('[{"type": "function", "function": {"name": "get_weather"}}]')
    wrong = workbench("run", "hi", "-m", "fake/m", "--tools", str(tools), "--tool-choice", "get_time")
    assert wrong.returncode == 2 and "--tool-choice get_time is neither" in wrong.stderr
    assert "the tools are: get_weather" in wrong.stderr
    alone = workbench("run", "hi", "-m", "fake/m", "--tool-choice", "auto")
    assert alone.returncode == 2 and "--tool-choice auto needs tools" in alone.stderr
