"""Stream endings as real servers send them, replayed byte for byte over real HTTP on 127.0.0.1.

Recorded Anthropic streams often end without the blank line after ``message_stop``, and some
OpenAI-compatible servers leave out ``data: [DONE]``: once the wire format's final event is in, the
call is complete, as the official SDKs see it. A stream cut before that event is still truncated.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx2
import pytest

from tests.test_wire_recordings import ANTHROPIC, GEMINI, OPENAI_GPT4O, RESPONSES
from workbench.core.call_record import collect
from workbench.core.endpoint import Endpoint
from workbench.core.errors import TruncatedStreamError
from workbench.core.events import FinishReason
from workbench.core.registry import make_provider
from workbench.core.request import ChatRequest

PROMPT = ChatRequest.from_prompt("Replay.")


@pytest.fixture
async def replay() -> AsyncIterator[tuple[str, list[bytes]]]:
    """An HTTP server answering every request with the next body of ``bodies`` as an SSE stream, then
    closing the connection (no chunked terminator games: the body ends where the recording ends)."""
    bodies: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n" + bodies.pop(0))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with server:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", bodies


WIRES = {
    "anthropic": (ANTHROPIC, "Hello"),
    "openai_chat": (OPENAI_GPT4O, None),
    "openai_responses": (RESPONSES, None),
    "gemini": (GEMINI, "1, 2, 3"),
}


def _endpoint(wire: str, base: str) -> Endpoint:
    return Endpoint("replay", "m", base + ("/v1" if wire.startswith("openai") else ""), wire, "sk-test")


async def _run(wire: str, base: str, bodies: list[bytes], body: bytes) -> tuple[str, object]:
    bodies.append(body)
    async with httpx2.AsyncClient() as client:
        record = await collect(make_provider(_endpoint(wire, base), client), PROMPT, estimate_usage=False)
    return record.status, record


@pytest.mark.parametrize("ending", [b"\n\n", b"\n", b""], ids=["blank-line", "no-blank-line", "no-line-break"])
@pytest.mark.parametrize("wire", list(WIRES))
async def test_a_stream_whose_final_event_arrived_is_complete_however_it_ends(
    replay: tuple[str, list[bytes]], wire: str, ending: bytes
) -> None:
    base, bodies = replay
    recording, text = WIRES[wire]
    status, record = await _run(wire, base, bodies, recording.rstrip(b"\r\n") + ending)
    assert status == "ok", record.error  # type: ignore[attr-defined]
    assert record.finish is not None and record.finish is not FinishReason.ERROR  # type: ignore[attr-defined]
    if text is not None:
        assert record.text == text  # type: ignore[attr-defined]


async def test_an_openai_compatible_stream_without_done_is_complete_after_its_finish_reason(
    replay: tuple[str, list[bytes]]
) -> None:
    base, bodies = replay
    without_done = OPENAI_GPT4O[: OPENAI_GPT4O.index(b"data: [DONE]")]
    status, record = await _run("openai_chat", base, bodies, without_done)
    assert status == "ok" and record.usage is not None  # type: ignore[attr-defined]


@pytest.mark.parametrize("wire", list(WIRES))
async def test_a_stream_cut_before_its_final_event_is_truncated(replay: tuple[str, list[bytes]], wire: str) -> None:
    base, bodies = replay
    recording, _ = WIRES[wire]
    cut = recording[: len(recording) * 2 // 3]
    if wire == "openai_chat":
        cut = recording[: recording.index(b'"finish_reason":"length"')]
    status, record = await _run(wire, base, bodies, cut)
    assert status == "error" and isinstance(record.error, TruncatedStreamError)  # type: ignore[attr-defined]
