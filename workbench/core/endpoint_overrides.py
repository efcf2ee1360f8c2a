"""A target's own endpoint: a base URL, a key, headers and body fields set for that target alone (a suite's
provider ``config``), laid over its provider's spec. The call still resolves through :func:`registry.resolve` and
runs on the one resilient path; only the spec it resolves against is this target's."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from workbench.core.providers.base import merged_body
from workbench.core.registry import PROVIDERS, ProviderSpec
from workbench.core.request import ModelRef


@dataclass(frozen=True, slots=True)
class EndpointOverrides:
    """What a target sets over its provider's spec; ``None`` and empty fields keep the provider's own."""

    base_url: str | None = None
    """Wins over the provider's default and its environment variable (``OPENAI_BASE_URL`` ...)."""
    api_key: str | None = field(default=None, repr=False)
    """A key given as it is: used first, never shown, stored nor hashed into a digest."""
    key_env: str | None = None
    """An environment variable tried before the provider's own."""
    key_optional: bool = False
    """No key needed (promptfoo's ``apiKeyRequired: false``)."""
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Mapping[str, Any] = field(default_factory=dict)

    def spec(self, base: ProviderSpec) -> ProviderSpec:
        """``base`` with these settings over it."""
        return dataclasses.replace(
            base, base_url=self.base_url or base.base_url,
            base_url_env=() if self.base_url else base.base_url_env,
            key_env=(self.key_env, *base.key_env) if self.key_env else base.key_env,
            local=base.local or self.key_optional, api_key=self.api_key or base.api_key,
            headers={**base.headers, **self.headers}, body=merged_body(base.body, self.body),
            key_hint=self.key_hint(base))

    def key_hint(self, base: ProviderSpec) -> str:
        """What to do when the target finds no key: its variables, or the config's own settings."""
        names = ((self.key_env,) if self.key_env else ()) + base.key_env[:1]
        where = f"set {' or '.join(names)}, or " if names else ""
        return f"{where}give the provider apiKey (apiKeyRequired: false for a server that needs none)"

    def fingerprint(self) -> str:
        """A digest of where and how calls go (header values hashed, the key left out): answers cached for one
        endpoint are never served for another."""
        data = {"base_url": self.base_url, "key_env": self.key_env, "body": self.body,
                "headers": {k.lower(): hashlib.sha256(v.encode()).hexdigest() for k, v in self.headers.items()}}
        text = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def providers_with(providers: Mapping[str, ProviderSpec] | None, target: str,
                   overrides: EndpointOverrides | None) -> Mapping[str, ProviderSpec] | None:
    """The provider specs a call to ``target`` resolves against: ``providers`` (the built-ins when ``None``) with
    ``target``'s provider replaced by its own endpoint; ``providers`` as they are without ``overrides``."""
    if overrides is None:
        return providers
    known = PROVIDERS if providers is None else providers
    name = ModelRef.parse(target).provider
    base = known.get(name)
    return providers if base is None else {**known, name: overrides.spec(base)}
