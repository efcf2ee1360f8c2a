"""Redaction applied to every text before it is written to the trace store.

Request headers are never stored at all (keys travel only in headers). Text passes through regex
rules: the built-in ``email`` and ``card`` rules and any custom ones. A metadata-only mode stores no
text at all: prompts, replies and reasoning are dropped, counts and timings kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

BUILTIN_RULES: dict[str, str] = {
    "email": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
    "card": r"\b(?:\d[ -]?){12,18}\d\b",
    "api_key": r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{16,}\b",
}


# A cheap test a text must pass before a rule's (costlier) regex runs over it (a plain substring where
# one will do: those are found without running the regex engine at every position).
_PRECHECKS: dict[str, re.Pattern[str]] = {
    "email": re.compile("@"),
    "card": re.compile(r"\d\d\d\d"),
    "api_key": re.compile("k-"),
}


@dataclass(frozen=True)
class Redactor:
    rules: tuple[tuple[str, str], ...] = ()
    """(name, regex) pairs, applied in order."""
    metadata_only: bool = False
    _compiled: tuple[tuple[re.Pattern[str] | None, re.Pattern[str], str], ...] = field(
        default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        compiled = tuple((_PRECHECKS.get(name), re.compile(pattern), f"[redacted:{name}]")
                         for name, pattern in self.rules)
        object.__setattr__(self, "_compiled", compiled)

    @classmethod
    def build(cls, names: tuple[str, ...] = ("email", "card", "api_key"), custom: dict[str, str] | None = None,
              *, metadata_only: bool = False) -> Redactor:
        rules = [(name, BUILTIN_RULES[name]) for name in names] + list((custom or {}).items())
        return cls(tuple(rules), metadata_only)

    def text(self, value: str | None) -> str | None:
        """The value as it may be stored (``None`` in metadata-only mode)."""
        if value is None or self.metadata_only:
            return None
        for precheck, pattern, label in self._compiled:
            if precheck is None or precheck.search(value):
                value = pattern.sub(label, value)
        return value
