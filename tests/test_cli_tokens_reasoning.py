"""``workbench tokens`` with tools and reasoning settings, through the real CLI: the tools' definitions count in
the input on every wire, and the thinking budget (or the effort's) is billed inside the output bound of the cost
range, as each wire sends it."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from tests.test_cli import json_lines, workbench

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "The weather in a city",
                                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                          "required": ["city"]}}}]
WIRES = ["openai/gpt-4.1-mini", "openai-responses/gpt-4.1-mini", "anthropic/claude-sonnet-4-5",
         "gemini/gemini-2.5-flash", "ollama/llama3.2"]


def tokens(tmp_path: Path, *args: str) -> list[dict[str, object]]:
    (tmp_path / "prompt.txt").write_text("What is the weather in Paris?")
    result = workbench("tokens", str(tmp_path / "prompt.txt"), "--offline", "--json", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return json_lines(result.stdout)


def targets(*names: str) -> list[str]:
    return [arg for name in names for arg in ("-m", name)]


def test_the_tools_count_in_the_input_on_every_wire(tmp_path: Path) -> None:
    (tmp_path / "tools.json").write_text(json.dumps(TOOLS))
    bare = tokens(tmp_path, *targets(*WIRES))
    with_tools = tokens(tmp_path, *targets(*WIRES), "--tools", str(tmp_path / "tools.json"), "--tool-choice",
                        "get_weather")
    for before, after in zip(bare, with_tools, strict=True):
        assert after["input_tokens"] > before["input_tokens"] + 10, after["target"]  # type: ignore[operator]
        assert after["exact"] is False and after["reasoning_budget_tokens"] is None


def test_the_thinking_budget_is_billed_inside_the_output_bound(tmp_path: Path) -> None:
    sonnet, gpt = "anthropic/claude-sonnet-4-5", "openai/gpt-5"
    plain = {row["target"]: row for row in tokens(tmp_path, *targets(sonnet, gpt), "--max-tokens", "1000")}
    budget = {row["target"]: row for row in tokens(tmp_path, *targets(sonnet, gpt), "--max-tokens", "1000",
                                                  "--thinking-budget", "8000")}
    assert plain[sonnet]["reasoning_budget_tokens"] is None and plain[sonnet]["max_tokens"] == 1000
    # Anthropic bills thinking inside max_tokens, which must exceed the budget: 1000 becomes 8000 + 1000
    assert budget[sonnet]["reasoning_budget_tokens"] == 8000 and budget[sonnet]["max_tokens"] == 9000
    per_token = (Decimal(str(plain[sonnet]["cost_max_usd"])) - Decimal(str(plain[sonnet]["cost_input_usd"]))) / 1000
    extra = Decimal(str(budget[sonnet]["cost_max_usd"])) - Decimal(str(plain[sonnet]["cost_max_usd"]))
    assert extra == per_token * 8000  # the budget at the output price
    # OpenAI counts reasoning within max_completion_tokens: the bound stays, the budget is reported
    assert budget[gpt]["max_tokens"] == 1000 and budget[gpt]["reasoning_budget_tokens"] == 8000
    assert budget[gpt]["cost_max_usd"] == plain[gpt]["cost_max_usd"]
    high = tokens(tmp_path, *targets(sonnet), "--max-tokens", "1000", "--reasoning-effort", "high")[0]
    assert high["reasoning_budget_tokens"] == 24576 and high["max_tokens"] == 25576
    roomy = tokens(tmp_path, *targets(sonnet), "--max-tokens", "30000", "--thinking-budget", "8000")[0]
    assert roomy["max_tokens"] == 30000  # already above the budget: sent as given


def test_bad_tool_and_reasoning_flags_are_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "prompt.txt").write_text("hi")
    for args in (["-m", "anthropic/claude-sonnet-4-5", "--thinking-budget", "100"],
                 ["-m", "openai/gpt-4o", "--tool-choice", "get_weather"],
                 ["-m", "openai/gpt-4o", "--tools", str(tmp_path / "missing.json")]):
        result = workbench("tokens", str(tmp_path / "prompt.txt"), "--offline", *args, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr and result.stderr.startswith("workbench: ")
