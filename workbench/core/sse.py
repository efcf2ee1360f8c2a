"""An incremental Server-Sent Events decoder over raw bytes, following the WHATWG rules.

Lines end at CR, LF or CRLF only (a CRLF may be split across two network chunks); lines are decoded
as UTF-8 only once complete, so multibyte characters split across chunks are safe, and U+2028 and
friends inside JSON strings are not line breaks (unlike ``httpx2``'s ``aiter_lines``). Multi-line
``data:`` fields are joined with ``\\n``; comment lines are ignored; an ``event:`` with no ``data:``
yields an empty ``data``; a byte order mark opening the stream is dropped.

At the end of the byte stream, :meth:`SSEDecoder.close` dispatches a last event that lacks its
terminating blank line (as the official SDKs do: recorded Anthropic streams end that way); whether
the stream was complete is the wire parser's call, from the events it saw.

With ``bare_json`` (Gemini), a JSON value written outside the SSE framing (Gemini aborts a stream with a
pretty-printed ``{"error": {...}}`` over several lines, no ``data:`` prefix) is gathered line by line until its
brackets balance, and dispatched as one event's data, as google-genai reads it; without it such lines are
ignored (WHATWG).

Hostile input is bounded: a line, or one event's data, longer than :data:`MAX_EVENT_BYTES` raises
:class:`StreamDecodeError` instead of growing without end.
"""

from __future__ import annotations

from dataclasses import dataclass

from workbench.core.errors import StreamDecodeError

MAX_EVENT_BYTES = 4 * 1024 * 1024


@dataclass(slots=True)
class SSEMessage:
    event: str
    """The ``event:`` field, or ``""`` when the event had none (the spec's default type "message")."""
    data: str
    id: str | None = None


class SSEDecoder:
    __slots__ = ("_bare", "_bare_json", "_bom", "_data", "_depth", "_event", "_has_fields", "_last_id", "_size",
                 "_skip_lf", "_tail")

    def __init__(self, *, bare_json: bool = False) -> None:
        self._bare_json = bare_json
        self._bare: list[str] = []
        """The lines of a JSON value outside the framing, gathered until they parse (``bare_json`` only)."""
        self._depth = 0
        """Brackets opened minus closed in those lines (google-genai's count): the value is whole once it falls to 0
        (a bracket inside a string may keep it above: the value is then handed on at the end of the stream)."""
        self._bom = True
        """The first line is still to come: a UTF-8 byte order mark opening the stream is dropped (WHATWG)."""
        self._tail = b""
        self._skip_lf = False
        self._event = ""
        self._data: list[str] = []
        self._size = 0
        self._has_fields = False
        self._last_id: str | None = None

    def feed(self, chunk: bytes) -> list[SSEMessage]:
        """Decode one network chunk; return the events it completed."""
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        buf = self._tail + chunk if self._tail else chunk
        if b"\r" in buf:
            # A trailing CR ends a line, and a LF at the start of the next chunk belongs to it.
            self._skip_lf = buf[-1:] == b"\r"
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buf.split(b"\n")
        self._tail = lines.pop()
        if len(self._tail) > MAX_EVENT_BYTES:
            raise StreamDecodeError(f"a line longer than {MAX_EVENT_BYTES // 1024 // 1024} MiB")
        out: list[SSEMessage] = []
        for raw in lines:
            self._line(raw, out)
        return out

    def _line(self, raw: bytes, out: list[SSEMessage]) -> None:
        if self._bom:
            self._bom = False
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        if not raw:
            if self._has_fields:
                out.append(SSEMessage(self._event, "\n".join(self._data), self._last_id))
                self._event = ""
                self._data = []
                self._size = 0
                self._has_fields = False
            return
        if raw[0] == 0x3A:  # ":" comment / keep-alive
            return
        self._size += len(raw)
        if self._size > MAX_EVENT_BYTES:
            raise StreamDecodeError(f"an event longer than {MAX_EVENT_BYTES // 1024 // 1024} MiB")
        line = raw.decode("utf-8", "replace")
        if self._bare_json and not line.startswith("data:") and (self._bare or line.lstrip()[:1] in ("{", "[")):
            self._bare_line(line, out)
            return
        self._field(line)

    def _bare_line(self, line: str, out: list[SSEMessage]) -> None:
        self._bare.append(line)
        self._depth += line.count("{") + line.count("[") - line.count("}") - line.count("]")
        if self._depth > 0:
            return
        out.append(SSEMessage("", "\n".join(self._bare), self._last_id))  # the wire's parser reads (or refuses) it
        self._bare, self._depth, self._size = [], 0, 0

    def _field(self, line: str) -> None:
        name, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" in value:
                return
            self._last_id = value
        elif name == "retry":
            if not value.isdigit():
                return
        else:
            return
        self._has_fields = True

    def close(self) -> list[SSEMessage]:
        """Declare the end of the byte stream: the last event, if one lacked its blank line."""
        tail, self._tail = self._tail, b""
        out: list[SSEMessage] = []
        if tail:
            self._line(tail, out)
        self._line(b"", out)
        if self._bare:  # the bytes ended inside a bare JSON value: handed on whole, for the parser to refuse
            out.append(SSEMessage("", "\n".join(self._bare), self._last_id))
            self._bare, self._depth = [], 0
        return out
