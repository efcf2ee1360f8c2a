"""`traces stats` percentiles: exact from the calls for small groups, approximate (histograms) only for large
ones, never outside the values observed, and labelled approximate in --json and in the table."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from tests.test_cli import json_lines, workbench
from workbench.core.call_record import CallRecord
from workbench.core.request import ChatRequest
from workbench.core.traces.context import CallContext
from workbench.core.traces.filters import Filters
from workbench.core.traces.stats import EXACT_UP_TO
from workbench.core.traces.store import TraceStore
from workbench.core.traces.writer import TraceWriter

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def call(target: str, ttft_ms: float, latency_ms: float, at: float) -> CallRecord:
    record = CallRecord(target, ChatRequest.from_prompt("hello"))
    record.started_at = at
    record.timing.started_ns = record.timing.sent_ns = 0
    record.timing.first_content_ns = round(ttft_ms * 1e6)
    record.timing.end_ns = round(latency_ms * 1e6)
    return record


def write(path: Path, records: list[CallRecord], context: CallContext | None = None) -> None:
    writer = TraceWriter(path)
    for record in records:
        writer.write(record, context or CallContext())
    writer.close()


def inclusive(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def test_small_groups_get_exact_percentiles(tmp_path: Path) -> None:
    """Two calls at 668.5 and 669.4 ms used to report 662 ms for both percentiles (the histogram bucket's
    middle, below either), one call at 502 ms 494 ms."""
    path = tmp_path / "s.db"
    write(path, [call("fake/pair", 300.0, 668.5, START + 10), call("fake/pair", 301.0, 669.4, START + 20),
                 call("fake/one", 250.0, 502.0, START + 30)], CallContext(tags=("t",)))
    store = TraceStore(path)
    for by, filters in (("model", Filters()), ("provider", Filters(model="fake/pair")), ("day", Filters()),
                        ("status", Filters()), ("tag", Filters()), ("prompt", Filters()),
                        ("model", Filters(since=START + 5, until=START + 25)), ("day", Filters(tag="t"))):
        rows = {row[by]: row for row in store.stats(by, filters)}
        assert rows, (by, filters)
        for row in rows.values():
            assert row["percentiles_approximate"] is False, (by, filters)
    by_model = {row["model"]: row for row in store.stats("model")}
    pair, one = by_model["fake/pair"], by_model["fake/one"]
    assert pair["latency_p50_ms"] == inclusive([668.5, 669.4], 0.5)
    assert pair["latency_p95_ms"] == inclusive([668.5, 669.4], 0.95)
    assert pair["ttft_p50_ms"] == 300.5
    assert one["latency_p50_ms"] == one["latency_p95_ms"] == 502.0 and one["ttft_p95_ms"] == 250.0
    assert store.stats("day") == [{**row, "day": "2026-01-01"} for row in store.exact_stats("day")]

    shown = json_lines(workbench("traces", "--db", str(path), "stats", "--json").stdout)
    assert {row["model"]: (row["latency_p50_ms"], row["percentiles_approximate"]) for row in shown} == {
        "fake/one": (502.0, False), "fake/pair": (668.95, False)}
    table = workbench("traces", "--db", str(path), "stats")
    assert table.returncode == 0 and "≈" not in table.stdout and "669 ms" in table.stdout


def test_large_groups_are_approximate_clamped_and_labelled(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    count = EXACT_UP_TO + 200
    latencies = [668.5 + 0.9 * i / (count - 1) for i in range(count)]  # all within one histogram bucket
    write(path, [call("fake/busy", 100.0 + i % 3, latency, START + i) for i, latency in enumerate(latencies)]
          + [call("fake/quiet", 40.0, 90.0, START + 5)])
    store = TraceStore(path)
    rows = {row["model"]: row for row in store.stats("model")}
    busy, quiet = rows["fake/busy"], rows["fake/quiet"]
    assert busy["calls"] == count and busy["percentiles_approximate"] is True
    for key in ("latency_p50_ms", "latency_p95_ms"):
        assert 668.5 <= busy[key] <= 669.4, (key, busy[key])  # clamped to what was observed
    for key in ("ttft_p50_ms", "ttft_p95_ms"):
        assert 100.0 <= busy[key] <= 102.0, (key, busy[key])
    assert quiet["percentiles_approximate"] is False and quiet["latency_p50_ms"] == 90.0
    exact = {row["model"]: row for row in store.exact_stats("model")}
    assert exact["fake/busy"]["percentiles_approximate"] is False
    assert abs(busy["latency_p50_ms"] - exact["fake/busy"]["latency_p50_ms"]) <= 1.0

    shown = {row["model"]: row for row in json_lines(workbench("traces", "--db", str(path), "stats", "--json").stdout)}
    assert shown["fake/busy"]["percentiles_approximate"] is True
    assert json.loads(json.dumps(shown["fake/quiet"]))["percentiles_approximate"] is False
    table = workbench("traces", "--db", str(path), "stats").stdout
    busy_line = next(line for line in table.splitlines() if "fake/busy" in line)
    quiet_line = next(line for line in table.splitlines() if "fake/quiet" in line)
    assert "≈" in busy_line and "≈" not in quiet_line
    assert "approximate" in table  # the mark is explained under the table


def test_calls_without_a_prompt_are_a_group_of_their_own(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    write(path, [call("fake/a", 100.0, 200.0, START + 10)], CallContext(prompt_name="greet", prompt_version=2))
    write(path, [call("fake/a", 100.0, 200.0, START + 20)])
    for by in ("prompt", "prompt-version"):
        table = workbench("traces", "--db", str(path), "stats", "--by", by)
        assert table.returncode == 0, table.stderr
        labels = [line.split()[0] for line in table.stdout.splitlines()[2:]]
        assert labels == ["(no", "greet@2" if by == "prompt-version" else "greet"], table.stdout
        assert "(no prompt)" in table.stdout and "None" not in table.stdout
        shown = json_lines(workbench("traces", "--db", str(path), "stats", "--by", by, "--json").stdout)
        assert None in [row[by] for row in shown]
