"""The pre-send estimate counts the request's tool definitions: their compact JSON in the target's encoding, never
exact (each provider renders them its own way), and part of the cached prefix that comes before the system prompt."""

from __future__ import annotations

import json

from workbench.core.pricing import PriceBook
from workbench.core.request import CacheBreakpoints, ChatRequest, Message, Params
from workbench.core.tokens.encodings import count_text, encoding_name_for
from workbench.core.tokens.estimate import estimate, tools_tokens

# Long enough that each cached prefix is over Claude Sonnet 4.5's 1024-token minimum (a shorter one is not cached).
TOOLS = ({"type": "function", "function": {"name": "get_weather", "description": "Weather of a city. " * 300,
                                           "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},)
SONNET = "anthropic/claude-sonnet-4-5"


def request(tools: tuple[dict[str, object], ...] = (), cache: CacheBreakpoints | None = None) -> ChatRequest:
    return ChatRequest(system="Be brief and exact. " * 300,
                       messages=(Message(role="user", content="Weather in Paris?"),),
                       params=Params(max_tokens=50, tools=tools), cache=cache or CacheBreakpoints())


def test_the_tools_add_their_json_tokens_and_make_the_count_rough() -> None:
    target = "openai/gpt-4.1-mini"
    encoding, _ = encoding_name_for("openai", "gpt-4.1-mini")
    counted = count_text(json.dumps(list(TOOLS), separators=(",", ":")), encoding)
    assert tools_tokens(request(TOOLS), target) == counted > 10
    bare, with_tools = estimate(request(), target, PriceBook()), estimate(request(TOOLS), target, PriceBook())
    assert bare.exact and not with_tools.exact
    assert with_tools.input_tokens == bare.input_tokens + counted
    assert with_tools.cost_input_usd is not None and bare.cost_input_usd is not None
    assert with_tools.cost_input_usd > bare.cost_input_usd
    assert tools_tokens(request(), target) == 0


def test_anthropic_caches_the_tools_at_their_breakpoint() -> None:
    book = PriceBook()
    tools = tools_tokens(request(TOOLS), SONNET)
    assert estimate(request(TOOLS), SONNET, book).cache_prefix_tokens == 0  # no breakpoint: nothing cached
    assert estimate(request(TOOLS, CacheBreakpoints(tools=True)), SONNET, book).cache_prefix_tokens == tools
    system = estimate(request(cache=CacheBreakpoints(system=True)), SONNET, book).cache_prefix_tokens
    both = estimate(request(TOOLS, CacheBreakpoints(system=True)), SONNET, book).cache_prefix_tokens
    assert both == system + tools
