"""A race pane shows the reasoning dimmed while it streams, then folded in a collapsible part above the answer."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Collapsible, Input

from tests.conftest import prompt_workspace
from tests.test_ui import SIZE, editor, wait_for
from tests.test_ui_more import messages
from tests.test_ui_prompts import app_in, load_listed_prompt, race_and_trace
from tests.test_ui_snapshots import screen_text
from workbench.core.prompts import load_current
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


THINK = """\
name: think
targets: ["fake-anthropic/demo@reasoning=6,tokens=4"]
params: {max_tokens: 64, reasoning_effort: none}
messages:
  - role: user
    content: Explain SSE
"""


async def test_the_editor_loads_races_and_saves_the_reasoning_fields(tmp_path: Path,
                                                                     fake_env: dict[str, str]) -> None:
    workspace = prompt_workspace(tmp_path, think=THINK)
    app = app_in(workspace, fake_env, targets=None)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await load_listed_prompt(app, pilot, "think")
        effort, budget = screen.query_one("#reasoning-effort", Input), screen.query_one("#thinking-budget", Input)
        assert (effort.value, budget.value) == ("none", "")
        await race_and_trace(app, pilot, 1)  # reasoning turned off: the fake server streams none
        assert app.last_run is not None and app.last_run.request.params.reasoning_effort == "none"
        race = app.get_screen("race")
        await wait_for(pilot, lambda: race.panes and race.panes[0].finished)
        assert race.panes[0].record.reasoning == "" and race.panes[0].record.text
        await pilot.press("f2")
        effort.value, budget.value = "", "2048"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "saved think v2" in messages(app))
        saved = load_current(workspace, "think").params
        assert (saved.reasoning_effort, saved.thinking_budget) == (None, 2048)
        effort.value = "extreme"
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: any("invalid parameter" in m and "reasoning_effort" in m for m in messages(app)))
