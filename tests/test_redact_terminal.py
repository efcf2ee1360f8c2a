"""A model's reply is data: its escape sequences (clear the screen, colours, set the title, set the clipboard) and
control characters never reach the terminal, through any face; line breaks and tabs stay. Rich and Textual pass
ESC through (they drop only BEL, BS, VT, FF and CR), so each face shows text from outside through ``printable``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.test_redact import HOSTILE, HOSTILE_REPLY, EchoServer
from tests.test_ui import SIZE, type_prompt, wait_for
from workbench.core.errors import PLACEHOLDER, printable
from workbench.core.evals.model import CellKey, CellResult, Grading, Observation
from workbench.ui.app import WorkbenchApp
from workbench.ui.eval_render import cell_detail
from workbench.ui.render import trace_detail

CONTROLS = [chr(c) for c in (*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0))]
"""Every C0 and C1 control but tab and line feed: none may be shown (ESC and CSI among them)."""


def controls_in(text: str) -> list[str]:
    return sorted({repr(c) for c in text if c in CONTROLS})


def test_printable_shows_escapes_and_controls_as_placeholders_and_keeps_the_text() -> None:
    shown = printable(HOSTILE_REPLY)
    assert controls_in(shown) == []
    for kept in ("Hello", " cleared ", " titled ", " clipboard ", "red", "next\tline\n", " end", "\n"):
        assert kept in shown
    assert "ZWNobyBwd25lZA==" not in shown and "owned title" not in shown  # an OSC's payload goes with it
    assert "\r\nnext" not in shown and "\nnext" in shown  # a Windows line break is a line break
    assert shown.count(PLACEHOLDER) >= 10
    assert printable("plain\ttext\nwith lines") == "plain\ttext\nwith lines"
    assert printable("\x1b[31") == f"{PLACEHOLDER}31"  # cut short: ESC goes, the rest is plain text
    assert printable("\x1b]0;unterminated") == f"{PLACEHOLDER}0;unterminated"


def test_workbench_run_shows_a_reply_without_its_escape_sequences(tmp_path: Path) -> None:
    """The human table (rich, not a terminal here: so any ESC in the output is the reply's); ``--json`` keeps the
    reply exactly, escaped as JSON."""
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))
           and k not in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS")}
    with EchoServer() as server:
        env.update(server.env(), COLUMNS="200")
        table = subprocess.run([sys.executable, "-m", "workbench", "run", "hi", "-m", f"openai/{HOSTILE}"],
                               capture_output=True, env=env, cwd=tmp_path, timeout=60)
        as_json = subprocess.run([sys.executable, "-m", "workbench", "run", "hi", "-m", f"openai/{HOSTILE}", "--json"],
                                 capture_output=True, env=env, cwd=tmp_path, timeout=60)
    assert table.returncode == 0 and as_json.returncode == 0, table.stderr + as_json.stderr
    shown = table.stdout.decode()
    assert controls_in(shown) == [] and b"\x1b" not in table.stdout + table.stderr
    assert "cleared" in shown and "titled" in shown and PLACEHOLDER in shown
    assert b"\x1b" not in as_json.stdout and json.loads(as_json.stdout)["text"] == HOSTILE_REPLY


async def test_the_tui_race_pane_and_trace_detail_show_no_escape_sequence_of_a_reply() -> None:
    with EchoServer() as server:
        app = WorkbenchApp(env=server.env(), targets=[f"openai/{HOSTILE}"])
        async with app.run_test(size=SIZE) as pilot:
            await type_prompt(pilot, "hi")
            await pilot.press("ctrl+r")
            await wait_for(pilot, lambda: app.race is not None and app.screen is app.get_screen("race"))
            race = app.get_screen("race")
            await wait_for(pilot, lambda: race.panes and all(p.finished for p in race.panes))
            await pilot.pause(0.2)
            [pane] = race.panes
            assert pane.body_text == HOSTILE_REPLY  # kept as it came, for the diff, the clipboard and promotion
            screen = app.export_screenshot()
            assert "cleared" in screen and controls_in(screen) == []
            await wait_for(pilot, lambda: len(app.traced_ids) == 1)
            await pilot.press("f4")
            traces = app.get_screen("traces")
            await wait_for(pilot, lambda: app.screen is traces and traces.detail is not None)
            await pilot.pause(0.2)
            screen = app.export_screenshot()
            assert "cleared" in screen and controls_in(screen) == []


def test_trace_detail_and_eval_cell_detail_texts_hold_no_control_character() -> None:
    """What the traces browser and the Evals screen put in their panels (``Static(markup=False)``, shown as is)."""
    call = {"id": "01J", "ts": 0.0, "target": "openai/x", "status": "error", "error": f"boom {HOSTILE_REPLY}",
            "finish_reason": "error", "cost_usd": None,
            "payload": {"request_json": json.dumps({"system": HOSTILE_REPLY,
                                                    "messages": [{"role": "user", "content": HOSTILE_REPLY}]}),
                        "response_text": HOSTILE_REPLY, "reasoning_text": HOSTILE_REPLY,
                        "attempts_json": json.dumps([{"kind": "first", "target": "openai/x", "status": 500,
                                                      "error": HOSTILE_REPLY}])}}
    detail = trace_detail(call).plain
    assert controls_in(detail) == [] and detail.count("cleared") == 6
    result = CellResult(CellKey("t", "p", "openai/x"), 0, Observation(HOSTILE_REPLY, error=f"e {HOSTILE_REPLY}"),
                        [Grading("contains", False, 0.0, HOSTILE_REPLY)], False, 0.0)
    shown = cell_detail(result.key, [result]).plain
    assert controls_in(shown) == [] and shown.count("cleared") == 3
