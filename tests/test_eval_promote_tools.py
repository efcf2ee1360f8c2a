"""Promoting a reply that called tools: the test gets a tool assertion (``tool-call-f1`` on the names called by
default, or ``tool-call`` on a call's name and arguments), a new suite's targets carry the race's tools, and the
promoted suite passes when run on the fake server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_cli import json_lines, workbench
from workbench.core.errors import ConfigError
from workbench.core.evals.promote import RaceOrigin, promote, promoted_assertion, suite_choices, tool_assertion
from workbench.core.evals.suite import load_suite
from workbench.core.request import ChatRequest, Message, Params
from workbench.ui.screens.modals import prefill

TOOLS = ({"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
         {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}})
CALLS = [{"id": "c1", "name": "get_weather", "arguments": '{"city":"city-0"}'},
         {"id": "c2", "name": "get_time", "arguments": "{}"},
         {"id": "c3", "name": "get_weather", "arguments": '{"city":"city-2"}'}]


def test_the_form_offers_the_names_called_and_the_first_call() -> None:
    assert prefill("tool-call-f1", "", CALLS) == "get_weather, get_time"
    assert json.loads(prefill("tool-call", "", CALLS)) == {"name": "get_weather", "arguments": {"city": "city-0"}}
    assert prefill("tool-call", "", []) == prefill("tool-call-f1", "", []) == ""
    assert prefill("contains", "Sunny\nthen rain", CALLS) == "Sunny"


def test_the_written_assertion_is_structured() -> None:
    assert promoted_assertion("tool-call-f1", "get_weather, get_time") == tool_assertion(["get_weather", "get_time"])
    assert tool_assertion(["a", "b", "a"]) == {"type": "tool-call-f1", "value": ["a", "b"]}
    assert promoted_assertion("tool-call", '{"name": "get_weather", "arguments": {"city": "Paris"}}') == {
        "type": "tool-call", "value": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    assert promoted_assertion("contains", "x") == {"type": "contains", "value": "x"}
    with pytest.raises(ConfigError, match="tool-call's value is not JSON"):
        promoted_assertion("tool-call", "get_weather(city=Paris)")


def test_a_promoted_tool_call_reply_makes_a_suite_that_sends_the_tools_and_passes(
        tmp_path: Path, fake_env: dict[str, str]) -> None:
    (tmp_path / "workbench.toml").write_text("", encoding="utf-8")
    request = ChatRequest(messages=(Message(role="user", content="Weather in Paris?"),),
                          params=Params(tools=TOOLS, tool_choice="required"))
    origin = RaceOrigin(request, ["fake/m@tools=2"], None, {})
    (choice,) = suite_choices(tmp_path, origin)
    assert choice.new
    edit = promote(tmp_path, origin, choice, "weather", tool_assertion(["get_weather", "get_time"]))
    suite = load_suite(edit.path, tmp_path)
    (target,) = suite.targets
    assert target.params["tools"] == TOOLS and target.params["tool_choice"] == "required"
    (test,) = suite.tests
    assert [(a.type, a.value) for a in test.assertions] == [("tool-call-f1", ["get_weather", "get_time"])]
    result = workbench("eval", str(edit.path), "--json", "--no-cache", cwd=tmp_path, env=fake_env)
    assert result.returncode == 0, result.stderr
    assert json_lines(result.stdout)[-1]["passes"] == 1  # the fake server called tool 0, then tool 1
