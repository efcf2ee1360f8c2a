"""The tool loop in the TUI: a race offering a tool, its panes showing each reply's tool calls, ``t`` asking for
each call's result, and the race run again with the reply and the results in the conversation (answered with
text: the loop ends), traced and saved as a session like any race."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input, Static

from tests.conftest import prompt_workspace
from tests.test_ui import SIZE, wait_for
from tests.test_ui_more import messages
from tests.test_ui_prompts import app_in
from workbench.core.request import ChatRequest, Params
from workbench.ui.messages import RaceRequested
from workbench.ui.races import RaceSource
from workbench.ui.screens.modals import NameScreen, ToolResultsScreen

TOOLS = ({"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},)
TARGETS = ["fake/a@tools=2", "fake-anthropic/b@tools=1"]


async def test_answer_the_tool_calls_of_a_pane_and_run_again(tmp_path: Path, fake_env: dict[str, str]) -> None:
    app = app_in(prompt_workspace(tmp_path), fake_env, targets=tuple(TARGETS))
    async with app.run_test(size=SIZE) as pilot:
        request = ChatRequest.from_prompt("Weather in Paris?", params=Params(max_tokens=100, tools=TOOLS))
        app.post_message(RaceRequested(request, TARGETS, RaceSource()))  # what the editor sends with tools set
        race = app.get_screen("race")
        await wait_for(pilot, lambda: app.screen is race and len(race.panes) == 2)
        await wait_for(pilot, lambda: all(p.finished for p in race.panes) and all(
            p.query(".tool-call") for p in race.panes))
        first = race.panes[0]
        shown = [str(w.render()) for w in first.query(".tool-call").results(Static)]
        assert len(shown) == 2 and all(line.startswith("→ get_weather({\"city\":") for line in shown)
        asked = app.race

        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, ToolResultsScreen))
        fields = list(app.screen.query(Input))
        assert len(fields) == 2  # the first pane's two calls
        fields[0].value, fields[1].value = "sunny", '{"rain": true}'
        fields[0].focus()
        await pilot.press("enter")  # to the next call's field
        assert app.screen.focused is fields[1]
        await pilot.press("enter")  # the last one: continue

        await wait_for(pilot, lambda: app.race is not asked and app.race is not None and app.race.done)
        assert app.last_run is not None
        roles = [m.role for m in app.last_run.request.messages]
        assert roles == ["user", "assistant", "tool", "tool"]
        assert [m.content for m in app.last_run.request.messages[2:]] == ["sunny", '{"rain": true}']
        assert app.last_run.request.params.tools == TOOLS
        await wait_for(pilot, lambda: len(race.panes) == 2 and all(p.finished for p in race.panes))
        for pane in race.panes:  # the answer to the results is text: the loop ends
            assert pane.record.text and pane.record.tool_calls == [] and not pane.query(".tool-call")

        await pilot.press("s")  # the continued race saves as a session like any other
        await wait_for(pilot, lambda: isinstance(app.screen, NameScreen))
        app.screen.query_one(Input).value = "loop"
        await pilot.press("enter")
        await wait_for(pilot, lambda: (tmp_path / "sessions" / "loop.yaml").exists())
        saved = (tmp_path / "sessions" / "loop.yaml").read_text()
        assert "role: tool" in saved and "tool_call_id:" in saved and "get_weather" in saved


async def test_t_without_tool_calls_says_what_to_do(tmp_path: Path, fake_env: dict[str, str]) -> None:
    app = app_in(prompt_workspace(tmp_path), fake_env, targets=("fake/plain@tokens=3",))
    async with app.run_test(size=SIZE) as pilot:
        app.post_message(RaceRequested(ChatRequest.from_prompt("hi"), ["fake/plain@tokens=3"], RaceSource()))
        race = app.get_screen("race")
        await wait_for(pilot, lambda: app.screen is race and race.panes and race.panes[0].finished)
        await wait_for(pilot, lambda: app.last_run is not None and app.last_run.race.done)
        await pilot.press("t")
        await wait_for(pilot, lambda: any("no reply with tool calls" in m for m in messages(app)))


CANNED = """\
name: weather
targets: ["fake/c@tools=1"]
messages:
  - role: user
    content: Weather in {{city}}?
  - role: assistant
    tool_calls:
      - id: call_1
        name: get_weather
        arguments: '{"city":"Paris"}'
  - role: tool
    tool_call_id: call_1
    content: '{"temp": 18}'
"""


async def test_the_editor_keeps_a_conversations_tool_turns_to_run_and_save(tmp_path: Path,
                                                                           fake_env: dict[str, str]) -> None:
    from tests.test_ui import editor
    from tests.test_ui_prompts import load_listed_prompt
    from workbench.core.prompts import load_current

    workspace = prompt_workspace(tmp_path, weather=CANNED)
    app = app_in(workspace, fake_env, targets=None)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await load_listed_prompt(app, pilot, "weather")
        await wait_for(pilot, lambda: "city" in screen.variable_inputs)
        screen.variable_inputs["city"].value = "Paris"
        await pilot.pause()
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.last_run is not None and app.last_run.race.done)
        sent = app.last_run.request.messages  # type: ignore[union-attr]
        assert [m.role for m in sent] == ["user", "assistant", "tool"] and sent[1].tool_calls[0].name == "get_weather"
        assert sent[2].tool_call_id == "call_1"
        assert app.last_run.race.records[0].text  # type: ignore[union-attr]  # answered with text

        await pilot.press("f2")
        await wait_for(pilot, lambda: app.screen is screen)
        screen.query_one("#user").load_text("Weather in {{city}} today?")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "saved weather v2" in messages(app))
        saved = load_current(workspace, "weather")
        assert saved.messages[0].content == "Weather in {{city}} today?"
        assert saved.messages[1].tool_calls[0].arguments == '{"city":"Paris"}'
        assert saved.messages[2].tool_call_id == "call_1" and saved.messages[2].content == '{"temp": 18}'


def _thinking_loop() -> str:
    from workbench.fakeserver.wire.tool_turns import sign_thinking

    return f"""\
name: thought
targets: ["fake-anthropic/t@reasoning=4"]
params: {{max_tokens: 100, thinking_budget: 2048}}
tools:
  - type: function
    function: {{name: get_weather, parameters: {{type: object, properties: {{city: {{type: string}}}}}}}}
messages:
  - role: user
    content: Weather in Paris?
  - role: assistant
    tool_calls:
      - id: toolu_1
        name: get_weather
        arguments: '{{"city":"Paris"}}'
    reasoning_items:
      - kind: thinking
        text: I should look it up.
        signature: {sign_thinking("I should look it up.")}
    origin: "fake-anthropic:anthropic"
  - role: tool
    tool_call_id: toolu_1
    content: sunny
"""


async def test_the_editor_keeps_a_replied_turns_signed_thinking_to_run_and_save(tmp_path: Path,
                                                                                fake_env: dict[str, str]) -> None:
    """With thinking on, Anthropic wants the signed thinking of the turn whose calls were answered: a saved loop
    loaded in the editor races with it (the fake server refuses the calls without it) and ctrl+s keeps it."""
    from tests.test_ui import editor
    from tests.test_ui_prompts import load_listed_prompt
    from workbench.core.prompts import load_current

    workspace = prompt_workspace(tmp_path, thought=_thinking_loop())
    app = app_in(workspace, fake_env, targets=None)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await load_listed_prompt(app, pilot, "thought")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.last_run is not None and app.last_run.race.done)
        record = app.last_run.race.records[0]  # type: ignore[union-attr]
        assert record.error is None and record.text, record.error
        assert app.last_run.request.messages[1].reasoning_items  # type: ignore[union-attr]
        await pilot.press("f2")
        await wait_for(pilot, lambda: app.screen is screen)
        screen.query_one("#user").load_text("Weather in Paris today?")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "saved thought v2" in messages(app))
        saved = load_current(workspace, "thought").messages[1]
        assert saved.origin == "fake-anthropic:anthropic" and saved.reasoning_items[0].text == "I should look it up."
