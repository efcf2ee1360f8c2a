"""The Textual face, headless: cold start to first paint, keystroke → meter latency, streaming lag.

1. **Cold start**: a fresh interpreter imports the app and runs it headless until the editor's first
   refresh; wall time from spawning the process, median of ``--starts`` runs. Also lists which heavy
   modules (httpx2, tiktoken, sqlmodel, genai_prices) were already imported at that moment (goal: none).
2. **Keystroke → meter on screen** at ~100k tokens in the user message: time from a key press (pilot)
   to the first screen refresh after the meter was redrawn (``call_after_refresh``), i.e. the frame
   showing both the typed character and the new count; p50/p99 over ``--keys`` presses in the
   middle of the text.
3. **4 panes × 100 tok/s**: a real race of four fake targets through the network process; event-loop
   lag from a 5 ms probe timer (p50/p99/max), display staleness (chunk arrival → first flush showing
   it, p50/p99), and the UI process's CPU share.

Headless: terminal output cost is excluded, so a real terminal is somewhat slower.

    python -m bench.ui [--starts 5] [--keys 100] [--tokens 100000] [--stream-tokens 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

SIZE = (160, 48)
HEAVY = ("httpx2", "tiktoken", "sqlmodel", "genai_prices")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# -- 1. cold start -------------------------------------------------------------------------------------

CHILD = """
import sys, time, json
HEAVY = __HEAVY__
from workbench.ui.app import WorkbenchApp
from workbench.ui.screens.editor import EditorScreen
heavy = []
original = EditorScreen.after_first_paint
def after_first_paint(self):  # the editor's first refresh is done: record, then let the heavy work start
    heavy.extend(m for m in HEAVY if m in sys.modules)
    print(json.dumps({"t": time.time(), "heavy": heavy}), flush=True)
    original(self)
    self.app.exit()
EditorScreen.after_first_paint = after_first_paint
WorkbenchApp(targets=["fake/demo"]).run(headless=True, size=(160, 48))
""".replace("__HEAVY__", repr(HEAVY))


def cold_start(runs: int) -> None:
    _isolated_traces()
    times, heavy = [], []
    for _ in range(runs):
        t0 = time.time()
        out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60, check=True)
        line = json.loads(next(x for x in out.stdout.splitlines() if x.startswith('{"t"')))
        times.append((line["t"] - t0) * 1000)
        heavy = line["heavy"]
    print(f"cold start → first paint: median {statistics.median(times):.0f} ms "
          f"(min {min(times):.0f}, max {max(times):.0f}, {runs} runs); heavy modules at first paint: "
          f"{', '.join(heavy) or 'none'}")


# The same first paint for any Textual app, headless, 160×48: the first screen refresh once the app is running
# (Textual's public hooks: ``App.run(auto_pilot=...)``, then ``call_after_refresh``).
PAINT_CHILD = """
import os, sys, time
from textual.app import App

async def first_paint(pilot):
    def painted():
        print(repr(time.time()), flush=True)
        os._exit(0)
    pilot.app.call_after_refresh(painted)

run = App.run
def headless(self, *args, **kwargs):
    return run(self, *args, **{**kwargs, "headless": True, "size": (160, 48), "auto_pilot": first_paint})
App.run = headless
sys.argv = [__NAME__]
__START__
"""
STARTS = {
    "workbench": "from workbench.ui.app import WorkbenchApp\nWorkbenchApp(targets=['fake/demo']).run()",
    "posting": "from posting.__main__ import cli\ncli()",
    "elia": "from elia_chat.__main__ import cli\ncli()",
}


def compare_first_paint(pythons: dict[str, str], runs: int) -> None:
    """Cold start → first paint of this app and of other Textual apps, each in the interpreter that has it."""
    for name, python in {"workbench": sys.executable, **pythons}.items():
        code = PAINT_CHILD.replace("__NAME__", repr(name)).replace("__START__", STARTS[name])
        times = []
        with tempfile.TemporaryDirectory() as home:  # a fresh config and data dir for each app
            env = {**os.environ, "HOME": home, "XDG_CONFIG_HOME": home, "XDG_DATA_HOME": home}
            for _ in range(runs):
                t0 = time.time()
                out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60, env=env,
                                     cwd=home)
                lines = out.stdout.strip().splitlines()
                if out.returncode != 0 or not lines:
                    print(f"{name}: did not paint ({(out.stderr.strip().splitlines() or ['no output'])[-1]})")
                    break
                times.append((float(lines[-1]) - t0) * 1000)
        if times:
            print(f"first paint, same hook for every app: {name} median {statistics.median(times):.0f} ms "
                  f"(min {min(times):.0f}, max {max(times):.0f}, {len(times)} runs)")


# -- 2. keystroke → meter --------------------------------------------------------------------------------

async def keystrokes(tokens: int, keys: int) -> None:
    _isolated_traces()
    from bench.token_meter import build_prompt
    from workbench.core.tokens.encodings import count_text
    from workbench.ui.app import WorkbenchApp
    from workbench.ui.screens.editor import EditorScreen
    from workbench.ui.widgets.editor.prompt_area import PromptArea

    text = build_prompt(tokens, lambda s: count_text(s), seed=7)
    app = WorkbenchApp(targets=["openai/gpt-4.1-mini", "anthropic/claude-sonnet-4-5"])
    async with app.run_test(size=SIZE) as pilot:
        editor = app.get_screen("editor", EditorScreen)
        while not (app.screen is editor and editor.meters):
            await pilot.pause(0.05)
        area = editor.query_one("#user", PromptArea)
        t_load = time.perf_counter()
        area.load_text(text)
        while not (editor.meters and len(editor.meters[("user", "o200k_base")]) == len(text)):
            await pilot.pause(0.01)
        print(f"initial count of {tokens:,} tokens (thread worker): {(time.perf_counter() - t_load) * 1000:.0f} ms")
        area.focus()
        area.move_cursor((area.document.line_count // 2, 0))
        renders: list[float] = []
        painted: list[float] = []
        meter = editor.meter
        original = meter.render_meter

        def timed() -> None:  # the meter redrawn: the next screen refresh shows it
            original()
            renders.append(time.perf_counter())
            editor.call_after_refresh(lambda: painted.append(time.perf_counter()))

        meter.render_meter = timed  # type: ignore[method-assign]
        handler_ms: list[float] = []

        edited = meter.edited

        def handler(*args: Any) -> None:
            t = time.perf_counter()
            edited(*args)
            handler_ms.append((time.perf_counter() - t) * 1000)

        meter.edited = handler  # type: ignore[method-assign,assignment]
        latencies = []
        for i in range(keys):
            renders.clear()
            painted.clear()
            start = time.perf_counter()
            await pilot.press("backspace" if i % 5 == 4 else "x")
            while not painted:
                await pilot.pause(0.001)
            latencies.append((painted[0] - start) * 1000)
        counted = editor.meters[("user", "o200k_base")]
        from workbench.core.tokens.encodings import get_encoding

        assert counted.count == len(get_encoding("o200k_base").encode_ordinary(area.text)), "meter drifted"
        print(f"keystroke → meter on screen at {counted.count:,} tokens: p50 {pct(latencies, 0.5):.1f} ms, "
              f"p99 {pct(latencies, 0.99):.1f} ms, max {max(latencies):.1f} ms "
              f"({keys} keys; exact count checked);\n  of which the meter's own work "
              f"(edit the meters + re-render): p50 {pct(handler_ms, 0.5):.2f} ms, "
              f"p99 {pct(handler_ms, 0.99):.2f} ms — the rest is key dispatch and drawing the screen")


# -- 3. streaming ------------------------------------------------------------------------------------------

async def streaming(stream_tokens: int) -> None:
    _isolated_traces()
    from workbench.fakeserver.process import fake_server_process
    from workbench.ui.app import WorkbenchApp
    from workbench.ui.screens.editor import EditorScreen
    from workbench.ui.screens.race import RaceScreen
    from workbench.ui.widgets.editor.prompt_area import PromptArea

    targets = [f"fake/p{i}@tps=100,tokens={stream_tokens},ttft=100" for i in range(4)]
    with fake_server_process() as server:
        app = WorkbenchApp(env={"WORKBENCH_FAKE_URL": server.base_url}, targets=targets)
        stale: list[float] = []
        shown: dict[int, int] = {}
        lags: list[float] = []
        original = RaceScreen.flush

        def flush(self: RaceScreen) -> None:
            now = time.perf_counter_ns()
            for pane in self.panes:
                chunks = pane.record.timing.chunk_ns
                first = shown.get(id(pane), 0)
                if len(chunks) > first and self.is_current:
                    stale.append((now - chunks[first]) / 1e6)
                    shown[id(pane)] = len(chunks)
            original(self)

        RaceScreen.flush = flush  # type: ignore[method-assign]
        try:
            async with app.run_test(size=SIZE) as pilot:
                editor = app.get_screen("editor", EditorScreen)
                while app.screen is not editor:
                    await pilot.pause(0.05)
                editor.query_one("#user", PromptArea).load_text("Write a long answer with lists and code.")
                await pilot.pause(0.3)
                last = [time.perf_counter()]

                def probe() -> None:
                    now = time.perf_counter()
                    lags.append((now - last[0] - 0.005) * 1000)
                    last[0] = now

                cpu0, wall0 = time.process_time(), time.perf_counter()
                app.set_interval(0.005, probe)
                await pilot.press("ctrl+r")
                while app.race is None or not app.race.done:
                    await pilot.pause(0.05)
                cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
                race = app.race
        finally:
            RaceScreen.flush = original  # type: ignore[method-assign]
    chunks = sum(len(r.timing.chunk_ns) for r in race.records)
    print(f"4 panes × 100 tok/s ({chunks} chunks in {wall:.1f} s): loop lag p50 {pct(lags, 0.5):.1f} ms, "
          f"p95 {pct(lags, 0.95):.1f} ms, "
          f"p99 {pct(lags, 0.99):.1f} ms, max {max(lags):.1f} ms; display staleness p50 {pct(stale, 0.5):.0f} ms, "
          f"p99 {pct(stale, 0.99):.0f} ms; UI process CPU {cpu / wall:.0%} of one core")


def _isolated_traces() -> None:
    """Never write the bench's calls into the user's trace log."""
    if not os.environ.get("WORKBENCH_TRACES"):
        import tempfile

        os.environ["WORKBENCH_TRACES"] = os.path.join(tempfile.mkdtemp(prefix="bench-ui-"), "traces.db")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--keys", type=int, default=100)
    parser.add_argument("--tokens", type=int, default=100_000)
    parser.add_argument("--stream-tokens", type=int, default=500)
    parser.add_argument("--compare", action="append", default=[], metavar="APP=PYTHON",
                        help="also time posting or elia to first paint, with an interpreter that has it installed")
    args = parser.parse_args()
    cold_start(args.starts)
    if args.compare:
        compare_first_paint(dict(item.split("=", 1) for item in args.compare), args.starts)
    asyncio.run(keystrokes(args.tokens, args.keys))
    asyncio.run(streaming(args.stream_tokens))


if __name__ == "__main__":
    main()
