"""The TUI's extras: params and {{variables}} in the editor, race diff and copy, help, gap sparkline."""

from __future__ import annotations

import json
from dataclasses import replace

from textual.widgets import HelpPanel

from tests.test_ui import SIZE, editor, type_prompt, wait_for
from tests.test_ui_snapshots import NO_KEYS, FinishedRace, open_traces_with_records, screen_text
from workbench.core.request import ChatRequest, Message, Params
from workbench.ui.app import WorkbenchApp
from workbench.ui.screens.modals import REMOVED, DiffScreen, PickScreen, word_diff


def messages(app: WorkbenchApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def test_params_reach_the_request_and_bad_ones_notify() -> None:
    app = WorkbenchApp(env=NO_KEYS, targets=["fake/demo"])
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await wait_for(pilot, lambda: app.screen is screen and screen.meters)
        screen.query_one("#user").load_text("hi")
        screen.query_one("#temperature").value = "0.3"
        screen.query_one("#top-p").value = "0.9"
        screen.query_one("#seed").value = "7"
        screen.query_one("#stop").value = "END, ###"
        screen.query_one("#json-schema").load_text('{"type": "object"}')
        request = screen.build_request()
        assert request.params.temperature == 0.3 and request.params.top_p == 0.9 and request.params.seed == 7
        assert request.params.stop == ("END", "###") and request.params.json_schema == {"type": "object"}
        # out of range: pydantic's error names the field; the run is refused, no crash
        screen.query_one("#temperature").value = "5"
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: any("temperature" in m for m in messages(app)))
        assert app.race is None and app.last_request is None
        screen.query_one("#temperature").value = ""
        # invalid JSON schema: named, refused
        screen.query_one("#json-schema").load_text('{"type": ')
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: any("json_schema is not valid JSON" in m for m in messages(app)))
        assert app.last_request is None
        screen.query_one("#json-schema").load_text("[1]")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: any("must be a JSON object" in m for m in messages(app)))
        assert app.last_request is None


async def test_replay_restores_params() -> None:
    app = WorkbenchApp(env=NO_KEYS, targets=["fake/demo"])
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await wait_for(pilot, lambda: app.screen is screen and screen.meters)
        params = Params(temperature=0.5, top_p=0.8, max_tokens=99, stop=("x", "y"), seed=3,
                        json_schema={"type": "object", "properties": {"a": {"type": "string"}}})
        await app.replay(ChatRequest.from_prompt("again", system="sys", params=params), ["fake/demo"])
        await pilot.pause()
        assert screen.query_one("#temperature").value == "0.5"
        assert screen.query_one("#top-p").value == "0.8"
        assert screen.query_one("#max-tokens").value == "99"
        assert screen.query_one("#seed").value == "3"
        assert screen.query_one("#stop").value == "x, y"
        assert json.loads(screen.query_one("#json-schema").text) == params.json_schema
        assert screen.params() == params


async def test_replay_from_traces_restores_params(fake_env: dict[str, str]) -> None:
    app = WorkbenchApp(env=fake_env, targets=["fake/demo@tps=300,tokens=10"])
    async with app.run_test(size=SIZE) as pilot:
        await type_prompt(pilot, "hi")
        screen = editor(app)
        screen.query_one("#temperature").value = "0.25"
        screen.query_one("#seed").value = "11"
        screen.query_one("#stop").value = "STOP"
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: len(app.traced_ids) == 1)
        await pilot.press("f4")
        traces = app.get_screen("traces")
        await wait_for(pilot, lambda: app.screen is traces and traces.detail is not None)
        screen.query_one("#temperature").value = ""
        screen.query_one("#seed").value = ""
        screen.query_one("#stop").value = ""
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.screen is screen and screen.query_one("#seed").value == "11")
        assert screen.query_one("#temperature").value == "0.25"
        assert screen.query_one("#stop").value == "STOP"


async def test_variables_panel_substitution_and_meter() -> None:
    app = WorkbenchApp(env=NO_KEYS, targets=["openai/gpt-4.1-mini"])
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await wait_for(pilot, lambda: app.screen is screen and screen.meters)
        screen.query_one("#system").load_text("You speak {{ lang }}.")
        screen.query_one("#user").load_text("Tell me about {{topic}} in {{lang}}.")
        await wait_for(pilot, lambda: list(screen.variable_inputs) == ["lang", "topic"])
        await wait_for(pilot, lambda: screen.query("#var-topic") and screen.query_one("#variables").display)
        # placeholders are highlighted in the text areas
        assert screen.query_one("#user").variable_spans(0) == [(14, 23), (27, 35)]
        # an empty variable refuses the run
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: any("{{lang}}" in m and "{{topic}}" in m for m in messages(app)))
        screen.query_one("#var-topic").value = "SSE streams"
        screen.query_one("#var-lang").focus()
        await pilot.press(*"French")
        await wait_for(pilot, lambda: screen.variable_values == {"lang": "French", "topic": "SSE streams"})
        request = screen.build_request()
        assert request.system == "You speak French."
        assert request.messages[0].content == "Tell me about SSE streams in French."
        # the meter counts the substituted text
        from workbench.core.tokens.encodings import count_chat

        expected = count_chat(replace(request, params=Params()), "o200k_base")
        await wait_for(pilot, lambda: screen.meter_rows()[0]["tokens"] == expected)
        # editing the text keeps existing inputs (and values), drops vanished ones, adds new ones
        kept = screen.variable_inputs["topic"]
        screen.query_one("#user").load_text("Tell me about {{topic}} for {{audience}}.")
        await wait_for(pilot, lambda: list(screen.variable_inputs) == ["lang", "topic", "audience"])
        screen.query_one("#system").load_text("Be terse.")
        await wait_for(pilot, lambda: list(screen.variable_inputs) == ["topic", "audience"]
                       and not screen.query("#var-lang"))
        assert screen.variable_inputs["topic"] is kept and kept.value == "SSE streams"
        screen.query_one("#var-audience").value = "kids"
        await pilot.pause()
        expected = count_chat(ChatRequest.from_prompt("Tell me about SSE streams for kids.", system="Be terse."),
                              "o200k_base")
        await wait_for(pilot, lambda: screen.meter_rows()[0]["tokens"] == expected)
        # typing in a templated text keeps the meter right (recount, not offset edits)
        screen.query_one("#user").focus()
        screen.query_one("#user").move_cursor((0, 0))
        await pilot.press("A", "space")
        expected = count_chat(ChatRequest.from_prompt("A Tell me about SSE streams for kids.", system="Be terse."),
                              "o200k_base")
        await wait_for(pilot, lambda: screen.meter_rows()[0]["tokens"] == expected)
        # no placeholders left: the panel hides
        screen.query_one("#user").load_text("plain")
        await wait_for(pilot, lambda: not screen.variable_inputs and not screen.query_one("#variables").display)


def test_word_diff() -> None:
    diff = word_diff("the quick brown fox", "the slow brown dog jumps")
    assert diff.plain == "the quick slow brown fox dog jumps"
    styled = {diff.plain[s.start:s.end]: str(s.style) for s in diff.spans}
    assert styled["quick"] == REMOVED and styled["fox"] == REMOVED
    assert "green" in styled["slow"] and "green" in styled["dog jumps"]


async def test_race_diff_copy_and_help() -> None:
    app = WorkbenchApp(env=NO_KEYS, targets=["fake/demo"])
    async with app.run_test(size=SIZE) as pilot:
        race = app.get_screen("race")
        await pilot.press("ctrl+d")  # not on the race screen: the editor has no such binding
        app.race = FinishedRace()  # type: ignore[assignment]
        await pilot.press("f3")
        await wait_for(pilot, lambda: len(race.panes) == 4 and all(p.finished for p in race.panes))
        await pilot.press("ctrl+d")  # four finished panes: pick the other one
        await wait_for(pilot, lambda: isinstance(app.screen, PickScreen))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DiffScreen))
        diff = app.screen
        first, second = race.panes[0].body_text, race.panes[1].body_text
        assert diff.diff.plain == word_diff(first, second).plain
        assert "fake/demo → fake-anthropic/demo" in diff.title_text
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is race)
        # copy: the first pane when none is focused, else the focused one
        await pilot.press("c")
        await wait_for(pilot, lambda: app.clipboard == first)
        assert any("sent" in m and "fake/demo" in m and "OSC 52" in m for m in messages(app))
        await wait_for(pilot, lambda: race.panes[2].query(".body"))
        race.panes[2].query_one(".body").focus()
        await pilot.press("c")
        await wait_for(pilot, lambda: app.clipboard == race.panes[2].body_text)
        # diff from the focused pane: against the one picked among the others
        await pilot.press("ctrl+d")
        await wait_for(pilot, lambda: isinstance(app.screen, PickScreen))
        await pilot.press("down", "down", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DiffScreen))
        assert app.screen.title_text.startswith("word diff: fake/x → nokey/model")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is race)
        # help: Textual's help panel beside the screen, listing the race screen's bindings and the global ones
        await pilot.press("f1")
        await wait_for(pilot, lambda: race.query(HelpPanel) and "Cancel all" in screen_text(app))
        text = screen_text(app)
        assert all(shown in text for shown in ("Diff", "Copy", "Save session", "Traces", "Help"))
        assert app.screen is race  # a panel, not a modal: the screen stays usable
        await pilot.press("f1")
        await wait_for(pilot, lambda: not race.query(HelpPanel))
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: race.query(HelpPanel))
        await pilot.press("question_mark")
        await pilot.press("f2")
        await wait_for(pilot, lambda: app.screen is editor(app))
        await pilot.press("f1")
        await wait_for(pilot, lambda: editor(app).query(HelpPanel) and "Run race" in screen_text(app))


async def test_diff_needs_two_finished_panes() -> None:
    app = WorkbenchApp(env=NO_KEYS, targets=["fake/demo"])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        race = app.get_screen("race")
        await wait_for(pilot, lambda: app.screen is race)
        await pilot.press("ctrl+d", "c")
        await wait_for(pilot, lambda: any("two finished panes" in m for m in messages(app))
                       and any("nothing to copy" in m for m in messages(app)))
        assert app.screen is race


async def test_traces_gap_sparkline() -> None:
    app = WorkbenchApp(env=NO_KEYS, targets=["fake/demo"])
    async with app.run_test(size=SIZE) as pilot:
        traces = await open_traces_with_records(app, pilot)
        await wait_for(pilot, lambda: len(traces.rows) == 4 and traces.detail is not None
                       and traces.detail["id"] == traces.rows[0]["id"])
        # the newest call failed before any chunk: no sparkline
        assert traces.gaps == [] and not traces.query_one("#gaps").display
        ok = next(r for r in traces.rows if r["target"] == "fake/demo")
        traces.show_detail(ok["id"])
        await wait_for(pilot, lambda: traces.detail["id"] == ok["id"])
        assert len(traces.gaps) == 19 and all(abs(g - 10.0) < 0.01 for g in traces.gaps)
        sparkline = traces.query_one("#gaps")
        assert sparkline.display and list(sparkline.data) == traces.gaps
        assert "median 10.0 ms" in str(traces.query_one("#gaps-label").render())


async def test_traces_totals_line() -> None:
    app = WorkbenchApp(env=NO_KEYS, targets=["fake/demo"])
    async with app.run_test(size=SIZE) as pilot:
        traces = await open_traces_with_records(app, pilot)
        await wait_for(pilot, lambda: traces.totals is not None and len(traces.rows) == 4)
        totals = traces.totals
        assert totals["calls"] == 4 and totals["unpriced_calls"] == 0
        assert abs(totals["spend_usd"] - 3 * 0.000123) < 1e-9
        assert totals["ttft_p50_ms"] == 150.0
        line = str(traces.query_one("#totals").render())
        assert "calls 4" in line and "$0.000369" in line and "p50 150 ms" in line
        assert "search not applied" not in line
        traces.query_one("#search").value = "retried"
        traces.query_one("#search").focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: traces.totals is not None and len(traces.rows) == 1)
        assert "search not applied" in str(traces.query_one("#totals").render())


async def test_keys_and_models_table(monkeypatch) -> None:
    import workbench.ui.targets as targets_module

    monkeypatch.setattr(targets_module, "discover_targets", lambda env, providers: ["ollama/llama3:8b"])
    app = WorkbenchApp(env=NO_KEYS, targets=["fake/demo"])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f5")
        keys = app.get_screen("keys")
        await wait_for(pilot, lambda: app.screen is keys and keys.models is not None)
        rows = {r["target"]: r for r in keys.models}
        assert rows["ollama/llama3:8b"]["source"] == "discovered" and rows["ollama/llama3:8b"]["ready"]
        assert all(r["circuit"] == "closed" for r in keys.models)
        table = keys.query_one("#models")
        assert table.row_count == len(keys.models)
        assert "discovered" in [str(c) for c in table.get_row("ollama/llama3:8b")]


def test_model_rows_replays_the_circuit(monkeypatch) -> None:
    import workbench.ui.screens.keys as keys_module
    import workbench.ui.targets as targets_module
    from workbench.core.call_record import CallRecord
    from workbench.core.errors import ProviderHTTPError
    from workbench.core.events import FinishReason
    from workbench.core.timing import CallTiming

    monkeypatch.setattr(targets_module, "discover_targets", lambda env, providers: ["ollama/down"])
    app = WorkbenchApp(env=NO_KEYS, targets=["fake/demo"])
    writer = app.writer()
    now = __import__("time").time()
    for i in range(12):
        writer.write(CallRecord("ollama/down", ChatRequest.from_prompt("hi"), finish=FinishReason.ERROR, done=True,
                                error=ProviderHTTPError("ollama/down", 503, None, "unavailable"),
                                timing=CallTiming(started_ns=0, sent_ns=0, end_ns=1), started_at=now - 5 + i * 0.1))
    writer.flush()
    try:
        rows = {r["target"]: r for r in keys_module.model_rows(app)}
    finally:
        app.shutdown()
    assert rows["ollama/down"]["circuit"] != "closed"


async def test_multi_turn_add_move_remove_and_request() -> None:
    from workbench.core.tokens.encodings import count_chat

    app = WorkbenchApp(env=NO_KEYS, targets=["openai/gpt-4.1-mini"])
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await wait_for(pilot, lambda: app.screen is screen and screen.meters)
        assert screen.turn_ids == ["user"]  # the default: one user message
        await type_prompt(pilot, "hi")
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: len(screen.turn_ids) == 2 and screen.focused is not None
                       and screen.focused.id == screen.turn_ids[1])
        assert screen.roles[screen.turn_ids[1]] == "assistant"
        await pilot.press("h", "e", "l", "l", "o")
        # an assistant turn last: the request is refused with the next step
        screen.action_run()
        await wait_for(pilot, lambda: any("last turn is an assistant" in m for m in messages(app)))
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: len(screen.turn_ids) == 3)
        assert [screen.roles[t] for t in screen.turn_ids] == ["user", "assistant", "user"]
        await pilot.press("m", "o", "r", "e")
        expected = ChatRequest(messages=(Message(role="user", content="hi"), Message(role="assistant", content="hello"),
                                         Message(role="user", content="more")))
        tokens = count_chat(expected, "o200k_base")
        await wait_for(pilot, lambda: screen.meter_rows()[0]["tokens"] == tokens)
        assert screen.build_request().messages == expected.messages
        assert "turn 3" in str(screen.query_one(f"#label-{screen.turn_ids[2]}").render())
        # alt+up moves the focused turn (text and role) up
        await pilot.press("alt+up")
        await wait_for(pilot, lambda: [m for _, m in screen.messages()] == ["hi", "more", "hello"])
        assert [screen.roles[t] for t in screen.turn_ids] == ["user", "user", "assistant"]
        assert screen.focused.id == screen.turn_ids[1]
        await pilot.press("alt+down")
        await wait_for(pilot, lambda: [m for _, m in screen.messages()] == ["hi", "hello", "more"])
        # ctrl+delete removes the focused turn; the meter follows
        screen.query_one(f"#{screen.turn_ids[1]}").focus()
        await pilot.press("ctrl+delete")
        await wait_for(pilot, lambda: screen.messages() == [("user", "hi"), ("user", "more")])
        tokens = count_chat(ChatRequest(messages=(Message(role="user", content="hi"),
                                                  Message(role="user", content="more"))), "o200k_base")
        await wait_for(pilot, lambda: screen.meter_rows()[0]["tokens"] == tokens)
        # removing the first turn keeps the #user area with the next turn's text
        screen.query_one("#user").focus()
        await pilot.press("ctrl+delete")
        await wait_for(pilot, lambda: screen.turn_ids == ["user"] and screen.text_of("user") == "more")
        assert str(screen.query_one("#label-user").render()) == "User message"


async def test_replay_restores_every_turn() -> None:
    app = WorkbenchApp(env=NO_KEYS, targets=["fake/demo"])
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await wait_for(pilot, lambda: app.screen is screen and screen.meters)
        request = ChatRequest(system="sys", messages=(Message(role="user", content="one"),
                                                      Message(role="assistant", content="two"),
                                                      Message(role="user", content="three")))
        await app.replay(request, ["fake/demo"])
        assert screen.messages() == [("user", "one"), ("assistant", "two"), ("user", "three")]
        await wait_for(pilot, lambda: all((t, "o200k_base") in screen.meters for t in screen.turn_ids))
        assert screen.build_request().messages == request.messages
        # a single-message replay goes back to one turn
        await app.replay(ChatRequest.from_prompt("solo"), ["fake/demo"])
        assert screen.turn_ids == ["user"] and screen.messages() == [("user", "solo")]
