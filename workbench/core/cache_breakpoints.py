"""Prompt-cache breakpoints as a user names them (``workbench run --cache-breakpoint``, the editor's cache
field): ``system``, ``tools``, ``last`` (the last message), or a message's number counted from 1 (``-1`` from the
end), added to a request's own (:class:`~workbench.core.request.CacheBreakpoints`, from its prompt file or
session)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Literal

from workbench.core.errors import ConfigError
from workbench.core.request import CacheBreakpoints, ChatRequest

WHERE = "system, tools, last, or a message number (1 is the first, -1 the last)"


def _message_index(item: str, count: int, name: str) -> int:
    if item == "last":
        number = -1
    else:
        try:
            number = int(item)
        except ValueError:
            raise ConfigError(f"{name} {item}: not a place in the prompt", f"{name} takes {WHERE}") from None
    index = number - 1 if number > 0 else count + number
    if number == 0 or not 0 <= index < count:
        raise ConfigError(f"{name} {item}: the request has {count} message{'s' * (count != 1)}",
                          f"{name} takes {WHERE}")
    return index


def with_breakpoints(request: ChatRequest, items: Sequence[str], ttl: Literal["5m", "1h"] | None = None, *,
                     name: str = "--cache-breakpoint") -> ChatRequest:
    """``request`` with the breakpoints ``items`` names added to its own, and ``ttl`` when given; a bad item
    raises a ``ConfigError`` that calls it by ``name`` (the option or field it was given in)."""
    if not items and ttl is None:
        return request
    own = request.cache
    system, tools, messages = own.system, own.tools, set(own.messages)
    for raw in items:
        item = raw.strip().lower()
        if item == "system":
            system = True
        elif item == "tools":
            tools = True
        else:
            messages.add(_message_index(item, len(request.messages), name))
    points = CacheBreakpoints(system=system, tools=tools, messages=tuple(sorted(messages)), ttl=ttl or own.ttl)
    try:
        return replace(request, cache=points)
    except ValueError as exc:
        raise ConfigError(str(exc), f"{name} takes {WHERE}") from None


def breakpoint_items(points: CacheBreakpoints) -> list[str]:
    """``points`` as :func:`with_breakpoints` takes them: ``system``, ``tools``, then message numbers from 1."""
    return [*(["system"] if points.system else []), *(["tools"] if points.tools else []),
            *(str(i + 1) for i in sorted(set(points.messages)))]
