"""Who may use ``workbench proxy`` and with which key.

- The proxy token: on an interface other than loopback (``--allow-remote``) every request must carry it, as
  ``X-Workbench-Token: TOKEN`` or ``Proxy-Authorization: Bearer TOKEN``; a token given on loopback is required
  too. Both headers are stripped before forwarding and never stored. A request without it, or with another,
  gets a 401 in its provider's error shape, so the application's SDK reports an authentication error.
- The user's own key: only when the application sends none (no ``Authorization``, ``x-api-key``,
  ``x-goog-api-key`` nor ``?key=``) and the user opted in (``--use-keyring-keys``, ``[proxy] use_keyring``):
  then the provider's key (the environment's, else the keyring's: :func:`workbench.core.keys.with_stored_keys`)
  is added as the wire sends it. It is held in memory only, like every key workbench sends.
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from workbench.core.registry import ProviderSpec

TOKEN_HEADER = "x-workbench-token"
TOKEN_ENV = "WORKBENCH_PROXY_TOKEN"
KEY_HEADERS = ("authorization", "x-api-key", "x-goog-api-key")
"""Where an application sends its key (besides Gemini's ``?key=`` query parameter)."""


def new_token() -> str:
    """A fresh proxy token (32 URL-safe characters)."""
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class Access:
    token: str | None = None
    """Every request must carry it (``None``: no token, on loopback only)."""
    keys: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Provider name → the key added to a request that carries none (empty: the user did not opt in)."""

    def granted(self, headers: Mapping[str, str]) -> bool:
        """Does the request (lower-case header names) carry the token, where one is required?"""
        if self.token is None:
            return True
        bearer = headers.get("proxy-authorization", "")
        presented = headers.get(TOKEN_HEADER) or (bearer[7:].strip() if bearer[:7].lower() == "bearer " else "")
        return hmac.compare_digest(presented.encode(), self.token.encode())

    def key_headers(self, spec: ProviderSpec, headers: Mapping[str, str], query: str) -> dict[str, str]:
        """The header that adds the user's key for ``spec`` to a request that sends none; ``{}`` otherwise."""
        key = self.keys.get(spec.name)
        if key is None or any(headers.get(name) for name in KEY_HEADERS) or _has_key_parameter(query):
            return {}
        if spec.wire == "anthropic":
            return {"x-api-key": key}
        if spec.wire == "gemini":
            return {"x-goog-api-key": key}
        return {"authorization": f"Bearer {key}"}


def _has_key_parameter(query: str) -> bool:
    return any(part.split("=", 1)[0] == "key" for part in query.split("&"))


def user_keys(specs: Mapping[str, ProviderSpec], env: Mapping[str, str]) -> dict[str, str]:
    """Each provider's key from the environment, else the keyring (what ``--use-keyring-keys`` adds)."""
    from workbench.core.keys import with_stored_keys

    merged = with_stored_keys(env, [name for name, spec in specs.items() if spec.key_env], specs)
    out: dict[str, str] = {}
    for name, spec in specs.items():
        key = spec.api_key or next((merged[v] for v in spec.key_env if merged.get(v)), None)
        if key:
            out[name] = key
    return out


def refusal(wire: str | None) -> bytes:
    """The 401 body of a request without the proxy token, in the error shape of the provider's wire."""
    message = (f"workbench proxy: this request needs the proxy token (send it as X-Workbench-Token or "
               f"Proxy-Authorization: Bearer; set with --token or {TOKEN_ENV})")
    body: object
    if wire == "anthropic":
        body = {"type": "error", "error": {"type": "authentication_error", "message": message}}
    elif wire == "gemini":
        body = {"error": {"code": 401, "message": message, "status": "UNAUTHENTICATED"}}
    elif wire == "ollama":
        body = {"error": message}
    else:
        body = {"error": {"message": message, "type": "invalid_request_error", "param": None,
                          "code": "invalid_proxy_token"}}
    return json.dumps(body).encode()
