"""The output an eval grades for a tool-call reply, per provider as promptfoo gives it: OpenAI chat's
``tool_calls`` list, Anthropic's blocks, the Responses API's output items joined by line breaks (a string), Gemini's
candidate parts and Ollama's ``tool_calls`` (structures, for code assertions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_eval_tools import _gradings, _results, _suite
from workbench.core.evals.tool_replies import reply_output, structured_output
from workbench.core.templating import StructuredVar

CALL = {"id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'}


def test_the_responses_output_is_its_items_as_promptfoo_joins_them() -> None:
    """promptfoo's ResponsesProcessor: each output item's content, a function_call without a callback as its JSON."""
    assert reply_output("openai_responses", "", [CALL]) == (
        '{"type":"function_call","status":"completed","arguments":"{\\"city\\":\\"Paris\\"}","call_id":"call_1",'
        '"name":"get_weather"}')
    both = reply_output("openai_responses", "Looking.", [CALL, {**CALL, "id": "call_2"}])
    assert both.split("\n")[0] == "Looking." and len(both.split("\n")) == 3
    assert not isinstance(both, StructuredVar) and structured_output("openai_responses", both, [CALL]) == both


def test_the_gemini_output_is_the_candidates_parts() -> None:
    """promptfoo's formatCandidateContents: a part that is not text makes the output the parts themselves."""
    out = reply_output("gemini", "", [{**CALL, "id": ""}])
    assert isinstance(out, StructuredVar) and out.data == [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]
    assert reply_output("gemini", "Sure.", [CALL]).data == [  # type: ignore[attr-defined]
        {"text": "Sure."}, {"functionCall": {"id": "call_1", "name": "get_weather", "args": {"city": "Paris"}}}]
    assert structured_output("gemini", str(out), [CALL]).data == out.data  # type: ignore[attr-defined]


def test_the_ollama_output_is_its_tool_calls() -> None:
    """promptfoo's Ollama chat provider: the message's tool_calls; with content, ``{content, tool_calls}``."""
    out = reply_output("ollama", "  ", [{**CALL, "id": ""}])
    assert isinstance(out, StructuredVar) and out.data == [
        {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]
    assert json.loads(str(reply_output("ollama", "Hm.", [CALL]))) == {
        "content": "Hm.", "tool_calls": [{"id": "call_1", "function": {"name": "get_weather",
                                                                       "arguments": {"city": "Paris"}}}]}


@pytest.mark.parametrize(("target", "checks"), [
    ("fake-responses/r@tools=1", ["typeof output === 'string' && JSON.parse(output).type === 'function_call' && "
                                  "JSON.parse(output).name === 'get_weather'"]),
    ("fake-gemini/g@tools=1", ["Array.isArray(output) && output[0].functionCall.name === 'get_weather' && "
                               "typeof output[0].functionCall.args === 'object'"]),
    ("fake-ollama/o@tools=1", ["Array.isArray(output) && output[0].function.name === 'get_weather' && "
                               "typeof output[0].function.arguments === 'object'"]),
])
def test_an_eval_grades_each_wires_output_in_promptfoos_form(tmp_path: Path, fake_env: dict[str, str], target: str,
                                                            checks: list[str]) -> None:
    asserts = "".join(f"\n              - type: javascript\n                value: \"{check}\"" for check in checks)
    suite = _suite(tmp_path, f"""\
        prompts: ["Weather?"]
        targets:
          - id: {target}
            config: {{tools: file://tools.yaml}}
        tests:
          - assert:
              - type: contains
                value: get_weather{asserts}
        """)
    (row,) = _results(suite, fake_env, tmp_path / "out.json")
    assert row["success"] is True, _gradings(row)
