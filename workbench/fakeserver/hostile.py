"""The bytes of the hostile scenarios (see :mod:`workbench.fakeserver.scenario`): a cut error body,
an endless error body or line, a broken gzip body, wrongly shaped JSON, a redirect and a captive
portal page. Pacing and routing stay in :mod:`~workbench.fakeserver.playback` and
:mod:`~workbench.fakeserver.app`; this module renders and writes the endless bodies.

Endless bodies are written one :data:`FILLER` chunk at a time, each one drained before the next
(the transport never holds more than its high-water mark plus one chunk) and with a yield to the
event loop between chunks; they end with :class:`~workbench.fakeserver.http_server.ClientGone`
when the client goes away.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from workbench.fakeserver.http_server import Responder, reason_phrase
from workbench.fakeserver.scenario import BadShape
from workbench.fakeserver.wire.base import ErrorInfo, StreamRenderer, WireFormat, jstr

__all__ = [
    "FILLER",
    "GZIP_JUNK",
    "HTML_HEADERS",
    "PORTAL_HTML",
    "REDIRECT_PREFIX",
    "bad_shape_event",
    "endless",
    "error_prefix",
    "huge_body_prefix",
    "huge_line_prefix",
    "redirect_body",
    "reshape_body",
]

FILLER = b"a" * 65536
# A valid gzip member header (deflate, no flags, mtime 0, OS unknown) then 0xff: a final deflate
# block of the reserved type 3, which every inflater rejects ("invalid block type").
GZIP_JUNK = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + b"\xff"
REDIRECT_PREFIX = "/_redirected"
BAD_INT = b"42"
BAD_CONTAINER = "nope"

PORTAL_HTML = b"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Guest Wi-Fi - Sign in</title>
<meta http-equiv="refresh" content="30; url=http://portal.guest-wifi.invalid/login">
</head>
<body>
<h1>Welcome to Guest Wi-Fi</h1>
<p>Please sign in to continue to the Internet.</p>
<form method="post" action="http://portal.guest-wifi.invalid/login">
<label>Room number <input name="room"></label>
<label><input type="checkbox" name="accept"> I accept the terms of use</label>
<button type="submit">Connect</button>
</form>
</body>
</html>
"""
HTML_HEADERS: list[tuple[str, str]] = [("content-type", "text/html; charset=utf-8"), ("cache-control", "no-store")]

_MARK = b"\x00"  # never appears raw in JSON (control characters are escaped)
_ESCAPED_MARK = b"\\u0000"


def redirect_body(status: int, location: str) -> bytes:
    """The small HTML page a web server sends with a redirect (nginx style)."""
    title = f"{status} {reason_phrase(status)}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
        f'<p>The document has moved <a href="{location}">here</a>.</p>\r\n</body>\r\n</html>\r\n'
    ).encode()


def error_prefix(wire: WireFormat, err: ErrorInfo) -> bytes:
    """The wire's error body for ``err`` up to and including the opening quote of its message."""
    body = wire.error_body(ErrorInfo(err.status, _MARK.decode(), err.param, err.model, err.request_id))
    return body[: body.index(_ESCAPED_MARK)]


def huge_line_prefix(renderer: StreamRenderer) -> bytes:
    """A text token's event up to the opening quote of its text, from its ``data:`` line on (no newline)."""
    event = renderer.text_token_raw(b'"' + _MARK)
    head = event[: event.index(_MARK)]
    return head[head.rfind(b"\n") + 1 :]


def _text_field(wire: WireFormat, body: bytes) -> tuple[dict[str, Any], dict[str, Any], str]:
    obj = json.loads(body)
    holder, key = wire.text_field(obj)
    return obj, holder, key


def huge_body_prefix(wire: WireFormat, body: bytes) -> bytes:
    """A non-streaming ``body`` up to the opening quote of its text."""
    obj, holder, key = _text_field(wire, body)
    holder[key] = _MARK.decode()
    out = wire.dump(obj)
    return out[: out.index(_ESCAPED_MARK)]


def reshape_body(wire: WireFormat, body: bytes, kind: BadShape) -> bytes:
    """A non-streaming ``body`` in the wrong shape (see ``bad_shape``)."""
    obj, holder, key = _text_field(wire, body)
    if kind == "choices":
        obj[wire.text_container] = BAD_CONTAINER
    elif kind == "int":
        holder[key] = int(BAD_INT)
    else:
        holder[key] = [holder[key]]
    return wire.dump(obj)


def bad_shape_event(renderer: StreamRenderer, kind: BadShape, token: str) -> bytes:
    """``token``'s event in the wrong shape (see ``bad_shape``)."""
    if kind == "choices":
        return renderer.bad_container(token)
    if kind == "int":
        return renderer.text_token_raw(BAD_INT)
    return renderer.text_token_raw(b"[" + jstr(token) + b"]")


async def endless(resp: Responder, head: bytes) -> None:
    """After :meth:`Responder.start_stream`: ``head``, then :data:`FILLER` chunks until the client goes away.

    Only ever returns by raising :class:`~workbench.fakeserver.http_server.ClientGone`."""
    resp.add(head)
    await resp.flush()
    while True:
        resp.add(FILLER)
        await resp.flush()
        await asyncio.sleep(0)
