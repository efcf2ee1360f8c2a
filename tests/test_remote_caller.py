"""An eval run through the network process (the TUI's Evals screen): the same results, honest TTFTs."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from tests.resilience_helpers import requests_for
from tests.test_eval_runner import PRICES, _suite
from workbench.core.call_record import CallRecord
from workbench.core.errors import CallCancelledError, ProviderHTTPError
from workbench.core.evals.run_store import EvalStore
from workbench.core.evals.runner import EvalRunner, RunOptions
from workbench.core.netproc import NetworkProcess
from workbench.core.policy import PolicySet
from workbench.core.remote_caller import RemoteCaller
from workbench.core.request import ChatRequest


@pytest.fixture(scope="module")
def net() -> NetworkProcess:
    with NetworkProcess() as process:
        yield process  # type: ignore[misc]


async def test_an_eval_run_through_the_network_process_grades_every_cell(
    tmp_path: Path, fake_env: dict[str, str], net: NetworkProcess
) -> None:
    marker = uuid.uuid4().hex[:8]
    store = EvalStore(tmp_path / "evals.db")
    runner = EvalRunner(_suite(tmp_path, marker, tests=3), store, options=RunOptions(concurrency=4), prices=PRICES)
    run = runner.new_run()
    await runner.run(run, RemoteCaller(net), fake_env, None)
    results = [r for r, _ in store.results(run.id)]
    assert len(results) == 6 and all(r.passed for r in results)
    assert all(r.observation.ttft_ms is not None and r.observation.cost_usd for r in results)
    assert requests_for(fake_env["WORKBENCH_FAKE_URL"], marker) == 6
    assert store.run(run.id).status == "done"


async def test_a_failed_call_comes_back_as_the_record_and_never_raises(
    fake_env: dict[str, str], net: NetworkProcess
) -> None:
    record = CallRecord("fake/x@status=401,fail=9,id=remote-401", ChatRequest.from_prompt("hi"))
    await RemoteCaller(net).call(record, env=fake_env, policies=PolicySet().with_defaults(retry={"max_retries": 0}))
    assert isinstance(record.error, ProviderHTTPError) and record.error.status == 401 and record.done


async def test_cancelling_the_awaiting_task_cancels_the_remote_call(
    fake_env: dict[str, str], net: NetworkProcess
) -> None:
    marker = f"hang-{uuid.uuid4().hex[:8]}"
    record = CallRecord(f"fake/{marker}@hang=stream", ChatRequest.from_prompt("hi"))
    task = asyncio.create_task(RemoteCaller(net).call(record, env=fake_env))
    deadline = asyncio.get_running_loop().time() + 10
    while not requests_for(fake_env["WORKBENCH_FAKE_URL"], marker):  # the call is under way in the child
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    follow_up = CallRecord("fake/after@tokens=2", ChatRequest.from_prompt("hi"))
    await RemoteCaller(net).call(follow_up, env=fake_env)
    assert follow_up.status == "ok"
    assert not isinstance(follow_up.error, CallCancelledError)
