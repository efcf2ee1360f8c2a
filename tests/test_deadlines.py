"""Deadlines on time: first-token counted from the request sent (headers included), idle while streaming."""

from __future__ import annotations

import httpx2

from tests.timing_slack import LoopLateness
from workbench.core.call_record import collect
from workbench.core.errors import ProviderTimeoutError
from workbench.core.policy import Timeouts
from workbench.core.registry import make_provider, resolve
from workbench.core.request import ChatRequest, ModelRef

PROMPT = ChatRequest.from_prompt("Deadlines.")
SLACK_S = 0.25
"""Lateness allowed beyond the deadline on an idle machine (the loop's own wake-up and the test's bookkeeping);
a few of the worst wake-ups measured meanwhile are added (tests/timing_slack.py)."""


async def test_the_idle_deadline_fires_on_time_even_when_the_first_token_deadline_is_far(
    fake_env: dict[str, str], client: httpx2.AsyncClient
) -> None:
    provider = make_provider(resolve(ModelRef.parse("fake/stall@hang=stream"), fake_env), client)
    async with LoopLateness() as late:
        record = await collect(provider, PROMPT, timeouts=Timeouts(ttft=30, idle=0.3), estimate_usage=False)
    assert isinstance(record.error, ProviderTimeoutError) and record.error.which == "idle"
    assert record.timing.end_ns is not None and record.text
    late_s = (record.timing.end_ns - record.timing.chunk_ns[-1]) / 1e9 - 0.3
    assert 0 <= late_s < SLACK_S + late.allowance_ms(0) / 1000


async def test_a_server_that_never_answers_costs_the_first_token_timeout_from_the_request_sent(
    fake_env: dict[str, str], client: httpx2.AsyncClient
) -> None:
    provider = make_provider(resolve(ModelRef.parse("fake-anthropic/mute@hang=headers"), fake_env), client)
    async with LoopLateness() as late:
        record = await collect(provider, PROMPT, timeouts=Timeouts(connect=8, ttft=0.4), estimate_usage=False)
    assert isinstance(record.error, ProviderTimeoutError) and record.error.which == "first-token"
    assert provider.sent_ns is not None and record.timing.end_ns is not None
    late_s = (record.timing.end_ns - provider.sent_ns) / 1e9 - 0.4
    assert 0 <= late_s < SLACK_S + late.allowance_ms(0) / 1000  # not connect + ttft
