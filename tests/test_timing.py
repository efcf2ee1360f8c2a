"""Metrics are derived from raw timestamps, with one definition of TTFT."""

from __future__ import annotations

from workbench.core.call_record import CallRecord, apply_event, summary
from workbench.core.events import FinishEvent, FinishReason, ReasoningDelta, ResponseStart, TextDelta, Usage, UsageEvent
from workbench.core.request import ChatRequest
from workbench.core.timing import CallTiming

MS = 1_000_000


def test_derived_metrics_from_raw_stamps() -> None:
    timing = CallTiming(started_ns=0, sent_ns=2 * MS, headers_ns=50 * MS, first_event_ns=60 * MS,
                        first_content_ns=100 * MS, first_text_ns=150 * MS, end_ns=1_002 * MS,
                        chunk_ns=[100 * MS, 150 * MS, 200 * MS, 1_000 * MS])
    assert timing.connect_ms == 2
    assert timing.time_to_headers_ms == 48
    assert timing.ttft_ms == 98
    assert timing.time_to_first_text_ms == 148
    assert timing.latency_ms == 1_000
    assert timing.gaps_ms() == [50, 50, 800]
    assert timing.tokens_per_s(10) == 9 / 0.9


def test_tokens_per_s_needs_two_chunks_apart() -> None:
    assert CallTiming(chunk_ns=[5]).tokens_per_s(10) is None
    assert CallTiming(chunk_ns=[5, 5]).tokens_per_s(10) is None
    assert CallTiming(chunk_ns=[0, MS]).tokens_per_s(1) is None


def test_failed_before_sending_measures_from_the_hand_over() -> None:
    timing = CallTiming(started_ns=10 * MS, end_ns=30 * MS)
    assert timing.latency_ms == 20 and timing.ttft_ms is None and timing.connect_ms is None


def test_record_applies_events_reasoning_first_counts_as_ttft() -> None:
    record = CallRecord("fake/x", ChatRequest.from_prompt("hi"))
    for event in (ResponseStart(0, MS, 10 * MS, "req_1"), ReasoningDelta("think", 40 * MS),
                  TextDelta("Hello", 70 * MS), TextDelta(" world", 90 * MS),
                  UsageEvent(Usage(5, 3, reasoning_tokens=1), 95 * MS),
                  FinishEvent(FinishReason.STOP, "end_turn", 95 * MS)):
        apply_event(record, event)
    record.timing.end_ns, record.done = 100 * MS, True
    assert record.request_id == "req_1" and record.timing.first_event_ns == 40 * MS
    assert record.timing.ttft_ms == 39 and record.timing.time_to_first_text_ms == 69
    row = summary(record)
    assert {key: row[key] for key in (
        "target", "text", "tool_calls", "reasoning", "reasoning_tokens", "ttft_ms", "ttft_reasoning_ms",
        "ttft_answer_ms", "latency_ms", "tokens_per_s", "input_tokens", "output_tokens", "usage_estimated",
        "finish_reason", "status", "error", "cost_usd", "attempts", "served_by", "queue_ms", "total_ms",
        "total_ttft_ms")} == {
        "target": "fake/x", "text": "Hello world", "tool_calls": [], "reasoning": "think", "reasoning_tokens": 1,
        "ttft_ms": 39.0, "ttft_reasoning_ms": 39.0, "ttft_answer_ms": 69.0, "latency_ms": 99.0,
        "tokens_per_s": round(2 / 0.05, 2), "input_tokens": 5, "output_tokens": 3, "usage_estimated": False,
        "finish_reason": "stop", "status": "ok", "error": None, "cost_usd": None, "attempts": [],
        "served_by": None, "queue_ms": None, "total_ms": None, "total_ttft_ms": None}
    record.call_started_ns = 0  # the call began before its attempt: retries, waits and fallbacks count here
    assert summary(record)["total_ms"] == 100.0 and summary(record)["total_ttft_ms"] == 40.0


def test_no_rate_is_measured_over_a_generation_too_short_to_time() -> None:
    instant = CallTiming(chunk_ns=[0, 20_000, 40_000, 60_000, 80_000])  # 5 tokens in 80 µs: one network read
    assert instant.tokens_per_s(5) is None
    assert CallTiming(chunk_ns=[0, 2 * MS]).tokens_per_s(3) is None
    assert CallTiming(chunk_ns=[0, 3 * MS]).tokens_per_s(4) == 1000.0  # 3 tokens over 3 ms: measurable
