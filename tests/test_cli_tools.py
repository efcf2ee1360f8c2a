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


def test_tool_calls_in_the_json_rows_and_in_traces_show(tmp_path: Path, fake_env: dict[str, str]) -> None:
    import json

    from tests.test_cli import json_lines

    tools = tmp_path / "tools.yaml"
    tools.write_text("- type: function\n  function:\n    name: get_weather\n    parameters:\n      type: object\n"
                     "      properties: {city: {type: string}}\n      required: [city]\n")
    result = workbench("run", "weather?", "-m", "fake/m@tools=2", "-m", "fake-gemini/g@tools=1", "-m", "fake/plain",
                       "--tools", str(tools), "--tool-choice", "get_weather", "--json", env=fake_env)
    assert result.returncode == 0, result.stderr
    chat, gemini, plain = json_lines(result.stdout)
    assert [(c["name"], json.loads(c["arguments"])) for c in chat["tool_calls"]] == [  # type: ignore[union-attr]
        ("get_weather", {"city": "city-0"}), ("get_weather", {"city": "city-1"})]
    assert all(str(c["id"]).startswith("call_") for c in chat["tool_calls"])  # type: ignore[union-attr]
    assert gemini["tool_calls"] == [{"id": "", "name": "get_weather", "arguments": '{"city":"city-0"}'}]
    assert chat["finish_reason"] == gemini["finish_reason"] == "tool_calls" and chat["text"] == ""
    assert plain["tool_calls"] == [] and plain["text"] and plain["finish_reason"] == "stop"
    shown = workbench("traces", "show", str(chat["trace_id"]), "--json", env=fake_env)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["tool_calls"] == chat["tool_calls"]
    assert json.loads(shown.stdout)["request"]["params"]["tool_choice"] == "get_weather"
    printed = workbench("traces", "show", str(chat["trace_id"]), env=fake_env)
    assert "tool calls" in printed.stdout and 'get_weather({"city":"city-0"})' in printed.stdout


def test_the_columns_show_each_tool_call_on_its_line(tmp_path: Path, fake_env: dict[str, str]) -> None:
    tools = tmp_path / "tools.json"
    tools.write_text('[{"type": "function", "function": {"name": "now", "parameters": {"type": "object"}}}]')
    result = workbench("run", "time?", "-m", "fake-anthropic/c@tools=2", "--tools", str(tools), env=fake_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("→ now({})") == 2 and "tool_calls" in result.stdout


def test_a_saved_session_keeps_the_tools_and_runs_them_again(tmp_path: Path) -> None:
    from tests.conftest import prompt_workspace
    from tests.test_cli import json_lines
    from tests.test_run_prompt import GREET
    from workbench.core.sessions import load_session_file

    ws = prompt_workspace(tmp_path, greet=GREET)
    tools = tmp_path / "tools.json"
    tools.write_text('[{"type": "function", "function": {"name": "now", "parameters": {"type": "object"}}}]')
    first = workbench("run", "time?", "-m", "fake/t@tools=1", "--tools", str(tools), "--tool-choice", "required",
                      "--save-session", "timed", "--json", cwd=ws)
    assert first.returncode == 0, first.stderr
    params = load_session_file(ws / "sessions" / "timed.yaml").request.params
    assert params.tools == [{"type": "function", "function": {"name": "now", "parameters": {"type": "object"}}}]
    assert params.tool_choice == "required"
    again = workbench("run", "--session", "timed", "--json", cwd=ws)
    assert again.returncode == 0, again.stderr
    assert json_lines(again.stdout)[0]["tool_calls"] == json_lines(first.stdout)[0]["tool_calls"] != []
