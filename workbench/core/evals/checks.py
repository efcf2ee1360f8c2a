"""What every assertion check shares: the context it grades in, what it concludes, and how it says it cannot.

The dispatch table lives in :mod:`workbench.core.evals.assertions`; the checks themselves there and in the
``assertions_*`` modules (text heuristics, tool calls, webhooks and embeddings, model-graded types).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from workbench.core.evals.model import AssertionSpec, Observation

QUOTE_LIMIT = 200


class Judge(Protocol):
    """Calls the judge model: ``target`` is the assertion's ``provider`` (None: the suite's judge). ``prompt`` is
    a text, or a chat as promptfoo writes its grading prompts: a JSON list of ``{role, content}`` messages."""

    async def __call__(self, target: str | None, prompt: str) -> str: ...


class Embedder(Protocol):
    """Embeds texts with an embedding model: ``target`` is the assertion's ``provider`` (None: the default)."""

    async def __call__(self, target: str | None, texts: Sequence[str]) -> list[list[float]]: ...


class Unusable(Exception):
    """The assertion cannot give a verdict; the message says why."""


class Check(NamedTuple):
    passed: bool
    score: float
    expected: str
    found: str
    negated_score: float | None = None
    """The score when the assertion is negated, where promptfoo does not give ``1 - score``."""


@dataclass(frozen=True, slots=True)
class Context:
    spec: AssertionSpec
    value: Any
    obs: Observation
    judge: Judge | None
    base_dir: Path
    embed: Embedder | None = None
    tools: tuple[dict[str, Any], ...] = ()
    """The tools the target's request declared (its provider's ``config.tools``), in OpenAI's function format."""


CheckFn = Callable[[Context], Awaitable[Check]]


def pass_fail(passed: bool, expected: str, found: str) -> Check:
    """A check scored 1 when it passes and 0 when it fails."""
    return Check(passed, float(passed), expected, found)


def quote(text: str, limit: int = QUOTE_LIMIT) -> str:
    """``text`` as a repr, cut to ``limit`` characters with the full length noted."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text)} chars)"


def texts(ctx: Context) -> list[str]:
    """A list value, or a comma-separated string (promptfoo's ``contains-any`` family)."""
    value = ctx.value
    if value is None or isinstance(value, dict):
        raise Unusable(f"{ctx.spec.label} needs a list of values")
    items = value if isinstance(value, list) else str(value).split(",")
    found = [str(item).strip() for item in items if str(item).strip()]
    if not found:
        raise Unusable(f"{ctx.spec.label} needs a list of values")
    return found
