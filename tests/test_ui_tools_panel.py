"""The editor's Tools panel and the whole tool loop in the TUI: a tool defined in the panel (checked as it is
typed, a race refused while it is wrong, counted by the live meter), two targets raced, their tool calls shown
and answered, the race run again to the final text replies, the session saved, and a reply promoted to a test
with a tool assertion; a prompt file's tools loaded into the panel and saved back from it."""

from __future__ import annotations

import json
from pathlib import Path

from textual.widgets import Input, Static, TextArea

from tests.conftest import prompt_workspace
from tests.test_cli import json_lines, workbench
from tests.test_ui import SIZE, editor, type_prompt, wait_for
from tests.test_ui_more import messages
from tests.test_ui_prompts import app_in, load_listed_prompt
from workbench.core.evals.suite import load_suite
from workbench.core.prompts import load_current
from workbench.core.sessions import load_session_file
from workbench.ui.screens.modals import NameScreen, PickScreen, PromoteScreen, ToolResultsScreen

TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather of a city", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
TOOL_YAML = """\
- type: function
  function:
    name: get_weather
    description: Weather of a city
    parameters:
      type: object
      properties:
        city: {type: string}
      required: [city]
"""
TARGETS = "fake/a@tools=1, fake-anthropic/b@tools=1"


async def test_define_a_tool_race_answer_rerun_save_and_promote(tmp_path: Path, fake_env: dict[str, str]) -> None:
    app = app_in(prompt_workspace(tmp_path), fake_env, targets=None)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await type_prompt(pilot, "Weather in Paris?")
        screen.query_one("#targets", Input).value = TARGETS
        await wait_for(pilot, lambda: len(screen.estimates) == 2)
        before = {t: e.input_tokens for t, e in screen.estimates.items()}

        tools = screen.query_one("#tools", TextArea)
        error = screen.query_one("#tools-error", Static)
        tools.focus()
        tools.insert("- type: function\n  function: {name: get weather}\n")  # a name with a space
        await wait_for(pilot, lambda: error.display)
        assert str(error.render()).startswith("tools:2: tool 1: its name must be 1-64 letters")
        await pilot.press("ctrl+r")  # refused while the tools are wrong
        await wait_for(pilot, lambda: any("its name must be" in m for m in messages(app)))
        assert app.last_run is None and app.screen is screen

        tools.load_text("")
        tools.insert(TOOL_YAML)  # the tool, defined in YAML
        screen.query_one("#tool-choice", Input).value = "get_weather"
        await wait_for(pilot, lambda: not error.display)
        await wait_for(pilot, lambda: all(e.input_tokens > before[t] for t, e in screen.estimates.items()))
        assert all(not e.exact for e in screen.estimates.values())  # the tools are counted, roughly

        await pilot.press("ctrl+r")
        race = app.get_screen("race")
        await wait_for(pilot, lambda: app.screen is race and len(race.panes) == 2)
        await wait_for(pilot, lambda: app.last_run is not None and app.last_run.race.done
                       and all(p.finished and p.query(".tool-call") for p in race.panes))
        sent = app.last_run.request  # type: ignore[union-attr]
        assert sent.params.tools == (TOOL,) and sent.params.tool_choice == "get_weather"
        for pane in race.panes:  # both wires' tool calls, shown in their panes
            (call,) = pane.record.tool_calls
            assert call.name == "get_weather" and "city" in json.loads(call.arguments)
            assert pane.record.finish is not None and pane.record.finish.value == "tool_calls"
            assert str(pane.query_one(".tool-call", Static).render()).startswith("→ get_weather(")

        race.panes[1].focus()  # promote the Anthropic pane's tool-call reply with a tool assertion
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, PromoteScreen))
        form = app.screen
        assert form.query_one("#kind").value == "tool-call-f1" and form.query_one("#value").value == "get_weather"
        form.query_one("#description", Input).value = "calls the weather tool"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: any("written to evals/" in m for m in messages(app)))
        await wait_for(pilot, lambda: app.screen is race)

        race.panes[0].focus()
        asked = app.race
        await pilot.press("t")  # the first pane's call: its result, then the race runs again
        await wait_for(pilot, lambda: isinstance(app.screen, ToolResultsScreen))
        (field,) = app.screen.query(Input)
        field.value = '{"temp": 18, "sky": "clear"}'
        field.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.race is not asked and app.race is not None and app.race.done)
        await wait_for(pilot, lambda: len(race.panes) == 2 and all(p.finished for p in race.panes))
        again = app.last_run.request  # type: ignore[union-attr]
        assert [m.role for m in again.messages] == ["user", "assistant", "tool"]
        assert again.messages[2].content == '{"temp": 18, "sky": "clear"}' and again.params.tools == (TOOL,)
        for pane in race.panes:  # the final replies: text, no more calls
            assert pane.record.error is None and pane.record.text and pane.record.tool_calls == []

        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, NameScreen))
        app.screen.query_one(Input).value = "weather-loop"
        await pilot.press("enter")
        saved_path = tmp_path / "sessions" / "weather-loop.yaml"
        await wait_for(pilot, lambda: saved_path.exists())

        tools.load_text("")  # the session opened into the editor brings its tools back into the panel
        await pilot.press("f2")
        app.open_session()
        await wait_for(pilot, lambda: isinstance(app.screen, PickScreen))
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.session is not None and app.screen is screen)
        assert json.loads(tools.text) == [TOOL] and screen.query_one("#tool-choice", Input).value == "get_weather"

    session = load_session_file(saved_path)
    assert session.request.params.tools == [TOOL] and session.request.params.tool_choice == "get_weather"
    assert [m.role for m in session.request.messages] == ["user", "assistant", "tool"]
    assert session.request.messages[1].tool_calls[0].name == "get_weather"
    assert [r.status for r in session.results] == ["ok", "ok"] and all(r.text for r in session.results)

    (suite_path,) = (tmp_path / "evals").glob("*.yaml")
    suite = load_suite(suite_path, tmp_path)
    assert [(t.params["tools"], t.params.get("tool_choice")) for t in suite.targets] == [
        ((TOOL,), "get_weather")] * 2  # the race's two targets, each offered the tool as the race was
    (test,) = suite.tests
    assert [(a.type, a.value) for a in test.assertions] == [("tool-call-f1", ["get_weather"])]
    result = workbench("eval", str(suite_path), "--json", "--no-cache", cwd=tmp_path, env=fake_env)
    assert result.returncode == 0, result.stderr
    assert json_lines(result.stdout)[-1]["passes"] == 2


PROMPT = """\
name: weather
targets:
  - fake-anthropic/a@tools=1
messages:
  - role: user
    content: Weather in Paris?
tools: file://tools.json
"""


async def test_a_prompt_files_tools_load_into_the_panel_and_save_back(tmp_path: Path,
                                                                       fake_env: dict[str, str]) -> None:
    workspace = prompt_workspace(tmp_path, weather=PROMPT)
    (workspace / "prompts" / "tools.json").write_text(json.dumps([TOOL], indent=2))
    app = app_in(workspace, fake_env, targets=None)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await load_listed_prompt(app, pilot, "weather")
        tools = screen.query_one("#tools", TextArea)
        assert json.loads(tools.text) == [TOOL]

        screen.query_one("#tool-choice", Input).value = "required"
        await pilot.press("ctrl+s")  # the tools unchanged: their file stays the reference
        await wait_for(pilot, lambda: "saved weather v1" in messages(app))
        assert (workspace / "prompts" / "weather.yaml").read_text() == PROMPT + "tool_choice: required\n"

        tools.load_text(json.dumps([TOOL, {"type": "function", "function": {"name": "get_time"}}]))
        await pilot.press("ctrl+s")  # edited in the panel: written into the prompt file itself
        await wait_for(pilot, lambda: "saved weather v2" in messages(app))
        saved = load_current(workspace, "weather")
        assert saved.tools_file is None and [t["function"]["name"] for t in saved.tools] == ["get_weather", "get_time"]
        assert saved.tool_choice == "required"
        assert json.loads((workspace / "prompts" / "tools.json").read_text()) == [TOOL]  # the shared file untouched

        await pilot.press("ctrl+r")  # the race sends the panel's tools
        await wait_for(pilot, lambda: app.last_run is not None and app.last_run.race.done)
        assert [t["function"]["name"] for t in app.last_run.request.params.tools] == [  # type: ignore[union-attr]
            "get_weather", "get_time"]


async def test_g_continues_a_paused_turn_with_its_text_as_the_assistant_turn(tmp_path: Path,
                                                                             fake_env: dict[str, str]) -> None:
    from workbench.core.events import FinishReason
    from workbench.core.request import ChatRequest
    from workbench.ui.messages import RaceRequested
    from workbench.ui.races import RaceSource

    target = "fake-anthropic/w@pause=1,tokens=4"
    app = app_in(prompt_workspace(tmp_path), fake_env, targets=(target,))
    async with app.run_test(size=SIZE) as pilot:
        app.post_message(RaceRequested(ChatRequest.from_prompt("Find today's news"), [target], RaceSource()))
        race = app.get_screen("race")
        await wait_for(pilot, lambda: app.screen is race and race.panes and race.panes[0].finished)
        await wait_for(pilot, lambda: app.last_run is not None and app.last_run.race.done)
        paused = race.panes[0].record
        assert paused.finish is FinishReason.PAUSE_TURN and paused.text
        await wait_for(pilot, lambda: any("g: continue the paused turn" in str(w.render())
                                          for w in race.panes[0].query(Static)))
        asked = app.race

        await pilot.press("g")
        await wait_for(pilot, lambda: app.race is not asked and app.race is not None and app.race.done)
        sent = app.last_run.request.messages  # type: ignore[union-attr]
        assert [(m.role, m.content) for m in sent] == [("user", "Find today's news"), ("assistant", paused.text)]
        await wait_for(pilot, lambda: race.panes and race.panes[0].finished)
        assert race.panes[0].record.error is None


async def test_g_without_a_paused_reply_says_what_to_do(tmp_path: Path, fake_env: dict[str, str]) -> None:
    from workbench.core.request import ChatRequest
    from workbench.ui.messages import RaceRequested
    from workbench.ui.races import RaceSource

    app = app_in(prompt_workspace(tmp_path), fake_env, targets=("fake/plain@tokens=3",))
    async with app.run_test(size=SIZE) as pilot:
        app.post_message(RaceRequested(ChatRequest.from_prompt("hi"), ["fake/plain@tokens=3"], RaceSource()))
        race = app.get_screen("race")
        await wait_for(pilot, lambda: app.screen is race and race.panes and race.panes[0].finished)
        await wait_for(pilot, lambda: app.last_run is not None and app.last_run.race.done)
        asked = app.race
        await pilot.press("g")
        await wait_for(pilot, lambda: any("no paused reply" in m for m in messages(app)))
        assert app.race is asked
