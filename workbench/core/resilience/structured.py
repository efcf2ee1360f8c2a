"""Structured output: whether a reply to a request with a JSON schema will do, and if not, what to report and
whether asking again can help. A refusal is reported as one and never asked for again; a reply cut at
``max_tokens`` is asked for again only with more room (``structured_more_room``); any other reply that
breaks the schema is asked for again as it was (the caller counts ``structured_retries``)."""

from __future__ import annotations

import json
import math
from typing import Any

from workbench.core.call_record import CallRecord
from workbench.core.errors import RefusalError, StructuredOutputError
from workbench.core.events import FinishReason
from workbench.core.policy import CallPolicy
from workbench.core.request import ChatRequest


def judge_structured(record: CallRecord, target: str, policy: CallPolicy,
                     default_max_tokens: int) -> tuple[StructuredOutputError, ChatRequest | None] | None:
    """``None`` when ``record``'s reply needs no JSON or matches its schema; else the error to report and the
    request to ask again with (``None``: asking again cannot help)."""
    schema = record.request.params.json_schema
    if schema is None:
        return None
    if record.finish is FinishReason.CONTENT_FILTER:
        said = _excerpt(record.refusal or record.text)
        return RefusalError(target, f"the model refused ({record.finish_raw}): {said}",
                            "a refusal is not asked for again: change the prompt, or try another model"), None
    problem = schema_problem(record.text, schema)
    if problem is None:
        return None
    if record.finish is not FinishReason.LENGTH:
        return StructuredOutputError(target, problem, "the model's reply does not match the schema"), record.request
    limit = record.request.params.max_tokens or default_max_tokens
    error = StructuredOutputError(target, f"cut at max_tokens ({limit}) before the JSON ended: {problem}",
                                  "raise max_tokens (--max-tokens), or ask for a shorter reply")
    if policy.structured_more_room <= 1:
        return error, None
    return error, record.request.with_max_tokens(math.ceil(limit * policy.structured_more_room), replace=True)


def _excerpt(text: str, limit: int = 120) -> str:
    line = " ".join(text.split())
    return repr(line if len(line) <= limit else line[: limit - 1] + "…")


def schema_problem(text: str, schema: dict[str, Any]) -> str | None:
    """Why ``text`` is not a JSON document valid under ``schema`` (``None`` when it is)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"not JSON ({exc.msg} at character {exc.pos})"
    import jsonschema  # only a call with a response schema validates one

    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        return f"schema violation at {where}: {exc.message}"
    except jsonschema.SchemaError as exc:
        return f"the request's JSON schema is invalid: {exc.message}"
    return None
