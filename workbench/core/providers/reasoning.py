"""Reasoning on every wire: a request's effort (``none`` … ``high``) and thinking budget (tokens) in each wire's
own field, each mapped to the other where a wire takes only one of them.

=================  ================================================================================
OpenAI chat        ``reasoning_effort`` (a budget alone: the effort of :func:`effort_of`)
OpenAI Responses   ``reasoning: {effort, summary: "auto"}`` (the summary streams the reasoning text), and
                   ``include: ["reasoning.encrypted_content"]`` (the items go back in a tool loop)
Anthropic          ``thinking: {type: "enabled", budget_tokens}`` (an effort alone: :data:`EFFORT_BUDGETS`;
                   0 or ``none``: ``{type: "disabled"}``); the budget is at least 1024 and below ``max_tokens``
Gemini             ``generationConfig.thinkingConfig: {thinkingBudget, includeThoughts}``; on Gemini 3 and later an
                   effort is ``thinkingLevel`` (``minimal``/``low``/``medium``/``high``; ``none`` is ``minimal``)
Ollama             ``think``: the effort (``low``/``medium``/``high``; ``minimal`` is ``low``, ``none`` is
                   ``false``), or ``true``/``false`` for a budget alone
=================  ================================================================================
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from workbench.core.errors import ConfigError
from workbench.core.providers.target_wires import WiredSpec, target_wires
from workbench.core.request import ChatRequest, Params

EFFORT_BUDGETS = {"none": 0, "minimal": 1024, "low": 1024, "medium": 8192, "high": 24576}
"""An effort as a thinking budget (Google's published table for its OpenAI-compatible endpoint; ``minimal`` is
Anthropic's smallest budget)."""
ANTHROPIC_MIN_BUDGET = 1024
ANTHROPIC_MIN_TOP_P = 0.95
"""The smallest ``top_p`` Anthropic's extended thinking takes."""


def effort_of(params: Params) -> str | None:
    """The effort asked for, else the one a budget amounts to (0: ``none``; up to 1024: ``low``; up to 8192:
    ``medium``; above: ``high``); ``None`` when neither is set."""
    if params.reasoning_effort is not None:
        return params.reasoning_effort
    budget = params.thinking_budget
    if budget is None:
        return None
    if budget == 0:
        return "none"
    return "low" if budget <= EFFORT_BUDGETS["low"] else "medium" if budget <= EFFORT_BUDGETS["medium"] else "high"


def budget_of(params: Params) -> int | None:
    """The budget asked for, else the one an effort amounts to (:data:`EFFORT_BUDGETS`); ``None`` when neither."""
    if params.thinking_budget is not None:
        return params.thinking_budget
    return None if params.reasoning_effort is None else EFFORT_BUDGETS[params.reasoning_effort]


def openai_chat_reasoning(params: Params) -> dict[str, Any]:
    effort = effort_of(params)
    return {} if effort is None else {"reasoning_effort": effort}


ENCRYPTED_REASONING = "reasoning.encrypted_content"
"""What a Responses request includes so its reasoning items come back encrypted, to be sent again in the next turn
of a tool loop (the workbench sends ``store: false``: OpenAI keeps nothing an id could name)."""


def responses_reasoning(params: Params) -> dict[str, Any]:
    """``reasoning.effort``, with ``summary: "auto"`` so the reasoning streams as summary text and the reasoning
    items' encrypted content included (:data:`ENCRYPTED_REASONING`) (neither when ``none``)."""
    effort = effort_of(params)
    if effort is None:
        return {}
    if effort == "none":
        return {"reasoning": {"effort": effort}}
    return {"reasoning": {"effort": effort, "summary": "auto"}, "include": [ENCRYPTED_REASONING]}


def anthropic_thinking(params: Params, target: str) -> dict[str, Any]:
    """``thinking`` (a :class:`ConfigError` for a budget under 1024, or a temperature or top_p extended thinking
    does not take). ``max_tokens`` must exceed the budget: :func:`anthropic_max_tokens` sees to it."""
    budget = budget_of(params)
    if budget is None:
        return {}
    if budget == 0:
        return {"thinking": {"type": "disabled"}}
    if budget < ANTHROPIC_MIN_BUDGET:
        raise ConfigError(f"{target}: Anthropic's thinking budget is at least {ANTHROPIC_MIN_BUDGET} tokens, "
                          f"not {budget}",
                          f"pass --thinking-budget {ANTHROPIC_MIN_BUDGET} or more, or 0 for no thinking")
    if params.temperature is not None and params.temperature != 1:
        raise ConfigError(f"{target}: Anthropic's extended thinking takes no temperature (got {params.temperature})",
                          "drop the temperature, or turn thinking off")
    if params.top_p is not None and params.top_p < ANTHROPIC_MIN_TOP_P:
        raise ConfigError(f"{target}: Anthropic's extended thinking takes a top_p of {ANTHROPIC_MIN_TOP_P} to 1 "
                          f"(got {params.top_p})",
                          "drop top_p, or turn thinking off")
    return {"thinking": {"type": "enabled", "budget_tokens": budget}}


def check_targets(params: Params, targets: Iterable[str], providers: Mapping[str, WiredSpec]) -> None:
    """Before any call: the reasoning settings every target's wire can take (Anthropic's rules; an unknown provider
    is left to the call to report), a :class:`ConfigError` naming the first that cannot."""
    if budget_of(params) is None:
        return
    for target, wire in target_wires(targets, providers):
        if wire == "anthropic":
            anthropic_thinking(params, target)


def anthropic_max_tokens(request: ChatRequest) -> ChatRequest:
    """Anthropic counts thinking inside ``max_tokens``: a ``max_tokens`` not above the budget becomes budget +
    ``max_tokens``, so the answer keeps the room asked for."""
    budget, limit = budget_of(request.params), request.params.max_tokens
    if not budget or limit is None or limit > budget:
        return request
    return request.with_max_tokens(budget + limit, replace=True)


_LEVELLED_GEMINI = re.compile(r"(?:^|[/:])gemini-([3-9]|\d{2,})")
"""Gemini 3 and later: their native reasoning control is ``thinkingLevel`` (Gemini 2.5 takes a budget only)."""
GEMINI_LEVELS = {"none": "minimal", "minimal": "minimal", "low": "low", "medium": "medium", "high": "high"}
"""An effort as a Gemini 3 ``thinkingLevel``; Gemini 3 cannot turn thinking off, and ``minimal`` is its least."""


def gemini_levelled(model: str) -> bool:
    """Does ``model`` (Gemini 3 and later; a target such as ``google:gemini-3-flash`` too) take ``thinkingLevel``?"""
    return bool(_LEVELLED_GEMINI.search(model.lower()))


def gemini_thinking(params: Params, model: str = "") -> dict[str, Any]:
    """``thinkingConfig`` for ``generationConfig``: on Gemini 3 and later an effort as ``thinkingLevel``
    (:data:`GEMINI_LEVELS`; never with a budget: the API refuses both); else the budget; the thoughts included
    unless thinking is off."""
    if params.reasoning_effort is not None and gemini_levelled(model):
        return {"thinkingConfig": {"thinkingLevel": GEMINI_LEVELS[params.reasoning_effort], "includeThoughts": True}}
    budget = budget_of(params)
    if budget is None:
        return {}
    return {"thinkingConfig": {"thinkingBudget": budget, "includeThoughts": budget > 0}}


def ollama_think(params: Params) -> dict[str, Any]:
    if params.reasoning_effort is not None:
        effort = params.reasoning_effort
        return {"think": False if effort == "none" else "low" if effort == "minimal" else effort}
    if params.thinking_budget is not None:
        return {"think": params.thinking_budget > 0}
    return {}
