"""The fake server's ``fixed=1`` scenario: the same bytes on every call, on every wire, streamed or not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest

from workbench.fakeserver import FakeServer

TEXT = "tell me something"
CALLS: list[tuple[str, dict[str, Any]]] = [
    ("/v1/chat/completions", {"model": "{m}", "messages": [{"role": "user", "content": TEXT}], "stream": True}),
    ("/v1/chat/completions", {"model": "{m}", "messages": [{"role": "user", "content": TEXT}]}),
    ("/v1/responses", {"model": "{m}", "input": TEXT, "stream": True}),
    ("/v1/messages", {"model": "{m}", "max_tokens": 50, "messages": [{"role": "user", "content": TEXT}],
                      "stream": True}),
    ("/v1/messages", {"model": "{m}", "max_tokens": 50, "messages": [{"role": "user", "content": TEXT}]}),
    ("/v1beta/models/{m}:streamGenerateContent?alt=sse", {"contents": [{"role": "user", "parts": [{"text": TEXT}]}]}),
    ("/v1beta/models/{m}:generateContent", {"contents": [{"role": "user", "parts": [{"text": TEXT}]}]}),
    ("/api/chat", {"model": "{m}", "messages": [{"role": "user", "content": TEXT}]}),
    ("/api/chat", {"model": "{m}", "messages": [{"role": "user", "content": TEXT}], "stream": False}),
]


@pytest.fixture
async def client(server: FakeServer) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(base_url=server.base_url, timeout=5,
                                  headers={"anthropic-version": "2023-06-01"}) as c:
        yield c


async def bodies(client: httpx2.AsyncClient, model: str) -> list[tuple[bytes, str | None]]:
    out = []
    for path, body in CALLS:
        filled = {k: (v.replace("{m}", model) if isinstance(v, str) else v) for k, v in body.items()}
        response = await client.post(path.replace("{m}", model), json=filled)
        assert response.status_code == 200, response.text
        out.append((response.content, response.headers.get("x-request-id") or response.headers.get("request-id")))
    return out


async def test_a_fixed_reply_is_the_same_bytes_every_time_and_a_plain_one_is_not(
        client: httpx2.AsyncClient) -> None:
    first, again = await bodies(client, "m@tokens=6,fixed=1"), await bodies(client, "m@tokens=6,fixed=1")
    assert first == again
    assert b'"created":1700000000' in first[0][0] and b"chatcmpl-000000" in first[0][0]
    assert b'"created_at":"2023-11-14T22:13:20Z"' in first[-2][0] and b'"eval_duration":1000000' in first[-1][0]
    assert all(request_id is None or request_id.rstrip("0") in ("req_", "req_011C")
               for _, request_id in first)
    plain, plain_again = await bodies(client, "m@tokens=6"), await bodies(client, "m@tokens=6")
    assert [body for body, _ in plain] != [body for body, _ in plain_again]  # random ids, the real clock
