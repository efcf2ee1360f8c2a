"""Scenarios chosen through the model name: ``NAME@key=value,key=value``.

The suffix starts at the LAST ``@`` and only counts as a scenario when it contains ``=``, so
Vertex-style names such as ``claude-3-5-sonnet@20240620`` stay plain names. A plain name (or an
empty suffix) streams a deterministic reply at once. Keys (an unknown key, a repeated key or a bad
value is rejected with a 400 in the provider's real error body, naming the key):

``ttft``        ms before the first token (float >= 0), default 0. Measured from the moment the
                request was read.
``tps``         tokens per second after the first (float > 0); default unpaced (all at once).
                Token ``i`` is due at ``received + ttft + i / tps`` (absolute deadlines).
``tokens``      visible output tokens (int >= 0), default 32.
``reasoning``   reasoning tokens streamed before the text (int >= 0), default 0.
                The request's max-tokens cap applies to reasoning + text (reasoning first); when
                it cuts the reply the finish is length / max_tokens / MAX_TOKENS / incomplete.
``usage``       1/0 (also true/false), default 1: whether usage is reported.
``status``      HTTP status 400..599 to answer with (the provider's real error body).
``fail``        how many requests of this scenario get ``status`` before it succeeds (int >= 0);
                default 1 when ``status`` is given. ``fail`` without ``status`` means status 500.
``retry_after`` seconds (number >= 0) sent as ``Retry-After`` with those errors.
``id``          a free label (no ``,`` ``=`` ``@``) that keeps one test's fail counter apart.
``hang``        ``headers``: never answer; ``stream``: headers + first token, then stall.
``disconnect``  N: close the TCP connection after N content tokens, without a terminator (N at
                or beyond the reply length: every token, then close before the terminal events).
``malformed``   1: right after the first token send a broken event (correct framing around
                truncated JSON), then go on with the normal stream.

Non-streaming requests are answered when the last token would have been streamed (ttft + pacing);
``hang`` (either mode) never answers, ``disconnect`` closes without an answer at token N's due
time, ``malformed`` sends the first half of the JSON body.

The fail counter key is ``(wire, NAME, canonical scenario)`` where the canonical scenario is
the ``key=value`` pairs sorted by key (see :meth:`Scenario.counter_key`); so the same model string
on the same wire (streaming or not) shares one counter, and ``id`` separates otherwise equal ones.
``POST /_fake/reset`` clears all counters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["KEYS", "Scenario", "ScenarioError", "parse_model", "split_model"]

KEYS: tuple[str, ...] = (
    "ttft", "tps", "tokens", "usage", "reasoning", "status", "fail",
    "retry_after", "id", "hang", "disconnect", "malformed",
)  # fmt: skip

MAX_TOKENS_LIMIT = 10_000_000


class ScenarioError(ValueError):
    """A bad scenario suffix; ``key`` names the offending key (None when the syntax is broken)."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    model: str = ""
    ttft_ms: float = 0.0
    tps: float | None = None
    tokens: int = 32
    usage: bool = True
    reasoning: int = 0
    status: int | None = None
    fail: int = 0
    retry_after: str | None = None
    id: str | None = None
    hang: Literal["headers", "stream"] | None = None
    disconnect: int | None = None
    malformed: bool = False
    pairs: tuple[tuple[str, str], ...] = field(default=())

    def counter_key(self, wire: str) -> tuple[str, str, str]:
        """Key of the fail counter: ``(wire, NAME, sorted "k=v" pairs joined by ",")``."""
        return (wire, self.name, ",".join(f"{k}={v}" for k, v in sorted(self.pairs)))


def split_model(model: str) -> tuple[str, str]:
    """Split ``NAME@k=v,...`` into ``(NAME, "k=v,...")``; ``(model, "")`` for a plain name."""
    name, sep, suffix = model.rpartition("@")
    if not sep or "=" not in suffix:
        return model, ""
    return name, suffix


def _number(key: str, value: str, *, minimum: float, maximum: float, strict_min: bool = False) -> float:
    try:
        num = float(value)
    except ValueError:
        raise ScenarioError(f"scenario key '{key}': '{value}' is not a number", key) from None
    if not math.isfinite(num) or num > maximum or num < minimum or (strict_min and num == minimum):
        cmp = ">" if strict_min else ">="
        raise ScenarioError(f"scenario key '{key}': {value} must be {cmp} {minimum:g} and <= {maximum:g}", key)
    return num


def _integer(key: str, value: str, *, minimum: int, maximum: int) -> int:
    try:
        num = int(value)
    except ValueError:
        raise ScenarioError(f"scenario key '{key}': '{value}' is not an integer", key) from None
    if not minimum <= num <= maximum:
        raise ScenarioError(f"scenario key '{key}': {value} must be between {minimum} and {maximum}", key)
    return num


def _flag(key: str, value: str) -> bool:
    low = value.lower()
    if low in ("1", "true"):
        return True
    if low in ("0", "false"):
        return False
    raise ScenarioError(f"scenario key '{key}': '{value}' must be 1 or 0", key)


def parse_model(model: str) -> Scenario:
    """Parse a model string into a :class:`Scenario` (raises :class:`ScenarioError`)."""
    name, suffix = split_model(model)
    values: dict[str, str] = {}
    for item in suffix.split(","):
        if not item.strip():
            continue
        key, eq, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not eq:
            raise ScenarioError(f"scenario item '{item}' is not key=value", key or None)
        if key not in KEYS:
            raise ScenarioError(f"unknown scenario key '{key}' (known keys: {', '.join(KEYS)})", key)
        if key in values:
            raise ScenarioError(f"scenario key '{key}' given twice", key)
        values[key] = value

    def get(key: str) -> str | None:
        return values.get(key)

    ttft = get("ttft")
    tps = get("tps")
    tokens = get("tokens")
    reasoning = get("reasoning")
    usage = get("usage")
    malformed = get("malformed")
    status = get("status")
    fail = get("fail")
    retry_after = get("retry_after")
    label = get("id")
    hang = get("hang")
    disconnect = get("disconnect")

    if label is not None and not label:
        raise ScenarioError("scenario key 'id': the label is empty", "id")
    if hang is not None and hang not in ("headers", "stream"):
        raise ScenarioError(f"scenario key 'hang': '{hang}' must be 'headers' or 'stream'", "hang")
    if retry_after is not None:
        _number("retry_after", retry_after, minimum=0, maximum=86_400)
    status_code = None if status is None else _integer("status", status, minimum=400, maximum=599)
    fail_count = 0 if fail is None else _integer("fail", fail, minimum=0, maximum=1_000_000_000)
    if status_code is not None and fail is None:
        fail_count = 1
    if status_code is None and fail is not None:
        status_code = 500
    return Scenario(
        name=name,
        model=model,
        ttft_ms=0.0 if ttft is None else _number("ttft", ttft, minimum=0, maximum=3_600_000),
        tps=None if tps is None else _number("tps", tps, minimum=0, maximum=1e9, strict_min=True),
        tokens=32 if tokens is None else _integer("tokens", tokens, minimum=0, maximum=MAX_TOKENS_LIMIT),
        usage=True if usage is None else _flag("usage", usage),
        reasoning=0 if reasoning is None else _integer("reasoning", reasoning, minimum=0, maximum=MAX_TOKENS_LIMIT),
        status=status_code,
        fail=fail_count,
        retry_after=retry_after,
        id=label,
        hang="headers" if hang == "headers" else "stream" if hang == "stream" else None,
        disconnect=None
        if disconnect is None
        else _integer("disconnect", disconnect, minimum=0, maximum=MAX_TOKENS_LIMIT),
        malformed=False if malformed is None else _flag("malformed", malformed),
        pairs=tuple(values.items()),
    )
