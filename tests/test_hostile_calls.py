"""Hostile and broken servers, per wire format: each failure is that target's alone, in one typed line.

Every scenario of the fake server's hostile set races beside a healthy target: the hostile one ends
with the right error class and a one-line reason, the healthy one finishes, and the trace log says so.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.resilience_helpers import FAKE_WIRES, FakeClock
from workbench.core.call_record import CallRecord
from workbench.core.errors import (
    MalformedStreamError,
    NotAnLLMAPIError,
    OverrunError,
    ProviderHTTPError,
    RedirectError,
    WorkbenchError,
)
from workbench.core.httpclient import new_client
from workbench.core.policy import PolicySet
from workbench.core.race import Race
from workbench.core.request import ChatRequest, Params
from workbench.core.resilience.caller import Caller
from workbench.core.traces.store import TraceStore
from workbench.core.traces.writer import TraceWriter

PROMPT = ChatRequest.from_prompt("Hostile servers.", params=Params(max_tokens=16))
NO_RETRY = PolicySet().with_defaults(retry={"max_retries": 0})
HEALTHY = "fake-anthropic/fine@tokens=3"

SCENARIOS: dict[str, tuple[type[WorkbenchError], str]] = {
    "cut_error_body=1": (ProviderHTTPError, "error body cut short"),
    "huge_error=1": (ProviderHTTPError, "error body cut short"),
    "bad_gzip=1": (MalformedStreamError, "could not be decoded"),
    "bad_shape=choices": (MalformedStreamError, "malformed"),
    "bad_shape=int": (MalformedStreamError, "not a string"),
    "bad_shape=list": (MalformedStreamError, "not a string"),
    "huge_line=1": (MalformedStreamError, "longer than"),
    "overrun=1": (OverrunError, "far past max_tokens"),
    "redirect=301": (RedirectError, "moved to"),
    "redirect=302": (RedirectError, "moved to"),
    "redirect=303": (RedirectError, "moved to"),
    "html=1": (NotAnLLMAPIError, "not an LLM API"),
}


async def race(targets: list[str], env: dict[str, str]) -> list[CallRecord]:
    async with new_client() as client:
        return await Race(PROMPT, targets, env, NO_RETRY).run(Caller(client, FakeClock()))


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("wire", FAKE_WIRES)
async def test_a_hostile_answer_fails_its_target_alone_with_one_typed_line(
    wire: str, scenario: str, fake_env: dict[str, str], tmp_path: Path
) -> None:
    hostile = f"{wire}/hostile@{scenario},id=h-{wire}-{scenario.replace('=', '-')}"
    records = await race([hostile, HEALTHY], fake_env)
    bad, good = records
    expected, words = SCENARIOS[scenario]
    assert isinstance(bad.error, expected), bad.error
    assert bad.status == "error" and words in str(bad.error) and "\n" not in str(bad.error)
    assert bad.error.hint and len(str(bad.error)) < 600
    assert good.status == "ok" and len(good.text.split()) == 3, good.error
    writer = TraceWriter(tmp_path / "t.db")
    ids = [writer.write(record) for record in records]
    writer.close()
    store = TraceStore(tmp_path / "t.db")
    try:
        rows = {row["id"]: row for row in store.page(limit=10)}
    finally:
        store.close()
    assert rows[ids[0]]["status"] == "error" and rows[ids[0]]["error_class"] == bad.error.error_class
    assert rows[ids[1]]["status"] == "ok"


@pytest.mark.parametrize("code", [307, 308])
@pytest.mark.parametrize("wire", FAKE_WIRES)
async def test_a_307_or_308_to_the_same_origin_is_followed_with_the_body(
    wire: str, code: int, fake_env: dict[str, str]
) -> None:
    (record,) = await race([f"{wire}/moved@redirect={code},tokens=4"], fake_env)
    assert record.status == "ok" and len(record.text.split()) == 4, record.error


async def test_a_301_names_the_base_url_to_set(fake_env: dict[str, str]) -> None:
    (record,) = await race(["fake/moved@redirect=301"], fake_env)
    assert isinstance(record.error, RedirectError)
    assert record.error.hint == f"set the provider's base URL to {fake_env['WORKBENCH_FAKE_URL']}/_redirected/v1"


@pytest.mark.parametrize("scenario", ["html=1", "redirect=301"])
async def test_answers_that_are_not_an_llm_api_are_not_retried(scenario: str, fake_env: dict[str, str]) -> None:
    async with new_client() as client:
        record = await Caller(client, FakeClock()).call(
            CallRecord(f"fake/x@{scenario},id=noretry-{scenario}", PROMPT), env=fake_env)
    assert [a.kind for a in record.attempts] == ["first"] and record.status == "error"


def test_endless_answers_keep_the_network_process_small(fake_env: dict[str, str]) -> None:
    """Endless error bodies, an endless line and a stream past max_tokens on every wire at once: each
    target fails alone and the network process's peak memory stays under 200 MB."""
    from workbench.core.netproc import NetworkProcess

    targets = [f"{wire}/endless@{scenario},id=mem-{wire}-{scenario[:-2]}" for wire in FAKE_WIRES
               for scenario in ("huge_error=1", "huge_line=1", "overrun=1")]
    with NetworkProcess() as net:
        race = net.race(PROMPT, [*targets, HEALTHY], fake_env, NO_RETRY)
        assert race.wait(timeout=120)
        status = Path(f"/proc/{net.pid}/status").read_text()
    peak_kib = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
    assert all(record.status == "error" for record in race.records[:-1])
    assert race.records[-1].status == "ok"
    assert peak_kib < 200 * 1024, f"the network process peaked at {peak_kib / 1024:.0f} MiB"
