"""Assertions graded by a service: ``webhook`` (promptfoo's POST of the output and its context to a URL) and
``similar`` (embedding cosine similarity, through the embedder the runner gives: the assertion's ``provider``,
else :data:`~workbench.core.evals.embeddings.DEFAULT_EMBEDDING_TARGET`)."""

from __future__ import annotations

import os

import httpx2

from workbench.core.errors import one_line
from workbench.core.evals.checks import Check, CheckFn, Context, Unusable, quote
from workbench.core.evals.embeddings import EmbeddingError, cosine

SIMILAR_THRESHOLD = 0.75
WEBHOOK_TIMEOUT_MS = 5000
"""promptfoo's default; ``WEBHOOK_TIMEOUT`` (ms) in the environment changes it, as in promptfoo."""


async def _webhook(ctx: Context) -> Check:
    """POST ``{"output": ..., "context": {"prompt": ..., "vars": ...}}``; the JSON answer's ``pass`` (and
    ``score``, ``reason``) is the verdict. An error status, a failed call or an answer that is not JSON fails."""
    url = ctx.value
    if not isinstance(url, str) or not url.strip():
        raise Unusable("webhook needs a URL as its value")
    body = {"output": ctx.obs.text, "context": {"prompt": ctx.obs.prompt_text, "vars": ctx.obs.vars}}
    timeout = float(os.environ.get("WEBHOOK_TIMEOUT", WEBHOOK_TIMEOUT_MS)) / 1000
    try:
        async with httpx2.AsyncClient(timeout=timeout) as client:
            response = await client.post(url, json=body)
        if response.status_code >= 400:
            raise Unusable(f"webhook error: the webhook answered status {response.status_code}")
        answer = response.json()
    except (httpx2.HTTPError, ValueError) as exc:
        raise Unusable(one_line(f"webhook error: {type(exc).__name__}: {exc}")) from None
    if not isinstance(answer, dict):
        raise Unusable(f"webhook error: the answer is not a JSON object: {quote(response.text)}")
    passed = answer.get("pass") is True
    raw = answer.get("score")
    score = float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else float(passed)
    reason = str(answer.get("reason") or ("passed" if passed else "the webhook returned false"))
    return Check(passed, score, f"the webhook {url} to pass the output", f"webhook: {reason}")


async def _similar(ctx: Context) -> Check:
    """Cosine similarity >= threshold (0.75) to the value, or to any value of a list; negated, the output must be
    dissimilar to every one (promptfoo's ``not-similar``)."""
    value = ctx.value
    references = value if isinstance(value, list) else [value]
    if not references or not all(isinstance(r, str | int | float) for r in references):
        raise Unusable("similar needs a text (or a list of texts) as its value")
    if ctx.embed is None:
        raise Unusable("similar needs an embedding model, and this grading has none")
    threshold = ctx.spec.threshold if ctx.spec.threshold is not None else SIMILAR_THRESHOLD
    try:
        vectors = await ctx.embed(ctx.spec.provider, [ctx.obs.text, *map(str, references)])
    except EmbeddingError as exc:
        raise Unusable(f"the embeddings call failed: {exc}") from None
    scores = [cosine(vectors[0], vector) for vector in vectors[1:]]
    best = max(scores)
    shown = ", ".join(f"{s:.3f}" for s in scores)
    expected = f"similarity >= {threshold:g} to {quote(str(references[0]), 80) if len(references) == 1 else references}"
    return Check(best >= threshold, best, expected, f"cosine similarity {shown}", negated_score=1.0 - best)


CHECKS: dict[str, CheckFn] = {
    "webhook": _webhook,
    "similar": _similar,
}
