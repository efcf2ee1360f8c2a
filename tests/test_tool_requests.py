"""A request's tools and tool choice reach each wire in its own request fields; a tools file is checked with
``path:line`` errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import pytest

from workbench.core.errors import ConfigError
from workbench.core.registry import make_provider, resolve
from workbench.core.request import ChatRequest, ModelRef, Params
from workbench.core.tool_specs import ToolsFileError, check_tool_choice, load_tools

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
TOOLS = ({"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": SCHEMA}},
         {"type": "function", "function": {"name": "now"}})
ENV = {"OPENAI_API_KEY": "k", "ANTHROPIC_API_KEY": "k", "GEMINI_API_KEY": "k"}


def body(target: str, choice: str | None) -> dict[str, Any]:
    request = ChatRequest.from_prompt("hi", params=Params(max_tokens=10, tools=TOOLS, tool_choice=choice))
    return make_provider(resolve(ModelRef.parse(target), ENV), httpx2.AsyncClient()).body(request)


def test_openai_chat_sends_the_tools_as_given() -> None:
    assert body("openai/gpt-4o", None)["tools"] == list(TOOLS) and "tool_choice" not in body("openai/gpt-4o", None)
    assert body("openai/gpt-4o", "required")["tool_choice"] == "required"
    assert body("openai/gpt-4o", "now")["tool_choice"] == {"type": "function", "function": {"name": "now"}}


def test_responses_flattens_the_tools() -> None:
    sent = body("openai-responses/gpt-4o", "get_weather")
    assert sent["tools"] == [
        {"type": "function", "name": "get_weather", "description": "Weather", "parameters": SCHEMA},
        {"type": "function", "name": "now"}]
    assert sent["tool_choice"] == {"type": "function", "name": "get_weather"}
    assert body("openai-responses/gpt-4o", "none")["tool_choice"] == "none"


@pytest.mark.parametrize(("choice", "expected"), [
    ("auto", {"type": "auto"}), ("none", {"type": "none"}), ("required", {"type": "any"}),
    ("now", {"type": "tool", "name": "now"}),
])
def test_anthropic_input_schema_and_choice(choice: str, expected: dict[str, str]) -> None:
    sent = body("anthropic/claude", choice)
    assert sent["tools"] == [{"name": "get_weather", "description": "Weather", "input_schema": SCHEMA},
                             {"name": "now", "input_schema": {"type": "object", "properties": {}}}]
    assert sent["tool_choice"] == expected


@pytest.mark.parametrize(("choice", "expected"), [
    ("auto", {"mode": "AUTO"}), ("none", {"mode": "NONE"}), ("required", {"mode": "ANY"}),
    ("get_weather", {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
])
def test_gemini_function_declarations_and_calling_config(choice: str, expected: dict[str, object]) -> None:
    sent = body("gemini/g", choice)
    assert sent["tools"] == [{"functionDeclarations": [
        {"name": "get_weather", "description": "Weather", "parametersJsonSchema": SCHEMA}, {"name": "now"}]}]
    assert sent["toolConfig"] == {"functionCallingConfig": expected}


def test_ollama_sends_the_tools_and_refuses_a_choice_it_cannot_honour() -> None:
    assert body("ollama/l", None)["tools"] == list(TOOLS) == body("ollama/l", "auto")["tools"]
    assert "tools" not in body("ollama/l", "none")
    with pytest.raises(ConfigError, match="Ollama cannot be made to call a tool"):
        body("ollama/l", "required")


def test_no_tools_no_tool_fields() -> None:
    request = ChatRequest.from_prompt("hi", params=Params(max_tokens=10))
    for target in ("openai/gpt-4o", "openai-responses/gpt-4o", "anthropic/claude", "gemini/g", "ollama/l"):
        sent = make_provider(resolve(ModelRef.parse(target), ENV), httpx2.AsyncClient()).body(request)
        assert not {"tools", "tool_choice", "toolConfig"} & set(sent), target


def test_a_tools_file_in_json_or_yaml(tmp_path: Path) -> None:
    import json

    (tmp_path / "t.json").write_text(json.dumps(list(TOOLS)))
    (tmp_path / "t.yaml").write_text("- type: function\n  function:\n    name: get_weather\n    description: Weather\n"
                                     "    parameters: {type: object, properties: {city: {type: string}}, "
                                     "required: [city]}\n- {type: function, function: {name: now}}\n")
    assert load_tools(tmp_path / "t.json") == TOOLS == load_tools(tmp_path / "t.yaml")


@pytest.mark.parametrize(("name", "text", "where"), [
    ("a.yaml", "- type: function\n  function:\n    name: ok\n- type: function\n  function:\n    name: bad name\n",
     "a.yaml:6: tool 2: its name must be"),
    ("b.yaml", "- type: function\n  function: {name: x, parameters: [1]}\n", "b.yaml:2: tool 'x': parameters must"),
    ("c.yaml", "- type: tool\n", "c.yaml:1: tool 1 is not"),
    ("d.yaml", "tools: []\n", "d.yaml:1: a tools file is a non-empty list"),
    ("e.json", '[\n  {"type": "function",\n   "function": {"name": "x",}}\n]', "e.json:3: not valid JSON"),
    ("f.yaml", "- type: function\n  function:\n    name: x\n    extra: 1\n", "f.yaml:4: tool 'x': unknown key 'extra'"),
    ("g.yaml", "- {type: function, function: {name: x}}\n- {type: function, function: {name: x}}\n",
     "g.yaml:2: tool 2: 'x' is named twice"),
])
def test_a_bad_tools_file_is_one_line_at_its_place(tmp_path: Path, name: str, text: str, where: str) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(ToolsFileError) as caught:
        load_tools(tmp_path / name)
    assert str(caught.value).startswith(f"{tmp_path / name}{where.removeprefix(name)}")
    assert "\n" not in str(caught.value)


def test_a_tool_choice_fits_the_tools() -> None:
    assert check_tool_choice("now", TOOLS) == "now" and check_tool_choice(None, ()) is None
    with pytest.raises(ConfigError, match="neither auto, none, required nor a tool's name"):
        check_tool_choice("other", TOOLS)
    with pytest.raises(ConfigError, match="needs tools"):
        check_tool_choice("auto", ())
