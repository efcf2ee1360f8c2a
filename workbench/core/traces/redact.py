"""Redaction: the rules every text passes before workbench writes it to a file.

One :class:`Redactor` (``Settings.redactor()``, from ``[traces]``) serves every file: the trace log, the eval
store (variables, outputs, errors, the graders' reasons) and so the reports rendered from it, saved sessions and
their exports. Request headers are never stored at all (keys travel only in headers). Text passes through regex
rules: the built-in ``email``, ``card`` and ``api_key`` rules and any custom ones. A metadata-only mode stores no
text at all: prompts, replies and reasoning are dropped, counts and timings kept.

The ``api_key`` rule covers OpenAI-style (``sk-``, ``sk-proj-``, ``sk-ant-``), Stripe-style and Groq keys, Google
(``AIza``), GitHub (``ghp_``, ``gho_``, ``ghu_``, ``ghs_``, ``ghr_``, ``github_pat_``), Slack (``xoxb-``, ...),
AWS access key ids (``AKIA``, ``ASIA``), Hugging Face and xAI tokens, and JWTs.

Speed: the trace writer redacts every call, so a built-in rule first asks a cheap question of a text (does it
hold a ``@``, a digit, a ``-`` or ``_``: single-character scans), and runs its regexes only over the texts that
pass; most texts stop there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

_SK = re.compile(r"\b[spr]k-[A-Za-z0-9_\-]{16,}")  # OpenAI (sk-proj-, sk-svcacct-), Anthropic, DeepSeek, ...
_SLACK = re.compile(r"xox[abposr]-[A-Za-z0-9\-]{10,}")
_XAI = re.compile(r"xai-[A-Za-z0-9]{30,}")
_UNDERSCORED = re.compile(r"\b[spr]k_(?:live|test)_[A-Za-z0-9]{16,}|\bgsk_[A-Za-z0-9]{20,}")  # Stripe-style, Groq
_GITHUB = re.compile(r"gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,}")
_HUGGING_FACE = re.compile(r"hf_[A-Za-z0-9]{30,}")
_GOOGLE_AWS = re.compile(r"A(?:Iza[A-Za-z0-9_\-]{35}|(?:KIA|SIA)[A-Z0-9]{16}\b)")  # Google (Gemini); AWS key ids
_JWT = re.compile(r"eyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*")  # header.payload.signature
_DASH_MARK = re.compile(r"-(?:(?<=[spr]k-)|(?<=xox[abposr]-)|(?<=xai-))")
_UNDERSCORE_MARK = re.compile(r"_(?:(?<=[spr]k_)|(?<=gsk_)|(?<=hf_)|(?<=gh[pousr]_)|(?<=github_))")
# An address starts where a run of address characters starts (no quadratic rescans of long words).
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
_FOUR_DIGITS = re.compile(r"\d\d\d\d")


def _keys(value: str, label: str) -> str:
    # A single character first (a fast scan), then one regex for the markers that character is part of, then the
    # rules those markers lead to: most texts stop at the first step, and a text of prose at the second.
    if "-" in value and _DASH_MARK.search(value):
        for pattern in (_SK, _SLACK, _XAI):
            value = pattern.sub(label, value)
    if "_" in value and _UNDERSCORE_MARK.search(value):
        for pattern in (_UNDERSCORED, _GITHUB, _HUGGING_FACE):
            value = pattern.sub(label, value)
    if "A" in value:
        value = _GOOGLE_AWS.sub(label, value)
    if "J" in value and "eyJ" in value:
        value = _JWT.sub(label, value)
    return value


def _emails(value: str, label: str) -> str:
    return _EMAIL.sub(label, value) if "@" in value else value


def _cards(value: str, label: str) -> str:
    # A digit at all (single-character scans), then four in a row, then a card number.
    if not ("0" in value or "1" in value or "2" in value or "3" in value or "4" in value or "5" in value
            or "6" in value or "7" in value or "8" in value or "9" in value):
        return value
    return _CARD.sub(label, value) if _FOUR_DIGITS.search(value) else value


_BUILTIN: dict[str, tuple[Callable[[str, str], str], tuple[re.Pattern[str], ...]]] = {
    "api_key": (_keys, (_SK, _SLACK, _XAI, _UNDERSCORED, _GITHUB, _HUGGING_FACE, _GOOGLE_AWS, _JWT)),
    "email": (_emails, (_EMAIL,)),
    "card": (_cards, (_CARD,)),
}
BUILTIN_RULES: dict[str, str] = {name: "|".join(f"(?:{p.pattern})" for p in patterns)
                                 for name, (_, patterns) in _BUILTIN.items()}
"""Each built-in rule as one regex (what it redacts; each applies its parts with cheap tests first)."""
_ORDER = tuple(BUILTIN_RULES)
"""Built-in rules apply in this order, whatever the configuration's: keys before card numbers, so a key with
digit groups in it is redacted whole."""

METADATA_ONLY = "[metadata only]"
"""What a file holds in place of a text in metadata-only mode, where a string must stay (a session's messages)."""


def _custom(pattern: re.Pattern[str]) -> Callable[[str, str], str]:
    return lambda value, label: pattern.sub(label, value)


@dataclass(frozen=True)
class Redactor:
    rules: tuple[tuple[str, str], ...] = ()
    """(name, regex) pairs: built-in rules first (keys, e-mails, cards), then the others in order."""
    metadata_only: bool = False
    _compiled: tuple[tuple[Callable[[str, str], str], str], ...] = field(default=(), init=False, repr=False,
                                                                       compare=False)

    def __post_init__(self) -> None:
        compiled = tuple((_BUILTIN[name][0] if BUILTIN_RULES.get(name) == pattern else _custom(re.compile(pattern)),
                          f"[redacted:{name}]") for name, pattern in self.rules)
        object.__setattr__(self, "_compiled", compiled)

    @classmethod
    def build(cls, names: tuple[str, ...] = ("email", "card", "api_key"), custom: Mapping[str, str] | None = None,
              *, metadata_only: bool = False) -> Redactor:
        chosen = [name for name in _ORDER if name in names]
        rules = [(name, BUILTIN_RULES[name]) for name in chosen] + list((custom or {}).items())
        return cls(tuple(rules), metadata_only)

    def text(self, value: str | None) -> str | None:
        """The value as it may be stored (``None`` in metadata-only mode)."""
        if value is None or self.metadata_only:
            return None
        for apply, label in self._compiled:
            value = apply(value, label)
        return value

    def stored(self, value: str) -> str:
        """A text a file must keep as a string: redacted; in metadata-only mode :data:`METADATA_ONLY` (``""``
        stays ``""``)."""
        kept = self.text(value)
        return kept if kept is not None else (METADATA_ONLY if value else "")

    def mapping(self, values: Mapping[str, str]) -> dict[str, str]:
        """Variables and the like: the names kept, each value :meth:`stored`."""
        return {name: self.stored(value) for name, value in values.items()}
