"""The editor's layout at a small and a large terminal (Pilot): the live meter stays in sight while typing, the
text areas keep room to type in, every focus stop is a visible field, and the footer shows the screens' keys."""

from __future__ import annotations

from typing import Any

import pytest
from textual.geometry import Region
from textual.widget import Widget
from textual.widgets import Input, OptionList, TextArea

from tests.test_ui import editor, wait_for
from tests.test_ui_snapshots import NO_KEYS, screen_text
from workbench.ui.app import WorkbenchApp

SIZES = [(80, 24), (160, 45)]
TARGETS = ["openai/gpt-4.1-mini", "fake/demo"]


def on_screen(app: WorkbenchApp, widget: Widget) -> bool:
    """Whether the widget is drawn whole within the screen, above the footer."""
    width, height = app.size
    region = widget.region
    return region.area > 0 and Region(0, 0, width, height - 1).contains_region(region)


async def typed_with_variables(app: WorkbenchApp, pilot: Any) -> Any:
    screen = editor(app)
    await wait_for(pilot, lambda: app.screen is screen and screen.meters)
    screen.query_one("#system").load_text("You answer customers of {{company}}.")
    screen.query_one("#user").focus()
    await pilot.press(*[("space" if c == " " else c) for c in "Hello {{name}}, about my bill"])
    await wait_for(pilot, lambda: {"company", "name"} <= set(screen.variable_inputs)
                   and (screen.meter_rows()[0]["tokens"] or 0) > 10)
    return screen


@pytest.mark.parametrize("size", SIZES)
async def test_the_meter_stays_in_sight_while_typing(size: tuple[int, int]) -> None:
    app = WorkbenchApp(env=NO_KEYS, targets=TARGETS)
    async with app.run_test(size=size) as pilot:
        screen = await typed_with_variables(app, pilot)
        meter = screen.query_one("#meter")
        await pilot.pause()
        assert app.focused is screen.query_one("#user")
        assert on_screen(app, meter) and on_screen(app, screen.query_one("#user"))
        shown = screen_text(app)
        assert all(target in shown for target in TARGETS) and "headroom" in shown
        # typing on into a variable's field: the meter is still there
        screen.variable_inputs["name"].focus()
        await pilot.press("A", "d", "a")
        await pilot.pause()
        assert on_screen(app, meter) and on_screen(app, screen.variable_inputs["name"])


@pytest.mark.parametrize("size", SIZES)
async def test_every_focus_stop_is_a_visible_field(size: tuple[int, int]) -> None:
    app = WorkbenchApp(env=NO_KEYS, targets=TARGETS)
    async with app.run_test(size=size) as pilot:
        screen = await typed_with_variables(app, pilot)
        chain = screen.focus_chain
        assert all(isinstance(w, (Input, TextArea, OptionList)) for w in chain), [type(w).__name__ for w in chain]
        seen = []
        for _ in chain:
            await pilot.press("tab")
            await pilot.pause()
            focused = app.focused
            assert focused is not None and isinstance(focused, (Input, TextArea, OptionList))
            assert on_screen(app, focused), f"{focused.id} has the focus out of sight ({focused.region})"
            seen.append(focused.id)
        assert seen[0] == "targets" and seen[-1] == "user"  # from the message, tab goes straight to Targets


async def test_small_terminal_keeps_room_to_type_and_the_screens_keys() -> None:
    app = WorkbenchApp(env=NO_KEYS, targets=TARGETS)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await typed_with_variables(app, pilot)
        for area in ("#system", "#user", "#json-schema"):
            assert screen.query_one(area).region.width >= 30, area
        footer = screen_text(app).splitlines()[-1]
        for key in ("f1 Help", "f2 Editor", "f3 Race", "f4 Traces", "f5 Keys", "f6 Evals"):
            assert key in footer, footer
