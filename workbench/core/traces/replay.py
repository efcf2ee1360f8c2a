"""A traced call's request read back from the trace log: what is sent again when a call is replayed (the trace
browser's replay, ``workbench load --from-traces``) or continued (``run --continue``)."""

from __future__ import annotations

import json

from pydantic import ValidationError

from workbench.core.errors import ConfigError
from workbench.core.request import ChatRequest
from workbench.core.validate import problem, validated


def traced_request(call_id: object, request_json: str | None, action: str = "replay") -> ChatRequest:
    """The request call ``call_id`` sent, from its ``request_json`` column; a :class:`ConfigError` (``action``: what
    the user wanted to do with it) for a call traced without its text, or one that cannot be read back."""
    if not request_json:
        raise ConfigError(f"call {call_id} was traced without its text (metadata-only)",
                          f"{action} a call traced with its text")
    data = json.loads(request_json)
    try:
        return validated(ChatRequest, {"system": data.get("system"), "messages": data["messages"],
                                       "params": data.get("params") or {}})
    except ValidationError as exc:
        raise ConfigError(f"call {call_id}'s request cannot be read back: {problem(exc)[1]}") from None
