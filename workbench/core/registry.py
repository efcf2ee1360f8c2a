"""Known providers: their wire format, default base URL and the environment variables they honour.

A model reference ``provider/model`` resolves to an :class:`Endpoint` here. Keys come from the
environment (``OPENAI_API_KEY`` …); with a base URL override set, a key is optional (local servers and
gateways often need none).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.core.endpoint import Endpoint
from workbench.core.errors import ConfigError, header_safe, one_line
from workbench.core.local_model import LOCAL_URL_ENV, check_local_model
from workbench.core.request import ModelRef

if TYPE_CHECKING:
    import httpx2

    from workbench.core.providers.base import HttpProvider

OLLAMA_PORT = 11434
"""Ollama's port when ``OLLAMA_HOST`` names none (as Ollama's own clients read it)."""

WIRES: dict[str, str] = {
    "openai_chat": "openai_chat:OpenAIChatProvider",
    "openai_responses": "openai_responses:OpenAIResponsesProvider",
    "anthropic": "anthropic:AnthropicProvider",
    "gemini": "gemini:GeminiProvider",
    "ollama": "ollama:OllamaProvider",
}
"""Each wire format's adapter (``module:class`` under :mod:`workbench.core.providers`), imported when a
call is made: resolving targets and reading the configuration need no HTTP client (see bench/startup.py)."""


def wire_adapter(wire: str) -> type[HttpProvider]:
    """The adapter class for ``wire`` (one of :data:`WIRES`)."""
    module, _, name = WIRES[wire].partition(":")
    adapter: type[HttpProvider] = getattr(importlib.import_module(f"workbench.core.providers.{module}"), name)
    return adapter


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    name: str
    wire: str
    base_url: str | None
    """Default base URL; ``None`` when it must be supplied (the built-in fake server)."""
    key_env: tuple[str, ...] = ()
    base_url_env: tuple[str, ...] = ()
    local: bool = False
    """A local server: no key needed even at its default URL."""
    api_key: str | None = field(default=None, repr=False)
    """A key given as it is (a suite's provider ``apiKey``): used before ``key_env``, never shown."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Headers sent with every call, over the wire's own (a suite's provider ``headers``)."""
    body: Mapping[str, Any] = field(default_factory=dict)
    """JSON fields merged into every request body, objects merged key by key (``response_format``, ...)."""
    key_hint: str | None = None
    """What to do when no key is found, where the environment is not the place (a suite's provider config)."""


def _compat(name: str, url: str, key: str, *, local: bool = False) -> ProviderSpec:
    upper = name.upper()
    return ProviderSpec(name, "openai_chat", url, (key,), (f"{upper}_BASE_URL",), local)


PROVIDERS: dict[str, ProviderSpec] = {
    spec.name: spec
    for spec in (
        ProviderSpec("openai", "openai_chat", "https://api.openai.com/v1", ("OPENAI_API_KEY",), ("OPENAI_BASE_URL",)),
        ProviderSpec("openai-responses", "openai_responses", "https://api.openai.com/v1", ("OPENAI_API_KEY",),
                     ("OPENAI_BASE_URL",)),
        ProviderSpec("anthropic", "anthropic", "https://api.anthropic.com", ("ANTHROPIC_API_KEY",),
                     ("ANTHROPIC_BASE_URL",)),
        ProviderSpec("gemini", "gemini", "https://generativelanguage.googleapis.com",
                     ("GEMINI_API_KEY", "GOOGLE_API_KEY"), ("GOOGLE_GEMINI_BASE_URL", "GEMINI_BASE_URL")),
        ProviderSpec("ollama", "ollama", f"http://127.0.0.1:{OLLAMA_PORT}", ("OLLAMA_API_KEY",), ("OLLAMA_HOST",),
                     True),
        _compat("openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
        _compat("groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY"),
        _compat("together", "https://api.together.xyz/v1", "TOGETHER_API_KEY"),
        _compat("deepseek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"),
        _compat("mistral", "https://api.mistral.ai/v1", "MISTRAL_API_KEY"),
        _compat("vllm", "http://127.0.0.1:8000/v1", "VLLM_API_KEY", local=True),
        _compat("lmstudio", "http://127.0.0.1:1234/v1", "LMSTUDIO_API_KEY", local=True),
        _compat("llamacpp", "http://127.0.0.1:8080/v1", "LLAMACPP_API_KEY", local=True),
        # The built-in fake provider server, one name per wire format (see `workbench fake-server`).
        ProviderSpec("fake", "openai_chat", None, (), ("WORKBENCH_FAKE_URL",), True),
        ProviderSpec("fake-responses", "openai_responses", None, (), ("WORKBENCH_FAKE_URL",), True),
        ProviderSpec("fake-anthropic", "anthropic", None, (), ("WORKBENCH_FAKE_URL",), True),
        ProviderSpec("fake-gemini", "gemini", None, (), ("WORKBENCH_FAKE_URL",), True),
        ProviderSpec("fake-ollama", "ollama", None, (), ("WORKBENCH_FAKE_URL",), True),
        # Models run on this machine by llama.cpp, in a server the faces start (see core/local_model.py).
        ProviderSpec("local", "openai_chat", None, (), (LOCAL_URL_ENV,), True),
    )
}

FAKE_PATH_PREFIX = {"openai_chat": "/v1", "openai_responses": "/v1"}
"""Servers the workbench starts (the fake one, the local model one) serve OpenAI's paths under ``/v1``; base
URLs of the other wires are the host root."""

# A per-model max_tokens when the request leaves it unset (first matching prefix wins).
_DEFAULT_MAX_TOKENS: tuple[tuple[str, int], ...] = (
    ("o1", 16384), ("o3", 16384), ("o4", 16384), ("gpt-5", 16384),
    # open reasoning models (Ollama, vLLM, llama.cpp names): their thinking alone can pass a few thousand tokens
    ("gpt-oss", 16384), ("qwen3", 16384), ("deepseek-r1", 16384), ("qwq", 16384), ("magistral", 16384),
    ("gpt-4.1", 8192), ("gpt-4o", 4096), ("claude", 4096), ("gemini-2.5", 8192), ("gemini", 4096),
)
FALLBACK_MAX_TOKENS = 1024


def default_max_tokens(model: str) -> int:
    name = model.rsplit("/", 1)[-1].lower()
    return next((n for prefix, n in _DEFAULT_MAX_TOKENS if name.startswith(prefix)), FALLBACK_MAX_TOKENS)


def _first(env: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    """The first of ``names`` set in ``env``, without surrounding whitespace (a key pasted with a trailing
    space or line break would make an invalid header)."""
    return next((value for name in names if (value := env.get(name, "").strip())), None)


def _normalise_base_url(spec: ProviderSpec, url: str) -> str:
    url = url.rstrip("/")
    return ollama_host_url(url) if spec.name == "ollama" and "://" not in url else url


def ollama_host_url(host: str) -> str:
    """``OLLAMA_HOST`` without a scheme as Ollama's own clients read it: ``http``, the host defaulting to
    127.0.0.1 and the port to 11434 (``0.0.0.0``, ``gpu-box``, ``:8080``, ``[::1]``); a value that does not
    parse is returned as an http URL for :func:`base_url_problem` to name."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(f"http://{host}")
        port = parts.port or OLLAMA_PORT
    except ValueError:
        return f"http://{host}"
    name = parts.hostname or "127.0.0.1"
    name = f"[{name}]" if ":" in name else name
    return f"http://{name}:{port}{parts.path.rstrip('/')}"


def base_url_problem(url: str) -> str | None:
    """What makes ``url`` unusable as a base URL, or ``None``: it must be an http(s) URL with a host."""
    from urllib.parse import urlsplit

    if any(c.isspace() for c in url):
        return "it holds a space"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a port that is not a number from 0 to 65535)
    except ValueError as exc:
        return str(exc)
    if parts.scheme not in ("http", "https"):
        return "not an http:// or https:// URL"
    return None if parts.hostname else "no host"


def base_url_of(spec: ProviderSpec, env: Mapping[str, str] | None = None) -> str | None:
    """The base URL a provider's calls go to (its environment override, else its default)."""
    url = _first(os.environ if env is None else env, spec.base_url_env) or spec.base_url
    return None if url is None else _normalise_base_url(spec, url)


def resolve(ref: ModelRef, env: Mapping[str, str] | None = None,
            providers: Mapping[str, ProviderSpec] | None = None) -> Endpoint:
    """The endpoint for ``ref``; raises :class:`ConfigError` with the next step when it cannot be called.

    ``providers`` are the known providers (the built-ins, or a configuration's version of them)."""
    env = os.environ if env is None else env
    providers = PROVIDERS if providers is None else providers
    spec = providers.get(ref.provider)
    if spec is None:
        known = ", ".join(sorted(providers))
        raise ConfigError(f"unknown provider '{ref.provider}' in '{ref}'", f"use one of: {known}")
    if spec.name == "local":
        check_local_model(ref.model)
    override = _first(env, spec.base_url_env)
    base_url = override or spec.base_url
    if base_url is None and spec.name == "local":
        raise ConfigError(
            f"{ref}: no local model server is running",
            f"`workbench run` starts one; elsewhere set {LOCAL_URL_ENV} to a running `python -m llama_cpp.server`",
        )
    if base_url is None:
        raise ConfigError(
            f"{ref}: the fake provider needs a server",
            "start one with `workbench fake-server` and set WORKBENCH_FAKE_URL to its URL",
        )
    base_url = _normalise_base_url(spec, base_url)
    if problem := base_url_problem(base_url):
        source = next(n for n in spec.base_url_env if env.get(n, "").strip()) if override else \
            f"[providers.{spec.name}] base_url"
        raise ConfigError(f"{ref}: invalid base URL {one_line(base_url, 100)!r} from {source}: {problem}",
                          f"set {source} to the server's URL, e.g. https://host:port/v1")
    if spec.base_url is None:
        base_url += FAKE_PATH_PREFIX.get(spec.wire, "")
    key = spec.api_key.strip() if spec.api_key else _first(env, spec.key_env)
    key_source = "apiKey" if spec.api_key else next((n for n in spec.key_env if env.get(n, "").strip()), None)
    if key is not None and key_source is not None:
        header_safe(key, key_source)
    if key is None and override is None and not spec.local:
        raise ConfigError(
            f"{ref}: no API key for {spec.name}",
            spec.key_hint or f"`workbench keys set {spec.name}` or set {spec.key_env[0]} in the environment (or "
            f"point {spec.base_url_env[0]} at a server that needs none)",
        )
    return Endpoint(
        provider=spec.name, model=ref.model, base_url=base_url, wire=spec.wire, api_key=key,
        default_max_tokens=default_max_tokens(ref.model),
        key_env=key_source or (spec.key_env[0] if spec.key_env else None), headers=dict(spec.headers),
        body=dict(spec.body),
    )


def make_provider(endpoint: Endpoint, client: httpx2.AsyncClient,
                  timeout: httpx2.Timeout | None = None) -> HttpProvider:
    return wire_adapter(endpoint.wire)(endpoint, client, timeout)
