"""The eval runner over real HTTP against the fake server: results, traces, cache, budget, resume, repeats."""

from __future__ import annotations

import sqlite3
import sys
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx2
import pytest

from tests.resilience_helpers import requests_for
from workbench.core.evals import runner as runner_module
from workbench.core.evals.model import AssertionSpec, CellKey, CellResult, Suite, SuitePrompt, SuiteTarget, TestCase
from workbench.core.evals.report_data import report_for
from workbench.core.evals.run_store import EvalStore
from workbench.core.evals.runner import EvalRunner, RunOptions, cells, preflight
from workbench.core.pricing import PriceBook, UserPrice
from workbench.core.prompts.model import Prompt, PromptMessage
from workbench.core.resilience.caller import Caller
from workbench.core.traces.redact import Redactor
from workbench.core.traces.writer import TraceWriter
from workbench.process_settings import eval_run_settings

PRICES = PriceBook({"fake*/*": UserPrice(input_per_mtok=Decimal(1000), output_per_mtok=Decimal(2000))})


def _suite(tmp_path: Path, marker: str, *, tests: int = 3, assertions: tuple[AssertionSpec, ...] = ()) -> Suite:
    prompt = Prompt(name="greet", messages=[PromptMessage(role="user", content="Say hello to {{who}}")])
    checks = assertions or (AssertionSpec("finish-reason", "stop"), AssertionSpec("token-length", threshold=8))
    return Suite(
        name=f"suite-{marker}", path=str(tmp_path / "suite.yaml"),
        prompts=(SuitePrompt("greet@1", prompt, 1),),
        targets=(SuiteTarget(f"fake/{marker}@tokens=5", "openai"),
                 SuiteTarget(f"fake-anthropic/{marker}@tokens=5", "anthropic")),
        tests=tuple(TestCase({"who": f"person {i}"}, checks, description=f"test {i}") for i in range(tests)),
        digest=marker)


async def _run(suite: Suite, store: EvalStore, env: dict[str, str], client: httpx2.AsyncClient,
               options: RunOptions, writer: TraceWriter | None = None, resume: str | None = None) -> str:
    runner = EvalRunner(suite, store, options=options, prices=PRICES)
    run = runner.new_run() if resume is None else store.run(resume)
    if resume is not None:
        store.reopen(run)
    await runner.run(run, Caller(client), env, writer)
    return run.id


@pytest.fixture
def store(tmp_path: Path) -> EvalStore:
    return EvalStore(tmp_path / "evals.db")


async def test_every_cell_is_called_graded_stored_and_traced(tmp_path: Path, store: EvalStore,
                                                             fake_env: dict[str, str],
                                                             client: httpx2.AsyncClient) -> None:
    marker = uuid.uuid4().hex[:8]
    failing = (AssertionSpec("finish-reason", "stop"), AssertionSpec("contains", "never-in-a-fake-reply"))
    suite = _suite(tmp_path, marker, tests=2, assertions=failing)
    writer = TraceWriter(tmp_path / "traces.db")
    run_id = await _run(suite, store, fake_env, client, RunOptions(concurrency=4), writer)
    writer.close()

    run = store.run(run_id)
    assert run.status == "done" and run.cost_usd > 0
    results = [r for r, _ in store.results(run_id)]
    assert len(results) == 4 and requests_for(fake_env["WORKBENCH_FAKE_URL"], marker) == 4
    assert [(r.key.test, r.key.target) for r in results] == [  # suite order, however they finished
        ("test 0", "openai"), ("test 0", "anthropic"), ("test 1", "openai"), ("test 1", "anthropic")]
    for result in results:
        assert not result.passed and result.score == 0.5
        assert [g.passed for g in result.gradings] == [True, False]
        assert "never-in-a-fake-reply" in result.gradings[1].reason
        assert result.observation.text and result.observation.ttft_ms is not None
        assert result.trace_id is not None
    with sqlite3.connect(tmp_path / "traces.db") as conn:
        rows = conn.execute("SELECT eval_run_id, prompt_name, prompt_version FROM calls").fetchall()
    assert sorted(rows) == [(run_id, "greet", 1)] * 4
    report = report_for(store, run)
    assert report.runs == 4 and report.passes == 0


async def test_second_run_is_answered_from_the_cache_unless_told_not_to(tmp_path: Path, store: EvalStore,
                                                                       fake_env: dict[str, str],
                                                                       client: httpx2.AsyncClient) -> None:
    marker = uuid.uuid4().hex[:8]
    suite = _suite(tmp_path, marker)
    first = await _run(suite, store, fake_env, client, RunOptions())
    url = fake_env["WORKBENCH_FAKE_URL"]
    assert requests_for(url, marker) == 6
    pre = preflight(cells(suite, 1), PRICES, concurrency=4, store=store)
    assert (pre.calls, pre.cached) == (0, 6)

    second = await _run(suite, store, fake_env, client, RunOptions())
    assert requests_for(url, marker) == 6
    cached = [r for r, _ in store.results(second)]
    assert all(r.cached and r.passed for r in cached)
    def texts(results: list[CellResult]) -> dict[tuple[CellKey, int], str]:  # results come in finishing order
        return {(r.key, r.repeat): r.observation.text for r in results}

    assert texts([r for r, _ in store.results(first)]) == texts(cached)
    assert store.run(second).cost_usd == 0

    store.conn.execute("DELETE FROM eval_cache")
    store.conn.commit()
    await _run(suite, store, fake_env, client, RunOptions(use_cache=False))
    assert requests_for(url, marker) == 12
    assert store.conn.execute("SELECT count(*) FROM eval_cache").fetchone()[0] == 0  # nor written


async def test_budget_stops_cleanly_and_resume_finishes_without_repeating_a_call(
        tmp_path: Path, store: EvalStore, fake_env: dict[str, str], client: httpx2.AsyncClient) -> None:
    marker = uuid.uuid4().hex[:8]
    suite = _suite(tmp_path, marker, tests=10)
    one_call = preflight(cells(suite, 1), PRICES, concurrency=1)
    assert one_call.calls == 20 and one_call.cost_low_usd is not None and one_call.cost_high_usd is not None
    run_id = await _run(suite, store, fake_env, client, RunOptions(concurrency=1, max_cost=0.05))
    run = store.run(run_id)
    assert run.status == "stopped" and run.stop_reason is not None and run.stop_reason.startswith("budget")
    called = requests_for(fake_env["WORKBENCH_FAKE_URL"], marker)
    assert 0 < called < 20 and len(store.done_cells(run_id)) == called
    assert run.cost_usd >= 0.05

    await _run(suite, store, fake_env, client, RunOptions(concurrency=3), resume=run_id)
    assert requests_for(fake_env["WORKBENCH_FAKE_URL"], marker) == 20
    assert store.run(run_id).status == "done" and len(store.done_cells(run_id)) == 20


async def test_repeats_give_a_pass_rate_with_an_interval(tmp_path: Path, store: EvalStore,
                                                         fake_env: dict[str, str], client: httpx2.AsyncClient) -> None:
    marker = uuid.uuid4().hex[:8]
    run_id = await _run(_suite(tmp_path, marker, tests=1), store, fake_env, client, RunOptions(repeat=3))
    report = report_for(store, store.run(run_id))
    assert [(c.key.target, c.runs, c.passes) for c in report.cells] == [("openai", 3, 3), ("anthropic", 3, 3)]
    low, high = report.cells[0].interval
    assert 0.3 < low < 0.5 and high == pytest.approx(1.0)
    assert requests_for(fake_env["WORKBENCH_FAKE_URL"], marker) == 6


async def test_judge_calls_go_through_the_provider_layer_and_are_traced(
        tmp_path: Path, store: EvalStore, fake_env: dict[str, str], client: httpx2.AsyncClient) -> None:
    marker = uuid.uuid4().hex[:8]
    rubric = (AssertionSpec("llm-rubric", "is a friendly greeting", provider=f"fake/judge-{marker}"),)
    suite = _suite(tmp_path, marker, tests=1, assertions=rubric)
    writer = TraceWriter(tmp_path / "traces.db")
    await _run(suite, store, fake_env, client, RunOptions(), writer)
    writer.close()
    assert requests_for(fake_env["WORKBENCH_FAKE_URL"], f"judge-{marker}") == 2
    with sqlite3.connect(tmp_path / "traces.db") as conn:
        judged = conn.execute("SELECT count(*) FROM calls JOIN call_tags ON call_tags.call_id = calls.id "
                              "WHERE tag = 'judge' AND model LIKE ?", (f"judge-{marker}%",)).fetchone()[0]
    assert judged == 2


async def test_a_missing_variable_is_reported_with_the_test(tmp_path: Path, store: EvalStore) -> None:
    from workbench.core.errors import ConfigError

    suite = _suite(tmp_path, "x", tests=1)
    broken = Suite(**{**{f: getattr(suite, f) for f in Suite.__dataclass_fields__},
                      "tests": (TestCase({}, description="no vars", source="evals/s.yaml:7"),)})
    with pytest.raises(ConfigError, match=r"evals/s.yaml:7: test 'no vars'.*who"):
        preflight(cells(broken, 1), PRICES, concurrency=1)


@dataclass(frozen=True)
class _SlowRedactor(Redactor):
    """A redactor that takes 3 ms a text: a trace writer far slower than the calls."""

    def text(self, value: str | None) -> str | None:
        time.sleep(0.003)
        return super().text(value)


async def test_a_slow_trace_writer_holds_the_workers_back_instead_of_queueing_without_bound(
        tmp_path: Path, store: EvalStore, fake_env: dict[str, str], client: httpx2.AsyncClient,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner_module, "_TRACE_BACKLOG", 20)
    writer = TraceWriter(tmp_path / "traces.db", _SlowRedactor.build())
    backlogs: list[int] = []
    switch_intervals: set[float] = set()

    def seen(_: CellResult) -> None:
        backlogs.append(writer.backlog)
        switch_intervals.add(sys.getswitchinterval())

    suite = _suite(tmp_path, uuid.uuid4().hex[:8], tests=60)
    before = sys.getswitchinterval()
    runner = EvalRunner(suite, store, options=RunOptions(concurrency=8), prices=PRICES, on_result=seen)
    run = runner.new_run()
    with eval_run_settings():  # what `workbench eval` applies around a run
        await runner.run(run, Caller(client), fake_env, writer)
    writer.close()

    assert len(backlogs) == 120 and max(backlogs) <= 20 + 8  # the limit, plus one call per other worker
    assert max(backlogs) > 10  # the writer did fall behind: the bound was what held it
    assert switch_intervals == {0.001} and sys.getswitchinterval() == before  # prompter switches, then restored
    with sqlite3.connect(tmp_path / "traces.db") as conn:
        assert conn.execute("SELECT count(*) FROM calls WHERE eval_run_id = ?", (run.id,)).fetchone() == (120,)
