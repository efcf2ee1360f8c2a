"""Reasoning inside the content: ``<think>…</think>`` at the start of a reply (DeepSeek-R1 and its distills on
hosts that do not split it out), and Mistral's list-shaped content with ``thinking`` parts.

:class:`ThinkSplitter` splits a streamed content into reasoning and text, the tags possibly cut across chunks
(``<thi`` + ``nk>``): what could still be the start of a tag is held back until the next piece tells (at most
seven characters), and given back by :meth:`ThinkSplitter.flush` when the reply ends. Only a ``<think>`` that
opens the content (after blank space) counts; once the reply is known to be plain text each piece passes
through untouched.
"""

from __future__ import annotations

from typing import Any

from workbench.core.errors import StreamDecodeError
from workbench.core.events import ReasoningDelta, StreamEvent, TextDelta

OPEN, CLOSE = "<think>", "</think>"
_START, _THINKING, _AFTER_CLOSE, _TEXT = range(4)


def _held_back(text: str, tag: str) -> int:
    """The length of the longest end of ``text`` that begins ``tag`` (it may be the tag, cut)."""
    for size in range(min(len(text), len(tag) - 1), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


class ThinkSplitter:
    __slots__ = ("held", "state")

    def __init__(self) -> None:
        self.state = _START
        self.held = ""

    def feed(self, text: str, at_ns: int) -> list[StreamEvent]:
        if self.state == _TEXT or not isinstance(text, str):  # a hostile non-string: the bounds check names it
            return [TextDelta(text, at_ns)]
        out: list[StreamEvent] = []
        text = self.held + text
        self.held = ""
        if self.state == _START:
            start = text.lstrip()
            if OPEN.startswith(start):  # blank, or a cut "<think>": wait for more
                self.held = text
                return out
            if not start.startswith(OPEN):
                self.state = _TEXT
                return [TextDelta(text, at_ns)]
            self.state, text = _THINKING, start[len(OPEN):]
        if self.state == _THINKING:
            end = text.find(CLOSE)
            if end < 0:
                keep = _held_back(text, CLOSE)
                self.held = text[len(text) - keep:]
                if len(text) > keep:
                    out.append(ReasoningDelta(text[:len(text) - keep], at_ns))
                return out
            if end:
                out.append(ReasoningDelta(text[:end], at_ns))
            self.state, text = _AFTER_CLOSE, text[end + len(CLOSE):]
        # After </think>: the blank lines that separate it from the answer are not the answer.
        text = text.lstrip()
        if text:
            self.state = _TEXT
            out.append(TextDelta(text, at_ns))
        return out

    def flush(self, at_ns: int) -> list[StreamEvent]:
        """What was held back, now that the reply ended: text (a reply that began like a tag and was not one) or
        the end of an unclosed reasoning."""
        held, self.held = self.held, ""
        if not held:
            return []
        if self.state == _THINKING:
            return [ReasoningDelta(held, at_ns)]
        return [TextDelta(held, at_ns)] if self.state == _START and held.strip() else []


def content_parts(content: list[Any], at_ns: int) -> list[StreamEvent]:
    """Mistral's list-shaped ``content``: ``{"type": "text", "text"}`` parts are text; ``{"type": "thinking",
    "thinking": [{"type": "text", "text"}, ...]}`` parts are reasoning. Other parts carry no text."""
    out: list[StreamEvent] = []
    for part in content:
        if not isinstance(part, dict):  # a list of bare strings (or anything else) is no documented content
            raise StreamDecodeError(f"malformed event: a content part is {type(part).__name__}, not a string "
                                    "or a typed part")
        kind = part.get("type")
        if kind == "text" and part.get("text"):
            out.append(TextDelta(part["text"], at_ns))
        elif kind == "thinking":
            inner = part.get("thinking")
            pieces = inner if isinstance(inner, list) else [{"text": inner}]
            text = "".join(p["text"] for p in pieces if isinstance(p, dict) and isinstance(p.get("text"), str))
            if text:
                out.append(ReasoningDelta(text, at_ns))
    return out
