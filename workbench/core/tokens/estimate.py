"""What a request will cost on each target, before sending it: tokens, cost range, cache, headroom.

Input tokens are counted offline with the target's tokenizer (exact for OpenAI models, an o200k
approximation flagged ``exact=False`` for the others) unless a provider count is supplied
(:mod:`workbench.core.tokens.provider_counts`). The cost range runs from the input alone to the input plus
``max_tokens`` of output; the warm-cache figure prices the cacheable prefix at the cache-read rate. That
prefix is, where the provider caches on its own (OpenAI, Gemini, …), the system prompt and every message but
the last; on Anthropic, which caches only at the request's breakpoints, everything up to the last breakpoint
(none: nothing), and there the cold figures pay for writing it (the cache-write rate, the 1-hour one with a 1h
TTL); a prefix under the model's minimum cacheable length (:mod:`workbench.core.tokens.cache_minimum`) is not
cached at all. Attached images and
PDFs add their tokens by each provider's published rule (:mod:`workbench.core.tokens.images`); such a count
is never exact; so is one with tools (their JSON counted in the target's encoding). A thinking budget or a
reasoning effort bills as output within ``max_tokens`` (:func:`output_bound`; Anthropic's is raised above the
budget, as sent), so the most the call can cost holds it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from workbench.core.events import Usage
from workbench.core.plain_data import copied
from workbench.core.pricing import PriceBook, usd_number
from workbench.core.providers.reasoning import anthropic_max_tokens, budget_of
from workbench.core.registry import PROVIDERS, default_max_tokens
from workbench.core.request import ChatRequest, Message
from workbench.core.tokens.cache_minimum import anthropic_cache_minimum
from workbench.core.tokens.encodings import chat_tokens, count_chat, count_text, encoding_name_for
from workbench.core.tokens.images import family_of, image_tokens, pdf_tokens
from workbench.core.tool_turns import turn_text


@dataclass(frozen=True, slots=True)
class Estimate:
    target: str
    input_tokens: int
    exact: bool
    max_tokens: int
    cost_input_usd: Decimal | None
    """The input alone, cold cache (``None``: the model's price is unknown); on Anthropic with breakpoints,
    the prefix written to the cache."""
    cost_max_usd: Decimal | None
    """Input plus ``max_tokens`` of output: the most the call can cost."""
    cost_input_warm_usd: Decimal | None
    """The input with the cacheable prefix read from a warm prompt cache."""
    context_window: int | None
    headroom_tokens: int | None
    """Context window − input − max_tokens (negative: the request does not fit)."""
    cache_prefix_tokens: int = 0
    """The cacheable prefix: what a warm cache reads (0: nothing is cached)."""
    reasoning_budget_tokens: int | None = None
    """The thinking budget the request asks for, or the one its reasoning effort amounts to (``None``: neither). It
    bills as output inside ``max_tokens`` (on Anthropic a ``max_tokens`` not above it is raised by it, as sent)."""
    cache_minimum_tokens: int | None = None
    """The shortest prefix the target caches, when the request's breakpoints mark a shorter one: it won't be
    cached (written nor read; the prefix counts 0). ``None``: no such case."""

    def summary(self) -> dict[str, object]:
        return {"target": self.target, "input_tokens": self.input_tokens, "exact": self.exact,
                "max_tokens": self.max_tokens, "cost_input_usd": usd_number(self.cost_input_usd),
                "cost_max_usd": usd_number(self.cost_max_usd),
                "cost_input_warm_usd": usd_number(self.cost_input_warm_usd),
                "cache_prefix_tokens": self.cache_prefix_tokens,
                "reasoning_budget_tokens": self.reasoning_budget_tokens,
                "cache_minimum_tokens": self.cache_minimum_tokens,
                "context_window": self.context_window, "headroom_tokens": self.headroom_tokens}


def caches_at_breakpoints(target: str) -> bool:
    """The target's wire caches only where the request puts breakpoints (Anthropic ``cache_control``); the
    others cache a repeated prefix on their own."""
    return on_anthropic(target)


def on_anthropic(target: str) -> bool:
    """The target's provider speaks Anthropic's Messages wire."""
    spec = PROVIDERS.get(target.partition("/")[0])
    return spec is not None and spec.wire == "anthropic"


def cached_texts(request: ChatRequest, target: str) -> int:
    """How many of the request's texts (the system prompt first, then the messages) a warm cache holds."""
    system = 1 if request.system else 0
    if caches_at_breakpoints(target):
        points = request.cache
        if points.messages:
            return system + min(max(points.messages) + 1, len(request.messages))
        return system if points.system else 0
    texts = system + len(request.messages)
    return texts - 1 if texts > 1 else 0


def count_input(request: ChatRequest, target: str, *, raw: bool = False,
                message_tokens: Sequence[int] | None = None) -> tuple[int, int, bool]:
    """(input tokens, tokens of the cacheable prefix, exact?) counted offline for ``target``.

    ``message_tokens``: each message's own count in the target's encoding (the system prompt first when
    there is one), as a live meter keeps them, so nothing is tokenized again."""
    provider, _, model = target.partition("/")
    encoding, exact = encoding_name_for(provider, model)
    if not raw and any(m.attachments for m in request.messages):
        return _with_attachments(request, target, message_tokens)
    kept = cached_texts(request, target)
    if message_tokens is not None:
        return chat_tokens(message_tokens), chat_tokens(message_tokens[:kept]) if kept else 0, exact
    if raw:
        return count_text("\n".join(turn_text(m) for m in request.messages), encoding), 0, exact
    total = count_chat(request, encoding)
    if not kept:
        return total, 0, exact
    turns = request.messages[:kept - 1] if request.system else request.messages[:kept]
    return total, count_chat(copied(request, messages=turns), encoding), exact


def _with_attachments(request: ChatRequest, target: str, message_tokens: Sequence[int] | None) -> tuple[int, int, bool]:
    """:func:`count_input` of a request whose turns carry attachments: the text's count plus each turn's
    attachments by the provider's rule (never exact: the rules are published estimates)."""
    bare = replace(request, messages=tuple(replace(m, attachments=()) for m in request.messages))
    total, prefix, _ = count_input(bare, target, message_tokens=message_tokens)
    images = [attached_tokens(m, target) for m in request.messages]
    turns = cached_texts(request, target) - (1 if request.system else 0)
    return total + sum(images), prefix + sum(images[:max(turns, 0)]) if prefix else 0, False


def attached_tokens(message: Message, target: str) -> int:
    """The input tokens of a turn's attachments on ``target``, by its provider's rule
    (:mod:`workbench.core.tokens.images`)."""
    if not message.attachments:
        return 0
    provider, _, model = target.partition("/")
    spec = PROVIDERS.get(provider)
    family = family_of(spec.wire if spec is not None else "openai_chat", model)
    total = 0
    for a in message.attachments:
        if a.width is not None and a.height is not None:
            total += image_tokens(family, model, a.width, a.height, a.detail or "high")
        else:
            total += pdf_tokens(family, a.pages or 1)
    return total


def tools_tokens(request: ChatRequest, target: str) -> int:
    """The request's tool definitions as input tokens on ``target``: their compact JSON in its encoding (each
    provider renders them its own way, so never exact)."""
    if not request.params.tools:
        return 0
    provider, _, model = target.partition("/")
    encoding, _ = encoding_name_for(provider, model)
    return count_text(json.dumps(list(request.params.tools), separators=(",", ":")), encoding)


def estimate(request: ChatRequest, target: str, prices: PriceBook, *, raw: bool = False,
             provider_count: int | None = None, message_tokens: Sequence[int] | None = None) -> Estimate:
    tokens, prefix, exact = count_input(request, target, raw=raw, message_tokens=message_tokens)
    tools = tools_tokens(request, target)
    if tools:  # sent before the system prompt: part of any cached prefix (Anthropic's when a breakpoint follows)
        prefix = prefix + tools if prefix or request.cache.tools else 0
        tokens, exact = tokens + tools, False
    if provider_count is not None:
        tokens, exact = provider_count, True
    max_tokens = output_bound(request, target)
    # Priced as whole calls, so tiered prices (a long-context rate above 200k tokens) apply as billed.
    prefix = min(prefix, tokens)
    minimum = None
    if caches_at_breakpoints(target) and 0 < prefix < anthropic_cache_minimum(target):  # too short: never cached
        minimum, prefix = anthropic_cache_minimum(target), 0
    written = prefix if caches_at_breakpoints(target) else None  # a cold call writes the prefix there
    one_hour = written if written and request.cache.ttl == "1h" else None  # written at the 1-hour rate
    cost_input = prices.cost(target, Usage(input_tokens=tokens, cache_write_tokens=written,
                                           cache_write_1h_tokens=one_hour))
    cost_max = prices.cost(target, Usage(input_tokens=tokens, output_tokens=max_tokens, cache_write_tokens=written,
                                         cache_write_1h_tokens=one_hour))
    cost_warm = prices.cost(target, Usage(input_tokens=tokens, cache_read_tokens=prefix))
    window = prices.facts(target).context_window
    return Estimate(target, tokens, exact, max_tokens, cost_input, cost_max, cost_warm, window,
                    None if window is None else window - tokens - max_tokens, prefix, budget_of(request.params),
                    minimum)


def output_bound(request: ChatRequest, target: str) -> int:
    """The most output the call can bill: ``max_tokens`` as the target's wire sends it (the model's default when
    unset). Reasoning bills as output within it; Anthropic's ``max_tokens`` must exceed the thinking budget, so one
    that does not is raised by the budget (:func:`~workbench.core.providers.reasoning.anthropic_max_tokens`)."""
    resolved = request.with_max_tokens(default_max_tokens(target.partition("/")[2]))
    if on_anthropic(target):
        resolved = anthropic_max_tokens(resolved)
    return resolved.params.max_tokens or 0
