"""The TUI's widgets and messages on their own: the prompt area (edits as ranges, its text kept per version,
placeholders), the live meter following an edit in the same frame, and a finished race traced through
messages (no polling)."""

from __future__ import annotations

from collections.abc import Callable

from textual.app import App, ComposeResult

from tests.test_ui import SIZE, editor, wait_for
from tests.test_ui_snapshots import NO_KEYS, records
from workbench.core.request import ChatRequest
from workbench.ui.app import WorkbenchApp
from workbench.ui.races import RaceRun
from workbench.ui.widgets.editor.prompt_area import PromptArea


class AreaApp(App[None]):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.seen: list[PromptArea] = []
        self.area = PromptArea(text, on_edit=self.seen.append)

    def compose(self) -> ComposeResult:
        yield self.area


async def test_prompt_area_records_edits_and_keeps_its_text_per_version() -> None:
    app = AreaApp("ab\ncd {{x}} e")
    async with app.run_test(size=(60, 10)) as pilot:
        area = app.area
        assert area.text == "ab\ncd {{x}} e" and area.length == len(area.text)
        assert area.take_replaced() is False  # the constructor's text is no replacement
        area.move_cursor((1, 2))
        area.insert("Z")
        assert app.seen == [area]  # told at once, inside the edit
        assert area.text == "ab\ncdZ {{x}} e" and area.take_edits() == [(5, 5, "Z")]
        area.replace("Q", (0, 0), (1, 0))  # across lines: offsets in the text before the edit
        assert area.take_edits() == [(0, 3, "Q")] and area.text == "QcdZ {{x}} e"
        assert area.take_edits() == [] and not area.take_replaced()
        area.undo()
        assert area.text == "ab\ncdZ {{x}} e" and area.take_replaced() and area.take_edits() == []
        area.redo()
        assert area.text == "QcdZ {{x}} e" and area.take_replaced()
        area.load_text("{{a}} and {{ b }}\nnone")
        assert area.text == "{{a}} and {{ b }}\nnone" and area.take_replaced()
        assert area.length == len(area.text)
        # placeholders: found on the line, drawn in the component style
        assert area.variable_spans(0) == [(0, 5), (10, 17)] and area.variable_spans(1) == []
        style = area.get_component_rich_style("prompt-area--variable")
        line = area.get_line(0)
        assert [(s.start, s.end, s.style) for s in line.spans] == [(0, 5, style), (10, 17, style)]
        await pilot.pause()


async def test_the_meter_follows_an_edit_before_the_frame_is_drawn() -> None:
    from workbench.core.tokens.encodings import count_chat

    app = WorkbenchApp(env=NO_KEYS, targets=["openai/gpt-4.1-mini"])
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await wait_for(pilot, lambda: app.screen is screen and screen.meters)
        area = screen.turns.area("user")
        area.insert("hello there")  # no await: the meter must already show it
        expected = count_chat(ChatRequest.from_prompt("hello there"), "o200k_base")
        assert screen.meter.rows()[0]["tokens"] == expected
        assert f"in {expected}" in str(screen.meter.render())


async def test_a_finished_race_is_traced_and_the_traces_screen_follows() -> None:
    class Finished:
        def __init__(self) -> None:
            self.records, self.done = records(), True

        def add_done_callback(self, callback: Callable[[], None]) -> None:
            callback()

    app = WorkbenchApp(env=NO_KEYS, targets=["fake/demo"])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        traces = app.get_screen("traces")
        await wait_for(pilot, lambda: app.screen is traces)
        run = RaceRun(Finished(), ChatRequest.from_prompt("hi"), ["fake/demo"], None, {}, None)  # type: ignore[arg-type]
        app.follow(run)  # RaceFinished → traced → TracesWritten → the app's `traced` → the screen reloads
        await wait_for(pilot, lambda: app.traced == 4 and len(traces.rows) == 4)
        assert sorted(app.traced_ids) == sorted(run.trace_ids) and app.race is run.race
        assert app.trace(run) == []  # once
