"""Anthropic's 1-hour cache writes are priced at the 1-hour rate (2x base input, genai-prices'
``cache_write_1h_mtok``) rather than the 5-minute one (1.25x): read from a recorded stream's
``usage.cache_creation`` split, counted by the estimate of a ``--cache-ttl 1h`` request; and a breakpoint under the
model's minimum cacheable length (Anthropic's table: 1024, 2048, 4096 tokens) is reported as not cached."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tests.test_cli import json_lines, workbench
from tests.test_wire_reasoning import anthropic
from tests.test_wire_recordings import sse_events
from workbench.core.events import Usage, UsageEvent
from workbench.core.pricing import PriceBook, UserPrice
from workbench.core.providers.anthropic import AnthropicParser
from workbench.core.request import CacheBreakpoints, ChatRequest, Message, Params
from workbench.core.tokens.cache_minimum import anthropic_cache_minimum
from workbench.core.tokens.estimate import estimate
from workbench.ui.render import meter_text

SONNET = "anthropic/claude-sonnet-4-5"

# A Messages stream that wrote its prefix with cache_control {"type": "ephemeral", "ttl": "1h"}: the usage object
# splits the write by TTL (cache_creation.ephemeral_5m_input_tokens / ephemeral_1h_input_tokens).
ONE_HOUR_WRITE = b"".join([
    anthropic("message_start", {"message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [],
                                            "usage": {"input_tokens": 20, "cache_creation_input_tokens": 3000,
                                                      "cache_read_input_tokens": 0,
                                                      "cache_creation": {"ephemeral_5m_input_tokens": 1000,
                                                                         "ephemeral_1h_input_tokens": 2000},
                                                      "output_tokens": 1}}}),
    anthropic("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
    anthropic("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "Done."}}),
    anthropic("content_block_stop", {"index": 0}),
    anthropic("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 3}}),
    anthropic("message_stop", {}),
])


def test_a_1h_write_is_read_from_the_usage_and_priced_at_the_1h_rate() -> None:
    usage = [e.usage for e in sse_events(AnthropicParser(), ONE_HOUR_WRITE) if isinstance(e, UsageEvent)][-1]
    assert (usage.input_tokens, usage.cache_write_tokens, usage.cache_write_1h_tokens) == (3020, 3000, 2000)
    # Claude Sonnet 4.5: $3 input, $3.75 5-minute write, $6 1-hour write, $15 output (per million tokens)
    expected = (20 * Decimal(3) + 1000 * Decimal("3.75") + 2000 * Decimal(6) + 3 * Decimal(15)) / 1_000_000
    assert PriceBook().cost(SONNET, usage) == expected
    five = Usage(input_tokens=3020, output_tokens=3, cache_write_tokens=3000)
    assert PriceBook().cost(SONNET, five) < expected  # type: ignore[operator]


def test_a_user_price_row_takes_a_1h_write_rate() -> None:
    row = UserPrice(input_per_mtok=Decimal(1), output_per_mtok=Decimal(1), cache_write_per_mtok=Decimal("1.25"),
                    cache_write_1h_per_mtok=Decimal(2))
    usage = Usage(input_tokens=3_000_000, cache_write_tokens=3_000_000, cache_write_1h_tokens=1_000_000)
    assert row.cost(usage) == Decimal("2.5") + Decimal(2)
    unset = UserPrice(input_per_mtok=Decimal(1), output_per_mtok=Decimal(1), cache_write_per_mtok=Decimal("1.25"))
    assert unset.cost(usage) == Decimal("3.75")  # no 1h rate: the write rate


LONG = "Every clause of the contract, quoted in full for the analyst. " * 200


def request(ttl: str = "5m", system: str = LONG) -> ChatRequest:
    return ChatRequest(system=system, messages=(Message(role="user", content="Summarise it."),),
                       params=Params(max_tokens=100), cache=CacheBreakpoints(system=True, ttl=ttl))  # type: ignore[arg-type]


def test_the_cold_estimate_of_a_1h_breakpoint_pays_the_1h_write() -> None:
    five, hour = estimate(request("5m"), SONNET, PriceBook()), estimate(request("1h"), SONNET, PriceBook())
    assert five.cache_prefix_tokens == hour.cache_prefix_tokens > 1024
    prefix, rest = hour.cache_prefix_tokens, hour.input_tokens - hour.cache_prefix_tokens
    assert hour.cost_input_usd == (prefix * Decimal(6) + rest * Decimal(3)) / 1_000_000
    assert five.cost_input_usd == (prefix * Decimal("3.75") + rest * Decimal(3)) / 1_000_000
    assert five.cost_input_warm_usd == hour.cost_input_warm_usd  # reads cost the same


@pytest.mark.parametrize(("model", "minimum"), [
    ("claude-sonnet-4-5", 1024), ("claude-opus-4-1-20250805", 1024), ("claude-3-7-sonnet-latest", 1024),
    ("claude-3-5-haiku-20241022", 2048), ("claude-3-haiku-20240307", 2048), ("claude-sonnet-4-6", 2048),
    ("claude-haiku-4-5", 4096), ("claude-opus-4-5-20251101", 4096), ("claude-opus-4.6", 4096)])
def test_anthropics_minimum_cacheable_length_per_model(model: str, minimum: int) -> None:
    assert anthropic_cache_minimum(model) == minimum


def test_a_breakpoint_under_the_minimum_wont_be_cached() -> None:
    short = estimate(request(system="Be brief. " * 150), SONNET, PriceBook())
    assert short.cache_minimum_tokens == 1024 and short.cache_prefix_tokens == 0
    assert short.cost_input_usd == short.cost_input_warm_usd == PriceBook().cost(
        SONNET, Usage(input_tokens=short.input_tokens))  # neither written nor read
    haiku = estimate(request(), "anthropic/claude-haiku-4-5", PriceBook())
    assert haiku.cache_minimum_tokens == 4096 and haiku.cache_prefix_tokens == 0
    assert estimate(request(), SONNET, PriceBook()).cache_minimum_tokens is None
    shown = meter_text([{"target": SONNET, "tokens": short.input_tokens, "exact": False, "estimate": short}]).plain
    assert "won't be cached (< 1,024 tokens)" in shown and "warm" not in shown


def test_tokens_says_a_short_breakpoint_wont_be_cached(tmp_path: Path) -> None:
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("Summarise it.")
    base = ["tokens", str(prompt), "-s", "Be brief.", "-m", SONNET, "--offline", "--cache-breakpoint", "system"]
    [row] = json_lines(workbench(*base, "--json").stdout)
    assert row["cache_minimum_tokens"] == 1024 and row["cache_prefix_tokens"] == 0
    table = workbench(*base, env={"COLUMNS": "200"})
    assert table.returncode == 0 and "won't be cached (< 1,024)" in table.stdout, table.stdout


@pytest.mark.parametrize(("ttl", "rate"), [("5m", Decimal("1.25")), ("1h", Decimal(2))])
def test_a_call_over_http_prices_its_write_at_its_ttls_rate(ttl: str, rate: Decimal, fake_env: dict[str, str],
                                                            tmp_path: Path) -> None:
    (tmp_path / "workbench.toml").write_text('[prices."fake-anthropic/*"]\ninput_per_mtok = 1\noutput_per_mtok = 1\n'
                                             'cache_write_per_mtok = 1.25\ncache_write_1h_per_mtok = 2\n')
    system = f"You are a meticulous support agent ({ttl} test); quote the policy. " * 100  # unseen: written
    result = workbench("run", "Refund?", "-s", system, "-m", "fake-anthropic/m@cache=1,tokens=3",
                       "--cache-breakpoint", "system", "--cache-ttl", ttl, "--json", env=fake_env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [row] = json_lines(result.stdout)
    written, total, out = row["cache_write_tokens"], row["input_tokens"], row["output_tokens"]
    assert isinstance(written, int) and written > 0 and isinstance(total, int) and isinstance(out, int)
    expected = ((total - written) + written * rate + out) / 1_000_000
    assert Decimal(str(row["cost_usd"])) == expected
