"""The Evals screen end to end against the fake server: suites, pre-flight, a live grid, cell detail,
the diff with the previous run, cancel (stored as stopped, resumed from the CLI), batch mode (each batch's
state, a stopped run resumed on the screen), and a text snapshot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2
import pytest
from textual.widgets import Static, Switch

from tests.test_cli import json_lines, workbench
from tests.test_ui import SIZE, wait_for
from tests.test_ui_more import messages
from tests.test_ui_snapshots import NO_KEYS, SIZES, check, no_blink, snapshot_name
from workbench.core.evals.model import CellKey, CellResult, Grading, Observation, RunInfo, RunReport
from workbench.core.evals.run_store import EvalStore
from workbench.core.evals.stats import summarise
from workbench.core.evals.suite import load_suite
from workbench.fakeserver.process import FakeServerProcess
from workbench.ui.app import WorkbenchApp
from workbench.ui.screens.evals import EvalsScreen

PRICED = """
[prices."fake/*"]
input_per_mtok = 1000
output_per_mtok = 2000

[prices."fake-anthropic/*"]
input_per_mtok = 1000
output_per_mtok = 2000
"""
FAILING = "never-in-a-fake-reply"


def workspace(tmp_path: Path, failing: str = FAILING, *, targets: str = "", tests: int = 2,
              extra: str = "") -> Path:
    """``evals/smoke.yaml``: ``tests`` cases on two fake targets; case 1 fails while ``failing`` is absent from
    the reply."""
    (tmp_path / "workbench.toml").write_text(PRICED, encoding="utf-8")
    (tmp_path / "evals").mkdir(exist_ok=True)
    providers = targets or ("  - id: fake/evals@tokens=6\n    label: fast\n"
                            "  - id: fake-anthropic/evals@tokens=6\n    label: other\n")
    cases = "".join(f"""  - description: case {i}
    vars: {{topic: 'topic {i}'}}
    assert:
      - type: {'contains' if i == 1 else 'regex'}
        value: '{failing if i == 1 else "[a-z]+"}'
""" for i in range(tests))
    (tmp_path / "evals" / "smoke.yaml").write_text(f"""description: smoke
prompts:
  - "Write one line about {{{{topic}}}}"
providers:
{providers}{extra}tests:
{cases}""", encoding="utf-8")
    return tmp_path / "workbench.toml"


async def open_evals(app: WorkbenchApp, pilot: Any, suite: str = "evals/smoke.yaml") -> EvalsScreen:
    await pilot.press("f6")
    found = app.get_screen("evals")
    assert isinstance(found, EvalsScreen)
    screen: EvalsScreen = found
    await wait_for(pilot, lambda: app.screen is screen and screen.suites)
    names = [str(p.relative_to(screen.workspace)) for p in screen.suites]  # type: ignore[arg-type]
    screen.query_one("#suites").highlighted = names.index(suite)  # type: ignore[attr-defined]
    return screen


def store(tmp_path: Path) -> EvalStore:
    return EvalStore(tmp_path / "evals.db")  # beside WORKBENCH_TRACES (tmp_path/traces.db)


async def test_preflight_run_grid_detail_and_diff(tmp_path: Path, fake_env: dict[str, str]) -> None:
    config = workspace(tmp_path)
    app = WorkbenchApp(env=fake_env, config_path=str(config))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_evals(app, pilot)
        await wait_for(pilot, lambda: screen.preflight is not None)
        pre = screen.preflight
        assert pre is not None and pre.calls == 4 and pre.cached == 0 and pre.input_tokens > 0
        assert pre.cost_low_usd is not None and pre.cost_high_usd is not None and pre.seconds > 0
        shown = str(screen.query_one("#preflight").render())
        assert "4 (0 cached)" in shown and f"≈{pre.input_tokens:,} tokens" in shown and "$" in shown

        await pilot.press("r")
        await wait_for(pilot, lambda: screen.report is not None)
        report = screen.report
        assert report is not None and report.run.status == "done" and (report.runs, report.passes) == (4, 2)
        assert screen.done_count == 4 and report.diff is None
        table = screen.query_one("#grid-table")
        cells = [str(table.get_cell_at((row, col))) for row in range(2) for col in (1, 2)]  # type: ignore[attr-defined]
        assert [c[0] for c in cells] == ["✓", "✓", "✗", "✗"]
        assert "FAILED" in str(screen.query_one("#summary").render())

        # enter on a failing cell: the output, each assertion with its reason, the trace id
        table.focus()
        table.move_cursor(row=1, column=2)  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.query_one("#tabs").active == "cell")  # type: ignore[attr-defined]
        detail = str(screen.query_one("#cell-detail").render())
        result = screen.results[CellKey("case 1", "prompt 1", "other")][0]
        assert result.trace_id and result.trace_id in detail and "FAIL" in detail
        assert FAILING in detail and result.gradings[0].reason in detail and result.observation.text[:20] in detail

        # fix the failing assertion and run again: the diff lists the fixes with the pass rates
        workspace(tmp_path, failing="")
        await pilot.press("r")
        await wait_for(pilot, lambda: screen.report is not None and screen.report.run.id != report.run.id)
        second = screen.report
        assert second is not None and second.diff is not None and second.passes == 4
        assert [e.key.test for e in second.diff.of("fixed")] == ["case 1", "case 1"]
        await pilot.press("d")
        diff = str(screen.query_one("#diff-text").render())
        assert "Fixes (2)" in diff and "0% (0/1) → 100% (1/1)" in diff and report.run.id in diff
        assert all(r.cached for runs in screen.results.values() for r in runs)  # unchanged requests: the cache


async def test_cancel_stops_the_run_and_the_cli_resumes_it(tmp_path: Path, fake_env: dict[str, str]) -> None:
    slow = "  - id: fake/slow@ttft=700,tokens=4\n    label: slow\n"
    config = workspace(tmp_path, targets=slow, tests=4, extra="concurrency: 1\n")
    app = WorkbenchApp(env=fake_env, config_path=str(config))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_evals(app, pilot)
        await wait_for(pilot, lambda: screen.preflight is not None)
        await pilot.press("r")
        await wait_for(pilot, lambda: screen.done_count >= 1)
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.report is not None)
        run = screen.report.run  # type: ignore[union-attr]
        assert run.status == "stopped" and run.stop_reason == "interrupted"
        assert any("--resume" in m for m in messages(app))
        assert "resume: workbench eval evals/smoke.yaml --resume" in str(screen.query_one("#summary").render())
    evals = store(tmp_path)
    try:
        stored = evals.run(run.id)
        done = len(evals.done_cells(run.id))
    finally:
        evals.close()
    assert stored.status == "stopped" and 1 <= done < 4
    resumed = workbench("eval", "evals/smoke.yaml", "--json", "--resume", run.id, "--gate", "0", cwd=tmp_path,
                        env=fake_env)
    assert resumed.returncode == 0, resumed.stderr
    summary = json_lines(resumed.stdout)[-1]
    assert summary["run"] == run.id and summary["status"] == "done" and summary["runs"] == 4


async def test_batch_mode_shows_each_batch_and_a_stopped_run_resumes_on_the_screen(
        tmp_path: Path, fake_env: dict[str, str], fake_server: FakeServerProcess) -> None:
    targets = ("  - id: fake/batchy@tokens=4,batch_polls=100000\n    label: batched\n"
               "  - id: fake-gemini/online@tokens=4\n    label: online\n")
    config = workspace(tmp_path, "", targets=targets, tests=2)
    app = WorkbenchApp(env=fake_env, config_path=str(config))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_evals(app, pilot)
        await wait_for(pilot, lambda: screen.preflight is not None)
        await pilot.press("b")
        assert screen.query_one("#batch", Switch).value
        await pilot.press("r")
        batches = screen.query_one("#batches", Static)
        await wait_for(pilot, lambda: "in_progress · 0/2 done" in str(batches.render()))
        shown = str(batches.render())
        assert "2 cell(s) in 1 new batch(es) (fake/batchy@tokens=4,batch_polls=100000: OpenAI Batch API " \
               "/v1/chat/completions)" in shown and "2 cell(s) online (no batch API: fake-gemini/online" in shown
        assert batches.display and screen.done_count == 0  # the online cells wait for the batches
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.report is not None)
        stopped = screen.report.run  # type: ignore[union-attr]
        assert (stopped.status, stopped.stop_reason) == ("stopped", "interrupted")
        assert any("resume it here (R)" in m and stopped.id in m for m in messages(app))

        httpx2.post(f"{fake_server.base_url}/_fake/batches/end")
        await pilot.press("R")
        await wait_for(pilot, lambda: screen.report is not None and screen.report.run.status == "done")
        report = screen.report
        assert report is not None and report.run.id == stopped.id and (report.runs, report.passes) == (4, 4)
        assert "collected 2 result(s)" in str(batches.render()) and screen.done_count == 4
        await pilot.press("R")  # nothing stopped is left: said, no crash
        await wait_for(pilot, lambda: any("no stopped run of suite" in m for m in messages(app)))
    evals = store(tmp_path)
    try:
        [batch] = evals.batches(stopped.id)
    finally:
        evals.close()
    assert batch.collected_at is not None and batch.target == "batched"


async def test_the_screen_honours_timeout_ms_and_writes_the_output_path(tmp_path: Path,
                                                                        fake_env: dict[str, str]) -> None:
    targets = "  - id: fake/ok@tokens=3\n    label: ok\n  - id: fake/stuck@hang=headers\n    label: stuck\n"
    extra = f"evaluateOptions: {{timeoutMs: 1500}}\noutputPath: ['{tmp_path / 'out.json'}', out.txt]\n"
    config = workspace(tmp_path, "", targets=targets, tests=1, extra=extra)
    app = WorkbenchApp(env=fake_env, config_path=str(config))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_evals(app, pilot)
        await wait_for(pilot, lambda: screen.preflight is not None)
        await pilot.press("r")
        await wait_for(pilot, lambda: screen.report is not None)
        (stuck,) = screen.results[CellKey("case 0", "prompt 1", "stuck")]
        assert stuck.observation.error == "Evaluation timed out after 1500ms" and not stuck.passed
        assert screen.results[CellKey("case 0", "prompt 1", "ok")][0].passed
        await wait_for(pilot, lambda: any("wrote" in m and "out.txt" in m for m in messages(app)))
    document = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert [r["provider"]["label"] for r in document["results"]["results"]] == ["ok", "stuck"]
    assert "Evaluation timed out after 1500ms" in (tmp_path / "out.txt").read_text(encoding="utf-8")


async def test_load_errors_and_warnings_are_notifications_with_file_and_line(
        tmp_path: Path, fake_env: dict[str, str]) -> None:
    config = workspace(tmp_path, extra="sharing: true\n")
    (tmp_path / "evals" / "broken.yaml").write_text("prompts:\n  - hi\nproviders: [fake/x]\ntests: 7\n",
                                                    encoding="utf-8")
    app = WorkbenchApp(env=fake_env, config_path=str(config))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_evals(app, pilot, "evals/broken.yaml")
        await wait_for(pilot, lambda: any("broken.yaml:4" in m for m in messages(app)))
        assert any("broken.yaml:4" in m and "next:" in m for m in messages(app))
        assert "did not load" in str(screen.query_one("#preflight").render())
        await pilot.press("r")  # the file is still the selection: the run fails with a notification, no crash
        await wait_for(pilot, lambda: screen.control is None and sum("broken.yaml:4" in m for m in messages(app)) > 1)
        screen.query_one("#suites").highlighted = 1  # type: ignore[attr-defined]
        await wait_for(pilot, lambda: any("smoke.yaml:" in m and "sharing" in m for m in messages(app)))
        await wait_for(pilot, lambda: screen.preflight is not None)


@pytest.mark.parametrize("size", SIZES)
async def test_evals_snapshot(tmp_path: Path, size: tuple[int, int]) -> None:
    config = workspace(tmp_path)
    app = WorkbenchApp(env=NO_KEYS, config_path=str(config))
    async with app.run_test(size=size) as pilot:
        screen = await open_evals(app, pilot)
        await wait_for(pilot, lambda: screen.preflight is not None)
        suite = load_suite(tmp_path / "evals" / "smoke.yaml", tmp_path)
        run = RunInfo(id="01JSNAPSHOTRUN", suite=suite.name, suite_path=suite.path, suite_digest=suite.digest,
                      started_at=0.0, status="done", cost_usd=0.000168)
        results = [fixed_result(test.key, target.label, passed=test.key != "case 1")
                   for test in suite.tests for target in suite.targets]
        screen._started(suite, run, 4)
        screen._arrived.extend(results)
        screen._finished(RunReport(run, summarise(results, {}), gate=1.0))
        await wait_for(pilot, lambda: screen.preflight is not None and screen.done_count == 4)
        no_blink(app)
        await check(pilot, snapshot_name("evals", size))


def fixed_result(test: str, target: str, *, passed: bool) -> CellResult:
    grading = Grading("contains" if not passed else "regex", passed, float(passed),
                      "the reply does not contain 'never-in-a-fake-reply'" if not passed else "matches")
    observation = Observation("A line about the topic.", finish="stop", latency_ms=412.0, ttft_ms=120.0,
                              cost_usd=0.000042, input_tokens=14, output_tokens=6)
    return CellResult(CellKey(test, "prompt 1", target), 0, observation, [grading], passed, float(passed),
                      trace_id="01JTRACE")
