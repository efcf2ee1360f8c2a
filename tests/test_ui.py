"""The Textual face end to end: pilot-driven, against the fake provider server (no keys, no network)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from workbench.ui.app import WorkbenchApp

SIZE = (140, 40)


async def wait_for(pilot, condition: Callable[[], object], limit_s: float = 20.0) -> None:
    """Poll ``condition`` (bounded) while the app runs; fail with a clear message on timeout."""
    for _ in range(int(limit_s / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"condition not met within {limit_s} s")


def editor(app: WorkbenchApp):
    return app.get_screen("editor")


async def type_prompt(pilot, text: str) -> None:
    await wait_for(pilot, lambda: pilot.app.screen is editor(pilot.app) and editor(pilot.app).is_mounted)
    editor(pilot.app).query_one("#user").focus()
    await pilot.press(*[("space" if c == " " else c) for c in text])


async def test_meter_updates_as_you_type(fake_env: dict[str, str]) -> None:
    app = WorkbenchApp(env=fake_env, targets=["fake/demo", "openai/gpt-4.1-mini"])
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await wait_for(pilot, lambda: screen.meters)
        before = {r["target"]: r["tokens"] for r in screen.meter_rows()}
        await type_prompt(pilot, "hello world how are you")
        await wait_for(pilot, lambda: screen.meter_rows()[0]["tokens"] != before["fake/demo"])
        rows = {r["target"]: r for r in screen.meter_rows()}
        assert rows["openai/gpt-4.1-mini"]["exact"] and not rows["fake/demo"]["exact"]
        from workbench.core.request import ChatRequest
        from workbench.core.tokens.encodings import count_chat

        expected = count_chat(ChatRequest.from_prompt("hello world how are you"), "o200k_base")
        assert rows["openai/gpt-4.1-mini"]["tokens"] == expected
        # the estimate (cost range, headroom) follows after the debounce
        await wait_for(pilot, lambda: screen.estimates.get("openai/gpt-4.1-mini") is not None
                       and screen.estimates["openai/gpt-4.1-mini"].input_tokens == expected)
        assert screen.estimates["openai/gpt-4.1-mini"].cost_max_usd is not None
        # deleting a character keeps the count exact
        await pilot.press("backspace", "backspace", "backspace")
        expected = count_chat(ChatRequest.from_prompt("hello world how are "), "o200k_base")
        await wait_for(pilot, lambda: screen.meter_rows()[1]["tokens"] == expected)


async def test_race_two_fake_targets_then_traces_search_replay(fake_env: dict[str, str]) -> None:
    targets = ["fake/demo@ttft=100,tps=200,tokens=30", "fake-anthropic/demo@ttft=50,tps=300,tokens=20"]
    app = WorkbenchApp(env=fake_env, targets=targets)
    async with app.run_test(size=SIZE) as pilot:
        await type_prompt(pilot, "Explain SSE")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.race is not None and app.screen is app.get_screen("race"))
        race_screen = app.get_screen("race")
        await wait_for(pilot, lambda: len(race_screen.panes) == 2)
        # both panes stream: each shows text and a TTFT while the race still runs or once done
        await wait_for(pilot, lambda: all(p.body_text for p in race_screen.panes))
        await wait_for(pilot, lambda: all(p.finished for p in race_screen.panes))
        for pane in race_screen.panes:
            assert "TTFT" in pane.header_text and "TTFT –" not in pane.header_text
            assert pane.record.finish is not None and pane.record.finish.value in pane.header_text
            assert pane.record.error is None
        # the finished race is traced; the Traces screen lists it
        await wait_for(pilot, lambda: len(app.traced_ids) == 2)
        await pilot.press("f4")
        traces = app.get_screen("traces")
        await wait_for(pilot, lambda: app.screen is traces and len(traces.rows) == 2)
        assert {r["target"] for r in traces.rows} == set(targets)
        # search (FTS) finds it
        traces.query_one("#search").focus()
        await pilot.press(*"SSE", "enter")
        await wait_for(pilot, lambda: traces.query_text == "SSE" and len(traces.rows) == 2)
        traces.query_one("#search").value = ""
        await pilot.press("ctrl+f", "x", "y", "z", "q", "enter")
        await wait_for(pilot, lambda: traces.query_text == "xyzq" and traces.exhausted and not traces.rows)
        traces.query_one("#search").value = ""
        await pilot.press("ctrl+f", "enter")
        await wait_for(pilot, lambda: len(traces.rows) == 2 and traces.detail is not None)
        # replay restores the prompt into the editor
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.screen is editor(app))
        assert editor(app).text_of("user") == "Explain SSE"
        assert editor(app).targets() == [traces.detail["target"]]


async def test_retry_shows_in_the_timeline(fake_env: dict[str, str]) -> None:
    target = "fake/x@status=429,fail=1,retry_after=1,id=ui-429"
    app = WorkbenchApp(env=fake_env, targets=[target])
    async with app.run_test(size=SIZE) as pilot:
        await type_prompt(pilot, "hi")
        await pilot.press("ctrl+r")
        race_screen = app.get_screen("race")
        await wait_for(pilot, lambda: race_screen.panes and race_screen.panes[0].finished)
        pane = race_screen.panes[0]
        assert pane.record.error is None
        assert "429" in pane.timeline_text and "retry" in pane.timeline_text
        assert "retry-after" in pane.timeline_text or "waited" in pane.timeline_text


async def test_length_finish_is_flagged_and_escape_cancels(fake_env: dict[str, str]) -> None:
    app = WorkbenchApp(env=fake_env, targets=["fake/demo@tps=200,tokens=50", "fake/slow@ttft=50,tps=5,tokens=500"])
    async with app.run_test(size=SIZE) as pilot:
        await type_prompt(pilot, "hi")
        editor(app).query_one("#max-tokens").value = "8"
        await pilot.press("ctrl+r")
        race_screen = app.get_screen("race")
        await wait_for(pilot, lambda: len(race_screen.panes) == 2 and race_screen.panes[0].finished)
        assert "hit max_tokens" in race_screen.panes[0].header_text
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.race.done and all(p.finished for p in race_screen.panes))


async def test_bad_input_notifies_instead_of_crashing(fake_env: dict[str, str]) -> None:
    app = WorkbenchApp(env=fake_env, targets=["nosuchprovider/model"])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")  # empty prompt
        await wait_for(pilot, lambda: any("empty" in str(n.message) for n in app._notifications))
        await type_prompt(pilot, "hi")
        await pilot.press("ctrl+r")  # unknown provider: a failed pane with a hint, not a crash
        race_screen = app.get_screen("race")
        await wait_for(pilot, lambda: race_screen.panes and race_screen.panes[0].finished)
        assert race_screen.panes[0].record.error is not None


async def test_keys_screen_set_and_delete(fake_env: dict[str, str]) -> None:
    app = WorkbenchApp(env={**fake_env, "OPENAI_API_KEY": ""})
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f5")
        keys = app.get_screen("keys")
        await wait_for(pilot, lambda: app.screen is keys and keys.statuses)
        providers = [s.provider for s in keys.statuses]
        keys.query_one("#keys").move_cursor(row=providers.index("openai"))
        keys.query_one("#key-value").value = "sk-test-0123456789abcd"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: next(s for s in keys.statuses if s.provider == "openai").source == "keyring")
        status = next(s for s in keys.statuses if s.provider == "openai")
        assert status.masked == "…abcd"
        assert keys.query_one("#key-value").password
        await pilot.press("ctrl+x")
        await wait_for(pilot, lambda: next(s for s in keys.statuses if s.provider == "openai").source == "none")


async def test_palette_and_theme() -> None:
    app = WorkbenchApp(targets=["fake/demo"])
    async with app.run_test(size=SIZE) as pilot:
        names = [name for name, _, _ in app.palette_commands()]
        assert "Run race" in names and "Open traces" in names
        theme = app.theme
        await pilot.press("ctrl+t")
        assert app.theme != theme
        await pilot.press("ctrl+p")
        await pilot.press(*"traces")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is app.get_screen("traces"))


@pytest.mark.parametrize("argv", [["--help"]])
def test_cli_help_still_works(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from workbench.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    assert "usage: workbench" in capsys.readouterr().out


async def test_quit_mid_stream_cancels_and_traces(fake_env: dict[str, str]) -> None:
    import os
    from pathlib import Path

    from workbench.core.traces.store import TraceStore

    app = WorkbenchApp(env=fake_env, targets=["fake/slow@ttft=50,tps=5,tokens=500"])
    async with app.run_test(size=SIZE) as pilot:
        await type_prompt(pilot, "hi")
        await pilot.press("ctrl+r")
        race_screen = app.get_screen("race")
        await wait_for(pilot, lambda: race_screen.panes and race_screen.panes[0].body_text)
        race = app.race
        await pilot.press("ctrl+q")
    assert race.done
    store = TraceStore(Path(os.environ["WORKBENCH_TRACES"]))
    try:
        rows = store.page()
    finally:
        store.close()
    assert len(rows) == 1 and rows[0]["target"] == "fake/slow@ttft=50,tps=5,tokens=500"


def test_no_arguments_without_a_terminal_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    from workbench.cli import main

    assert main([]) == 0
    assert "usage: workbench" in capsys.readouterr().out


async def test_typing_within_a_line_redraws_it_and_the_cursor_moves_on(fake_env: dict[str, str]) -> None:
    """An edit inside one line repaints only that line's rows: they still show the new text at once, and
    edits that add lines (or scroll) repaint the whole area."""
    from tests.test_ui_snapshots import screen_text

    app = WorkbenchApp(env=fake_env, targets=["fake/demo"])
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await wait_for(pilot, lambda: screen.meters)
        area = screen.query_one("#user")
        area.load_text("first line\nsecond line\nthird line")
        area.focus()
        area.move_cursor((1, 6))
        await pilot.pause()
        await pilot.press("X", "Y")
        await pilot.pause()
        assert "secondXY line" in screen_text(app) and area.cursor_location == (1, 8)
        await pilot.press("backspace", "enter")
        await pilot.pause()
        text = screen_text(app)
        assert "secondX" in text and " line" in text and area.document.line_count == 4
        assert "secondXY" not in text
