"""A race pane ends on the record's settled numbers (estimated usage, cost): the same ones the CLI prints and the
trace log stores, not the live figures it had when its stream ended."""

from __future__ import annotations

from tests.test_ui import SIZE, type_prompt, wait_for
from workbench.fakeserver.process import FakeServerProcess
from workbench.ui.app import WorkbenchApp
from workbench.ui.render import metrics


async def test_finished_panes_show_their_settled_usage_and_cost(fake_server: FakeServerProcess) -> None:
    env = {"WORKBENCH_FAKE_URL": fake_server.base_url, "OPENAI_BASE_URL": f"{fake_server.base_url}/v1",
           "OPENAI_API_KEY": "test"}
    targets = ["openai/gpt-4.1-mini@tokens=5", "fake-ollama/x@tokens=40,usage=0"]
    app = WorkbenchApp(env=env, targets=targets)
    async with app.run_test(size=SIZE) as pilot:
        await type_prompt(pilot, "Explain SSE")
        await pilot.press("ctrl+r")
        race = app.get_screen("race")
        await wait_for(pilot, lambda: app.screen is race and len(race.panes) == 2)
        await wait_for(pilot, lambda: all(p.settled for p in race.panes))
        priced, estimated = race.panes
        assert priced.record.cost_usd is not None and priced.record.cost_usd > 0
        assert estimated.record.usage_estimated and estimated.record.usage is not None
        for pane in race.panes:
            assert pane.header_text == metrics(pane.record).plain  # what the record says now, not before settling
        assert f"≈{estimated.record.usage.output_tokens}" in estimated.header_text


async def test_a_call_is_traced_as_soon_as_it_ends_while_the_race_still_runs(fake_env: dict[str, str]) -> None:
    targets = ["fake/quick@tokens=3", "fake/slow@tokens=400,tps=20"]
    app = WorkbenchApp(env=fake_env, targets=targets)
    async with app.run_test(size=SIZE) as pilot:
        await type_prompt(pilot, "Explain SSE")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.race is not None and app.race.records[0].settled)
        writer = app.writer()
        writer.flush()  # committed: a crash from here on keeps it
        rows = list(app.store().page(limit=10))
        assert [(r["target"], r["status"]) for r in rows] == [(targets[0], "ok")]
        assert not app.race.done  # the slow call still streams
        app.race.cancel()
