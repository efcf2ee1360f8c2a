"""Evals over tool calls: a provider's ``config.tools`` / ``tool_choice`` are sent with every cell (OpenAI's and
Anthropic's forms, inline or ``file://``), malformed ones stop the load at their line; the tool assertions grade
the reply's real tool calls against the provider's tools; the output a tool-call reply gives the other assertions
is promptfoo's; workbench's ``tool-call`` matches a call's name and arguments."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from tests.eval_suites import workspace_suite
from tests.resilience_helpers import server_log
from tests.test_cli import json_lines, workbench
from workbench.fakeserver.process import FakeServerProcess

WEATHER = """\
- type: function
  function:
    name: get_weather
    parameters:
      type: object
      properties: {city: {type: string}}
      required: [city]
"""


def _suite(tmp_path: Path, body: str) -> Path:
    path = workspace_suite(tmp_path, body)
    (path.parent / "tools.yaml").write_text(WEATHER, encoding="utf-8")
    return path


def _eval(suite: Path, env: dict[str, str] | None, *args: str):  # type: ignore[no-untyped-def]
    return workbench("eval", str(suite), "--json", "--no-cache", *args, cwd=suite.parent.parent, env=env)


def _results(suite: Path, env: dict[str, str], out: Path) -> list[dict[str, object]]:
    result = _eval(suite, env, "-o", str(out))
    assert result.returncode in (0, 1), result.stderr
    data = json.loads(out.read_text(encoding="utf-8"))
    rows: list[dict[str, object]] = data["results"]["results"]
    return rows


def _gradings(row: dict[str, object]) -> dict[str, tuple[bool, str]]:
    grading = row["gradingResult"]
    assert isinstance(grading, dict)
    return {str(c["assertion"]["type"]): (bool(c["pass"]), str(c["reason"])) for c in grading["componentResults"]}


def test_config_tools_and_tool_choice_are_sent_and_the_tool_assertions_grade_the_calls(
        tmp_path: Path, fake_env: dict[str, str], fake_server: FakeServerProcess) -> None:
    marker = uuid.uuid4().hex[:8]
    suite = _suite(tmp_path, f"""\
        prompts: ["Weather in {{{{city}}}}?"]
        targets:
          - id: fake/chat@tools=2,id={marker}a
            label: chat
            config:
              tools: file://tools.yaml
              tool_choice: {{type: function, function: {{name: get_weather}}}}
          - id: fake-anthropic/claude@tools=1,id={marker}b
            label: claude
            config:
              tools:
                - name: get_weather
                  description: The weather in a city
                  input_schema: {{type: object, properties: {{city: {{type: string}}}}, required: [city]}}
              tool_choice: {{type: any}}
        tests:
          - vars: {{city: Paris}}
            assert:
              - type: is-valid-openai-tools-call
              - type: tool-call-f1
                value: [get_weather]
              - type: tool-call
                value: {{name: get_weather, arguments: {{city: city-0}}}}
              - type: not-tool-call
                value: {{name: get_weather, arguments: {{city: Paris, unit: c}}}}
              - type: contains
                value: '"name":"get_weather"'
        """)
    rows = _results(suite, fake_env, tmp_path / "out.json")
    assert [row["success"] for row in rows] == [True, True], [_gradings(row) for row in rows]
    chat, claude = (next(e for e in server_log(fake_server.base_url) if f"{marker}{x}" in str(e["model"]))
                    for x in "ab")
    assert isinstance(chat["params"], dict) and isinstance(claude["params"], dict)
    assert chat["params"]["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                              "required": ["city"]}}}]
    assert chat["params"]["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert claude["params"]["tools"][0]["input_schema"]["required"] == ["city"]
    assert claude["params"]["tool_choice"] == {"type": "any"}
    outputs = [row["response"]["output"] for row in rows]  # type: ignore[index]
    calls = json.loads(str(outputs[0]))  # promptfoo's output of an OpenAI tool-call reply: the tool_calls list
    assert [(c["type"], c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls] == [
        ("function", "get_weather", {"city": "city-0"}), ("function", "get_weather", {"city": "city-1"})]
    block = json.loads(str(outputs[1]))  # Anthropic's: each tool_use block as JSON
    assert (block["type"], block["name"], block["input"]) == ("tool_use", "get_weather", {"city": "city-0"})


def test_a_call_that_breaks_the_schema_fails_the_validity_check_with_its_reason(
        tmp_path: Path, fake_env: dict[str, str]) -> None:
    suite = _suite(tmp_path, """\
        prompts: ["Weather?"]
        targets:
          - id: fake/chat@tools=1
            config: {tools: file://tools.yaml}
        tests:
          - assert:
              - type: is-valid-openai-tools-call
                value:  # the assertion's own tools win over the provider's
                  - type: function
                    function:
                      name: get_weather
                      parameters: {type: object, properties: {city: {type: integer}}, required: [city]}
              - type: tool-call
                value: {name: get_time}
        """)
    (row,) = _results(suite, fake_env, tmp_path / "out.json")
    gradings = _gradings(row)
    assert gradings["is-valid-openai-tools-call"][0] is False
    assert "does not match schema" in gradings["is-valid-openai-tools-call"][1]
    assert gradings["tool-call"][0] is False and "called get_weather(" in gradings["tool-call"][1]


def test_code_assertions_get_the_tool_calls_as_promptfoo_gives_them(
        tmp_path: Path, fake_env: dict[str, str]) -> None:
    suite = _suite(tmp_path, """\
        prompts: ["Weather?"]
        targets:
          - id: fake/chat@tools=1
            config: {tools: file://tools.yaml}
        tests:
          - assert:
              - type: python
                value: output[0]['function']['name'] == 'get_weather' and output[0]['type'] == 'function'
              - type: javascript
                value: output.length === 1 && output[0].function.name === 'get_weather'
              - type: is-json
        """)
    (row,) = _results(suite, fake_env, tmp_path / "out.json")
    assert row["success"] is True, _gradings(row)


def test_malformed_tools_and_tool_choices_stop_the_load_at_their_line(tmp_path: Path) -> None:
    cases = {
        "tools: [{name: 'get weather', input_schema: {type: object}}]": "its name must be",
        "tools: [{name: w, input_schema: {type: object}, color: red}]": "unknown key 'color'",
        "tools: file://missing.json": "no file 'file://missing.json'",
        "tools: {name: w}": "expected a list of tools",
        "tool_choice: auto": "config.tool_choice auto needs tools",
        "tools: file://tools.yaml, tool_choice: get_time": "is neither auto, none, required nor a tool's name",
        "tools: file://tools.yaml, tool_choice: {type: tool}": "is not a tool choice this can send",
    }
    for config, problem in cases.items():
        suite = _suite(tmp_path, f"""\
            prompts: ["Hi"]
            targets:
              - id: fake/chat
                config: {{{config}}}
            tests:
              - assert: [{{type: contains, value: x}}]
            """)
        result = _eval(suite, None)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        first = result.stderr.splitlines()[0]
        assert first.startswith("workbench: evals/suite.yaml:4: ") and problem in first, (config, first)


def test_a_tools_file_with_a_bad_tool_is_reported_at_its_own_line(tmp_path: Path) -> None:
    suite = _suite(tmp_path, """\
        prompts: ["Hi"]
        targets:
          - id: fake/chat
            config: {tools: file://bad.json}
        tests:
          - assert: [{type: contains, value: x}]
        """)
    (suite.parent / "bad.json").write_text('[\n  {"type": "function", "function": {"name": "a"}},\n'
                                           '  {"type": "function", "function": {"name": "a"}}\n]\n')
    result = _eval(suite, None)
    assert result.returncode == 2
    assert result.stderr.splitlines()[0].startswith("workbench: evals/bad.json:3: config.tools: tool 2: 'a' is named")


def test_the_run_json_counts_the_cells(tmp_path: Path, fake_env: dict[str, str]) -> None:
    suite = _suite(tmp_path, """\
        prompts: ["Weather?"]
        targets:
          - id: fake/chat@tools=1
            config: {tools: file://tools.yaml, tool_choice: required}
        tests:
          - assert: [{type: tool-call-f1, value: get_weather}]
        """)
    result = _eval(suite, fake_env)
    assert result.returncode == 0, result.stderr
    assert json_lines(result.stdout)[-1]["passes"] == 1


def test_resume_grades_a_traced_tool_call_reply_as_a_fresh_one(
        tmp_path: Path, fake_server: FakeServerProcess) -> None:
    import sqlite3

    marker = uuid.uuid4().hex[:8]
    suite = _suite(tmp_path, f"""\
        prompts: ["Weather?"]
        targets:
          - id: fake/resumed-{marker}@tools=1
            config: {{tools: file://tools.yaml}}
        tests:
          - assert:
              - type: tool-call
                value: {{name: get_weather, arguments: {{city: city-0}}}}
              - type: javascript
                value: output[0].function.name === 'get_weather'
        """)
    env = {"WORKBENCH_FAKE_URL": fake_server.base_url, "WORKBENCH_TRACES": str(tmp_path / "traces.db")}
    first = _eval(suite, env)
    assert first.returncode == 0, first.stderr
    run_id = str(json_lines(first.stdout)[-1]["run"])
    with sqlite3.connect(tmp_path / "evals.db") as conn:  # as a kill -9 leaves it: traced, its result not stored
        conn.execute("DELETE FROM eval_results WHERE run_id = ?", (run_id,))
        conn.execute("UPDATE eval_runs SET status = 'running', finished_at = NULL, verdict = NULL WHERE id = ?",
                     (run_id,))
    calls = sum(marker in str(e["model"]) for e in server_log(fake_server.base_url))
    resumed = _eval(suite, env, "--resume", run_id)
    assert resumed.returncode == 0, resumed.stderr
    summary = json_lines(resumed.stdout)[-1]
    assert (summary["runs"], summary["passes"]) == (1, 1)
    assert sum(marker in str(e["model"]) for e in server_log(fake_server.base_url)) == calls


def test_tool_call_reads_calls_written_in_a_json_output_in_each_providers_form() -> None:
    from workbench.core.evals.assertions_tools import output_calls

    forms = [
        [{"id": "c", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}],
        {"role": "assistant", "content": "x", "tool_calls": [{"function": {"name": "f", "arguments": '{"a":1}'}}]},
        {"type": "tool_use", "id": "t", "name": "f", "input": {"a": 1}},
        [{"functionCall": {"name": "f", "args": {"a": 1}}}],
        {"type": "function_call", "name": "f", "arguments": '{"a":1}'},
    ]
    for data in forms:
        (call,) = output_calls(data)
        assert call["name"] == "f" and json.loads(call["arguments"]) == {"a": 1}, data
    assert output_calls("plain text") == output_calls(None) == output_calls([1, "x"]) == []


def test_a_reply_with_text_and_tool_calls_gives_the_whole_message_as_its_output(
        tmp_path: Path, fake_env: dict[str, str]) -> None:
    suite = _suite(tmp_path, """\
        prompts: ["Weather?"]
        targets:
          - id: "fake/chat@tools=1,tokens=3"
            config: {tools: file://tools.yaml}
        tests:
          - assert:
              - type: javascript
                value: output.role === 'assistant' && output.content.length > 0 && output.tool_calls.length === 1
              - type: tool-call
                value: {name: get_weather}
        """)
    (row,) = _results(suite, fake_env, tmp_path / "out.json")
    assert row["success"] is True, _gradings(row)
    message = json.loads(str(row["response"]["output"]))  # type: ignore[index]
    assert set(message) == {"role", "content", "tool_calls"}


def test_gemini_function_declarations_are_translated_and_sent(
        tmp_path: Path, fake_env: dict[str, str], fake_server: FakeServerProcess) -> None:
    marker = uuid.uuid4().hex[:8]
    suite = _suite(tmp_path, f"""\
        prompts: ["Weather?"]
        targets:
          - id: fake-gemini/g-{marker}@tools=1
            config:
              tools:
                - functionDeclarations:
                    - name: get_weather
                      parameters: {{type: OBJECT, properties: {{city: {{type: STRING}}}}, required: [city]}}
        tests:
          - assert:
              - type: is-valid-openai-tools-call
              - type: tool-call
                value: {{name: get_weather, arguments: {{city: city-0}}}}
        """)
    (row,) = _results(suite, fake_env, tmp_path / "out.json")
    assert row["success"] is True, _gradings(row)
    (sent,) = (e for e in server_log(fake_server.base_url) if marker in str(e["model"]))
    assert isinstance(sent["params"], dict)
    declared = sent["params"]["tools"][0]["functionDeclarations"][0]
    assert declared["name"] == "get_weather" and "city" in json.dumps(declared)
    bad = _suite(tmp_path, """\
        prompts: ["Hi"]
        targets:
          - id: fake-gemini/g
            config:
              tools:
                - functionDeclarations:
                    - name: ok
                    - name: not ok
        tests:
          - assert: [{type: contains, value: x}]
        """)
    result = _eval(bad, None)
    assert result.returncode == 2
    assert result.stderr.splitlines()[0].startswith("workbench: evals/suite.yaml:8: config.tools: tool 2: its name")
