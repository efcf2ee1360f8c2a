"""Promoting a race pane whose reply only called tools: the form offers ``tool-call-f1`` on the names called, the
new suite's targets carry the race's tools, and the suite it writes passes when run."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import prompt_workspace
from tests.test_cli import json_lines, workbench
from tests.test_ui import SIZE, wait_for
from tests.test_ui_more import messages
from tests.test_ui_prompts import app_in
from workbench.core.evals.suite import load_suite
from workbench.core.request import ChatRequest, Params
from workbench.ui.messages import RaceRequested
from workbench.ui.races import RaceSource
from workbench.ui.screens.modals import PromoteScreen

TOOLS = ({"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},)
TARGET = "fake/a@tools=2"


async def test_a_tool_call_reply_is_promoted_with_a_tool_assertion(tmp_path: Path, fake_env: dict[str, str]) -> None:
    app = app_in(prompt_workspace(tmp_path), fake_env, targets=(TARGET,))
    async with app.run_test(size=SIZE) as pilot:
        request = ChatRequest.from_prompt("Weather in Paris?", params=Params(max_tokens=100, tools=TOOLS))
        app.post_message(RaceRequested(request, [TARGET], RaceSource()))
        race = app.get_screen("race")
        await wait_for(pilot, lambda: app.screen is race and race.panes and race.panes[0].finished)
        await wait_for(pilot, lambda: app.last_run is not None and app.last_run.race.done)
        assert race.panes[0].body_text == "" and len(race.panes[0].record.tool_calls) == 2

        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, PromoteScreen))
        form = app.screen
        assert form.query_one("#kind").value == "tool-call-f1"
        assert form.query_one("#value").value == "get_weather"
        form.query_one("#description").value = "weather"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: any("written to evals/" in m for m in messages(app)))

    (path,) = (tmp_path / "evals").glob("*.yaml")
    suite = load_suite(path, tmp_path)
    (target,) = suite.targets
    assert target.params["tools"] == TOOLS
    (test,) = suite.tests
    assert [(a.type, a.value) for a in test.assertions] == [("tool-call-f1", ["get_weather"])]
    result = workbench("eval", str(path), "--json", "--no-cache", cwd=tmp_path, env=fake_env)
    assert result.returncode == 0, result.stderr
    assert json_lines(result.stdout)[-1]["passes"] == 1
