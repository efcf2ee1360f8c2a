"""What the eval store keeps of a result: its texts passed through the settings' redactor.

The store holds a cell's variables, its rendered prompt, the reply, the error and each grader's reason; the
reports are rendered from the store. Each of those texts goes through :class:`~workbench.core.traces.redact.Redactor`
(the rules of ``[traces]``: e-mails, card numbers, API keys and tokens, custom rules), and in metadata-only mode
none is kept. The grading itself ran on the reply as it came: only what is written changes.

The response cache answers a cell again with a stored reply, and that reply is graded as if it had just come. So a
reply the rules would change is not cached (nor is anything in metadata-only mode): a cached reply is always the
reply itself, and the rendered prompt is rebuilt from the request on a cache hit.
"""

from __future__ import annotations

from dataclasses import replace

from workbench.core.evals.model import Grading, Observation
from workbench.core.traces.redact import Redactor


def stored_observation(observation: Observation, redactor: Redactor) -> Observation:
    """``observation`` as the store keeps it: its texts redacted, its figures as they are."""
    return replace(observation, text=redactor.stored(observation.text),
                   error=None if observation.error is None else redactor.stored(observation.error),
                   vars=redactor.mapping(observation.vars), prompt_text=redactor.stored(observation.prompt_text),
                   tool_calls=[{**call, "arguments": redactor.stored(call["arguments"])}
                               for call in observation.tool_calls])


def stored_grading(grading: Grading, redactor: Redactor) -> Grading:
    """A grader's verdict as the store keeps it: its reason (which may quote the reply) redacted."""
    return replace(grading, reason=redactor.stored(grading.reason),
                   components=tuple(stored_grading(inner, redactor) for inner in grading.components))


def cacheable(observation: Observation, redactor: Redactor) -> Observation | None:
    """``observation`` as the response cache keeps it, or ``None`` when it may not be cached: redaction would change
    its reply, or no text is kept at all (metadata-only)."""
    if redactor.metadata_only:
        return None
    kept = stored_observation(observation, redactor)
    return kept if kept.text == observation.text and kept.tool_calls == observation.tool_calls else None
