"""A request's reasoning effort and thinking budget reach each wire in its own field (each mapped to the other
where a wire takes one only); the CLI, prompt files, sessions and eval configs set them; bad values are one line."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.conftest import prompt_workspace
from tests.resilience_helpers import server_log
from tests.test_cli import json_lines, workbench
from workbench.cli.arguments import REASONING_EFFORTS as CLI_EFFORTS
from workbench.core.errors import ConfigError
from workbench.core.providers.base import Provider
from workbench.core.registry import make_provider, resolve
from workbench.core.request import REASONING_EFFORTS, ChatRequest, ModelRef, Params
from workbench.fakeserver.process import FakeServerProcess

ENV = {"OPENAI_API_KEY": "k", "ANTHROPIC_API_KEY": "k", "GEMINI_API_KEY": "k"}


def provider(target: str) -> Provider:
    return make_provider(resolve(ModelRef.parse(target), ENV), httpx2.AsyncClient())


def body(target: str, **params: Any) -> dict[str, Any]:
    p = provider(target)
    request = ChatRequest.from_prompt("hi", params=Params(max_tokens=params.pop("max_tokens", 100), **params))
    return p.body(p.resolve(request))  # type: ignore[attr-defined]


def eval_suite(root: Path, text: str) -> Path:
    (root / "workbench.toml").write_text("")
    path = root / "evals" / "suite.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_the_cli_offers_every_effort() -> None:
    assert CLI_EFFORTS == REASONING_EFFORTS


@pytest.mark.parametrize(("params", "expected"), [
    ({"reasoning_effort": "high"}, "high"), ({"reasoning_effort": "none"}, "none"),
    ({"thinking_budget": 0}, "none"), ({"thinking_budget": 1024}, "low"), ({"thinking_budget": 4000}, "medium"),
    ({"thinking_budget": 30000}, "high"), ({"reasoning_effort": "minimal", "thinking_budget": 30000}, "minimal"),
])
def test_openai_chat_sends_reasoning_effort(params: dict[str, Any], expected: str) -> None:
    assert body("openai/o4-mini", **params)["reasoning_effort"] == expected


def test_responses_asks_for_the_summary_so_the_reasoning_streams() -> None:
    assert body("openai-responses/o4-mini", reasoning_effort="low")["reasoning"] == {"effort": "low", "summary": "auto"}
    assert body("openai-responses/o4-mini", thinking_budget=0)["reasoning"] == {"effort": "none"}


def test_anthropic_thinking_budget_and_max_tokens_above_it() -> None:
    sent = body("anthropic/claude-sonnet-4-5", thinking_budget=2048, max_tokens=4096)
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2048} and sent["max_tokens"] == 4096
    raised = body("anthropic/claude-sonnet-4-5", reasoning_effort="medium", max_tokens=500)
    assert raised["thinking"] == {"type": "enabled", "budget_tokens": 8192}
    assert raised["max_tokens"] == 8192 + 500  # the answer keeps the room asked for
    assert body("anthropic/claude-sonnet-4-5", reasoning_effort="none")["thinking"] == {"type": "disabled"}


@pytest.mark.parametrize(("params", "message"), [
    ({"thinking_budget": 500}, "at least 1024 tokens, not 500"),
    ({"thinking_budget": 2048, "temperature": 0.2}, "takes no temperature"),
    ({"thinking_budget": 2048, "top_p": 0.5}, "top_p of 0.95 to 1"),
])
def test_anthropic_refuses_what_extended_thinking_does_not_take(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        body("anthropic/claude-sonnet-4-5", **params)


def test_gemini_thinking_config() -> None:
    config = body("gemini/gemini-2.5-flash", thinking_budget=512)["generationConfig"]
    assert config["thinkingConfig"] == {"thinkingBudget": 512, "includeThoughts": True}
    off = body("gemini/gemini-2.5-flash", reasoning_effort="none")["generationConfig"]
    assert off["thinkingConfig"] == {"thinkingBudget": 0, "includeThoughts": False}
    assert body("gemini/gemini-2.5-flash", reasoning_effort="high")["generationConfig"]["thinkingConfig"][
        "thinkingBudget"] == 24576


@pytest.mark.parametrize(("effort", "level"), [("none", "minimal"), ("minimal", "minimal"), ("low", "low"),
                                                ("medium", "medium"), ("high", "high")])
def test_gemini_3_takes_an_effort_as_its_thinking_level(effort: str, level: str) -> None:
    """Gemini 3's native control (Google's Gemini 3 guide): ``thinkingLevel``, never with a budget (a 400)."""
    config = body("gemini/gemini-3-pro-preview", reasoning_effort=effort, thinking_budget=4096)["generationConfig"]
    assert config["thinkingConfig"] == {"thinkingLevel": level, "includeThoughts": True}
    assert body("gemini/gemini-3-flash", thinking_budget=512)["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 512, "includeThoughts": True}  # a budget alone: still taken, for compatibility
    assert "thinkingLevel" not in body("gemini/gemini-2.5-pro", reasoning_effort=effort)["generationConfig"][
        "thinkingConfig"]


def test_the_fake_gemini_reads_a_thinking_level_and_refuses_it_with_a_budget(fake_server: FakeServerProcess) -> None:
    result = workbench("run", "hi", "-m", "fake-gemini/gemini-3-flash@reasoning=4,tokens=2", "--json", "--no-trace",
                       "--reasoning-effort", "low", env={"WORKBENCH_FAKE_URL": fake_server.base_url})
    assert result.returncode == 0, result.stderr
    assert json_lines(result.stdout)[0]["reasoning"]
    both = httpx2.post(f"{fake_server.base_url}/v1beta/models/gemini-3-flash:generateContent", json={
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "generationConfig": {"thinkingConfig": {"thinkingLevel": "low", "thinkingBudget": 512}}})
    assert both.status_code == 400 and "only one of thinking budget and thinking level" in both.text


@pytest.mark.parametrize(("params", "think"), [
    ({"reasoning_effort": "high"}, "high"), ({"reasoning_effort": "minimal"}, "low"),
    ({"reasoning_effort": "none"}, False), ({"thinking_budget": 100}, True), ({"thinking_budget": 0}, False),
])
def test_ollama_think(params: dict[str, Any], think: object) -> None:
    assert body("ollama/qwen3", **params)["think"] == think


def test_no_reasoning_asked_no_reasoning_fields() -> None:
    for target in ("openai/gpt-4o", "openai-responses/gpt-4o", "anthropic/claude", "gemini/g", "ollama/l"):
        sent = body(target)
        assert not {"reasoning_effort", "reasoning", "thinking", "think"} & set(sent), target
        assert "thinkingConfig" not in sent.get("generationConfig", {}), target


@pytest.mark.parametrize("target", ["fake/r@reasoning=6,tokens=3", "fake-responses/r@reasoning=6,tokens=3",
                                    "fake-anthropic/r@reasoning=6,tokens=3", "fake-gemini/r@reasoning=6,tokens=3",
                                    "fake-ollama/r@reasoning=6,tokens=3"])
def test_run_turns_reasoning_off_on_every_wire(target: str) -> None:
    thinking = json_lines(workbench("run", "hi", "-m", target, "--json", "--no-trace").stdout)[0]
    assert thinking["status"] == "ok" and thinking["reasoning"]
    result = workbench("run", "hi", "-m", target, "--json", "--no-trace", "--reasoning-effort", "none")
    assert result.returncode == 0, result.stderr
    row = json_lines(result.stdout)[0]
    assert row["status"] == "ok" and row["reasoning"] == "" and row["text"] == thinking["text"]


def test_run_raises_anthropic_max_tokens_above_the_budget() -> None:
    """The fake server refuses a budget not under max_tokens as Anthropic does: the call passes."""
    result = workbench("run", "hi", "-m", "fake-anthropic/r@reasoning=3,tokens=2", "--json", "--no-trace",
                       "--thinking-budget", "2000", "--max-tokens", "50")
    assert result.returncode == 0, result.stderr
    assert json_lines(result.stdout)[0]["status"] == "ok"


@pytest.mark.parametrize(("flags", "message"), [
    (["--reasoning-effort", "extreme"], "argument --reasoning-effort: invalid choice: 'extreme'"),
    (["--thinking-budget", "-5"], "argument --thinking-budget: -5: expected a whole number"),
    (["--thinking-budget", "lots"], "argument --thinking-budget: lots: expected a whole number"),
])
def test_bad_reasoning_flags_are_one_line_and_exit_2(flags: list[str], message: str) -> None:
    result = workbench("run", "hi", "-m", "fake/a", *flags)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(("flags", "message"), [
    (["--thinking-budget", "500"], "fake-anthropic/r: Anthropic's thinking budget is at least 1024 tokens, not 500"),
    (["--reasoning-effort", "low", "--temperature", "0.3"], "extended thinking takes no temperature (got 0.3)"),
])
def test_what_anthropic_cannot_take_fails_before_any_call(flags: list[str], message: str) -> None:
    result = workbench("run", "hi", "-m", "fake/a", "-m", "fake-anthropic/r", *flags, "--json")
    assert result.returncode == 2 and result.stdout == ""
    assert message in result.stderr and "Traceback" not in result.stderr


def test_a_prompt_file_sets_the_reasoning_and_a_bad_value_fails_at_its_line(tmp_path: Path) -> None:
    prompts = prompt_workspace(tmp_path) / "prompts"
    (prompts / "think.yaml").write_text("name: think\ntargets: [fake/r@reasoning=4]\nparams:\n"
                                        "  reasoning_effort: none\nmessages:\n  - role: user\n    content: hi\n")
    result = workbench("run", "--prompt", "think", "--json", "--no-trace", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json_lines(result.stdout)[0]["reasoning"] == ""
    (prompts / "think.yaml").write_text("name: think\ntargets: [fake/r@reasoning=4]\nparams:\n  thinking_budget: -1\n"
                                        "messages:\n  - role: user\n    content: hi\n")
    bad = workbench("run", "--prompt", "think", "--json", "--no-trace", cwd=tmp_path)
    assert bad.returncode == 2 and "think.yaml:4" in bad.stderr and "Traceback" not in bad.stderr


def test_a_saved_session_keeps_the_reasoning(tmp_path: Path) -> None:
    prompt_workspace(tmp_path)
    first = workbench("run", "hi", "-m", "fake/r@reasoning=4", "--reasoning-effort", "none", "--no-trace",
                      "--save-session", "quiet", "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    saved = (tmp_path / "sessions" / "quiet.yaml").read_text()
    assert "reasoning_effort: none" in saved
    again = workbench("run", "--session", "quiet", "--json", "--no-trace", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert json_lines(again.stdout)[0]["reasoning"] == ""


@pytest.mark.parametrize(("provider", "root", "config", "field", "value"), [
    ("openai:chat:o-x", "/v1", "reasoning_effort: low", ("reasoning_effort",), "low"),
    ("openai:responses:o-x", "/v1", "reasoning_effort: high", ("reasoning",), {"effort": "high", "summary": "auto"}),
    ("anthropic:messages:claude-x", "", "thinking: {type: enabled, budget_tokens: 2048}", ("thinking",),
     {"type": "enabled", "budget_tokens": 2048}),
    ("anthropic:messages:claude-x", "", "reasoning_effort: none", ("thinking",), {"type": "disabled"}),
    ("google:gemini-x", "", "generationConfig: {thinkingConfig: {thinkingBudget: 512}}",
     ("generationConfig", "thinkingConfig"), {"thinkingBudget": 512, "includeThoughts": True}),
    ("google:gemini-3-flash", "", "generationConfig: {thinkingConfig: {thinkingLevel: low}}",
     ("generationConfig", "thinkingConfig"), {"thinkingLevel": "low", "includeThoughts": True}),
    ("ollama:chat:llama-x", "", "thinking: {type: disabled}", ("think",), False),
])
def test_a_promptfoo_config_sets_the_reasoning_on_every_wire(
        provider: str, root: str, config: str, field: tuple[str, ...], value: object, tmp_path: Path,
        fake_server: FakeServerProcess) -> None:
    marker = uuid.uuid4().hex[:8]
    suite = eval_suite(tmp_path, f"""\
        prompts: ["Say hi"]
        providers:
          - id: "{provider}@tokens=2,id={marker}"
            config:
              apiBaseUrl: "{fake_server.base_url}{root}"
              apiKey: sk-test-{marker}
              {config}
        tests: [{{vars: {{}}, assert: [{{type: finish-reason, value: stop}}]}}]
        """)
    result = workbench("eval", str(suite), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (sent,) = [e for e in server_log(fake_server.base_url) if marker in str(e["model"])]
    got: object = sent["params"]
    for name in field:
        assert isinstance(got, dict)
        got = got[name]
    assert got == value


@pytest.mark.parametrize(("config", "line", "reason"), [
    ("reasoning_effort: extreme", 5, "reasoning_effort: Input should be 'none', 'minimal', 'low', 'medium' or 'high'"),
    ("thinking: {type: enabled}", 5, "config.thinking: expected {type: enabled, budget_tokens: N}"),
    ("thinking: {type: enabled, budget_tokens: -3}", 5, "thinking_budget: Input should be greater than or equal to 0"),
    ("thinking: {type: enabled, budget_tokens: 500}", 5, "Anthropic's thinking budget is at least 1024 tokens"),
    ("temperature: 0.5\n              reasoning_effort: low", 6, "extended thinking takes no temperature (got 0.5)"),
])
def test_a_bad_reasoning_config_fails_the_load_at_its_line(config: str, line: int, reason: str,
                                                           tmp_path: Path) -> None:
    suite = eval_suite(tmp_path, f"""\
        prompts: ["Say hi"]
        providers:
          - id: "anthropic:messages:claude-x"
            config:
              {config}
        tests: [{{vars: {{}}}}]
        """)
    result = workbench("eval", str(suite), "--json", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"suite.yaml:{line}" in result.stderr and reason in result.stderr, result.stderr


@pytest.mark.parametrize(("model", "setting", "reason"), [
    ("gemini-3-flash", "{thinkingLevel: low, thinkingBudget: 512}", "a thinkingLevel or a thinkingBudget, not both"),
    ("gemini-3-flash", "{thinkingLevel: extreme}", "'extreme' is not minimal, low, medium or high"),
    ("gemini-2.5-flash", "{thinkingLevel: high}", "thinkingLevel is for Gemini 3 and later models"),
])
def test_a_gemini_thinking_level_it_cannot_send_fails_the_load_at_its_line(model: str, setting: str, reason: str,
                                                                          tmp_path: Path) -> None:
    suite = eval_suite(tmp_path, f"""\
        prompts: ["Say hi"]
        providers:
          - id: "google:{model}"
            config:
              generationConfig: {{thinkingConfig: {setting}}}
        tests: [{{vars: {{}}}}]
        """)
    result = workbench("eval", str(suite), "--json", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "suite.yaml:5" in result.stderr and reason in result.stderr, result.stderr


def test_the_trace_log_keeps_both_times_and_show_prints_them(tmp_path: Path) -> None:
    from workbench.core.traces.store import TraceStore

    env = {"WORKBENCH_TRACES": str(tmp_path / "r.db"), "COLUMNS": "160"}
    ran = workbench("run", "hi", "-m", "fake-anthropic/r@reasoning=5,tokens=3,tps=200", "--json", env=env)
    assert ran.returncode == 0, ran.stderr
    row = json_lines(ran.stdout)[0]
    assert row["reasoning_tokens"] == 5 and row["reasoning"]
    reasoning_ms, answer_ms = row["ttft_reasoning_ms"], row["ttft_answer_ms"]
    assert isinstance(reasoning_ms, float) and isinstance(answer_ms, float) and reasoning_ms < answer_ms
    call = TraceStore(tmp_path / "r.db").get(str(row["trace_id"]))
    assert call is not None and call["reasoning_tokens"] == 5
    assert round(call["ttft_reasoning_ms"], 3) == reasoning_ms and round(call["ttft_answer_ms"], 3) == answer_ms
    shown = workbench("traces", "show", str(row["trace_id"]), env=env)
    assert shown.returncode == 0, shown.stderr
    (timing,) = [line for line in shown.stdout.splitlines() if line.startswith("timing")]
    assert " reasoning " in timing and " answer " in timing


def test_the_columns_show_when_the_answer_began() -> None:
    wide = {"COLUMNS": "120"}
    reasoned = workbench("run", "hi", "-m", "fake-anthropic/r@reasoning=5,tokens=3", "--no-trace", env=wide)
    assert reasoned.returncode == 0, reasoned.stderr
    assert "TTFT " in reasoned.stdout and " answer " in reasoned.stdout
    plain = workbench("run", "hi", "-m", "fake-anthropic/r@tokens=3", "--no-trace", env=wide)
    assert "TTFT " in plain.stdout and " answer " not in plain.stdout


@pytest.mark.parametrize(("target", "fields"), [
    ("openai/o4-mini", ["'reasoning_effort': 'medium'"]),
    ("anthropic/claude-sonnet-4-5", ["'thinking': {", "'type': 'enabled'", "'budget_tokens': 8192"]),
    ("gemini/gemini-2.5-flash", ["'thinkingConfig': {", "'thinkingBudget': 8192", "'includeThoughts': True"]),
    ("ollama/qwen3", ["'think': 'medium'"]),
])
def test_exported_code_sends_the_reasoning(target: str, fields: list[str]) -> None:
    from workbench.core.codegen import generate

    code = generate(ChatRequest.from_prompt("hi", params=Params(reasoning_effort="medium")), target)
    assert all(field in code for field in fields), code


def test_a_prompt_file_keeps_its_reasoning_when_written_and_versioned() -> None:
    from workbench.core.prompts import PromptMessage, PromptParams
    from workbench.core.prompts.model import Prompt, dump_prompt, parse_prompt

    prompt = Prompt(name="think", params=PromptParams(reasoning_effort="high", thinking_budget=4096),
                    messages=[PromptMessage(role="user", content="hi")])
    text = dump_prompt(prompt)
    assert "reasoning_effort: high" in text and "thinking_budget: 4096" in text
    assert parse_prompt(text, "think.yaml") == prompt
