"""Which upstream a proxied path goes to, and whether it is a chat call to trace.

``/<provider>/...`` goes to that provider's base URL as workbench resolves it for targets (its environment
override, e.g. ``OPENAI_BASE_URL``, ``ANTHROPIC_BASE_URL``, ``OLLAMA_HOST``, else the configured or built-in
default). OpenAI-style base URLs end in their version (``https://api.openai.com/v1``), so on the OpenAI wires the
path's leading ``v1/`` is the base URL's: ``/openai/v1/chat/completions`` → ``{OPENAI_BASE_URL}/chat/completions``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from workbench.core.registry import ProviderSpec, base_url_of

OPENAI_WIRES = ("openai_chat", "openai_responses")
_GEMINI_CALL = re.compile(r"models/(?P<model>[^/:]+):(?P<method>streamGenerateContent|generateContent)$")


@dataclass(frozen=True, slots=True)
class Route:
    provider: str
    upstream: str
    """The full upstream URL (without the query string)."""
    wire: str | None
    """The wire format of a chat call to trace (``openai_chat``, ``openai_responses``, ``anthropic``, ``gemini``,
    ``ollama``), or ``None``: forwarded, not traced (models, embeddings, token counts)."""
    model: str | None = None
    """The model named by the path (Gemini), else read from the body."""
    streaming_path: bool = False
    """The path itself asks for a stream (Gemini's ``streamGenerateContent``)."""


def chat_wire(spec_wire: str, rest: str) -> tuple[str | None, str | None, bool]:
    """The wire of a chat call at ``rest`` (the path after the provider's base), its model when the path names
    it, and whether the path streams; ``(None, None, False)`` for any other path."""
    if spec_wire in OPENAI_WIRES:
        if rest == "chat/completions":
            return "openai_chat", None, False
        if rest == "responses":
            return "openai_responses", None, False
    elif spec_wire == "anthropic" and rest == "v1/messages":
        return "anthropic", None, False
    elif spec_wire == "gemini":
        match = _GEMINI_CALL.search(rest)
        if match:
            return "gemini", match["model"], match["method"] == "streamGenerateContent"
    elif spec_wire == "ollama" and rest == "api/chat":
        return "ollama", None, False
    return None, None, False


def route(path: str, specs: Mapping[str, ProviderSpec], env: Mapping[str, str]) -> Route | None:
    """The route of ``path`` (``/<provider>/<rest>``), or ``None`` when no provider of ``specs`` has that name or
    it has no base URL."""
    provider, _, rest = path.lstrip("/").partition("/")
    spec = specs.get(provider)
    if spec is None:
        return None
    base = base_url_of(spec, env)
    if base is None:
        return None
    if spec.wire in OPENAI_WIRES:
        if not (rest == "v1" or rest.startswith("v1/")):
            return None
        rest = rest[3:]
    wire, model, streams = chat_wire(spec.wire, rest)
    return Route(provider, f"{base}/{rest}" if rest else base, wire, model, streams)
