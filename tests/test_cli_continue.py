"""``workbench run --continue TRACE_ID --tool-result CALL_ID=TEXT|@FILE``: a traced reply's tool calls answered and
sent again; a prompt file holding a conversation with canned tool results; sessions keeping such conversations."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import prompt_workspace
from tests.test_cli import json_lines, workbench

TOOLS = ("- type: function\n  function:\n    name: get_weather\n    parameters:\n      type: object\n"
         "      properties: {city: {type: string}}\n      required: [city]\n")


def _first(tmp_path: Path, env: dict[str, str], target: str) -> dict[str, object]:
    tools = tmp_path / "tools.yaml"
    tools.write_text(TOOLS)
    result = workbench("run", "Weather in Paris and Oslo?", "-m", target, "--tools", str(tools), "--json", env=env)
    assert result.returncode == 0, result.stderr
    [row] = json_lines(result.stdout)
    return row


def test_continue_answers_each_tool_call_and_the_reply_is_text(tmp_path: Path, fake_env: dict[str, str]) -> None:
    row = _first(tmp_path, fake_env, "fake-anthropic/m@tools=2")
    first, second = (str(c["id"]) for c in row["tool_calls"])  # type: ignore[attr-defined]
    trace = str(row["trace_id"])
    missing = workbench("run", "--continue", trace, "--tool-result", f"{first}=sunny", "--json", env=fake_env)
    assert missing.returncode == 2 and missing.stdout == "" and "Traceback" not in missing.stderr
    assert missing.stderr.splitlines()[0] == f"workbench: no result for the tool call {second}"
    unknown = workbench("run", "--continue", trace, "--tool-result", f"{first}=a", "--tool-result", f"{second}=b",
                        "--tool-result", "call_x=c", env=fake_env)
    assert unknown.returncode == 2 and "the reply has no tool call call_x" in unknown.stderr
    assert f"its calls are {first}, {second}" in unknown.stderr
    result_file = tmp_path / "rain.json"
    result_file.write_text('{"rain": true}')
    done = workbench("run", "--continue", trace, "--tool-result", f"{first}=sunny",
                     "--tool-result", f"{second}=@{result_file}", "--json", env=fake_env)
    assert done.returncode == 0, done.stderr
    [reply] = json_lines(done.stdout)
    assert reply["target"] == "fake-anthropic/m@tools=2" and reply["text"] and reply["tool_calls"] == []
    assert reply["finish_reason"] == "stop"
    shown = json.loads(workbench("traces", "show", str(reply["trace_id"]), "--json", env=fake_env).stdout)
    messages = shown["request"]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool"]
    assert [c["id"] for c in messages[1]["tool_calls"]] == [first, second]
    assert (messages[2]["tool_call_id"], messages[2]["content"]) == (first, "sunny")
    assert messages[3]["content"] == '{"rain": true}'
    printed = workbench("traces", "show", str(reply["trace_id"]), env=fake_env).stdout
    assert f"── tool {second} ──" in printed and f'→ get_weather({{"city":"city-0"}})  id {first}' in printed
    assert shown["request"]["params"]["tools"][0]["function"]["name"] == "get_weather"  # the tools travel on
    again = workbench("run", "--continue", str(reply["trace_id"]), "And tomorrow?", "--json", env=fake_env)
    assert again.returncode == 0, again.stderr
    follow = json.loads(workbench("traces", "show", str(json_lines(again.stdout)[0]["trace_id"]), "--json",
                                  env=fake_env).stdout)
    assert [m["role"] for m in follow["request"]["messages"]] == ["user", "assistant", "tool", "tool", "assistant",
                                                                 "user"]


def test_calls_without_ids_are_answered_by_position(tmp_path: Path, fake_env: dict[str, str]) -> None:
    row = _first(tmp_path, fake_env, "fake-gemini/g@tools=2")
    assert [c["id"] for c in row["tool_calls"]] == ["", ""]  # type: ignore[attr-defined]
    shown = workbench("traces", "show", str(row["trace_id"]), env=fake_env).stdout
    assert "id call_0 (by position)" in shown and "id call_1 (by position)" in shown
    done = workbench("run", "--continue", str(row["trace_id"]), "--tool-result", "call_0=sun",
                     "--tool-result", "call_1=rain", "-m", "fake-ollama/o@tools=2", "--json", env=fake_env)
    assert done.returncode == 0, done.stderr
    [reply] = json_lines(done.stdout)
    assert reply["target"] == "fake-ollama/o@tools=2" and reply["text"] and reply["tool_calls"] == []


def test_a_gemini_3_call_continues_with_its_thought_signature_from_the_trace_log(tmp_path: Path,
                                                                                 fake_env: dict[str, str]) -> None:
    row = _first(tmp_path, fake_env, "fake-gemini/gemini-3-flash@tools=1")
    assert "signature" not in row["tool_calls"][0]  # type: ignore[index]
    done = workbench("run", "--continue", str(row["trace_id"]), "--tool-result", "call_0=sun", "--json", env=fake_env)
    assert done.returncode == 0, done.stderr  # the fake server refuses a Gemini 3 call sent back without it
    assert json_lines(done.stdout)[0]["text"]


def test_an_anthropic_call_with_thinking_continues_with_its_signed_thinking(tmp_path: Path,
                                                                          fake_env: dict[str, str]) -> None:
    tools = tmp_path / "tools.yaml"
    tools.write_text(TOOLS)
    first = workbench("run", "Weather?", "-m", "fake-anthropic/t@tools=1,reasoning=6", "--tools", str(tools),
                      "--thinking-budget", "2048", "--json", env=fake_env)
    assert first.returncode == 0, first.stderr
    [row] = json_lines(first.stdout)
    call_id = row["tool_calls"][0]["id"]  # type: ignore[index]
    done = workbench("run", "--continue", str(row["trace_id"]), "--tool-result", f"{call_id}=sun", "--json",
                     env=fake_env)
    assert done.returncode == 0, done.stderr  # the fake server refuses the calls sent back without the thinking
    assert json_lines(done.stdout)[0]["text"] and json_lines(done.stdout)[0]["error"] is None


def test_bad_continue_options_are_one_line_and_exit_2(tmp_path: Path, fake_env: dict[str, str]) -> None:
    alone = workbench("run", "hi", "-m", "fake/m", "--tool-result", "call_1=x", env=fake_env)
    assert alone.returncode == 2 and "--tool-result answers a tool call of a traced reply" in alone.stderr
    nothing = workbench("run", "--continue", "01NOSUCHCALL", env=fake_env)
    assert nothing.returncode == 2 and "Traceback" not in nothing.stderr
    row = _first(tmp_path, fake_env, "fake/m@tools=1")
    shaped = workbench("run", "--continue", str(row["trace_id"]), "--tool-result", "no-equals-sign", env=fake_env)
    assert shaped.returncode == 2 and "expected CALL_ID=TEXT or CALL_ID=@FILE" in shaped.stderr
    mixed = workbench("run", "--continue", str(row["trace_id"]), "--system", "x", env=fake_env)
    assert mixed.returncode == 2 and "--continue brings the traced call's system prompt" in mixed.stderr
    plain = json_lines(workbench("run", "hi", "-m", "fake/m", "--json", env=fake_env).stdout)[0]
    empty = workbench("run", "--continue", str(plain["trace_id"]), env=fake_env)
    assert empty.returncode == 2 and "the reply made no tool call: nothing to continue with" in empty.stderr


CANNED = """\
name: weather
targets: ["fake-anthropic/c@tools=1"]
messages:
  - role: user
    content: Weather in {{city}}?
  - role: assistant
    tool_calls:
      - id: call_1
        name: get_weather
        arguments: {city: Paris}
  - role: tool
    tool_call_id: call_1
    content: '{"temp": 18}'
"""


def test_a_prompt_file_with_canned_results_runs_and_its_session_runs_again(tmp_path: Path,
                                                                           fake_env: dict[str, str]) -> None:
    ws = prompt_workspace(tmp_path, weather=CANNED)
    (ws / "tools.yaml").write_text(TOOLS)
    result = workbench("run", "--prompt", "weather", "--var", "city=Paris", "--tools", "tools.yaml",
                       "--save-session", "loop", "--json", env=fake_env, cwd=ws)
    assert result.returncode == 0, result.stderr
    [row] = json_lines(result.stdout)
    assert row["text"] and row["tool_calls"] == []  # the history ends in a result: the answer is text
    saved = (ws / "sessions" / "loop.yaml").read_text()
    assert "tool_call_id: call_1" in saved and "get_weather" in saved
    again = workbench("run", "--session", "loop", "--json", env=fake_env, cwd=ws)
    assert again.returncode == 0, again.stderr
    assert json_lines(again.stdout)[0]["text"] == row["text"]
    (tmp_path / "b").mkdir()
    broken = prompt_workspace(tmp_path / "b", weather=CANNED.replace("tool_call_id: call_1", "tool_call_id: c9"))
    bad = workbench("run", "--prompt", "weather", "--var", "city=Paris", env=fake_env, cwd=broken)
    assert bad.returncode == 2 and "weather.yaml:3: messages: Value error, messages[2]: the tool result for 'c9'" \
        in bad.stderr and "Traceback" not in bad.stderr


def test_an_eval_suite_runs_a_prompt_file_with_canned_tool_results(tmp_path: Path, fake_env: dict[str, str]) -> None:
    ws = prompt_workspace(tmp_path, weather=CANNED.replace("fake-anthropic/c@tools=1", "fake/c@tools=1"))
    (ws / "evals").mkdir()
    (ws / "evals" / "loop.yaml").write_text("description: loop\nprompts: [weather]\ntargets: [fake/c@tools=1]\n"
                                            "tests:\n  - vars: {city: Paris}\n"
                                            "    assert: [{type: finish-reason, value: stop}]\n")
    result = workbench("eval", "evals/loop.yaml", "--json", env=fake_env, cwd=ws)
    assert result.returncode == 0, result.stderr
    assert json_lines(result.stdout)[-1]["passes"] == 1
