"""An incremental newline-delimited JSON decoder over raw bytes (Ollama's native stream).

Objects are separated by LF (a CR before it is tolerated); blank lines are skipped. A line that is
not JSON raises :class:`InvalidLineError` once the lines before it have been yielded; bytes left
after the last LF are a truncated stream unless they form a complete JSON value.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from workbench.core.errors import InvalidLineError, StreamDecodeError, TruncatedInputError

MAX_LINE_BYTES = 4 * 1024 * 1024


def _parse(line: bytes) -> Any:
    try:
        return json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise InvalidLineError(f"not a JSON line: {line[:80]!r}") from exc


class NDJSONDecoder:
    __slots__ = ("_tail",)

    def __init__(self) -> None:
        self._tail = b""

    def feed(self, chunk: bytes) -> Iterator[Any]:
        """Yield every JSON value completed by this chunk, in order."""
        buf = self._tail + chunk if self._tail else chunk
        lines = buf.split(b"\n")
        self._tail = lines.pop()
        if len(self._tail) > MAX_LINE_BYTES:
            raise StreamDecodeError(f"a line longer than {MAX_LINE_BYTES // 1024 // 1024} MiB")
        for line in lines:
            if line.strip():
                yield _parse(line)

    def close(self) -> Iterator[Any]:
        """Yield a last unterminated value if complete; raise if the stream stopped inside one."""
        tail, self._tail = self._tail, b""
        if not tail.strip():
            return
        try:
            yield json.loads(tail)
        except (ValueError, RecursionError) as exc:
            raise TruncatedInputError(f"stream ended inside a JSON line ({tail[:80]!r})") from exc
