"""An exception at any layer of the call path is that target's failure, and no other target's.

Each case injects an exception in one layer for one target only (its wire format picks the code
path), races it beside a healthy target, and checks: no hang, the victim ends ``error`` with a
one-line reason, the healthy target finishes ``ok``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from tests.test_cli import json_lines, workbench
from workbench.core import call_record as call_module
from workbench.core.call_record import CallRecord
from workbench.core.errors import MalformedStreamError, UnexpectedError, WorkbenchError
from workbench.core.httpclient import new_client
from workbench.core.ndjson import NDJSONDecoder
from workbench.core.pricing import PriceBook
from workbench.core.providers.anthropic import AnthropicParser
from workbench.core.providers.openai_responses import ResponsesParser
from workbench.core.race import Race
from workbench.core.request import ChatRequest
from workbench.core.resilience.caller import Caller

PROMPT = ChatRequest.from_prompt("Isolation.")
HEALTHY = "fake/healthy@tokens=3"


def _boom(exc: BaseException) -> Callable[..., Any]:
    def raiser(*args: Any, **kwargs: Any) -> Any:
        raise exc

    return raiser


def _inject_apply_event(monkeypatch: pytest.MonkeyPatch) -> None:
    original = call_module.apply_event

    def apply_event(record: CallRecord, event: Any) -> None:
        if record.target.startswith("fake-gemini"):
            raise RuntimeError("injected in apply_event")
        original(record, event)

    monkeypatch.setattr(call_module, "apply_event", apply_event)


def _inject_send(monkeypatch: pytest.MonkeyPatch) -> None:
    original = httpx2.AsyncClient.send

    async def send(self: httpx2.AsyncClient, request: httpx2.Request, **kwargs: Any) -> httpx2.Response:
        if "streamGenerateContent" in str(request.url):
            raise RuntimeError("injected in the HTTP library")
        return await original(self, request, **kwargs)

    monkeypatch.setattr(httpx2.AsyncClient, "send", send)


def _inject_pricing(monkeypatch: pytest.MonkeyPatch) -> None:
    original = PriceBook.cost

    def cost(self: PriceBook, target: str, *args: Any, **kwargs: Any) -> Any:
        if target.startswith("fake-ollama"):
            raise ValueError("injected in pricing")
        return original(self, target, *args, **kwargs)

    monkeypatch.setattr(PriceBook, "cost", cost)


LAYERS: dict[str, tuple[str, Callable[[pytest.MonkeyPatch], None], type[WorkbenchError]]] = {
    "decoder": ("fake-ollama/victim", lambda mp: mp.setattr(NDJSONDecoder, "feed", _boom(RuntimeError("decoder"))),
                UnexpectedError),
    "wire parser": ("fake-anthropic/victim",
                    lambda mp: mp.setattr(AnthropicParser, "feed", _boom(KeyError("delta"))), MalformedStreamError),
    "memory": ("fake-responses/victim", lambda mp: mp.setattr(ResponsesParser, "feed", _boom(MemoryError())),
               UnexpectedError),
    "apply_event": ("fake-gemini/victim", _inject_apply_event, UnexpectedError),
    "http library": ("fake-gemini/victim", _inject_send, UnexpectedError),
    "pricing": ("fake-ollama/victim@tokens=2", _inject_pricing, UnexpectedError),
}


@pytest.mark.parametrize("layer", list(LAYERS))
async def test_an_exception_in_one_layer_fails_only_that_target(
    layer: str, fake_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    victim, inject, expected = LAYERS[layer]
    inject(monkeypatch)
    async with new_client() as client, asyncio.timeout(30):  # no hang
        bad, good = await Race(PROMPT, [victim, HEALTHY], fake_env).run(Caller(client))
    assert isinstance(bad.error, expected), bad.error
    assert bad.status == "error" and bad.done and "\n" not in str(bad.error) and bad.error.hint
    assert good.status == "ok" and len(good.text.split()) == 3


async def test_a_failing_event_hook_fails_its_target_and_the_race_goes_on(fake_env: dict[str, str]) -> None:
    def on_event(index: int, event: object) -> None:
        if index == 0:
            raise RuntimeError("injected in a hook")

    async with new_client() as client, asyncio.timeout(30):
        bad, good = await Race(PROMPT, ["fake-anthropic/hooked", HEALTHY], fake_env).run(
            Caller(client), on_event=on_event)
    assert isinstance(bad.error, UnexpectedError) and good.status == "ok"


def test_the_cli_exits_non_zero_and_keeps_the_healthy_target(fake_server: object) -> None:
    result = workbench("run", "hi", "-m", "fake/bad@bad_shape=int", "-m", HEALTHY, "--json")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    bad, good = json_lines(result.stdout)
    assert bad["status"] == "error" and "malformed" in bad["error"]
    assert good["status"] == "ok" and good["text"]
