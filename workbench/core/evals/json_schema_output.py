"""A reply asked for with OpenAI Chat's ``response_format: {type: json_schema}``, as promptfoo's OpenAI chat
provider hands it on: the parsed JSON (code assertions and transforms read the object, ``output.sentiment``),
the text kept for the text checks; a reply that is not JSON (or is ``null``) stays the text."""

from __future__ import annotations

import json

from workbench.core.endpoint_overrides import EndpointOverrides
from workbench.core.templating import StructuredVar


def schema_output(wire: str, endpoint: EndpointOverrides | None, output: str) -> str:
    """``output`` parsed when the target asks Chat Completions for a JSON schema; as it is otherwise."""
    if wire != "openai_chat" or endpoint is None or isinstance(output, StructuredVar):
        return output
    fmt = endpoint.body.get("response_format")
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return output
    try:
        data = json.loads(output)
    except ValueError:
        return output
    return output if data is None else StructuredVar(data, output)
