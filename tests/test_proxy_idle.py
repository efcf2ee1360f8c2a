"""The proxy's read timeout (the shared client's ``read``), enforced per stream by :mod:`workbench.core.capture.idle`
rather than around every read: a provider silent before its headers gets the application a 504 and a call traced
as a read timeout; one silent mid-stream is cut for the application as the provider left it, traced as truncated;
an application slow to take the chunks is not the provider's silence. The app runs in this process (its client's
read timeout shortened to 0.5 s) against the fake server over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import httpx2

from workbench.core.call_record import CallRecord
from workbench.core.capture.app import ProxyApp
from workbench.core.httpclient import new_client
from workbench.core.network import resolve_network
from workbench.core.registry import PROVIDERS
from workbench.core.traces.context import CallContext
from workbench.fakeserver.process import FakeServerProcess

READ_S = 0.5


def proxied(fake_server: FakeServerProcess, model: str, slow_app_s: float = 0.0
            ) -> tuple[list[MutableMapping[str, Any]], list[CallRecord]]:
    """One streamed OpenAI chat call through the app: the ASGI messages it sent and the calls it traced;
    ``slow_app_s``: the application takes that long to accept the first chunk of the body."""
    body = (b'{"model": "%s", "stream": true, "messages": [{"role": "user", "content": "Count"}]}'
            % model.encode())
    sent: list[MutableMapping[str, Any]] = []
    traced: list[CallRecord] = []

    async def run() -> None:
        done = asyncio.Event()
        requested = False

        async def receive() -> MutableMapping[str, Any]:
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": body, "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            if slow_app_s and message.get("body") and not any(m.get("body") for m in sent):
                await asyncio.sleep(slow_app_s)  # the application's socket is full: its flow control holds us
            sent.append(message)

        def sink(record: CallRecord, context: CallContext) -> None:
            traced.append(record)

        network = resolve_network(None, {}, check_tls=False)
        async with new_client(network, httpx2.Timeout(10, read=READ_S)) as client:
            app = ProxyApp(PROVIDERS, {"OPENAI_BASE_URL": f"{fake_server.base_url}/v1"}, client, sink)
            scope = {"type": "http", "method": "POST", "path": "/openai/v1/chat/completions", "query_string": b"",
                     "headers": [(b"content-type", b"application/json")]}
            try:
                await app(scope, receive, send)
            finally:
                done.set()

    asyncio.run(run())
    return sent, traced


def body_of(sent: list[MutableMapping[str, Any]]) -> bytes:
    return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_a_provider_silent_before_its_headers_gets_the_application_a_504_traced_as_a_read_timeout(
        fake_server: FakeServerProcess) -> None:
    sent, [record] = proxied(fake_server, "h@hang=headers,fixed=1")
    assert sent[0]["status"] == 504
    assert b"read timeout" in body_of(sent)
    assert record.error is not None and record.error.error_class == "timeout"
    assert "read timeout" in str(record.error)


def test_a_provider_silent_mid_stream_is_cut_for_the_application_and_traced_as_truncated(
        fake_server: FakeServerProcess) -> None:
    sent, [record] = proxied(fake_server, "s@tokens=20,hang=stream,fixed=1")
    assert sent[0]["status"] == 200
    assert b"data: " in body_of(sent)  # what came before the silence went through
    assert not any(m.get("more_body") is False for m in sent)  # left unfinished, as the provider left it
    assert record.error is not None and record.error.error_class == "truncated"
    assert "the upstream stream broke (ReadTimeout)" in str(record.error)


def test_an_application_slow_to_take_the_stream_is_not_the_providers_silence(
        fake_server: FakeServerProcess) -> None:
    sent, [record] = proxied(fake_server, "ok@tokens=5,fixed=1", slow_app_s=3 * READ_S)
    assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert body_of(sent).rstrip().endswith(b"data: [DONE]")
    assert record.error is None, record.error
