"""A race pane shows the reasoning dimmed while it streams, then folded in a collapsible part above the answer."""

from __future__ import annotations

from textual.widgets import Collapsible

from tests.test_ui import SIZE, editor, wait_for
from tests.test_ui_snapshots import screen_text
from workbench.fakeserver import expected_reasoning
from workbench.ui.app import WorkbenchApp

MODEL = "demo@reasoning=6,tokens=4"


async def test_the_reasoning_is_folded_above_the_answer(fake_env: dict[str, str]) -> None:
    app = WorkbenchApp(env=fake_env, targets=[f"fake-anthropic/{MODEL}"])
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await wait_for(pilot, lambda: app.screen is screen and screen.is_mounted)
        screen.query_one("#user").load_text("Explain SSE")
        await pilot.press("ctrl+r")
        race = app.get_screen("race")
        await wait_for(pilot, lambda: app.screen is race and race.panes)
        pane = race.panes[0]
        await wait_for(pilot, lambda: pane.finished and pane.query(".body") and not pane.query(".stream"))
        fold = pane.query_one(".reasoning", Collapsible)
        reasoning = expected_reasoning(MODEL, "Explain SSE", 6)
        assert pane.record.reasoning == reasoning and fold.collapsed
        await pilot.pause()
        shown = screen_text(app)
        assert "reasoning (6 words)" in shown and reasoning not in shown and pane.body_text in shown
        fold.collapsed = False
        await wait_for(pilot, lambda: reasoning in screen_text(app))
        text = screen_text(app)
        assert text.index(reasoning) < text.index(pane.body_text)  # above the answer
