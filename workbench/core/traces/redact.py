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


@dataclass(frozen=True)
class Redactor:
    rules: tuple[tuple[str, str], ...] = ()
    """(name, regex) pairs, applied as one alternation: a single pass over each text."""
    metadata_only: bool = False
    _pattern: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)
    _labels: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.rules:
            groups = "|".join(f"(?P<r{i}>{pattern})" for i, (_, pattern) in enumerate(self.rules))
            object.__setattr__(self, "_pattern", re.compile(groups))
            object.__setattr__(self, "_labels", {f"r{i}": f"[redacted:{name}]" for i, (name, _) in
                                                 enumerate(self.rules)})

    @classmethod
    def build(cls, names: tuple[str, ...] = ("email", "card", "api_key"), custom: dict[str, str] | None = None,
              *, metadata_only: bool = False) -> Redactor:
        rules = [(name, BUILTIN_RULES[name]) for name in names] + list((custom or {}).items())
        return cls(tuple(rules), metadata_only)

    def _label(self, match: re.Match[str]) -> str:
        return self._labels[match.lastgroup or ""]

    def text(self, value: str | None) -> str | None:
        """The value as it may be stored (``None`` in metadata-only mode)."""
        if value is None or self.metadata_only:
            return None
        if self._pattern is None:
            return value
        return self._pattern.sub(self._label, value)
