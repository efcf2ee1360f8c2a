"""A suite's chat prompt may hold tool turns in OpenAI's chat format (as a promoted captured call writes them):
an assistant turn's ``tool_calls`` and ``{role: tool, tool_call_id, content}``; a malformed one is one line at its
``file:line``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_cli import workbench
from workbench.core.errors import ConfigError
from workbench.core.evals.runner import cells
from workbench.core.evals.suite import load_suite

SUITE = """prompts:
  - messages:
      - {role: system, content: Use the tools.}
      - {role: user, content: "Weather in {{city}}?"}
      - role: assistant
        content: null
        tool_calls:
          - {id: c1, type: function, function: {name: get_weather, arguments: '{"city":"Paris"}'}}
      - {role: tool, tool_call_id: c1, content: sunny}
      - {role: user, content: And tomorrow?}
providers:
  - fake/m@tokens=3
tests:
  - vars: {city: Paris}
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "workbench.toml").write_text("", encoding="utf-8")
    (tmp_path / "evals").mkdir()
    path = tmp_path / "evals" / "suite.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_tool_turns_in_a_chat_prompt_are_sent_as_tool_turns(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path, SUITE), tmp_path)
    (cell,) = cells(suite, 1)
    request = cell.request()
    assert request.system == "Use the tools."
    assert [(m.role, m.content, [(c.id, c.name, json.loads(c.arguments)) for c in m.tool_calls], m.tool_call_id)
            for m in request.messages] == [
        ("user", "Weather in Paris?", [], None), ("assistant", "", [("c1", "get_weather", {"city": "Paris"})], None),
        ("tool", "sunny", [], "c1"), ("user", "And tomorrow?", [], None)]
    assert workbench("eval", str(tmp_path / "evals" / "suite.yaml"), "--no-cache", cwd=tmp_path).returncode == 0


@pytest.mark.parametrize(("old", "new", "line", "message"), [
    ("arguments: '{\"city\":\"Paris\"}'", "arguments: '[1]'", 8, "a tool call is {id, type: function"),
    ("{role: tool, tool_call_id: c1, content: sunny}", "{role: tool, content: sunny}", 9,
     "a message has role and content, not role, content"),
    ("{role: tool, tool_call_id: c1, content: sunny}", "{role: tool, tool_call_id: c9, content: sunny}", 9, "c9"),
    ("{role: user, content: \"Weather in {{city}}?\"}", "{role: user, content: hi, tool_calls: []}", 4,
     "a message has role and content, not role, content, tool_calls"),
])
def test_a_malformed_tool_turn_is_one_line_at_its_file_and_line(tmp_path: Path, old: str, new: str, line: int,
                                                                 message: str) -> None:
    assert old in SUITE
    path = write(tmp_path, SUITE.replace(old, new))
    with pytest.raises(ConfigError) as caught:
        load_suite(path, tmp_path)
    assert f"suite.yaml:{line}:" in str(caught.value) and message in str(caught.value)
    result = workbench("eval", str(path), cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr and f"suite.yaml:{line}" in result.stderr
