"""Tools in prompt files: a list in OpenAI's function format, or ``tools: file://PATH`` beside the file; checked
with the file's line, written back as they were given, held by each version, sent with the prompt's requests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import prompt_workspace
from tests.test_cli import json_lines, workbench
from workbench.core.prompts import (
    PromptFileError,
    dump_prompt,
    get_version,
    load_current,
    parse_prompt,
    save_version,
    write_prompt,
)
from workbench.core.prompts.model import request_params

TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather of a city", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}

INLINE = """\
name: weather
targets:
  - fake-anthropic/a@tools=1
messages:
  - role: user
    content: Weather in Paris?
  - role: assistant
    tool_calls:
      - id: toolu_1
        name: get_weather
        arguments: '{"city":"Paris"}'
  - role: tool
    tool_call_id: toolu_1
    content: '{"temp": 18}'
tools:
  - type: function
    function:
      name: get_weather
      description: Weather of a city
      parameters:
        type: object
        properties:
          city:
            type: string
        required:
          - city
tool_choice: auto
"""


def test_inline_tools_load_send_and_write_back_equal() -> None:
    prompt = parse_prompt(INLINE, "weather.yaml")
    assert prompt.tools == [TOOL] and prompt.tool_choice == "auto"
    params = request_params(prompt)
    assert params.tools == (TOOL,) and params.tool_choice == "auto"
    assert dump_prompt(prompt) == INLINE  # block style, in the file's order: diff-friendly
    assert parse_prompt(dump_prompt(prompt), "weather.yaml") == prompt


def test_a_prompt_files_canned_tool_results_run_on_anthropic_without_tools_flag(tmp_path: Path,
                                                                                 fake_env: dict[str, str]) -> None:
    ws = prompt_workspace(tmp_path, weather=INLINE)
    ran = workbench("run", "--prompt", "weather", "--json", "--no-trace", env=fake_env, cwd=ws)
    assert ran.returncode == 0, ran.stderr
    [row] = json_lines(ran.stdout)
    assert row["status"] == "ok" and row["text"], row


@pytest.mark.parametrize(("suffix", "text"), [(".json", json.dumps([TOOL], indent=2)),
                                              (".yaml", "- type: function\n  function:\n    name: get_weather\n"
                                                        "    description: Weather of a city\n    parameters:\n"
                                                        "      type: object\n      properties:\n        city:\n"
                                                        "          type: string\n      required: [city]\n")])
def test_tools_from_a_file_beside_the_prompt(tmp_path: Path, suffix: str, text: str) -> None:
    ws = prompt_workspace(tmp_path)
    (ws / "prompts" / f"tools{suffix}").write_text(text)
    path = ws / "prompts" / "weather.yaml"
    path.write_text(f"name: weather\nmessages:\n  - role: user\n    content: Weather?\ntools: file://tools{suffix}\n")
    prompt = load_current(ws, "weather")
    assert prompt.tools == [TOOL] and prompt.tools_file == f"tools{suffix}"
    assert request_params(prompt).tools == (TOOL,)

    write_prompt(path, prompt.model_copy(update={"tool_choice": "get_weather"}))  # the reference stays
    assert path.read_text().endswith(f"tools: file://tools{suffix}\ntool_choice: get_weather\n")
    version = save_version(ws, load_current(ws, "weather"))
    kept = get_version(ws, "weather", version.number)  # the version holds the tools themselves
    assert kept.tools == [TOOL] and kept.tools_file is None and kept.tool_choice == "get_weather"


@pytest.mark.parametrize(("tail", "line", "problem"), [
    ("tools:\n  - type: function\n    function:\n      name: get weather\n", 8,
     "weather.yaml:8: tools: tool 1: its name must be 1-64 letters"),
    ("tools:\n  - type: function\n    function:\n      name: a\n      colour: red\n", 9,
     "weather.yaml:9: tools: tool 'a': unknown key 'colour'"),
    ("tools:\n  - type: function\n    function:\n      name: a\ntool_choice: b\n", 9,
     "weather.yaml:9: tool_choice: Value error, tool choice b is neither auto, none, required nor a tool's name (a)"),
    ("tool_choice: auto\n", 5, "weather.yaml:5: tool_choice: Value error, tool choice auto needs tools"),
    ("tools: tools.json\n", 5, "weather.yaml:5: tools: a list of tools or file://PATH, not 'tools.json'"),
    ("tools: file://missing.json\n", 5, "weather.yaml:5: tools: cannot read the tools file"),
    ("tools_file: tools.json\n", 5, "weather.yaml:5: unknown key 'tools_file': write tools: file://PATH"),
])
def test_bad_tools_fail_at_their_line(tail: str, line: int, problem: str) -> None:
    text = "name: weather\nmessages:\n  - role: user\n    content: Weather?\n" + tail
    with pytest.raises(PromptFileError) as caught:
        parse_prompt(text, "weather.yaml")
    assert caught.value.line == line and str(caught.value).startswith(problem), str(caught.value)


def test_a_bad_tools_file_names_its_own_line_in_one_line_and_exit_2(tmp_path: Path) -> None:
    ws = prompt_workspace(tmp_path, weather="name: weather\nmessages:\n  - role: user\n    content: Hi\n"
                                            "tools: file://tools.json\n")
    (ws / "prompts" / "tools.json").write_text('[\n  {"type": "function",\n   "function": {"name": "a b"}}\n]\n')
    ran = workbench("run", "--prompt", "weather", "-m", "fake/a", "--no-trace", cwd=ws)
    assert ran.returncode == 2 and "Traceback" not in ran.stderr
    first = ran.stderr.strip().splitlines()[0]
    assert "weather.yaml:5: tools: " in first and "tools.json:3: tool 1: its name must be" in first, ran.stderr
