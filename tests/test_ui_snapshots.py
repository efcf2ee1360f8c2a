"""Text snapshots of each screen at 140×40 (the editor, race and evals screens at 80×24 and 160×45 too) with
deterministic content.

A snapshot is the screen's rendered text (no colours), kept under ``tests/__snapshots__/test_ui/``.
A missing snapshot is written (and the test fails so it gets reviewed); refresh them on purpose with
``UPDATE_UI_SNAPSHOTS=1 pytest tests/test_ui_snapshots.py``.
"""

from __future__ import annotations

import html
import os
import re
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len

from tests.test_ui import SIZE, wait_for
from workbench.core.call_record import Attempt, CallRecord
from workbench.core.errors import ProviderHTTPError
from workbench.core.events import FinishReason, Usage
from workbench.core.registry import PROVIDERS
from workbench.core.request import ChatRequest, Params
from workbench.core.timing import CallTiming
from workbench.ui.app import WorkbenchApp

SNAPSHOTS = Path(__file__).parent / "__snapshots__" / "test_ui"
SIZES = [SIZE, (80, 24), (160, 45)]
"""The editor, race and evals screens are kept at the usual size, a small terminal and a large one."""
NO_KEYS = {var: "" for spec in PROVIDERS.values() for var in spec.key_env}
MS = 1_000_000


SVG_TEXT = re.compile(r'<text [^>]*?x="([\d.]+)"[^>]*?textLength="([\d.]+)"[^>]*?clip-path="url\(#[^)]*-line-(\d+)\)"'
                      r"[^>]*>([^<]*)</text>")


def screen_text(app: WorkbenchApp) -> str:
    """The screen's text, one line per row, right-stripped: read from Textual's public screenshot (an SVG of
    rich's: each run of text is a ``<text>`` at ``x`` = column × character width, clipped to its row)."""
    rows: dict[int, list[tuple[int, str]]] = {}
    for x, length, row, escaped in SVG_TEXT.findall(app.export_screenshot()):
        text = html.unescape(escaped).replace("\xa0", " ")
        column = round(float(x) / (float(length) / len(text)))
        rows.setdefault(int(row), []).append((column, text))
    lines = []
    for row in range(app.size.height):
        line, at = "", 0
        for column, text in sorted(rows.get(row, [])):
            line += " " * (column - at) + text
            at = column + cell_len(text)
        lines.append(line.rstrip())
    return "\n".join(lines) + "\n"


async def check(pilot: Any, name: str, mask: Callable[[str], str] = lambda text: text) -> None:
    """Compare the screen with snapshot ``name`` once it has settled.

    A busy machine can catch a frame mid-layout (a table's rows drawn before its column widths are
    measured), so the screen is read again until it matches, within a bound; a screen that never
    matches fails with the last frame. A new or refreshed snapshot is written once two reads agree.
    """
    path = SNAPSHOTS / f"{name}.txt"
    update = bool(os.environ.get("UPDATE_UI_SNAPSHOTS"))
    expected = None if update or not path.exists() else path.read_text(encoding="utf-8")
    text = previous = None
    for _ in range(200):
        text = mask(screen_text(pilot.app))
        if text == (previous if expected is None else expected):
            break
        previous = text
        await pilot.pause(0.05)
    assert text is not None
    if expected is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        if not update:
            pytest.fail(f"new snapshot written: {path} (review it, then run again)")
        return
    assert text == expected, f"{name} changed; if on purpose: UPDATE_UI_SNAPSHOTS=1 pytest {__file__}"


def snapshot_name(screen: str, size: tuple[int, int]) -> str:
    """``editor`` at the usual size, ``editor-80x24`` at another."""
    return screen if size == SIZE else f"{screen}-{size[0]}x{size[1]}"


@pytest.fixture(autouse=True)
def _utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


def no_blink(app: WorkbenchApp) -> None:
    for widget in app.screen.query("TextArea, Input"):
        widget.cursor_blink = False  # type: ignore[attr-defined]


async def open_traces_with_records(app: WorkbenchApp, pilot: Any) -> Any:
    """Trace :func:`records` through the app's writer, then open the Traces screen."""
    writer = app.writer()
    for record in records():
        writer.write(record)
    writer.flush()
    await pilot.press("f4")
    return app.get_screen("traces")


def records() -> list[CallRecord]:
    request = ChatRequest.from_prompt("Explain SSE in one paragraph.", params=Params(max_tokens=64))

    def record(target: str, text: str, finish: FinishReason, out: int, ttft: int, total: int,
               started_at: float) -> CallRecord:
        chunks = [ttft * MS + i * 10 * MS for i in range(out)]
        rec = CallRecord(target, request, text_parts=[text], usage=Usage(input_tokens=17, output_tokens=out),
                         finish=finish, timing=CallTiming(started_ns=0, sent_ns=0, first_content_ns=ttft * MS,
                                                          first_text_ns=ttft * MS, end_ns=total * MS,
                                                          chunk_ns=chunks),
                         done=True, started_at=started_at, cost_usd=Decimal("0.000123"))
        rec.attempts = [Attempt(target, "first", latency_ms=float(total), ttft_ms=float(ttft))]
        return rec

    ok = record("fake/demo", "**Server-Sent Events** stream text over one HTTP response.\n\n- simple\n- one-way",
                FinishReason.STOP, 20, 300, 520, 1_767_225_600.0)
    cut = record("fake-anthropic/demo", "SSE keeps a response open and", FinishReason.LENGTH, 64, 150, 800,
                 1_767_225_601.0)
    retried = record("fake/x", "A retried answer.", FinishReason.STOP, 4, 90, 1200, 1_767_225_602.0)
    retried.attempts = [Attempt("fake/x", "first", status=429, error="429 Too Many Requests", error_class="http_429"),
                        Attempt("fake/x", "retry", wait_ms=1000.0, wait_reason="retry-after", ttft_ms=90.0,
                                latency_ms=200.0)]
    failed = CallRecord("nokey/model", request, finish=FinishReason.ERROR, done=True,
                        error=ProviderHTTPError("nokey/model", 401, None, "unauthorized"),
                        timing=CallTiming(started_ns=0, sent_ns=0, end_ns=40 * MS), started_at=1_767_225_603.0)
    return [ok, cut, retried, failed]


class FinishedRace:
    def __init__(self) -> None:
        self.records = records()
        self.done = True


@pytest.mark.parametrize("size", SIZES)
async def test_editor_snapshot(size: tuple[int, int]) -> None:
    app = WorkbenchApp(env=NO_KEYS, targets=["openai/gpt-4.1-mini", "fake/demo"])
    async with app.run_test(size=size) as pilot:
        screen = app.get_screen("editor")
        await wait_for(pilot, lambda: app.screen is screen and screen.meters)
        screen.query_one("#system").load_text("You are terse.")
        screen.query_one("#user").load_text("Explain SSE in one paragraph.")
        screen.query_one("#max-tokens").value = "256"
        await wait_for(pilot, lambda: (screen.meter_rows()[0]["tokens"] or 0) > 10
                       and screen.estimates.get("openai/gpt-4.1-mini") is not None
                       and screen.estimates["openai/gpt-4.1-mini"].max_tokens == 256)
        no_blink(app)
        await check(pilot, snapshot_name("editor", size))


@pytest.mark.parametrize("size", SIZES)
async def test_race_snapshot(size: tuple[int, int]) -> None:
    app = WorkbenchApp(env=NO_KEYS, targets=["fake/demo"])
    async with app.run_test(size=size) as pilot:
        app.race = FinishedRace()  # type: ignore[assignment]
        await pilot.press("f3")
        race = app.get_screen("race")
        await wait_for(pilot, lambda: len(race.panes) == 4 and all(p.finished for p in race.panes))
        await check(pilot, snapshot_name("race", size))


async def test_traces_snapshot() -> None:
    app = WorkbenchApp(env=NO_KEYS, targets=["fake/demo"])
    async with app.run_test(size=SIZE) as pilot:
        traces = await open_traces_with_records(app, pilot)
        await wait_for(pilot, lambda: len(traces.rows) == 4 and traces.detail is not None)
        await wait_for(pilot, lambda: traces.detail["id"] == traces.rows[0]["id"])
        no_blink(app)

        def mask(text: str) -> str:  # ids are random (ULIDs)
            for row in traces.rows:
                text = text.replace(row["id"], "<id>".ljust(len(row["id"])))
            return text

        await check(pilot, "traces", mask)


async def test_keys_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    import workbench.ui.targets as targets_module

    monkeypatch.setattr(targets_module, "discover_targets", lambda env, providers: [])  # no local servers
    app = WorkbenchApp(env=NO_KEYS, targets=["fake/demo"])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f5")
        keys = app.get_screen("keys")
        await wait_for(pilot, lambda: app.screen is keys and keys.statuses and keys.models is not None)
        no_blink(app)
        await check(pilot, "keys")
