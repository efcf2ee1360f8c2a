"""The domain's frozen dataclasses without pydantic: as plain data (what ``model_dump`` gave for a model) for the
trace log, session and prompt files, which write such values often; copied with changes and no checks (what
``model_copy`` did) for a part of a value that need not be valid alone."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


def _plain(value: Any, options: dict[str, bool]) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return as_data(value, **options)
    if isinstance(value, tuple):
        return tuple(_plain(v, options) for v in value)
    if isinstance(value, list):
        return [_plain(v, options) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v, options) for k, v in value.items()}
    return value


def _is_default(field: dataclasses.Field[Any], value: Any) -> bool:
    if field.default is not dataclasses.MISSING:
        return bool(value == field.default)
    if field.default_factory is not dataclasses.MISSING:
        return bool(value == field.default_factory())
    return False


def as_data(value: Any, *, exclude_defaults: bool = False, exclude_none: bool = False) -> dict[str, Any]:
    """A dataclass instance's fields as a dict, nested dataclasses as dicts (tuples stay tuples); with
    ``exclude_defaults`` / ``exclude_none``, the fields equal to their default / ``None`` are left out, at every
    level, as with pydantic's options of the same names."""
    options = {"exclude_defaults": exclude_defaults, "exclude_none": exclude_none}
    out: dict[str, Any] = {}
    for field in dataclasses.fields(value):
        item = getattr(value, field.name)
        if (exclude_none and item is None) or (exclude_defaults and _is_default(field, item)):
            continue
        out[field.name] = _plain(item, options)
    return out


def copied(value: T, **changes: Any) -> T:
    """``value`` (a frozen dataclass) with ``changes``, unchecked (``dataclasses.replace`` runs ``__post_init__``):
    for a part of a valid value that need not be one itself, such as the first turns of a conversation, cut
    between a tool call and its result, counted as a cache prefix."""
    out = copy.copy(value)
    for name, item in changes.items():
        object.__setattr__(out, name, item)
    return out
