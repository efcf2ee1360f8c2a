"""The shared HTTP client every provider call goes through (one client per network loop): httpx2."""

from __future__ import annotations

import httpx2

DEFAULT_TIMEOUT = httpx2.Timeout(connect=10.0, read=120.0, write=30.0, pool=60.0)
LIMITS = httpx2.Limits(max_connections=256, max_keepalive_connections=64, keepalive_expiry=30.0)


def new_client(timeout: httpx2.Timeout = DEFAULT_TIMEOUT) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(timeout=timeout, limits=LIMITS)
