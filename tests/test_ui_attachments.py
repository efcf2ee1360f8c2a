"""The editor's attach action (ctrl+o): a path typed in a form attaches the file to the last user turn; the live
meter counts it by the target's rule, the race sends it, and '-' removes it."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input, Static

from tests.conftest import prompt_workspace
from tests.images import png
from tests.test_ui import SIZE, editor, type_prompt, wait_for
from tests.test_ui_more import messages
from tests.test_ui_prompts import app_in, trace_rows
from workbench.ui.screens.modals import NameScreen

TARGET = "fake/gpt-4o@tokens=4"


async def test_ctrl_o_attaches_an_image_the_meter_counts_and_the_race_sends(tmp_path: Path,
                                                                            fake_env: dict[str, str]) -> None:
    workspace = prompt_workspace(tmp_path)
    (tmp_path / "chart.png").write_bytes(png(1024, 1024))
    (tmp_path / "notes.png").write_text("not an image")
    app = app_in(workspace, fake_env, targets=(TARGET,))
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await type_prompt(pilot, "Describe it")
        await wait_for(pilot, lambda: screen.meter.rows()[0]["tokens"] is not None)
        text_only = int(str(screen.meter.rows()[0]["tokens"]))

        async def attach(path: str) -> None:
            await pilot.press("ctrl+o")
            await wait_for(pilot, lambda: isinstance(app.screen, NameScreen))
            app.screen.query_one(Input).value = path
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.screen is screen)

        await attach(str(tmp_path / "notes.png"))
        await wait_for(pilot, lambda: any("notes.png: not a PNG" in m for m in messages(app)))
        assert screen.attachments == []

        await attach(str(tmp_path / "chart.png"))
        assert [a.name for a in screen.attachments] == ["chart.png"]
        assert "chart.png (image/png" in str(screen.query_one("#attachments", Static).render())
        row = screen.meter.rows()[0]
        assert row["tokens"] == text_only + 765 and row["exact"] is False  # 4 tiles of 512 px + 85
        await wait_for(pilot, lambda: screen.meter.estimates.get(TARGET) is not None
                       and screen.meter.estimates[TARGET].input_tokens == text_only + 765)

        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: len(app.traced_ids) == 1)
        assert app.last_run is not None
        assert [a.name for a in app.last_run.request.messages[-1].attachments] == ["chart.png"]
        await wait_for(pilot, lambda: bool(trace_rows()) and trace_rows()[0]["input_tokens"] is not None)
        assert trace_rows()[0]["input_tokens"] >= 765  # the fake server counted the image

        await pilot.press("f2")  # back to the editor
        await wait_for(pilot, lambda: app.screen is screen)
        await attach("detail extreme")
        await wait_for(pilot, lambda: any("detail extreme: not one of low, high, auto" in m for m in messages(app)))
        await attach("detail low")  # one 512 px pass: 85 tokens, counted and sent
        assert [a.detail for a in screen.attachments] == ["low"]
        assert "detail low" in str(screen.query_one("#attachments", Static).render())
        await wait_for(pilot, lambda: screen.meter.rows()[0]["tokens"] == text_only + 85)
        assert [str(e) if isinstance(e, str) else (e.path.endswith("chart.png"), e.detail)
                for e in screen.attachment_paths()] == [(True, "low")]
        await attach("detail none")
        assert [a.detail for a in screen.attachments] == [None]
        await attach("-")  # '-' removes them
        assert screen.attachments == [] and not screen.query_one("#attachments", Static).display


CHART = """name: chart
messages:
  - role: user
    content: What does it show?
    attachments: [images/chart.png]
"""


async def test_a_prompts_attachments_load_and_save_back_as_written(tmp_path: Path, fake_env: dict[str, str]) -> None:
    from tests.test_ui_prompts import load_listed_prompt
    from workbench.core.prompts import load_current

    workspace = prompt_workspace(tmp_path, chart=CHART)
    (workspace / "prompts" / "images").mkdir()
    (workspace / "prompts" / "images" / "chart.png").write_bytes(png(300, 200))
    app = app_in(workspace, fake_env, targets=(TARGET,))
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await load_listed_prompt(app, pilot, "chart")
        assert [(a.name, a.width, a.height) for a in screen.attachments] == [("chart.png", 300, 200)]
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: any("chart v1" in m for m in messages(app)))
        assert load_current(workspace, "chart").messages[0].attachments == ["images/chart.png"]
        assert (workspace / "prompts" / "chart.yaml").read_text() == CHART
