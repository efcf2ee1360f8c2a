"""Validating outside data into the domain's dataclasses with pydantic, at the edges (files, flags, requests).

The domain's values (:mod:`workbench.core.request`, :mod:`workbench.core.policy`, …) are plain frozen dataclasses
that import no pydantic; where data comes from outside, :func:`validated` checks and converts it with a cached
``pydantic.TypeAdapter`` (types, unknown keys, the dataclasses' own checks) and :func:`problem` gives the first
error as ``(where, message)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from workbench.core.bounds import FieldError

if TYPE_CHECKING:
    from pydantic import TypeAdapter, ValidationError

T = TypeVar("T")

_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def adapter(kind: type[T]) -> TypeAdapter[T]:
    """The cached ``TypeAdapter`` of ``kind`` (building one costs milliseconds)."""
    found = _ADAPTERS.get(kind)
    if found is None:
        from pydantic import TypeAdapter

        found = _ADAPTERS[kind] = TypeAdapter(kind)
    return found


def validated(kind: type[T], data: Any) -> T:
    """``data`` (a mapping from a file, flags, a request) as a ``kind``; pydantic's ``ValidationError`` (a
    :class:`ValueError`) when it does not fit."""
    return adapter(kind).validate_python(data)


def dumped(kind: type[T], value: T) -> Any:
    """``value`` as JSON-ready data (tuples as lists, decimals as text), the inverse of :func:`validated`."""
    return adapter(kind).dump_python(value, mode="json")


def problem(exc: ValidationError) -> tuple[str, str]:
    """The first error of ``exc``: its dotted location and its message (without pydantic's ``Value error, ``); a
    field out of its range (:class:`~workbench.core.bounds.FieldError`) is located at that field."""
    first = exc.errors()[0]
    where = [str(part) for part in first["loc"]]
    error = (first.get("ctx") or {}).get("error")
    if isinstance(error, FieldError):
        return ".".join([*where, error.name]), error.problem
    return ".".join(where), first["msg"].removeprefix("Value error, ")
