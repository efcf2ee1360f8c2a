"""What a request asks of the reasoning (``reasoning=N`` in the scenario), in each wire's own field: a request that
turns thinking off gets none, and one the real provider would reject is rejected the same way."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workbench.fakeserver.wire.base import WireError

__all__ = ["reasoning_off"]

_EFFORTS = frozenset({"none", "minimal", "low", "medium", "high", "xhigh"})
_ANTHROPIC_MIN_BUDGET = 1024


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _effort(value: Any, param: str) -> bool:
    """An OpenAI effort: ``True`` when it is ``none`` (no reasoning); a 400 for a value OpenAI does not take."""
    if value is None:
        return False
    if value not in _EFFORTS:
        raise WireError(f"Invalid value: '{value}'. Supported values are: 'none', 'minimal', 'low', 'medium', "
                        "'high' and 'xhigh'.", param, code="invalid_value")
    return bool(value == "none")


def _anthropic(body: Mapping[str, Any]) -> bool:
    """``thinking: {type: disabled}`` turns it off; an enabled budget under 1024 or not under ``max_tokens`` is
    refused as Anthropic refuses it."""
    thinking = body.get("thinking")
    if thinking is None:
        return False
    kind = _mapping(thinking).get("type")
    if kind == "disabled":
        return True
    budget = _mapping(thinking).get("budget_tokens")
    if kind != "enabled" or not isinstance(budget, int) or isinstance(budget, bool):
        raise WireError("thinking: expected {type: enabled, budget_tokens} or {type: disabled}", "thinking")
    if budget < _ANTHROPIC_MIN_BUDGET:
        raise WireError(f"thinking.enabled.budget_tokens: Input should be greater than or equal to "
                        f"{_ANTHROPIC_MIN_BUDGET}", "thinking")
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, int) and budget >= max_tokens:
        raise WireError("`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our "
                        "documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
                        "#max-tokens-and-context-window-size", "max_tokens")
    return False


_GEMINI_LEVELS = ("minimal", "low", "medium", "high")


def _gemini(body: Mapping[str, Any]) -> bool:
    """``thinkingConfig.thinkingBudget: 0`` turns thinking off; a ``thinkingLevel`` (Gemini 3) is one of
    :data:`_GEMINI_LEVELS` and never comes with a budget (both: a 400, as Gemini answers)."""
    config = _mapping(_mapping(body.get("generationConfig")).get("thinkingConfig"))
    level = config.get("thinkingLevel")
    if level is not None and "thinkingBudget" in config:
        raise WireError("You can only set only one of thinking budget and thinking level.",
                        "generation_config.thinking_config")
    if level is not None and str(level).lower() not in _GEMINI_LEVELS:
        raise WireError(f"Invalid value at 'generation_config.thinking_config.thinking_level' (type.googleapis.com/"
                        f"google.ai.generativelanguage.v1beta.ThinkingConfig.ThinkingLevel), \"{level}\"",
                        "generation_config.thinking_config")
    return bool(config.get("thinkingBudget") == 0)


def reasoning_off(wire: str, body: Mapping[str, Any]) -> bool:
    """Whether the request (of ``wire``) turns reasoning off, so the reply streams none."""
    if wire == "openai_chat":
        return _effort(body.get("reasoning_effort"), "reasoning_effort")
    if wire == "openai_responses":
        return _effort(_mapping(body.get("reasoning")).get("effort"), "reasoning.effort")
    if wire == "anthropic":
        return _anthropic(body)
    if wire == "gemini":
        return _gemini(body)
    if wire == "ollama":
        return body.get("think") is False
    return False
