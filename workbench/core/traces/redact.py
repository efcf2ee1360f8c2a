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
    rules: tuple[tuple[str, re.Pattern[str]], ...] = ()
    metadata_only: bool = False
    replacement: str = "[redacted:{name}]"
    _empty: bool = field(default=False, init=False)

    @classmethod
    def build(cls, names: tuple[str, ...] = ("email", "card", "api_key"), custom: dict[str, str] | None = None,
              *, metadata_only: bool = False) -> Redactor:
        rules = [(name, re.compile(BUILTIN_RULES[name])) for name in names]
        rules += [(name, re.compile(pattern)) for name, pattern in (custom or {}).items()]
        return cls(tuple(rules), metadata_only)

    def text(self, value: str | None) -> str | None:
        """The value as it may be stored (``None`` in metadata-only mode)."""
        if value is None or self.metadata_only:
            return None
        for name, pattern in self.rules:
            value = pattern.sub(self.replacement.format(name=name), value)
        return value
