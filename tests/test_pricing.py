"""Prices from the bundled genai-prices data and a user table; the estimator; costs on records."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import genai_prices
import pytest

from workbench.core.config import load_settings
from workbench.core.errors import ConfigError
from workbench.core.events import Usage
from workbench.core.pricing import PriceBook, UserPrice
from workbench.core.request import ChatRequest, Message, Params
from workbench.core.tokens.encodings import count_chat
from workbench.core.tokens.estimate import estimate


@pytest.mark.parametrize(("target", "provider_id", "model"), [
    ("openai/gpt-4.1-mini", "openai", "gpt-4.1-mini"),
    ("anthropic/claude-sonnet-4-5", "anthropic", "claude-sonnet-4-5"),
    ("gemini/gemini-2.5-flash", "google", "gemini-2.5-flash"),
    ("openai-responses/o3", "openai", "o3"),
])
def test_cost_equals_genai_prices_own_result(target: str, provider_id: str, model: str) -> None:
    usage = Usage(input_tokens=12_000, output_tokens=3_000, cache_read_tokens=4_000, cache_write_tokens=1_000,
                  reasoning_tokens=1_000)
    at = datetime(2026, 6, 1, tzinfo=UTC)
    theirs = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=12_000, output_tokens=3_000, cache_read_tokens=4_000, cache_write_tokens=1_000),
        model, provider_id=provider_id, genai_request_timestamp=at)
    assert PriceBook().cost(target, usage, at) == theirs.total_price > 0


def test_cached_input_is_cheaper_than_fresh_input() -> None:
    book = PriceBook()
    fresh = book.cost("openai/gpt-4.1-mini", Usage(input_tokens=10_000))
    cached = book.cost("openai/gpt-4.1-mini", Usage(input_tokens=10_000, cache_read_tokens=10_000))
    assert fresh is not None and cached is not None and cached < fresh


@pytest.mark.parametrize("target", ["ollama/llama3.2", "fake/demo", "vllm/qwen", "openai/no-such-model-xyz"])
def test_unknown_models_cost_unknown_never_zero(target: str) -> None:
    assert PriceBook().cost(target, Usage(input_tokens=100, output_tokens=100)) is None
    assert PriceBook().facts(target).source == "unknown"


def test_scenario_suffix_does_not_hide_the_model() -> None:
    assert PriceBook().cost("openai/gpt-4o@ttft=200,tps=10", Usage(input_tokens=1000)) == \
        PriceBook().cost("openai/gpt-4o", Usage(input_tokens=1000))


def test_user_table_overrides_adds_and_matches_patterns(tmp_path: Path) -> None:
    path = tmp_path / "workbench.toml"
    path.write_text('''
[prices."vllm/*"]
input_per_mtok = 0
output_per_mtok = 0
[prices."openai/gpt-4.1-mini"]
input_per_mtok = 1
output_per_mtok = 2
cache_read_per_mtok = 0.5
[prices."openrouter/acme/model-x"]
input_per_mtok = 0.8
output_per_mtok = 2.4
context_window = 131072
''', encoding="utf-8")
    book = load_settings(path, user_file=path.parent / 'no-user.toml').prices
    assert book.cost("vllm/qwen2.5", Usage(input_tokens=10**6, output_tokens=10**6)) == 0  # priced at zero
    assert book.cost("openai/gpt-4.1-mini", Usage(input_tokens=10**6, output_tokens=10**6,
                                                   cache_read_tokens=500_000)) == Decimal("0.5") + Decimal("0.25") + 2
    assert book.facts("openai/gpt-4.1-mini").context_window == 1_000_000  # the window still comes from the data
    assert book.facts("openrouter/acme/model-x") == book.facts("openrouter/acme/model-x@ttft=1")
    assert book.facts("openrouter/acme/model-x").context_window == 131072


def test_bad_price_table_names_file_row_and_field(tmp_path: Path) -> None:
    path = tmp_path / "workbench.toml"
    path.write_text('[prices."x/y"]\ninput_per_mtok = -1\noutput_per_mtok = 1\n', encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(path, user_file=path.parent / 'no-user.toml')
    assert str(err.value).startswith(f'{path}:2: prices."x/y".input_per_mtok: Input should be greater than or equal')


def test_user_price_parts() -> None:
    row = UserPrice(input_per_mtok=Decimal(2), output_per_mtok=Decimal(8), cache_write_per_mtok=Decimal("2.5"))
    usage = Usage(input_tokens=1_000_000, cache_write_tokens=200_000, cache_read_tokens=300_000,
                  output_tokens=500_000)
    # 500k plain input at 2, 300k cached read at 2 (no cached price given), 200k writes at 2.5, 500k output at 8
    assert row.cost(usage) == Decimal(1) + Decimal("0.6") + Decimal("0.5") + 4


def test_estimate_range_cache_and_headroom() -> None:
    request = ChatRequest(system="You are a careful analyst. " * 50,
                          messages=(Message(role="user", content="First question " * 20),
                                    Message(role="assistant", content="An answer " * 20),
                                    Message(role="user", content="And now?")),
                          params=Params(max_tokens=500))
    row = estimate(request, "openai/gpt-4.1-mini", PriceBook())
    assert row.exact and row.input_tokens == count_chat(request, "o200k_base") and row.max_tokens == 500
    assert row.cost_input_usd is not None and row.cost_max_usd is not None and row.cost_input_warm_usd is not None
    assert row.cost_input_warm_usd < row.cost_input_usd < row.cost_max_usd
    assert row.headroom_tokens == 1_000_000 - row.input_tokens - 500
    approx = estimate(request, "anthropic/claude-sonnet-4-5", PriceBook())
    assert not approx.exact and approx.max_tokens == 500
    counted = estimate(request, "anthropic/claude-sonnet-4-5", PriceBook(), provider_count=321)
    assert counted.exact and counted.input_tokens == 321
    unknown = estimate(request, "ollama/llama3.2", PriceBook()).summary()
    assert unknown["cost_input_usd"] is None and unknown["cost_max_usd"] is None and unknown["headroom_tokens"] is None


def test_a_prompt_too_long_for_the_window_has_negative_headroom() -> None:
    request = ChatRequest.from_prompt("word " * 2000, params=Params(max_tokens=10))
    book = PriceBook({"openrouter/tiny": UserPrice(input_per_mtok=Decimal(1), output_per_mtok=Decimal(1),
                                                   context_window=1000)})
    row = estimate(request, "openrouter/tiny", book)
    assert row.headroom_tokens is not None and row.headroom_tokens < 0


@pytest.mark.parametrize("system", [None, "You are terse."])
def test_an_estimate_from_live_meter_counts_equals_a_fresh_count(system: str | None) -> None:
    from workbench.core.tokens.encodings import count_text

    request = ChatRequest(system=system, messages=(Message(role="user", content="Summarise this ticket, please."),
                                                   Message(role="assistant", content="Sure: which one?"),
                                                   Message(role="user", content="The refund one from May.")))
    texts = [t for t in (system, *(m.content for m in request.messages)) if t]
    for target in ("openai/gpt-4.1-mini", "anthropic/claude-sonnet-4-5"):
        counted = estimate(request, target, PriceBook())
        from_meters = estimate(request, target, PriceBook(),
                               message_tokens=[count_text(t, "o200k_base") for t in texts])
        assert from_meters == counted


@pytest.mark.parametrize("target", ["openai/o4-mini", "anthropic/claude-sonnet-4-5", "gemini/gemini-2.5-flash"])
def test_reasoning_tokens_are_priced_as_output(target: str) -> None:
    """``output_tokens`` includes the reasoning (Gemini's thoughts are added to it as they arrive): a reply that
    thought costs its reasoning at the output price, no more and no less."""
    from workbench.core.providers.gemini import gemini_usage

    book = PriceBook()
    thought = book.cost(target, Usage(input_tokens=1_000, output_tokens=3_000, reasoning_tokens=2_000))
    plain = book.cost(target, Usage(input_tokens=1_000, output_tokens=3_000))
    visible = book.cost(target, Usage(input_tokens=1_000, output_tokens=1_000))
    assert thought is not None and visible is not None and thought == plain > visible
    gemini = gemini_usage({"promptTokenCount": 1_000, "candidatesTokenCount": 1_000, "thoughtsTokenCount": 2_000})
    assert (gemini.output_tokens, gemini.reasoning_tokens) == (3_000, 2_000)
