"""One rendering of every number: the CLI's race panes and the TUI's show a call's figures from
``workbench.figures``, so they read the same in both faces."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from rich.console import Console

from workbench import figures
from workbench.cli.render import estimates_table, record_panel
from workbench.core.call_record import Attempt, CallRecord
from workbench.core.errors import ProviderHTTPError
from workbench.core.events import FinishReason, Usage
from workbench.core.request import ChatRequest, Params
from workbench.core.timing import CallTiming
from workbench.core.tokens.estimate import Estimate
from workbench.ui import render as ui_render

MS = 1_000_000
REQUEST = ChatRequest.from_prompt("Explain SSE.", params=Params(max_tokens=64))


def finished(target: str, finish: FinishReason, out: int, ttft: int, total: int, *, estimated: bool = False,
             cost: Decimal | None = Decimal("0.000123"), started_ns: int | None = None) -> CallRecord:
    chunks = [ttft * MS + i * 10 * MS for i in range(out)]
    record = CallRecord(target, REQUEST, text_parts=["an answer"], usage=Usage(input_tokens=1_234, output_tokens=out),
                        usage_estimated=estimated, finish=finish,
                        timing=CallTiming(started_ns=0, sent_ns=0, first_content_ns=ttft * MS, first_text_ns=ttft * MS,
                                          end_ns=total * MS, chunk_ns=chunks),
                        done=True, cost_usd=cost, call_started_ns=started_ns)
    record.attempts = [Attempt(target, "first", latency_ms=float(total), ttft_ms=float(ttft))]
    return record


def records() -> list[CallRecord]:
    ok = finished("fake/ok", FinishReason.STOP, 20, 300, 520)
    cut = finished("fake/cut", FinishReason.LENGTH, 64, 150, 12_800, estimated=True, cost=Decimal("0.0421"))
    waited = finished("fake/waited", FinishReason.STOP, 4, 90, 1200, started_ns=-2_000 * MS, cost=None)
    waited.attempts = [Attempt("fake/waited", "first", status=429, error="429", error_class="http_429"),
                       Attempt("fake/waited", "retry", wait_ms=1000.0, wait_reason="retry-after"),
                       Attempt("fake/other", "fallback", error="circuit open", error_class="circuit_open")]
    failed = CallRecord("nokey/model", REQUEST, finish=FinishReason.ERROR, done=True,
                        error=ProviderHTTPError("nokey/model", 401, None, "unauthorized"),
                        timing=CallTiming(started_ns=0, sent_ns=0, end_ns=40 * MS))
    return [ok, cut, waited, failed]


def plain(renderable: object, width: int = 400) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(renderable)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    return str(out)


@pytest.mark.parametrize("record", records(), ids=lambda r: r.target)
def test_the_cli_pane_and_the_tui_pane_show_the_same_figures(record: CallRecord) -> None:
    line = figures.metrics_line(record).plain
    assert ui_render.metrics(record).plain == line  # the TUI's pane header
    assert line in plain(record_panel(record))  # the CLI's pane
    assert ui_render.timeline(record) == figures.timeline(record)


def test_the_pane_figures_in_order() -> None:
    ok, cut, waited, failed = records()
    assert figures.metrics_line(ok).plain == ("TTFT 300 ms  tok/s 100  time 520 ms  in/out 1,234/20  cost $0.000123  "
                                              "stop")
    assert figures.metrics_line(cut).plain == ("TTFT 150 ms  tok/s ≈100  time 12.8 s  in/out ≈1,234/≈64  cost $0.0421  "
                                               "length ⚠ hit max_tokens")
    line = figures.metrics_line(waited).plain
    assert "cost ?" in line and "waited 3200 ms (first token at 2090 ms)" in line and "breaker open" in line
    assert figures.metrics_line(failed).plain == "TTFT –  tok/s –  time 40 ms  in/out –/≈0  cost ?  error"
    assert str(figures.timeline(waited)) == ("first: 429 → waited 1000 ms (retry-after) → retry: ok → "
                                             "fallback fake/other: circuit_open")


def test_a_live_pane_counts_chunks_as_estimated_tokens() -> None:
    live = CallRecord("fake/live", REQUEST, timing=CallTiming(started_ns=0, sent_ns=0, first_content_ns=100 * MS,
                                                              chunk_ns=[100 * MS, 200 * MS, 300 * MS]))
    assert figures.metrics_line(live, now_ns=400 * MS).plain == ("TTFT 100 ms  tok/s ≈10  time 400 ms  in/out –/≈3  "
                                                                 "streaming…")
    assert ui_render.metrics(live, now_ns=400 * MS).plain == figures.metrics_line(live, now_ns=400 * MS).plain


def test_number_formats() -> None:
    assert [figures.ms(v) for v in (None, 0.4, 412.6, 9_999, 12_345)] == ["–", "0 ms", "413 ms", "9999 ms", "12.3 s"]
    assert [figures.usd(v) for v in (None, 0, Decimal("0.000123"), 0.0123, 2)] == [
        "?", "$0.000000", "$0.000123", "$0.0123", "$2.0000"]
    assert figures.tokens(1234) == "1,234" and figures.tokens(1234, exact=False) == "≈1,234"
    assert figures.rate(None) == "–" and figures.rate(41.6, approx=True) == "≈42"
    assert figures.share(None) == "–" and figures.share(0.25) == "25%"
    assert ui_render.fmt_ms is figures.ms and ui_render.fmt_usd is figures.usd


def test_the_token_table_and_the_tui_meter_show_a_cost_estimate_alike() -> None:
    row = Estimate(target="openai/gpt-4.1-mini", input_tokens=1_234, exact=False, max_tokens=2_048,
                   cost_input_usd=Decimal("0.0004936"), cost_max_usd=Decimal("0.0037704"),
                   cost_input_warm_usd=None, context_window=1_047_576, headroom_tokens=-12)
    cli = plain(estimates_table([row]))
    tui = ui_render.meter_text([{"target": row.target, "tokens": row.input_tokens, "exact": row.exact,
                                 "estimate": row}]).plain
    for shown in ("≈1,234", "$0.000494 → $0.003770", "-12"):
        assert shown in cli and shown in tui


def test_an_instant_reply_has_no_rate_in_either_face() -> None:
    instant = finished("fake/instant", FinishReason.STOP, 5, 2, 2)
    instant.timing.chunk_ns = [2 * MS + i * 20_000 for i in range(5)]  # 5 tokens within 80 µs
    assert instant.tokens_per_s is None
    line = figures.metrics_line(instant).plain
    assert "tok/s –" in line and ui_render.metrics(instant).plain == line
    assert "tok/s –" in plain(record_panel(instant))
