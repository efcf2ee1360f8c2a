"""Where and how to call one model: what :func:`workbench.core.registry.resolve` returns.

Kept apart from the wire adapters (:mod:`workbench.core.providers`) so that resolving targets (a command
checking its ``-m`` options, the configuration) imports no HTTP client and no adapter."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and how to call one model. The key is excluded from ``repr`` so it never reaches a log."""

    provider: str
    model: str
    base_url: str
    wire: str
    api_key: str | None = field(default=None, repr=False)
    default_max_tokens: int = 1024
    key_env: str | None = None
    """The environment variable the key is read from (named in hints, never the key itself)."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Headers of the endpoint's own, sent over the wire's (:attr:`ProviderSpec.headers`)."""
    body: Mapping[str, Any] = field(default_factory=dict)
    """JSON fields merged into every request body (:func:`merged_body`)."""

    @property
    def target(self) -> str:
        return f"{self.provider}/{self.model}"
