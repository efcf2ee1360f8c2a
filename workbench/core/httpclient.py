"""The shared HTTP client every provider call goes through (one client per network loop).

httpcore's connection pool scans every connection for every queued request each time a request
starts or ends, so its cost grows with the square of the connections in use: at 50 concurrent
streams that scan, not the network, set an eval's pace. The client therefore spreads requests
round-robin over a few independent pools (:class:`ShardedTransport`), each small enough to scan
cheaply; keep-alive connections are reused within their pool. All pools share one TLS context.
"""

from __future__ import annotations

import itertools

import httpx

DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=120.0, write=30.0, pool=60.0)
SHARDS = 8
SHARD_LIMITS = httpx.Limits(max_connections=32, max_keepalive_connections=8, keepalive_expiry=30.0)
"""Per pool: 8 pools give 256 connections and 64 kept alive in all."""


class ShardedTransport(httpx.AsyncBaseTransport):
    def __init__(self, shards: int = SHARDS, limits: httpx.Limits = SHARD_LIMITS) -> None:
        context = httpx.create_ssl_context()  # httpx's own (certifi, SSL_CERT_FILE)
        self.pools = [httpx.AsyncHTTPTransport(verify=context, limits=limits) for _ in range(shards)]
        self._next = itertools.cycle(self.pools)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await next(self._next).handle_async_request(request)

    async def aclose(self) -> None:
        for pool in self.pools:
            await pool.aclose()


def new_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=DEFAULT_TIMEOUT, transport=ShardedTransport())
