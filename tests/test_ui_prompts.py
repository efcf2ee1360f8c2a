"""The TUI's workspace files, against the fake server: the prompts list (load, run linked to a version, ctrl+s),
sessions (save a race, open one), promoting a reply to a test case, and the targets picked when none are given."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import prompt_workspace
from tests.test_ui import SIZE, editor, wait_for
from tests.test_ui_more import messages
from tests.test_ui_snapshots import NO_KEYS
from workbench.core.config import load_settings
from workbench.core.errors import ConfigError
from workbench.core.evals.suite import load_suite
from workbench.core.prompts import load_current, versions
from workbench.core.sessions import load_session_file
from workbench.core.targets import default_targets
from workbench.core.traces.store import TraceStore
from workbench.ui.app import WorkbenchApp
from workbench.ui.screens.modals import PickScreen, PromoteScreen, prefill

TARGET = "fake/demo@tps=300,tokens=8"
SUMMARISE = """name: summarise
params:
  temperature: 0.2
  max_tokens: 64
system: You summarise in {{max_points}} points.
messages:
  - role: user
    content: "Summarise: {{text}}"
variables:
  text:
    description: the text
  max_points:
    default: "3"
"""


def trace_rows() -> list[dict[str, Any]]:
    store = TraceStore(Path(os.environ["WORKBENCH_TRACES"]))
    try:
        return store.page()
    finally:
        store.close()


def app_in(workspace: Path, env: dict[str, str], targets: Sequence[str] | None = (TARGET,)) -> WorkbenchApp:
    return WorkbenchApp(env=env, targets=targets, config_path=str(workspace / "workbench.toml"))


async def load_listed_prompt(app: WorkbenchApp, pilot: Any, name: str) -> None:
    screen = editor(app)
    await wait_for(pilot, lambda: app.screen is screen and screen.prompts)
    listing = screen.query_one("#prompts")
    listing.focus()
    listing.highlighted = [p.name for p in screen.prompts].index(name)
    await pilot.press("enter")
    await wait_for(pilot, lambda: screen.prompt is not None and screen.prompt.name == name)
    await pilot.pause()


async def race_and_trace(app: WorkbenchApp, pilot: Any, traced: int) -> None:
    await pilot.press("ctrl+r")
    await wait_for(pilot, lambda: len(app.traced_ids) == traced)


async def test_prompt_list_loads_runs_linked_to_its_version_and_saves(tmp_path: Path,
                                                                       fake_env: dict[str, str]) -> None:
    workspace = prompt_workspace(tmp_path, summarise=SUMMARISE, broken="name: broken\nmessages: [\n")
    app = app_in(workspace, fake_env)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await wait_for(pilot, lambda: any("broken.yaml:" in m and "next:" in m for m in messages(app)))
        await load_listed_prompt(app, pilot, "summarise")
        assert [p.name for p in screen.prompts] == ["summarise"]  # the malformed file is reported, not listed
        assert screen.text_of("system") == "You summarise in {{max_points}} points."
        assert screen.text_of("user") == "Summarise: {{text}}"
        assert screen.query_one("#temperature").value == "0.2" and screen.query_one("#max-tokens").value == "64"
        await wait_for(pilot, lambda: "max_points" in screen.variable_inputs and "text" in screen.variable_inputs)
        assert screen.variable_inputs["max_points"].value == "3"  # the default
        screen.variable_inputs["text"].value = "SSE"
        await pilot.pause()

        # a run pins the working file (version 1) and its trace rows name it
        await race_and_trace(app, pilot, 1)
        assert app.last_run is not None and app.last_run.request.messages[0].content == "Summarise: SSE"
        row = trace_rows()[0]
        assert (row["prompt_name"], row["prompt_version"]) == ("summarise", 1)

        # ctrl+s: the edited editor becomes the file and version 2; again: unchanged
        await pilot.press("f2")
        screen.query_one("#user").load_text("Summarise briefly: {{text}}")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "saved summarise v2" in messages(app))
        assert load_current(workspace, "summarise").messages[0].content == "Summarise briefly: {{text}}"
        assert load_current(workspace, "summarise").variables["max_points"].default == "3"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "unchanged: summarise v2" in messages(app))
        assert [v.number for v in versions(workspace, "summarise")] == [1, 2]

        # edited but not saved: the race runs, linked to no version
        screen.query_one("#user").load_text("Something else: {{text}}")
        await pilot.pause()
        await race_and_trace(app, pilot, 2)
        assert any("differs from prompt summarise v2" in m for m in messages(app))
        latest = next(r for r in trace_rows() if r["id"] == app.traced_ids[-1])
        assert latest["prompt_name"] is None and latest["prompt_version"] is None


async def test_ctrl_s_without_a_prompt_says_what_to_do(tmp_path: Path, fake_env: dict[str, str]) -> None:
    app = app_in(prompt_workspace(tmp_path), fake_env)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await wait_for(pilot, lambda: app.screen is screen and screen.ready)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: any("no prompt file loaded" in m and "next:" in m for m in messages(app)))


async def summarise_raced(app: WorkbenchApp, pilot: Any) -> Any:
    """Load the listed ``summarise`` prompt, race it on its target and wait for the race to finish."""
    screen = editor(app)
    await load_listed_prompt(app, pilot, "summarise")
    screen.variable_inputs["text"].value = "SSE"
    await pilot.pause()
    await race_and_trace(app, pilot, 1)
    race = app.get_screen("race")
    await wait_for(pilot, lambda: app.screen is race and race.panes and all(p.finished for p in race.panes))
    return race


async def test_save_a_race_as_a_session_and_open_it(tmp_path: Path, fake_env: dict[str, str]) -> None:
    workspace = prompt_workspace(tmp_path, summarise=SUMMARISE)
    app = app_in(workspace, fake_env)
    async with app.run_test(size=SIZE) as pilot:
        await summarise_raced(app, pilot)
        screen = editor(app)
        await pilot.press("s")
        await wait_for(pilot, lambda: app.screen.query("#name"))
        app.screen.query_one("#name").value = "sse-summary"
        await pilot.press("enter")
        path = workspace / "sessions" / "sse-summary.yaml"
        await wait_for(pilot, lambda: "saved session sessions/sse-summary.yaml" in messages(app))
        session = load_session_file(path)
        assert session.prompt is not None and (session.prompt.name, session.prompt.version) == ("summarise", 1)
        assert session.variables == {"max_points": "3", "text": "SSE"} and session.targets == [TARGET]
        assert session.request.messages[0].content == "Summarise: SSE"
        assert [r.trace_id for r in session.results] == app.traced_ids
        saved = next(r for r in trace_rows() if r["id"] == app.traced_ids[0])
        assert saved["session_id"] == "sse-summary"  # the saved race's own calls join the session
        # a re-run of the saved race is traced under the session's name
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: len(app.traced_ids) == 2)
        rerun = next(r for r in trace_rows() if r["id"] == app.traced_ids[-1])
        assert rerun["session_id"] == "sse-summary" and rerun["prompt_version"] == 1

        # open it (palette command) into a fresh editor: request and targets; its race links to it
        await pilot.press("f2")
        screen.query_one("#user").load_text("other")
        screen.query_one("#targets").value = "fake/other"
        app.open_session()
        await wait_for(pilot, lambda: isinstance(app.screen, PickScreen))
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.session is not None and app.screen is screen)
        assert screen.text_of("user") == "Summarise: SSE" and screen.targets() == [TARGET]
        assert screen.prompt is None and screen.query_one("#max-tokens").value == "64"
        await race_and_trace(app, pilot, 3)
        row = next(r for r in trace_rows() if r["id"] == app.traced_ids[-1])
        assert (row["session_id"], row["prompt_name"], row["prompt_version"]) == ("sse-summary", "summarise", 1)


async def test_open_session_without_sessions_notifies(tmp_path: Path, fake_env: dict[str, str]) -> None:
    workspace = prompt_workspace(tmp_path)
    (workspace / "sessions").mkdir()
    (workspace / "sessions" / "bad.yaml").write_text("name: bad\ntargets: 3\n")
    app = app_in(workspace, fake_env)
    async with app.run_test(size=SIZE) as pilot:
        app.open_session()
        await wait_for(pilot, lambda: any("bad.yaml:" in m for m in messages(app))
                       and any("no session to open" in m for m in messages(app)))


def test_prefill_takes_what_fits_each_assertion() -> None:
    reply = "\n  First line (a).\nsecond"
    assert prefill("contains", reply) == prefill("icontains", reply) == "First line (a)."
    assert prefill("equals", reply) == reply and prefill("regex", reply) == r"First\ line\ \(a\)\."
    assert prefill("not-contains", reply) == prefill("llm-rubric", reply) == ""


async def test_promote_a_reply_to_a_new_suite_then_to_it_again(tmp_path: Path, fake_env: dict[str, str]) -> None:
    workspace = prompt_workspace(tmp_path, summarise=SUMMARISE)
    app = app_in(workspace, fake_env)
    async with app.run_test(size=SIZE) as pilot:
        race = await summarise_raced(app, pilot)
        reply = race.panes[0].body_text

        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, PromoteScreen))
        form = app.screen
        assert [(c.path, c.new) for c in form.choices] == [("evals/summarise.yaml", True)]  # a new one, named after it
        assert form.query_one("#value").value == prefill("contains", reply)
        await pilot.press("ctrl+s")
        path = workspace / "evals" / "summarise.yaml"
        await wait_for(pilot, lambda: any("written to evals/summarise.yaml:" in m for m in messages(app)))
        suite = load_suite(path, workspace)
        assert [p.label for p in suite.prompts] == ["summarise@1"] and [t.ref for t in suite.targets] == [TARGET]
        (test,) = suite.tests
        assert test.vars == {"max_points": "3", "text": "SSE"}
        assert [(a.type, a.value) for a in test.assertions] == [("contains", prefill("contains", reply))]

        # the suite exists now: promote again, to it, with another assertion type
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, PromoteScreen))
        form = app.screen
        assert [(c.path, c.new) for c in form.choices] == [("evals/summarise.yaml", False),
                                                          ("evals/summarise-2.yaml", True)]
        assert form.choice.path == "evals/summarise.yaml"
        form.query_one("#kind").value = "llm-rubric"
        await pilot.pause()
        assert form.query_one("#value").value == ""
        form.query_one("#value").value = "is a summary"
        form.query_one("#description").value = "judged"
        await pilot.click("#promote")
        await wait_for(pilot, lambda: sum("written to evals/summarise.yaml:" in m for m in messages(app)) == 2)
        line = int(next(m for m in reversed(messages(app)) if "written to" in m).rsplit(":", 1)[1])
        # the test starts there, written like the test before it
        assert path.read_text().splitlines()[line - 1].strip() in ("- description: judged", "- description: 'judged'")
        tests = load_suite(path, workspace).tests
        assert [t.description for t in tests][-1] == "judged"
        assert [(a.type, a.value) for a in tests[-1].assertions] == [("llm-rubric", "is a summary")]


async def test_targets_preselected_without_keys(tmp_path: Path, fake_env: dict[str, str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import workbench.ui.targets as targets_module

    monkeypatch.setattr(targets_module, "discover_targets", lambda env, providers: [])  # no local servers
    workspace = prompt_workspace(tmp_path)
    try:
        chosen = default_targets(NO_KEYS, load_settings(workspace / "workbench.toml"), list)
        expected, hint = chosen.targets, chosen.notice
    except ConfigError as exc:  # no local model either: no target, and why (as workbench run says it)
        expected, hint = [], exc.message
    app = app_in(workspace, {**fake_env, **NO_KEYS}, targets=None)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        notice = screen.query_one("#targets-hint")
        await wait_for(pilot, lambda: notice.display)
        assert screen.targets() == expected and app.default_targets() == expected
        assert hint is not None and hint in str(notice.render())
        assert "workbench keys set openai" in str(notice.render())
        # a key set meanwhile (as on f5): back in the editor, the keyed defaults replace the preselection
        app.env["OPENAI_API_KEY"] = "sk-test-0123456789abcd"
        keyed = default_targets(app.env, load_settings(workspace / "workbench.toml"), list)
        await pilot.press("f5")
        await pilot.press("f2")
        await wait_for(pilot, lambda: screen.targets() == keyed.targets and keyed.notice in str(notice.render()))


async def test_a_local_target_starts_the_local_server_once_for_the_app(tmp_path: Path, fake_env: dict[str, str],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import workbench.core.local_model as local_model

    started: list[list[str]] = []
    stopped: list[bool] = []

    @contextlib.contextmanager
    def fake_local_server(models: Sequence[str]) -> Iterator[str]:
        started.append(list(models))
        try:
            yield "http://127.0.0.1:1"
        finally:
            stopped.append(True)

    monkeypatch.setattr(local_model, "local_server", fake_local_server)
    app = app_in(prompt_workspace(tmp_path), {**fake_env, local_model.LOCAL_URL_ENV: ""})
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: editor(app).ready)
        for _ in range(2):
            env = await asyncio.to_thread(app.target_env, ["local/smollm2-135m", TARGET])
            assert env[local_model.LOCAL_URL_ENV] == "http://127.0.0.1:1"
        assert started == [["smollm2-135m"]] and not stopped
        assert any("starting the local model server" in m for m in messages(app))
    assert stopped == [True]
