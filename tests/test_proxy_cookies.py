"""Cookies through ``workbench proxy``: a ``Set-Cookie`` reaches the application that got it, and the proxy keeps
none, so one application's cookies never ride on another's requests (one shared HTTP client serves them all)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import httpx2
import pytest

from tests.test_proxy import Proxy, start_proxy
from workbench.core.httpclient import new_client


class _Upstream(BaseHTTPRequestHandler):
    seen: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        type(self).seen.append(self.headers.get("Cookie"))
        body = json.dumps({"object": "list", "data": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Set-Cookie", "session=app-one-secret; Path=/")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[tuple[str, list[str | None]]]:
    _Upstream.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Upstream.seen
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(upstream: tuple[str, list[str | None]]) -> Iterator[Proxy]:
    yield from start_proxy(OPENAI_BASE_URL=f"{upstream[0]}/v1")


def test_the_proxy_passes_set_cookie_on_and_keeps_no_cookie(proxy: Proxy,
                                                           upstream: tuple[str, list[str | None]]) -> None:
    first = httpx2.get(f"{proxy.url}/openai/v1/models", headers={"Authorization": "Bearer a"})
    assert first.status_code == 200 and first.headers.get("set-cookie") == "session=app-one-secret; Path=/"
    second = httpx2.get(f"{proxy.url}/openai/v1/models", headers={"Authorization": "Bearer b"})  # another app
    assert second.status_code == 200
    own = httpx2.get(f"{proxy.url}/openai/v1/models", headers={"Cookie": "mine=1", "Authorization": "Bearer c"})
    assert own.status_code == 200
    assert upstream[1] == [None, None, "mine=1"]  # an application's own Cookie header passes through as sent


async def test_a_client_that_keeps_no_cookies_sends_none_back(upstream: tuple[str, list[str | None]]) -> None:
    async with new_client() as keeping, new_client(keep_cookies=False) as not_keeping:
        for client in (keeping, not_keeping):
            for _ in range(2):
                assert (await client.get(f"{upstream[0]}/v1/models")).status_code == 200
    assert upstream[1] == [None, "session=app-one-secret", None, None]
