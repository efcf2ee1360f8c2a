"""Range checks for the domain's frozen dataclasses (:mod:`workbench.core.request`, :mod:`workbench.core.policy`, …).

The dataclasses run them in ``__post_init__``: when code builds one, and when pydantic validates one at an edge (a
file, a flag: :func:`workbench.core.validate.validated`), where the :class:`ValueError` becomes its
``ValidationError``. The text is pydantic's own for the same constraint, so a message reads the same whichever
side found the problem. These modules import no pydantic: the network process unpickles their values without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

Number = int | float | Decimal


class LocatedError(ValueError):
    """A validator's error at a place inside its value (``loc``), so a file's line is that place's."""

    def __init__(self, loc: Sequence[int | str], problem: str) -> None:
        super().__init__(problem)
        self.loc = tuple(loc)


class FieldError(LocatedError):
    """A field's value refused: its ``name``, the ``value`` and the ``problem`` (pydantic's words for a range);
    the text is ``message`` when given, else ``name: problem``."""

    def __init__(self, name: str, value: object, problem: str, message: str | None = None) -> None:
        super().__init__((name,), message or f"{name}: {problem}")
        self.name, self.value, self.problem = name, value, problem


def check(name: str, value: Number | None, *, gt: Number | None = None, ge: Number | None = None,
          lt: Number | None = None, le: Number | None = None) -> None:
    """:class:`FieldError` (``name: Input should be ...``) unless ``value`` is ``None`` or within the bounds."""
    if value is None:
        return
    if gt is not None and not value > gt:
        raise FieldError(name, value, f"Input should be greater than {gt}")
    if ge is not None and not value >= ge:
        raise FieldError(name, value, f"Input should be greater than or equal to {ge}")
    if lt is not None and not value < lt:
        raise FieldError(name, value, f"Input should be less than {lt}")
    if le is not None and not value <= le:
        raise FieldError(name, value, f"Input should be less than or equal to {le}")


def check_text(name: str, value: str) -> None:
    """:class:`FieldError` when ``value`` is empty."""
    if not value:
        raise FieldError(name, value, "String should have at least 1 character")
