"""Tool calling on every wire: the arguments of a whole-object tool call as JSON text."""

from __future__ import annotations

import json


def compact_json(value: object) -> str:
    """A tool call's arguments object (Gemini ``functionCall.args``, Ollama ``function.arguments``) as compact
    JSON text, the form the OpenAI wires stream: no spaces, non-ASCII kept."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
