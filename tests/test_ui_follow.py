"""The Traces screen's follow mode (``f``): calls another process writes appear at the top while it is on."""

from __future__ import annotations

import time

from tests.test_ui import SIZE, wait_for
from tests.test_ui_snapshots import NO_KEYS, open_traces_with_records, records, screen_text
from workbench.core.request import ChatRequest
from workbench.core.traces.writer import TraceWriter
from workbench.ui.app import WorkbenchApp


def another_process_writes(path: object, target: str) -> None:
    """A call written by a writer of its own (as ``workbench proxy`` in another process would), not the app's."""
    record = records()[0]
    record.target = target
    record.request = ChatRequest.from_prompt("captured")
    record.started_at = time.time()
    writer = TraceWriter(path)  # type: ignore[arg-type]
    writer.write(record)
    writer.close()


async def test_follow_mode_puts_calls_other_processes_write_at_the_top_and_f_again_stops_it() -> None:
    app = WorkbenchApp(env=NO_KEYS, targets=["fake/demo"])
    async with app.run_test(size=SIZE) as pilot:
        traces = await open_traces_with_records(app, pilot)
        await wait_for(pilot, lambda: len(traces.rows) == 4 and traces.detail is not None)
        path = app.store().path
        await pilot.press("f")
        await wait_for(pilot, lambda: traces.follower is not None)
        assert traces.following and "following new calls" in screen_text(app)
        another_process_writes(path, "openai/captured")
        await wait_for(pilot, lambda: len(traces.rows) == 5)
        assert traces.rows[0]["target"] == "openai/captured"
        await wait_for(pilot, lambda: traces.detail is not None and traces.detail["target"] == "openai/captured")
        another_process_writes(path, "anthropic/captured")
        await wait_for(pilot, lambda: [r["target"] for r in traces.rows[:2]] == ["anthropic/captured",
                                                                                  "openai/captured"])

        await pilot.press("f")
        assert not traces.following and traces.follower is None
        assert "following new calls" not in screen_text(app)
