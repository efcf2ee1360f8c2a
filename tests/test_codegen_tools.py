"""``workbench export code`` of a prompt with tools, a tool choice and a cache breakpoint: the code sends them in
each wire's fields and prints the tool calls of the reply, as ``run`` reads them, on every wire and SDK (run
against the fake server)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.test_cli import CANARY, json_lines, workbench
from tests.test_codegen import TARGETS, env, execute

__all__ = ["env"]  # the fixture

WEATHER = """\
name: weather
targets: [fake/a]
params: {max_tokens: 50}
system: Be brief.
messages:
  - role: user
    content: Weather in Paris?
tools:
  - type: function
    function:
      name: get_weather
      description: Weather of a city
      parameters:
        type: object
        properties:
          city: {type: string}
        required: [city]
tool_choice: get_weather
cache: {tools: true}
"""
FIELDS = {  # how each wire's body names the tool and the choice
    "openai": ["'tools': [", "'name': 'get_weather'", "'tool_choice': {", "'type': 'function'"],
    "anthropic": ["'input_schema': {", "'tool_choice': {", "'type': 'tool'", "'cache_control': {"],
    "gemini": ["'functionDeclarations': [", "'toolConfig': {", "'allowedFunctionNames': [", "'get_weather'"],
    "ollama": ["'tools': [", "'name': 'get_weather'"],
}


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    (tmp_path / "workbench.toml").write_text("")
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "weather.yaml").write_text(WEATHER)
    return tmp_path


@pytest.mark.parametrize(("target", "sdk"), [*((t, False) for t in TARGETS), (TARGETS[0], True), (TARGETS[1], True)])
def test_exported_code_sends_the_tools_and_prints_the_calls(ws: Path, env: dict[str, str], target: str,
                                                            sdk: bool) -> None:
    target = target.replace("tokens=6", "tools=1")
    if target.startswith("ollama/"):  # Ollama cannot be made to call a tool (refused, as by run): it may
        prompt = ws / "prompts" / "weather.yaml"
        prompt.write_text(WEATHER.replace("tool_choice: get_weather", "tool_choice: auto"))
    result = workbench("export", "code", "weather", "--target", target, *(["--sdk"] if sdk else []), cwd=ws, env=env)
    assert result.returncode == 0, result.stderr
    source = result.stdout
    assert CANARY not in source
    assert all(field in source for field in FIELDS[target.partition("/")[0]]), source
    ran = workbench("run", "--prompt", "weather", "-m", target, "--json", "--no-trace", cwd=ws, env=env)
    assert ran.returncode == 0, ran.stderr
    calls = json_lines(ran.stdout)[0]["tool_calls"]
    assert isinstance(calls, list) and len(calls) == 1
    printed = execute([sys.executable, "-c"], source, env).strip()
    assert printed == f"tool call get_weather: {calls[0]['arguments']}"
    assert json.loads(calls[0]["arguments"]) == {"city": "city-0"}
