"""How much any server may send: error and reply body caps, and a stream's output budget.

A hostile or broken server must not grow a process without bound: an error body is read up to
:data:`MAX_ERROR_BODY_BYTES`, a non-streamed reply up to :data:`MAX_REPLY_BYTES`, and a stream that
runs far past its ``max_tokens`` is stopped (:class:`StreamBudget`, which also type-checks every
event's payload).
"""

from __future__ import annotations

import httpx2

from workbench.core.errors import OverrunError, StreamDecodeError
from workbench.core.events import (
    BlockDelta,
    FinishEvent,
    ReasoningDelta,
    ReasoningItemDelta,
    RefusalDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    UsageEvent,
)

MAX_ERROR_BODY_BYTES = 64 * 1024
"""An error body is read up to this much (a truncated copy is kept); the rest is never read."""
MAX_REPLY_BYTES = 16 * 1024 * 1024
"""A non-streamed reply (a model list, a token count) larger than this is refused."""
MAX_TOOL_CALLS = 256
"""A reply with more tool calls than this is a server fault: reading stops."""
OVERRUN_CHARS_PER_TOKEN = 32
OVERRUN_SLACK_CHARS = 32 * 1024
OVERRUN_BYTES_PER_TOKEN = 4096
OVERRUN_SLACK_BYTES = 4 * 1024 * 1024


class StreamBudget:
    """How far past ``max_tokens`` a stream may run before reading stops (text averages about four
    characters a token; :data:`OVERRUN_CHARS_PER_TOKEN` over a whole stream is a server ignoring the
    limit), and the type checks every event passes."""

    __slots__ = ("bytes_left", "chars_left", "max_tokens", "target")

    def __init__(self, target: str, max_tokens: int) -> None:
        self.target, self.max_tokens = target, max_tokens
        self.chars_left = OVERRUN_CHARS_PER_TOKEN * max_tokens + OVERRUN_SLACK_CHARS
        self.bytes_left = OVERRUN_BYTES_PER_TOKEN * max_tokens + OVERRUN_SLACK_BYTES

    def received(self, size: int) -> None:
        self.bytes_left -= size
        if self.bytes_left < 0:
            self._overrun("bytes")

    def checked(self, event: StreamEvent) -> StreamEvent:
        kind = type(event)
        if kind is TextDelta or kind is ReasoningDelta or kind is RefusalDelta:
            text = event.text  # type: ignore[union-attr]
            if type(text) is not str:
                raise StreamDecodeError(f"malformed event: text is {type(text).__name__}, not a string")
            self.chars_left -= len(text)
            if self.chars_left < 0:
                self._overrun("text")
            if kind is ReasoningDelta and event.item is not None and type(event.item) is not int:  # type: ignore[union-attr]
                raise StreamDecodeError("malformed event: a reasoning item index is not an integer")
            if kind is RefusalDelta and event.category is not None and type(event.category) is not str:  # type: ignore[union-attr]
                raise StreamDecodeError("malformed event: a refusal category is not a string")
        elif kind is ToolCallDelta:
            self._check_tool_call(event)  # type: ignore[arg-type]
        elif kind is BlockDelta:
            self._check_block(event)  # type: ignore[arg-type]
        elif kind is ReasoningItemDelta:
            self._check_reasoning_item(event)  # type: ignore[arg-type]
        elif kind is UsageEvent:
            usage = event.usage  # type: ignore[union-attr]
            if not all(type(n) is int for n in (usage.input_tokens, usage.output_tokens, usage.reasoning_tokens)) \
                    or not all(n is None or type(n) is int for n in (usage.cache_read_tokens, usage.cache_write_tokens,
                                                                     usage.cache_write_1h_tokens)):
                raise StreamDecodeError("malformed event: a token count is not an integer")
        elif kind is FinishEvent and type(event.raw) is not str:  # type: ignore[union-attr]
            raise StreamDecodeError("malformed event: the finish reason is not a string")
        return event

    def _check_tool_call(self, event: ToolCallDelta) -> None:
        """A tool call's pieces count against the text budget (arguments, id and name alike)."""
        index, arguments, call_id, name = event.index, event.arguments, event.id, event.name
        if type(index) is not int or not 0 <= index < MAX_TOOL_CALLS:
            raise StreamDecodeError(f"malformed event: tool call index {index!r} is not an integer "
                                    f"from 0 to {MAX_TOOL_CALLS - 1}")
        if type(arguments) is not str:
            raise StreamDecodeError(f"malformed event: tool call arguments are {type(arguments).__name__}, "
                                    "not a string")
        size = len(arguments)
        if event.signature is not None and type(event.signature) is not str:
            raise StreamDecodeError("malformed event: a tool call signature is not a string")
        for value in (call_id, name):
            if value is not None:
                if type(value) is not str:
                    raise StreamDecodeError(f"malformed event: a tool call id or name is {type(value).__name__}, "
                                            "not a string")
                size += len(value)
        self.chars_left -= size
        if self.chars_left < 0:
            self._overrun("tool call text")

    def _check_block(self, event: BlockDelta) -> None:
        """A provider block's fields are strings and its index below :data:`MAX_TOOL_CALLS`. Its text is not the
        model's output (a web search's or a fetched page's result can be far longer than ``max_tokens``): the byte
        budget bounds it, as every byte of the stream."""
        index = event.index
        if type(index) is not int or not 0 <= index < MAX_TOOL_CALLS:
            raise StreamDecodeError(f"malformed event: block index {index!r} is not an integer "
                                    f"from 0 to {MAX_TOOL_CALLS - 1}")
        for value in (event.kind, event.text, event.id, event.name):
            if value is not None and type(value) is not str:
                raise StreamDecodeError(f"malformed event: a block field is {type(value).__name__}, not a string")

    def _check_reasoning_item(self, event: ReasoningItemDelta) -> None:
        """A reasoning item's index is below :data:`MAX_TOOL_CALLS` and its fields strings (its opaque data is not
        the model's text: the byte budget bounds it)."""
        index = event.index
        if type(index) is not int or not 0 <= index < MAX_TOOL_CALLS:
            raise StreamDecodeError(f"malformed event: reasoning item index {index!r} is not an integer "
                                    f"from 0 to {MAX_TOOL_CALLS - 1}")
        for value in (event.id, event.data, event.signature, *(event.summary or ())):
            if value is not None and type(value) is not str:
                raise StreamDecodeError(f"malformed event: a reasoning item field is {type(value).__name__}, "
                                        "not a string")

    def _overrun(self, what: str) -> None:
        raise OverrunError(self.target, f"the provider kept streaming far past max_tokens ({self.max_tokens:,}): "
                           f"stopped reading after too much {what}",
                           "a provider or server fault (it ignores max_tokens): report it, or use another server")


async def read_bounded(response: httpx2.Response, limit: int) -> tuple[bytes, bool]:
    """Up to ``limit`` bytes of a body, and whether it was cut (too long, broken, or undecodable)."""
    body = bytearray()
    try:
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > limit:
                return bytes(body[:limit]), True
    except httpx2.HTTPError:
        return bytes(body), True
    return bytes(body), False
