"""What a user asks of a model: the model reference and the chat request.

Frozen dataclasses (no pydantic: the network process unpickles them without it); their checks run in
``__post_init__``, and an edge validating outside data into them uses :func:`workbench.core.validate.validated`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from workbench.core.attachments import Attachment
from workbench.core.bounds import check
from workbench.core.errors import ConfigError
from workbench.core.reasoning_items import ReasoningItem
from workbench.core.tool_turns import TurnToolCall, tool_turn_problem


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelRef:
    """``provider/model``: ``openai/gpt-4.1-mini``, ``openrouter/anthropic/claude-sonnet-4-5``.

    The provider is everything before the first ``/``; the model is the rest, passed to the provider
    unchanged (so a fake-server scenario such as ``gpt-4o@ttft=200`` travels as is).
    """

    provider: str
    model: str

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        provider, sep, model = text.strip().partition("/")
        if not sep or not provider or not model:
            raise ConfigError(
                f"'{text}' is not a model reference",
                "write it as provider/model, for example openai/gpt-4.1-mini or ollama/llama3.2",
            )
        return cls(provider=provider.lower(), model=model)

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}"


_OPTION = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=[^/\s]*")
"""One option of a fake target's scenario (``tps=2``), as YAML leaves it when it splits ``fake/a@ttft=1,tps=2``."""


def split_target(key: str, items: Sequence[object]) -> tuple[int, str, str] | None:
    """A YAML list of targets (under ``key``) holding the piece of a target that YAML split at a comma:
    ``targets: [fake/a@ttft=1,tps=2]`` is a flow list of ``fake/a@ttft=1`` and ``tps=2``. The index of the first
    piece, the problem and the hint (the target rejoined and quoted); ``None`` when no item is such a piece."""
    texts = [item.strip() if isinstance(item, str) else "" for item in items]
    pieces = [bool(_OPTION.fullmatch(text)) for text in texts]
    if True not in pieces:
        return None
    first = pieces.index(True)
    hint = "in a [flow, list] a comma separates items: quotes keep a target with options whole"
    if first == 0 or "@" not in texts[first - 1]:
        return first, (f"'{texts[first]}' is not a target (no provider/model); if it is a fake target's option, "
                       f'quote the whole target: {key}: ["fake/MODEL@ttft=1,{texts[first]}"]'), hint
    end = next((j for j in range(first, len(texts)) if not pieces[j]), len(texts))
    joined = ",".join(texts[first - 1:end])
    problem = f"'{texts[first]}' is not a target: YAML split '{joined}' at its comma"
    return first, f'{problem}; quote it: {key}: ["{joined}"]', hint


REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high")
"""``--reasoning-effort`` values, from none to the most."""
ReasoningEffort = Literal["none", "minimal", "low", "medium", "high"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    role: Literal["user", "assistant", "tool"]
    content: str
    tool_calls: tuple[TurnToolCall, ...] = ()
    """An assistant turn's tool calls (:mod:`workbench.core.tool_turns`)."""
    tool_call_id: str | None = None
    """A ``tool`` turn's call: its content is that call's result."""
    reasoning_items: tuple[ReasoningItem, ...] = ()
    """A reply's signed or encrypted reasoning (:mod:`workbench.core.reasoning_items`), sent back with the turn to
    the provider and wire that produced it (:attr:`origin`) only."""
    origin: str | None = None
    """The provider and wire an assistant turn came from (:func:`~workbench.core.reasoning_items.origin`): its
    reasoning items and tool-call signatures go back there only; ``None`` (a turn written in a file): sent as is."""
    attachments: tuple[Attachment, ...] = ()
    """Images and PDFs the turn carries (:mod:`workbench.core.attachments`), sent after its text."""

    def __post_init__(self) -> None:
        for name in ("tool_calls", "reasoning_items", "attachments"):
            if not isinstance(value := getattr(self, name), tuple):
                object.__setattr__(self, name, tuple(value))
        if self.tool_calls and self.role != "assistant":
            raise ValueError(f"a {self.role} turn cannot hold tool calls (an assistant turn does)")
        if (self.role == "tool") != (self.tool_call_id is not None):
            raise ValueError("a tool turn needs tool_call_id" if self.role == "tool"
                             else f"a {self.role} turn has no tool_call_id (a tool result has)")


@dataclass(frozen=True, slots=True, kw_only=True)
class Params:
    """Sampling parameters. ``max_tokens`` of ``None`` means "the model's default", resolved before sending."""

    temperature: float | None = None
    """0 to 2."""
    top_p: float | None = None
    """Above 0, at most 1."""
    max_tokens: int | None = None
    """At least 1."""
    stop: tuple[str, ...] = ()
    seed: int | None = None
    json_schema: dict[str, Any] | None = None
    tools: tuple[dict[str, Any], ...] = ()
    """Tools the model may call, in OpenAI's function format (``{"type": "function", "function": {name,
    description, parameters}}``, checked by :func:`workbench.core.tool_specs.load_tools`); each wire
    translates them."""
    tool_choice: str | None = None
    """``auto``, ``none``, ``required`` or a tool's name (``None``: the provider's default, ``auto``)."""
    reasoning_effort: ReasoningEffort | None = None
    """How hard a reasoning model thinks (``None``: the provider's default); each wire maps it
    (:mod:`workbench.core.providers.reasoning`)."""
    thinking_budget: int | None = None
    """Tokens a reasoning model may think for (0: no thinking, at most 1,000,000; ``None``: the provider's default)."""

    def __post_init__(self) -> None:
        for name in ("stop", "tools"):
            if not isinstance(value := getattr(self, name), tuple):
                object.__setattr__(self, name, tuple(value))
        check("temperature", self.temperature, ge=0, le=2)
        check("top_p", self.top_p, gt=0, le=1)
        check("max_tokens", self.max_tokens, ge=1)
        check("thinking_budget", self.thinking_budget, ge=0, le=1_000_000)


MAX_CACHE_BREAKPOINTS = 4
"""Anthropic takes at most four ``cache_control`` breakpoints per request."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheBreakpoints:
    """Where a prompt cache may end (Anthropic ``cache_control``: everything up to and including a marked part
    is cached). Providers that cache on their own (OpenAI, Gemini, …) ignore them."""

    system: bool = False
    """After the system prompt."""
    tools: bool = False
    """After the tool definitions (they come first, before the system prompt)."""
    messages: tuple[int, ...] = ()
    """After these messages (indexes into :attr:`ChatRequest.messages`, from 0)."""
    ttl: Literal["5m", "1h"] = "5m"
    """How long a written prefix lives (Anthropic's ``ttl``; 1h writes cost more)."""

    def __post_init__(self) -> None:
        if not isinstance(self.messages, tuple):
            object.__setattr__(self, "messages", tuple(self.messages))

    @property
    def count(self) -> int:
        return int(self.system) + int(self.tools) + len(set(self.messages))

    def __bool__(self) -> bool:
        return self.count > 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatRequest:
    system: str | None = None
    messages: tuple[Message, ...]
    params: Params = field(default_factory=Params)
    cache: CacheBreakpoints = field(default_factory=CacheBreakpoints)
    """Prompt-cache breakpoints (:class:`CacheBreakpoints`)."""

    def __post_init__(self) -> None:
        if not isinstance(self.messages, tuple):
            object.__setattr__(self, "messages", tuple(self.messages))
        outside = [i for i in self.cache.messages if not 0 <= i < len(self.messages)]
        if outside:
            raise ValueError(f"cache breakpoint after message {outside[0] + 1}, but there are only "
                             f"{len(self.messages)} messages")
        if self.cache.system and not self.system:
            raise ValueError("a cache breakpoint after the system prompt, but there is no system prompt")
        if self.cache.tools and not self.params.tools:
            raise ValueError("a cache breakpoint after the tools, but there are no tools")
        if self.cache.count > MAX_CACHE_BREAKPOINTS:
            raise ValueError(f"{self.cache.count} cache breakpoints: at most {MAX_CACHE_BREAKPOINTS} "
                             "(Anthropic's limit)")
        problem = tool_turn_problem(self.messages)
        if problem is not None:
            raise ValueError(f"messages[{problem[0]}]: {problem[1]}")

    def for_origin(self, here: str) -> ChatRequest:
        """This request as the provider and wire ``here`` may receive it: the reasoning items and tool-call
        signatures of turns another provider or wire produced are left out (their API would refuse them)."""
        if not any(m.origin not in (None, here) and (m.reasoning_items or any(c.signature for c in m.tool_calls))
                   for m in self.messages):
            return self
        return replace(self, messages=tuple(
            replace(m, reasoning_items=(), tool_calls=tuple(replace(c, signature=None) for c in m.tool_calls))
            if m.origin not in (None, here) else m for m in self.messages))

    @classmethod
    def from_prompt(cls, prompt: str, *, system: str | None = None, params: Params | None = None) -> ChatRequest:
        return cls(system=system, messages=(Message(role="user", content=prompt),), params=params or Params())

    def with_attachments(self, attachments: Sequence[Attachment]) -> ChatRequest:
        """This request with ``attachments`` (:func:`~workbench.core.attachments.load_attachments`) added to its
        last user turn."""
        if not attachments:
            return self
        last = max((i for i, m in enumerate(self.messages) if m.role == "user"), default=None)
        if last is None:
            raise ConfigError("no user turn to attach the files to", "give a prompt with a user message")
        turns = list(self.messages)
        turns[last] = replace(turns[last], attachments=turns[last].attachments + tuple(attachments))
        return replace(self, messages=tuple(turns))

    def with_max_tokens(self, max_tokens: int, *, replace: bool = False) -> ChatRequest:
        """This request with ``max_tokens`` made explicit (kept if already set, unless ``replace``)."""
        if self.params.max_tokens is not None and not replace:
            return self
        return dataclasses.replace(self, params=dataclasses.replace(self.params, max_tokens=max_tokens))
