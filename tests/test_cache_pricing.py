"""Cache reads and writes are priced at the model's own cache rates (genai-prices), and the pre-send estimate
shows cold vs warm cost per target: what a warm cache holds depends on whether the provider caches on its own
or only at the request's breakpoints (Anthropic)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from workbench.core.events import Usage
from workbench.core.pricing import PriceBook
from workbench.core.request import CacheBreakpoints, ChatRequest, Message, Params
from workbench.core.tokens.encodings import count_chat, count_text, encoding_name_for
from workbench.core.tokens.estimate import estimate

SONNET = "anthropic/claude-sonnet-4-5"
SYSTEM = "You are a careful analyst of quarterly reports. " * 130  # over Sonnet 4.5's 1024-token cache minimum
TURNS = (Message(role="user", content="Here is the report: " + "revenue grew, costs fell. " * 60),
         Message(role="assistant", content="Noted."),
         Message(role="user", content="What was the margin?"))


def test_anthropic_cache_reads_and_writes_have_their_own_prices() -> None:
    book = PriceBook()
    # Claude Sonnet 4.5 under 200k input tokens: $3 input, $0.30 cache read, $3.75 cache write (5 min), $15 output
    assert book.cost(SONNET, Usage(input_tokens=100_000)) == Decimal("0.3")
    assert book.cost(SONNET, Usage(input_tokens=100_000, cache_read_tokens=100_000)) == Decimal("0.03")
    assert book.cost(SONNET, Usage(input_tokens=100_000, cache_write_tokens=100_000)) == Decimal("0.375")
    mixed = Usage(input_tokens=100_000, output_tokens=1_000, cache_read_tokens=60_000, cache_write_tokens=30_000)
    assert book.cost(SONNET, mixed) == Decimal("0.03") + Decimal("0.018") + Decimal("0.1125") + Decimal("0.015")


def test_unknown_cache_counts_price_as_plain_input() -> None:
    book = PriceBook()
    assert book.cost(SONNET, Usage(input_tokens=1_000, output_tokens=10)) == \
        book.cost(SONNET, Usage(input_tokens=1_000, output_tokens=10, cache_read_tokens=0, cache_write_tokens=0))


def request(cache: CacheBreakpoints | None = None) -> ChatRequest:
    return ChatRequest(system=SYSTEM, messages=TURNS, params=Params(max_tokens=100), cache=cache or CacheBreakpoints())


def test_a_provider_that_caches_by_itself_is_warm_on_everything_but_the_last_turn() -> None:
    row = estimate(request(CacheBreakpoints(system=True)), "openai/gpt-4.1-mini", PriceBook())  # breakpoints ignored
    assert row.cache_prefix_tokens == count_chat(replace(request(), messages=TURNS[:-1]))
    assert row.cost_input_warm_usd is not None and row.cost_input_usd is not None
    assert row.cost_input_warm_usd < row.cost_input_usd == PriceBook().cost("openai/gpt-4.1-mini",
                                                                           Usage(input_tokens=row.input_tokens))


def test_anthropic_is_warm_only_up_to_its_last_breakpoint_and_pays_the_write_cold() -> None:
    book = PriceBook()
    none = estimate(request(), SONNET, book)
    assert none.cache_prefix_tokens == 0 and none.cost_input_warm_usd == none.cost_input_usd  # nothing cached
    system_only = estimate(request(CacheBreakpoints(system=True)), SONNET, book)
    encoding, _ = encoding_name_for("anthropic", "claude-sonnet-4-5")
    assert system_only.cache_prefix_tokens == count_chat(replace(request(), messages=()), encoding)
    through_report = estimate(request(CacheBreakpoints(system=True, messages=(0,))), SONNET, book)
    assert through_report.cache_prefix_tokens > system_only.cache_prefix_tokens + count_text(TURNS[0].content,
                                                                                          encoding) - 10
    for row in (system_only, through_report):
        plain = book.cost(SONNET, Usage(input_tokens=row.input_tokens))
        assert row.cost_input_warm_usd is not None and row.cost_input_usd is not None and plain is not None
        assert row.cost_input_warm_usd < plain < row.cost_input_usd  # cold writes the prefix at 1.25x
        assert row.cost_input_usd == book.cost(SONNET, Usage(input_tokens=row.input_tokens,
                                                             cache_write_tokens=row.cache_prefix_tokens))
    assert through_report.cost_input_warm_usd < system_only.cost_input_warm_usd  # type: ignore[operator]
    assert through_report.summary()["cache_prefix_tokens"] == through_report.cache_prefix_tokens


@pytest.mark.parametrize("cache", [CacheBreakpoints(), CacheBreakpoints(system=True),
                                   CacheBreakpoints(messages=(1,))])
@pytest.mark.parametrize("target", [SONNET, "openai/gpt-4.1-mini"])
def test_the_editors_live_counts_give_the_same_estimate(cache: CacheBreakpoints, target: str) -> None:
    encoding, _ = encoding_name_for(*target.split("/"))
    counts = [count_text(SYSTEM, encoding), *(count_text(m.content, encoding) for m in TURNS)]
    live = estimate(request(cache), target, PriceBook(), message_tokens=counts)
    assert live == estimate(request(cache), target, PriceBook())


def test_the_editors_meter_shows_the_warm_cost_beside_the_cold_range() -> None:
    from workbench.ui.render import meter_text

    book = PriceBook()
    warm = estimate(request(CacheBreakpoints(system=True)), SONNET, book)
    cold_only = estimate(request(), SONNET, book)  # Anthropic without breakpoints: nothing to read warm
    shown = meter_text([{"target": SONNET, "tokens": warm.input_tokens, "exact": False, "estimate": warm},
                        {"target": "anthropic/x", "tokens": 1, "exact": False, "estimate": cold_only}]).plain
    first, second = shown.splitlines()
    assert "warm $" in first and "warm" not in second
    assert first.index("USD") < first.index("warm") < first.index("headroom")
