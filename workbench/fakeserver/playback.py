"""The pacing and fault-injection loop shared by every wire format.

A wire module's :class:`~workbench.fakeserver.wire.base.StreamRenderer` only renders events; this
module decides when they hit the socket:

* token ``i`` (reasoning tokens first, then text, counted together) is due at
  ``received_ns + ttft + i / tps`` — absolute deadlines, so sleep overshoot never accumulates;
* paced streams write every token as soon as it is due; unpaced streams buffer events (each one
  still its own HTTP chunk) and write every 32 KiB, yielding to the loop every 256 tokens; the first
  content token is always written on its own;
* the log entry's ``first_token_ns`` / ``last_token_ns`` are ``time.monotonic_ns()`` taken right
  before the write that carries the first / last content token; ``tokens_sent`` counts content
  tokens handed to the socket;
* faults: ``malformed`` and ``hang=stream`` act right after the first token (after the preamble when
  there are no tokens), ``disconnect=N`` after N tokens; ``bad_shape`` replaces the first text
  token's event; ``bad_gzip`` puts :data:`~workbench.fakeserver.hostile.GZIP_JUNK` before the stream
  or body (and ``content-encoding: gzip`` in the headers); ``huge_line`` (:func:`play_huge_line`)
  replaces the stream with one endless line. ``overrun`` is only a generation that never ends.

A counting endpoint's answer (:func:`play_count`) is sent ``ttft`` after the request was read;
``hang`` never answers, ``disconnect`` closes without an answer, ``malformed`` sends half the body.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from workbench.fakeserver.hostile import (
    GZIP_JUNK,
    bad_shape_event,
    endless,
    huge_body_prefix,
    huge_line_prefix,
    reshape_body,
)
from workbench.fakeserver.http_server import ClientGone, Responder
from workbench.fakeserver.scenario import Scenario
from workbench.fakeserver.wire.base import CountWire, Generation, Prompt, StreamRenderer, WireFormat

__all__ = ["play_body", "play_count", "play_huge_line", "play_stream"]

GZIP_HEADER = ("content-encoding", "gzip")

LogEntry = dict[str, Any]
FLUSH_BYTES = 32 * 1024
YIELD_EVERY = 256


class _Out:
    """Buffers events into the responder and stamps the log entry when tokens are written."""

    __slots__ = ("entry", "pending", "resp")

    def __init__(self, resp: Responder, entry: LogEntry) -> None:
        self.resp = resp
        self.entry = entry
        self.pending = 0

    def add(self, events: list[bytes]) -> None:
        for event in events:
            self.resp.add(event)

    def write(self) -> None:
        if self.pending:
            self.resp.check_open()
            now = time.monotonic_ns()
            entry = self.entry
            if entry["first_token_ns"] is None:
                entry["first_token_ns"] = now
            entry["last_token_ns"] = now
            entry["tokens_sent"] += self.pending
            self.pending = 0
        self.resp.write()

    async def flush(self) -> None:
        self.write()
        await self.resp.drain()


async def _sleep_until(due_ns: int) -> None:
    delay = due_ns - time.monotonic_ns()
    if delay > 0:
        await asyncio.sleep(delay / 1e9)


async def _hang(out: _Out) -> None:
    await out.flush()
    out.entry["outcome"] = "hang"
    await out.resp.wait_peer_closed()


Phase = tuple[Callable[[], list[bytes]], Callable[[str], bytes], Callable[[], list[bytes]], Iterator[str]]


async def play_stream(
    gen: Generation, renderer: StreamRenderer, resp: Responder, entry: LogEntry, headers: list[tuple[str, str]]
) -> None:
    """Stream ``gen`` through ``renderer`` with the scenario's pacing and faults."""
    bad_gzip = gen.scenario.bad_gzip
    resp.start_stream(200, [*headers, GZIP_HEADER] if bad_gzip else headers)
    entry["status"] = 200
    if bad_gzip:
        resp.add(GZIP_JUNK)
        entry["outcome"] = "bad_gzip"
    elif gen.scenario.overrun:
        entry["outcome"] = "overrun"
    try:
        await _play(gen, renderer, _Out(resp, entry))
    except ClientGone:
        if entry["outcome"] == "running":
            entry["outcome"] = "disconnect"
        raise


async def _play(gen: Generation, renderer: StreamRenderer, out: _Out) -> None:
    sc = gen.scenario
    resp, entry = out.resp, out.entry
    out.add(renderer.start())
    await out.flush()
    if sc.disconnect == 0:
        resp.close()
        entry["outcome"] = "disconnect"
        return
    t0 = gen.received_ns + round(sc.ttft_ms * 1_000_000)
    step = 1e9 / sc.tps if sc.tps else 0.0
    paced = step > 0
    limit = sc.disconnect
    phases: list[Phase] = []
    if gen.reasoning_count:
        phases.append(
            (renderer.reasoning_start, renderer.reasoning_token, renderer.reasoning_end, gen.reasoning_tokens())
        )
    text_token = renderer.text_token
    kind = sc.bad_shape
    if kind is not None:
        shaped = False

        def text_token(token: str) -> bytes:
            nonlocal shaped
            if shaped:
                return renderer.text_token(token)
            shaped = True
            entry["outcome"] = "bad_shape"
            return bad_shape_event(renderer, kind, token)

    phases.append((renderer.text_start, text_token, renderer.text_end, gen.text_tokens()))

    index = 0
    for start, emit, end, tokens in phases:
        started = False
        for token in tokens:
            due = t0 + int(index * step)
            if due > time.monotonic_ns():
                await out.flush()
                await _sleep_until(due)
            if not started:
                out.add(start())
                started = True
            resp.add(emit(token))
            out.pending += 1
            index += 1
            if index == 1:
                await out.flush()
                if sc.malformed:
                    resp.add(renderer.malformed())
                    entry["outcome"] = "malformed"
                    await out.flush()
                if sc.hang == "stream":
                    await _hang(out)
                    return
            elif paced or resp.buffered >= FLUSH_BYTES:
                await out.flush()
            elif index % YIELD_EVERY == 0:
                await out.flush()
                await asyncio.sleep(0)
            if limit is not None and index >= limit:
                await out.flush()
                resp.close()
                entry["outcome"] = "disconnect"
                return
        if not started:
            out.add(start())
        out.add(end())

    if index == 0:
        if sc.malformed:
            resp.add(renderer.malformed())
            entry["outcome"] = "malformed"
        if sc.hang == "stream":
            await _hang(out)
            return
    if limit is not None:  # more tokens allowed than produced: cut before the terminal events
        await out.flush()
        resp.close()
        entry["outcome"] = "disconnect"
        return
    out.add(renderer.finish())
    out.write()
    await resp.end()


async def play_huge_line(
    gen: Generation, renderer: StreamRenderer, resp: Responder, entry: LogEntry, headers: list[tuple[str, str]]
) -> None:
    """``huge_line``: the stream headers (and the ``bad_gzip`` preamble) at once, then from ``ttft`` on
    one endless line until the client goes away."""
    bad_gzip = gen.scenario.bad_gzip
    resp.start_stream(200, [*headers, GZIP_HEADER] if bad_gzip else headers)
    entry["status"] = 200
    entry["outcome"] = "huge_line"
    if bad_gzip:
        resp.add(GZIP_JUNK)
    await resp.flush()
    await _sleep_until(gen.received_ns + round(gen.scenario.ttft_ms * 1_000_000))
    await endless(resp, huge_line_prefix(renderer))


async def play_body(
    gen: Generation, wire: WireFormat, resp: Responder, entry: LogEntry, extra_headers: Sequence[tuple[str, str]] = ()
) -> None:
    """A non-streaming answer, sent when the last token would have been generated (``extra_headers`` appended)."""
    sc = gen.scenario
    count = gen.output_tokens
    t0 = gen.received_ns + round(sc.ttft_ms * 1_000_000)
    step = 1e9 / sc.tps if sc.tps else 0.0
    if sc.hang is not None:
        entry["outcome"] = "hang"
        await resp.wait_peer_closed()
        return
    headers = [("content-type", wire.json_content_type), *wire.headers(gen.request_id), *extra_headers]
    if sc.bad_gzip:
        headers.append(GZIP_HEADER)
    if sc.huge_line:
        await _sleep_until(t0)
        resp.start_stream(200, headers)
        entry["status"] = 200
        entry["outcome"] = "huge_line"
        await endless(resp, (GZIP_JUNK if sc.bad_gzip else b"") + huge_body_prefix(wire, wire.body(gen)))
        return
    if sc.disconnect is not None:
        cut = min(sc.disconnect, count)
        await _sleep_until(t0 + int(max(cut - 1, 0) * step) if cut else gen.received_ns)
        resp.close()
        entry["outcome"] = "disconnect"
        return
    await _sleep_until(t0 + int(max(count - 1, 0) * step))
    body = wire.body(gen)
    if sc.overrun:
        entry["outcome"] = "overrun"
    if sc.bad_shape is not None and gen.text_count:
        body = reshape_body(wire, body, sc.bad_shape)
        entry["outcome"] = "bad_shape"
    if sc.malformed:
        body = body[: len(body) // 2]
        entry["outcome"] = "malformed"
    if sc.bad_gzip:
        body = GZIP_JUNK + body
        entry["outcome"] = "bad_gzip"
    entry["status"] = 200
    now = time.monotonic_ns()
    if count:
        entry["first_token_ns"] = entry["last_token_ns"] = now
        entry["tokens_sent"] = count
    await resp.send(200, body, headers)


async def play_count(
    wire: CountWire, prompt: Prompt, sc: Scenario, received_ns: int, resp: Responder, entry: LogEntry
) -> None:
    """A token-counting answer (``entry`` gains ``input_tokens``: the count answered)."""
    if sc.hang is not None:
        entry["outcome"] = "hang"
        await resp.wait_peer_closed()
        return
    await _sleep_until(received_ns + round(sc.ttft_ms * 1_000_000))
    if sc.disconnect is not None:
        resp.close()
        entry["outcome"] = "disconnect"
        return
    body = wire.count_body(prompt)
    if sc.malformed:
        body = body[: len(body) // 2]
        entry["outcome"] = "malformed"
    entry["status"] = 200
    entry["input_tokens"] = wire.count(prompt)
    await resp.send(200, body, [("content-type", wire.json_content_type), *wire.headers(entry["request_id"])])
