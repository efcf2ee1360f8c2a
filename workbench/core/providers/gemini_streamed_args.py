"""Gemini's streamed function-call arguments (``streamFunctionCallArguments``, Gemini 3): a call begins with a
``functionCall`` part naming it with ``willContinue: true``, its arguments then come as ``partialArgs`` (each a
``jsonPath`` such as ``$.recipe.ingredients[0].name`` and a ``stringValue``, ``numberValue``, ``boolValue`` or
``nullValue``; a string arrives in pieces, the last one ``""`` without ``willContinue``), and the call ends with a
``functionCall`` part without ``willContinue`` (often ``{}``) or the candidate's finish. The pieces are assembled
into the arguments object; a path that does not fit the object built so far is a malformed stream."""

from __future__ import annotations

import re
from typing import Any

from workbench.core.errors import StreamDecodeError

_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]|\['([^']*)'\]")
MAX_DEPTH = 64
_VALUES = ("stringValue", "numberValue", "boolValue", "nullValue")


def is_streamed(call: dict[str, Any]) -> bool:
    """Is this ``functionCall`` part a piece of a streamed call (rather than a whole call)?"""
    return bool(call.get("willContinue")) or "partialArgs" in call


def _steps(path: Any) -> list[str | int]:
    if not isinstance(path, str) or not path.startswith("$"):
        raise StreamDecodeError(f"malformed event: a partial argument's jsonPath is {str(path)[:80]!r}")
    rest, steps = path[1:], list[str | int]()
    while rest:
        match = _STEP.match(rest)
        if match is None or len(steps) >= MAX_DEPTH:
            raise StreamDecodeError(f"malformed event: a partial argument's jsonPath is {path[:80]!r}")
        key, index, quoted = match.groups()
        steps.append(int(index) if index is not None else key if key is not None else quoted)
        rest = rest[match.end():]
    return steps


class StreamedArguments:
    """One streamed call's arguments object, built from its ``partialArgs``."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: dict[str, Any] = {}

    def add(self, partials: Any) -> None:
        for partial in partials if isinstance(partials, list) else ():
            if not isinstance(partial, dict):
                raise StreamDecodeError("malformed event: a partial argument is not an object")
            name = next((n for n in _VALUES if n in partial), None)
            if name is not None:
                self._set(_steps(partial.get("jsonPath")), None if name == "nullValue" else partial[name])

    def _set(self, steps: list[str | int], value: Any) -> None:
        if not steps:
            raise StreamDecodeError("malformed event: a partial argument's jsonPath names no field")
        node: Any = self.value
        for step, following in zip(steps, [*steps[1:], None], strict=True):
            fresh: Any = value if following is None else [] if isinstance(following, int) else {}
            if isinstance(step, int):
                if not isinstance(node, list) or step > len(node):
                    raise StreamDecodeError("malformed event: a partial argument's array index skips ahead")
                if step == len(node):
                    node.append(fresh)
                    node = node[step]
                    continue
            elif not isinstance(node, dict):
                raise StreamDecodeError("malformed event: a partial argument's jsonPath does not fit its arguments")
            elif step not in node:
                node[step] = fresh
                node = node[step]
                continue
            if following is None:  # the field is there already: a string's next piece, or a new value
                current = node[step]
                node[step] = current + value if isinstance(current, str) and isinstance(value, str) else value
            else:
                node = node[step]
