"""TUI flows end to end with Pilot, against the fake server: promoting a race's reply never leaves a suite that
does not load, a prompt loads from the list without touching the user message, and both faces pick the same
default targets."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import HelpPanel

from tests.conftest import prompt_workspace
from tests.test_cli import workbench
from tests.test_ui import SIZE, editor, wait_for
from tests.test_ui_evals import open_evals
from tests.test_ui_evals import workspace as evals_workspace
from tests.test_ui_more import messages
from tests.test_ui_prompts import TARGET, app_in, load_listed_prompt, race_and_trace
from tests.test_ui_snapshots import NO_KEYS, screen_text
from workbench.core.evals.suite import load_suite
from workbench.fakeserver.process import FakeServerProcess
from workbench.ui.app import WorkbenchApp
from workbench.ui.screens.modals import PromoteScreen

REPO = Path(__file__).resolve().parent.parent


def example_workspace(root: Path) -> Path:
    """``root`` as a workspace holding the repository's support-reply prompt and its suite, evals/support.yaml."""
    workspace = prompt_workspace(root, **{"support-reply": (REPO / "prompts" / "support-reply.yaml").read_text()})
    (workspace / "evals").mkdir()
    shutil.copy(REPO / "evals" / "support.yaml", workspace / "evals" / "support.yaml")
    return workspace


async def raced(app: WorkbenchApp, pilot: Any, traced: int = 1) -> Any:
    await race_and_trace(app, pilot, traced)
    race = app.get_screen("race")
    await wait_for(pilot, lambda: app.screen is race and race.panes and all(p.finished for p in race.panes))
    return race


async def open_promote(app: WorkbenchApp, pilot: Any) -> PromoteScreen:
    await pilot.press("p")
    await wait_for(pilot, lambda: isinstance(app.screen, PromoteScreen))
    form = app.screen
    assert isinstance(form, PromoteScreen)
    await pilot.pause()
    return form


async def test_a_typed_race_is_promoted_to_a_new_suite_only_on_confirm(tmp_path: Path,
                                                                       fake_env: dict[str, str]) -> None:
    workspace = example_workspace(tmp_path)
    suite_before = (workspace / "evals" / "support.yaml").read_text()
    app = app_in(workspace, fake_env)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await wait_for(pilot, lambda: app.screen is screen and screen.is_mounted)
        screen.query_one("#user").load_text("\nWhy was I charged twice?  \n")
        await pilot.pause()
        await raced(app, pilot)
        form = await open_promote(app, pilot)
        # the support suite renders the support-reply prompt, not this conversation: not offered
        assert [(c.path, c.new) for c in form.choices] == [("evals/promoted.yaml", True)]
        assert app.focused is form.query_one("#value")
        await pilot.press("enter")  # enter in a field does not promote
        await pilot.click("#description")
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is form and not (workspace / "evals" / "promoted.yaml").exists()
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: any("written to evals/promoted.yaml:" in m for m in messages(app)))
    assert (workspace / "evals" / "support.yaml").read_text() == suite_before
    suite = load_suite(workspace / "evals" / "promoted.yaml", workspace)
    (prompt,) = suite.prompts
    assert prompt.prompt.system is None
    assert [(m.role, m.content) for m in prompt.prompt.messages] == [("user", "Why was I charged twice?")]
    (test,) = suite.tests
    assert test.vars == {} and [t.ref for t in suite.targets] == [TARGET]


async def test_a_prompt_race_goes_to_its_suite_with_its_variables(tmp_path: Path, fake_env: dict[str, str]) -> None:
    workspace = example_workspace(tmp_path)
    app = app_in(workspace, fake_env)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await load_listed_prompt(app, pilot, "support-reply")
        await wait_for(pilot, lambda: "message" in screen.variable_inputs)
        screen.variable_inputs["message"].value = "Where is my invoice?"
        await pilot.pause()
        await raced(app, pilot)
        form = await open_promote(app, pilot)
        assert [(c.path, c.new) for c in form.choices] == [("evals/support.yaml", False),
                                                          ("evals/support-reply.yaml", True)]
        assert "message" in str(form.query_one("#carried").render())
        await pilot.click("#promote")
        await wait_for(pilot, lambda: any("written to evals/support.yaml:" in m for m in messages(app)))
    tests = load_suite(workspace / "evals" / "support.yaml", workspace).tests
    assert tests[-1].description == "Where is my invoice?"
    assert tests[-1].vars["message"] == "Where is my invoice?"
    assert tests[-1].vars["company"] == "Acme Cloud"


async def test_a_typed_race_goes_to_a_suite_of_raw_conversations(tmp_path: Path, fake_env: dict[str, str]) -> None:
    workspace = example_workspace(tmp_path)
    raw = workspace / "evals" / "raw.yaml"
    raw.write_text("prompts:\n  - '{{question}}'\ntargets: [fake/demo]\ntests:\n  - vars: {question: hi}\n")
    app = app_in(workspace, fake_env)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await wait_for(pilot, lambda: app.screen is screen and screen.is_mounted)
        screen.query_one("#user").load_text("What is SSE?")
        await pilot.pause()
        await raced(app, pilot)
        form = await open_promote(app, pilot)
        assert next((c.path, dict(c.vars)) for c in form.choices) == ("evals/raw.yaml", {"question": "What is SSE?"})
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: any("written to evals/raw.yaml:" in m for m in messages(app)))
    assert [t.vars for t in load_suite(raw, workspace).tests] == [{"question": "hi"}, {"question": "What is SSE?"}]


async def test_a_test_that_would_break_its_suite_is_not_written(tmp_path: Path, fake_env: dict[str, str]) -> None:
    workspace = example_workspace(tmp_path)
    app = app_in(workspace, fake_env)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await wait_for(pilot, lambda: app.screen is screen and screen.is_mounted)
        screen.query_one("#user").load_text("Say {{word}}")
        await wait_for(pilot, lambda: "word" in screen.variable_inputs)
        screen.variable_inputs["word"].value = "{{oops}}"  # the text sent holds a placeholder of its own
        await pilot.pause()
        await raced(app, pilot)
        form = await open_promote(app, pilot)
        await pilot.press("ctrl+s")
        error = form.query_one("#error")
        await wait_for(pilot, lambda: error.display)
        said = str(error.render())
        assert "would not load" in said and "needs a value for oops" in said
        assert app.screen is form and not (workspace / "evals" / "promoted.yaml").exists()


async def test_click_then_enter_loads_a_prompt_and_leaves_its_message_alone(tmp_path: Path,
                                                                            fake_env: dict[str, str]) -> None:
    workspace = example_workspace(tmp_path)
    message = "{{message}}"
    app = app_in(workspace, fake_env)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await wait_for(pilot, lambda: app.screen is screen and screen.prompts)
        listing = screen.query_one("#prompts")
        await pilot.click(listing, offset=(2, 1))  # the first (only) prompt
        await wait_for(pilot, lambda: screen.prompt is not None and screen.text_of("user") == message)
        await pilot.press("enter")  # the README's "enter loads": no newline reaches the message
        await pilot.pause()
        assert screen.text_of("user") == message
        await wait_for(pilot, lambda: "message" in screen.variable_inputs)
        screen.variable_inputs["message"].value = "Hi"
        await pilot.pause()
        await raced(app, pilot)
        run = app.last_run
        assert run is not None and run.prompt is not None and run.prompt.name == "support-reply"
        assert run.request.messages[0].content == "Hi"
        assert not any("differs from prompt" in m for m in messages(app))


async def test_both_faces_pick_the_same_targets_and_say_the_same_line(tmp_path: Path, fake_env: dict[str, str],
                                                                     fake_server: FakeServerProcess,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import workbench.ui.targets as targets_module

    monkeypatch.setattr(targets_module, "discover_targets", lambda env, providers: [])
    workspace = prompt_workspace(tmp_path)
    key = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": f"{fake_server.base_url}/v1"}
    cli = workbench("run", "hi", "--json", cwd=workspace, env=key)
    assert cli.returncode == 0, cli.stderr
    (said,) = [line.removeprefix("workbench: ") for line in cli.stderr.splitlines() if "no target given" in line]
    app = app_in(workspace, {**fake_env, **NO_KEYS, **key}, targets=None)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        notice = screen.query_one("#targets-hint")
        await wait_for(pilot, lambda: notice.display)
        assert screen.targets() == ["openai/gpt-4.1-mini"]
        assert str(notice.render()) == said
        # other targets typed: the line about the picked ones goes
        screen.query_one("#targets").value = "fake/demo"
        await pilot.pause()
        assert not notice.display


async def test_no_key_and_no_local_model_races_nothing_and_says_so(tmp_path: Path, fake_env: dict[str, str],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import workbench.core.targets as core_targets
    import workbench.ui.targets as targets_module

    monkeypatch.setattr(targets_module, "discover_targets", lambda env, providers: [])
    monkeypatch.setattr(core_targets, "local_ready", lambda model, env: False)
    app = app_in(prompt_workspace(tmp_path), {**fake_env, **NO_KEYS}, targets=None)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        notice = screen.query_one("#targets-hint")
        await wait_for(pilot, lambda: notice.display)
        assert screen.targets() == []  # no fake models raced in their place
        said = str(notice.render())
        assert said.startswith("no target given, no API key and no local model\nnext: add a key")
        screen.query_one("#user").load_text("hi")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: any("no target given" in m for m in messages(app)))
        assert app.race is None


async def test_help_names_every_key_of_the_screen_and_the_app(fake_env: dict[str, str]) -> None:
    app = WorkbenchApp(env=fake_env, targets=["fake/demo"])
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: editor(app).is_mounted)
        assert "f6 Evals" in screen_text(app).splitlines()[-1]  # the footer shows every screen's key
        await pilot.press("f3")
        race = app.get_screen("race")
        await pilot.press("f1")
        await wait_for(pilot, lambda: race.query(HelpPanel) and "Cancel all" in screen_text(app))
        shown = screen_text(app)
        for key, name in (("f2", "Editor"), ("f6", "Evals"), ("^d", "Diff"), ("^q", "Quit"), ("^t", "Light/dark"),
                          ("?", "Help")):
            assert re.search(rf"{re.escape(key)} {re.escape(name)}\b", shown), (key, name)
        assert "help_quit" not in shown and "question_mark" not in shown


async def test_a_finished_pane_keeps_its_text_until_the_final_render_replaces_it(fake_env: dict[str, str]) -> None:
    big = "tps=20000,tokens=4000"  # a long reply: its Markdown takes a while to build
    app = WorkbenchApp(env=fake_env, targets=[f"fake/demo@{big}", f"fake-anthropic/demo@{big}"])
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await wait_for(pilot, lambda: app.screen is screen and screen.is_mounted)
        screen.query_one("#user").load_text("Explain SSE")
        await pilot.press("ctrl+r")
        race = app.get_screen("race")
        await wait_for(pilot, lambda: app.screen is race and race.panes)
        blank: list[str] = []
        deadline = time.monotonic() + 60  # a bound for a stuck app only: a busy machine renders slowly
        while time.monotonic() < deadline:
            lines = screen_text(app).splitlines()
            for pane in race.panes:
                box = pane.region
                inside = [line[box.x + 2:box.right - 2] for line in lines[box.y + 3:box.bottom - 1]]
                if pane.finished and not any(row.strip() for row in inside):
                    blank.append(pane.record.target)
            if all(p.finished and p.query(".body") and not p.query(".stream") for p in race.panes):
                break
            await pilot.pause(0.002)
        assert all(p.finished and p.query(".body") and not p.query(".stream") for p in race.panes)
        assert not blank, f"finished, yet blank until the final render: {blank}"


async def test_evals_screen_runs_on_the_targets_typed(tmp_path: Path, fake_env: dict[str, str]) -> None:
    config = evals_workspace(tmp_path)
    app = WorkbenchApp(env=fake_env, config_path=str(config))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_evals(app, pilot)
        await wait_for(pilot, lambda: screen.preflight is not None and screen.preflight.calls == 4)
        progress = screen.query_one("#progress")
        assert not progress.display and "no run yet" in screen_text(app)  # no bar animating before a run
        screen.query_one("#eval-targets").value = "fake/demo@tokens=4"
        await wait_for(pilot, lambda: screen.preflight is not None and screen.preflight.calls == 2)
        await pilot.click("#run")
        await wait_for(pilot, lambda: screen.report is not None)
        table = screen.query_one("#grid-table")
        assert [str(c.label) for c in table.columns.values()] == ["test", "fake/demo@tokens=4"]
        assert screen.done_count == 2 and progress.display
        assert re.search(r"100%", screen_text(app))  # the percentage whole


async def test_a_suite_that_cannot_be_written_is_said_in_the_form(tmp_path: Path, fake_env: dict[str, str]) -> None:
    workspace = prompt_workspace(tmp_path)
    (workspace / "evals").write_text("not a folder")  # evals/promoted.yaml cannot be made
    app = app_in(workspace, fake_env)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await wait_for(pilot, lambda: app.screen is screen and screen.is_mounted)
        screen.query_one("#user").load_text("What is SSE?")
        await pilot.pause()
        await raced(app, pilot)
        form = await open_promote(app, pilot)
        await pilot.press("ctrl+s")
        error = form.query_one("#error")
        await wait_for(pilot, lambda: error.display)
        said = str(error.render())
        assert said.startswith("not promoted: ") and "evals" in said and app.screen is form, said
        assert not form.query_one("#promote").disabled  # ready for another try
