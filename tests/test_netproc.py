"""The network process: races run in a child interpreter and their records are mirrored here."""

from __future__ import annotations

import pickle
import time

import pytest

from workbench.core.errors import ConfigError, ProviderHTTPError, ProviderTimeoutError, WorkbenchError
from workbench.core.events import FinishReason
from workbench.core.netproc import NetworkProcess
from workbench.core.policy import PolicySet
from workbench.core.request import ChatRequest

PROMPT = ChatRequest.from_prompt("Mirror me.")


@pytest.fixture(scope="module")
def net() -> NetworkProcess:
    with NetworkProcess() as process:
        yield process  # type: ignore[misc]


def test_records_arrive_with_their_types_intact(net: NetworkProcess, fake_env: dict[str, str]) -> None:
    race = net.race(PROMPT, ["fake/m@tokens=7", "fake-ollama/m@tokens=5,usage=0",
                             "fake-anthropic/m@status=529,id=netproc-529", "openai/gpt-4o"], fake_env,
                    PolicySet().with_defaults(retry={"max_retries": 0}))
    assert race.wait(timeout=30)
    ok, estimated, overloaded, no_key = race.records
    assert ok.status == "ok" and len(ok.text.split()) == 7 and ok.usage is not None and ok.usage.output_tokens == 7
    assert ok.timing.ttft_ms is not None and ok.timing.sent_ns is not None and ok.finish is FinishReason.STOP
    assert estimated.usage_estimated and estimated.usage is not None and estimated.usage.output_tokens >= 5
    assert isinstance(overloaded.error, ProviderHTTPError) and overloaded.error.status == 529
    assert overloaded.error.kind == "overloaded_error" and overloaded.error.hint
    assert isinstance(no_key.error, ConfigError)


def test_records_fill_in_while_the_stream_runs(net: NetworkProcess, fake_env: dict[str, str]) -> None:
    race = net.race(PROMPT, ["fake/slow@tokens=30,tps=40"], fake_env)
    seen_partial = False
    while not race.done:
        words = len(race.records[0].text.split())
        seen_partial |= 0 < words < 30
        time.sleep(0.01)
    assert seen_partial
    assert len(race.records[0].text.split()) == 30 and race.records[0].done


def test_cancel_stops_streams_and_keeps_partial_output(net: NetworkProcess, fake_env: dict[str, str]) -> None:
    race = net.race(PROMPT, ["fake-gemini/stuck@hang=stream", "fake/done@tokens=2"], fake_env)
    deadline = time.monotonic() + 10
    while not race.records[0].text and time.monotonic() < deadline:
        time.sleep(0.01)
    race.cancel()
    assert race.wait(timeout=10)
    stuck, done = race.records
    assert stuck.text and stuck.error is not None and "cancelled" in str(stuck.error) and stuck.done
    assert done.status == "ok"


def test_a_dead_network_process_fails_running_calls_instead_of_hanging(fake_env: dict[str, str]) -> None:
    with NetworkProcess() as process:
        race = process.race(PROMPT, ["fake/stuck@hang=headers"], fake_env)
        time.sleep(0.3)
        process._process.kill()
        assert race.wait(timeout=10)
        assert race.records[0].error is not None and "network process stopped" in str(race.records[0].error)


def test_errors_survive_pickling_with_their_attributes() -> None:
    for error in (ProviderHTTPError("openai/x", 429, "rate_limit_exceeded", "slow down", retry_after_s=2.0),
                  ProviderTimeoutError("anthropic/y", "read"), ConfigError("bad", "fix it")):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error) and copy.__dict__ == error.__dict__
        assert isinstance(copy, WorkbenchError)
