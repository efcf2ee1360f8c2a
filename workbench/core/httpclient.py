"""The shared HTTP client every provider call goes through (one client per network loop).

Its transport is :class:`~workbench.core.http11.Http11Transport` (HTTP/1.1 on asyncio's protocols,
keep-alive pools per origin). httpx ignores the environment's proxies once a client is given a
transport, so :func:`proxy_mounts` mounts them again by httpx's own rules (``HTTP_PROXY``,
``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``): the origins a proxy covers go through httpx's own
transport with that proxy, every other origin through ours.
"""

from __future__ import annotations

import httpx
from httpx._utils import get_environment_proxies  # httpx's reading of the proxy variables (pinned <0.29)

from workbench.core.http11 import Http11Transport

DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=120.0, write=30.0, pool=60.0)
LIMITS = httpx.Limits(max_connections=256, max_keepalive_connections=64, keepalive_expiry=30.0)
"""Per origin."""


def proxy_mounts() -> dict[str, httpx.AsyncBaseTransport | None]:
    """httpx's mounts for the environment's proxies (``None``: the client's own transport)."""
    return {pattern: None if url is None else httpx.AsyncHTTPTransport(proxy=httpx.Proxy(url), limits=LIMITS)
            for pattern, url in get_environment_proxies().items()}


def new_client(timeout: httpx.Timeout = DEFAULT_TIMEOUT) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=timeout, transport=Http11Transport(limits=LIMITS), mounts=proxy_mounts())
