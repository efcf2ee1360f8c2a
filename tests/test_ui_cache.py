"""The editor keeps a loaded prompt file's cache breakpoints: its race sends them (Anthropic reads the cache the
second time), its estimate prices the Anthropic target warm, and ctrl+s writes them back. The prompt cache field
shows them and sets them: the estimate, the race and the save follow what it says."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, cast

from textual.widgets import Input

from tests.conftest import prompt_workspace
from tests.test_ui import SIZE, editor, wait_for
from tests.test_ui_more import messages
from tests.test_ui_prompts import app_in, load_listed_prompt, race_and_trace, trace_rows
from workbench.core.prompts import load_current
from workbench.core.request import CacheBreakpoints
from workbench.core.sessions import load_session_file
from workbench.core.tokens.estimate import Estimate
from workbench.ui.screens.modals import PickScreen
from workbench.ui.widgets.editor.meter import LiveMeter

POLICY = "You are a meticulous support agent for a large retailer; answer with the policy that applies and why. " * 60
"""Over Claude Sonnet 4.5's 1024-token minimum: a shorter prefix is never cached, and the estimate says so."""
SUPPORT = f"""name: support
params: {{max_tokens: 16}}
system: {POLICY.strip()}
cache:
  system: true
messages:
  - role: user
    content: My parcel arrived damaged, what now?
  - role: assistant
    content: Sorry to hear that, send a photo and we will replace it.
    cache: true
  - role: user
    content: And if I would rather have a refund?
"""


async def test_the_editor_races_estimates_and_saves_a_prompts_breakpoints(tmp_path: Path,
                                                                          fake_env: dict[str, str]) -> None:
    workspace = prompt_workspace(tmp_path, support=SUPPORT)
    target = f"fake-anthropic/ui-{uuid.uuid4().hex[:8]}@cache=1,tokens=4"
    app = app_in(workspace, fake_env, targets=(target, "anthropic/claude-sonnet-4-5"))
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await load_listed_prompt(app, pilot, "support")
        expected = CacheBreakpoints(system=True, messages=(1,))
        assert screen.build_request().cache == expected

        # the live estimate: warm below cold for the Anthropic target, since the prefix is marked
        def loaded() -> bool:  # the estimate of the prompt with its breakpoints (the text may be estimated first)
            row = screen.estimates.get("anthropic/claude-sonnet-4-5")
            return row is not None and row.input_tokens > 30 and row.cache_prefix_tokens > 0

        await wait_for(pilot, loaded)
        estimate = screen.estimates["anthropic/claude-sonnet-4-5"]
        assert estimate.cache_prefix_tokens > 0 and estimate.cost_input_warm_usd is not None
        assert estimate.cost_input_usd is not None and estimate.cost_input_warm_usd < estimate.cost_input_usd
        assert "warm $" in str(screen.query_one(LiveMeter).render())

        # two races of the same prompt: the first writes the prefix, the second reads it
        for runs in (1, 2):
            await pilot.press("ctrl+r")
            await wait_for(pilot, lambda runs=runs: len(app.traced_ids) >= 2 * runs)
        reads = [(r["cache_read_tokens"], r["cache_write_tokens"]) for r in reversed(trace_rows())
                 if r["target"] == target]
        assert len(reads) == 2 and reads[0][0] == 0 and reads[0][1] and reads[1] == (reads[0][1], 0)

        # ctrl+s after an edit keeps the breakpoints in the file
        await pilot.press("f2")
        screen.query_one("#user").load_text("My parcel arrived broken, what now?")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "saved support v2" in messages(app))
        saved = load_current(workspace, "support")
        assert saved.cache is not None and saved.cache.system and [m.cache for m in saved.messages] == [
            False, True, False]


def anthropic_estimate(screen: Any) -> Estimate | None:
    return cast("Estimate | None", screen.estimates.get("anthropic/claude-sonnet-4-5"))


async def test_the_cache_field_sets_the_breakpoints_the_estimate_race_and_save_use(tmp_path: Path,
                                                                                  fake_env: dict[str, str]) -> None:
    workspace = prompt_workspace(tmp_path, support=SUPPORT)
    target = f"fake-anthropic/ui-{uuid.uuid4().hex[:8]}@cache=1,tokens=4"
    app = app_in(workspace, fake_env, targets=(target, "anthropic/claude-sonnet-4-5"))
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        points, ttl = screen.query_one("#cache-points", Input), screen.query_one("#cache-ttl", Input)
        assert (points.value, ttl.value) == ("", "")  # a typed prompt starts with none
        await load_listed_prompt(app, pilot, "support")
        assert (points.value, ttl.value) == ("system, 2", "5m")  # the file's, its turns counted from 1

        # emptied, the field sends none and the estimate goes cold; typed, the estimate follows it
        points.value = ttl.value = ""
        await wait_for(pilot, lambda: (e := anthropic_estimate(screen)) is not None and e.input_tokens > 30
                       and e.cache_prefix_tokens == 0)
        assert screen.build_request().cache == CacheBreakpoints()
        assert "warm $" not in str(screen.query_one(LiveMeter).render())
        points.focus()
        await pilot.press(*[{" ": "space", ",": "comma"}.get(c, c) for c in "system, last"])
        ttl.focus()
        await pilot.press("1", "h")
        assert (points.value, ttl.value) == ("system, last", "1h")
        assert screen.build_request().cache == CacheBreakpoints(system=True, messages=(2,), ttl="1h")
        await wait_for(pilot, lambda: (e := anthropic_estimate(screen)) is not None and e.cache_prefix_tokens > 30)
        estimate = anthropic_estimate(screen)
        assert estimate is not None and estimate.cost_input_warm_usd is not None
        assert estimate.cost_input_usd is not None and estimate.cost_input_warm_usd < estimate.cost_input_usd
        assert "warm $" in str(screen.query_one(LiveMeter).render())

        # two races: the first writes the whole prompt's prefix, the second reads it
        for runs in (1, 2):
            await pilot.press("ctrl+r")
            await wait_for(pilot, lambda runs=runs: len(app.traced_ids) >= 2 * runs)
        reads = [(r["cache_read_tokens"], r["cache_write_tokens"]) for r in reversed(trace_rows())
                 if r["target"] == target]
        assert len(reads) == 2 and reads[0][0] == 0 and reads[0][1] and reads[1] == (reads[0][1], 0)

        # ctrl+s writes the field's breakpoints in place of the file's
        await pilot.press("f2")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "saved support v2" in messages(app))
        saved = load_current(workspace, "support")
        assert saved.cache is not None and saved.cache.system and not saved.cache.tools
        assert saved.cache.ttl == "1h" and [m.cache for m in saved.messages] == [False, False, True]

        # a breakpoint after a turn that is not there: one line, and no race
        points.value = "7"
        race = app.race
        await pilot.press("ctrl+r")
        assert "cache breakpoint 7: the request has 3 messages" in "\n".join(messages(app))
        assert app.screen is screen and app.race is race
        await wait_for(pilot, lambda: (e := anthropic_estimate(screen)) is not None and e.cache_prefix_tokens == 0)
        points.value, ttl.value = "system", "2h"  # nor a TTL Anthropic does not take
        await pilot.press("ctrl+r")
        assert "cache ttl 2h: not 5m or 1h" in "\n".join(messages(app)) and app.race is race


async def test_a_session_keeps_the_cache_fields(tmp_path: Path, fake_env: dict[str, str]) -> None:
    workspace = prompt_workspace(tmp_path)
    app = app_in(workspace, fake_env)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await wait_for(pilot, lambda: app.screen is screen and screen.ready)
        screen.query_one("#system").load_text("Be brief.")
        screen.query_one("#user").load_text("What is SSE?")
        points, ttl = screen.query_one("#cache-points", Input), screen.query_one("#cache-ttl", Input)
        points.value, ttl.value = "system, last", "1h"
        await race_and_trace(app, pilot, 1)
        race = app.get_screen("race")
        await wait_for(pilot, lambda: app.screen is race and race.panes and all(p.finished for p in race.panes))
        await pilot.press("s")
        await wait_for(pilot, lambda: app.screen.query("#name"))
        app.screen.query_one("#name", Input).value = "cached"
        await pilot.press("enter")
        await wait_for(pilot, lambda: "saved session sessions/cached.yaml" in messages(app))
        saved = load_session_file(workspace / "sessions" / "cached.yaml").request
        assert saved.cache is not None and (saved.cache.system, saved.cache.ttl) == (True, "1h")
        assert [m.cache for m in saved.messages] == [True]

        # opened again over other fields, the session's breakpoints fill them
        await pilot.press("f2")
        points.value = ttl.value = ""
        app.open_session()
        await wait_for(pilot, lambda: isinstance(app.screen, PickScreen))
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.session is not None and app.screen is screen)
        assert (points.value, ttl.value) == ("system, 1", "1h")
        assert screen.build_request().cache == CacheBreakpoints(system=True, messages=(0,), ttl="1h")
