"""Prompt-cache breakpoints as a user names them (``workbench run --cache-breakpoint``): ``system``, ``tools``,
``last`` (the last message), or a message's number counted from 1 (``-1`` from the end), added to a request's
own (:class:`~workbench.core.request.CacheBreakpoints`, from its prompt file or session)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import ValidationError

from workbench.core.errors import ConfigError
from workbench.core.request import CacheBreakpoints, ChatRequest

WHERE = "system, tools, last, or a message number (1 is the first, -1 the last)"
_HINT = f"--cache-breakpoint takes {WHERE}"


def _message_index(item: str, count: int) -> int:
    if item == "last":
        number = -1
    else:
        try:
            number = int(item)
        except ValueError:
            raise ConfigError(f"--cache-breakpoint {item}: not a place in the prompt", _HINT) from None
    index = number - 1 if number > 0 else count + number
    if number == 0 or not 0 <= index < count:
        raise ConfigError(f"--cache-breakpoint {item}: the request has {count} message{'s' * (count != 1)}",
                          _HINT)
    return index


def with_breakpoints(request: ChatRequest, items: Sequence[str],
                     ttl: Literal["5m", "1h"] | None = None) -> ChatRequest:
    """``request`` with the breakpoints ``items`` names added to its own, and ``ttl`` when given."""
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
            messages.add(_message_index(item, len(request.messages)))
    points = CacheBreakpoints(system=system, tools=tools, messages=tuple(sorted(messages)), ttl=ttl or own.ttl)
    try:
        return ChatRequest.model_validate({**dict(request), "cache": points})
    except ValidationError as exc:
        problem = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
        raise ConfigError(problem, _HINT) from None


def carried_over(points: CacheBreakpoints, request: ChatRequest) -> ChatRequest:
    """``request`` (an editor's, from a prompt file or session it loaded) with that source's breakpoints, those
    that still name something: the system prompt and the tools while there are some, a turn by its position."""
    kept = CacheBreakpoints(system=points.system and bool(request.system),
                            tools=points.tools and bool(request.params.tools),
                            messages=tuple(i for i in points.messages if i < len(request.messages)), ttl=points.ttl)
    return request if kept == request.cache else request.model_copy(update={"cache": kept})
