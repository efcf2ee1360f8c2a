"""The shared HTTP client every provider call goes through (one client per network loop).

Its transport is :class:`~workbench.core.http11.Http11Transport` (HTTP/1.1 on asyncio's protocols,
keep-alive pools per origin); httpx's own transport still serves the origins an environment proxy
covers.
"""

from __future__ import annotations

import httpx

from workbench.core.http11 import Http11Transport

DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=120.0, write=30.0, pool=60.0)
LIMITS = httpx.Limits(max_connections=256, max_keepalive_connections=64, keepalive_expiry=30.0)
"""Per origin."""


def new_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=DEFAULT_TIMEOUT, transport=Http11Transport(limits=LIMITS))
