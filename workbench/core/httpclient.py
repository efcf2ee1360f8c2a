"""The shared HTTP client every provider call goes through (one client per network loop): httpx2.

Everything is built from httpx2's public API, from one :class:`~workbench.core.network.Network`: the
default transport (the OS trust store or a CA bundle, a client certificate, HTTP/2 when asked for,
connect retries; httpcore2 tries a host's IPv6 and IPv4 addresses in turn, happy eyeballs), one
transport per proxy route (HTTP, HTTPS, SOCKS5), and a transport per provider origin that has its own
settings. The client itself does not read the environment (``trust_env=False``): the
:class:`Network` already did, by the same conventions, so ``config show`` says what is in force.
"""

from __future__ import annotations

from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx2

from workbench.core.network import Network

DEFAULT_TIMEOUT = httpx2.Timeout(connect=10.0, read=120.0, write=30.0, pool=60.0)
LIMITS = httpx2.Limits(max_connections=256, max_keepalive_connections=64, keepalive_expiry=30.0)
"""Per origin."""
LOAD_LIMITS = httpx2.Limits(max_connections=4096, max_keepalive_connections=512, keepalive_expiry=30.0)
"""Per origin, for a load test (``workbench load``): its calls in flight are the provider's load, not a client's, so
they wait for a connection only past 4,096 (a slow stream at a high rate keeps thousands open)."""


def _transport(network: Network, proxy: str | None = None, *, tls: bool = True,
               limits: httpx2.Limits = LIMITS) -> httpx2.AsyncHTTPTransport:
    # An https:// proxy is reached over TLS too: with the same trust (CA bundle, verify), not httpx2's default.
    # ``tls=False``: for http:// origins only, which never use the context (so no CA certificates are loaded).
    return httpx2.AsyncHTTPTransport(
        verify=network.ssl_context() if tls else False, http2=network.http2, limits=limits, trust_env=False,
        retries=network.connect_retries if proxy is None else 0,
        proxy=None if proxy is None else httpx2.Proxy(
            proxy, ssl_context=network.ssl_context() if proxy.startswith("https://") else None),
    )


class DirectTransport(httpx2.AsyncBaseTransport):
    """The direct (unproxied) transport: one httpx2 transport per scheme, each built on its scheme's first request.

    Loading the CA certificates for a TLS context costs tens of milliseconds; an ``http://`` origin (a local
    model server, a gateway on the host) never needs them, and an ``https://`` one loads them once, when its
    first request goes out (:meth:`Network.ssl_context` caches the context, so a process that warmed it up
    pays nothing then)."""

    def __init__(self, network: Network, limits: httpx2.Limits = LIMITS) -> None:
        self.network, self.limits = network, limits
        self.by_scheme: dict[str, httpx2.AsyncHTTPTransport] = {}

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        scheme = request.url.scheme
        transport = self.by_scheme.get(scheme)
        if transport is None:  # built without awaiting: no other request of this loop can interleave
            transport = self.by_scheme[scheme] = _transport(self.network, tls=scheme != "http", limits=self.limits)
        return await transport.handle_async_request(request)

    async def aclose(self) -> None:
        for transport in self.by_scheme.values():
            await transport.aclose()


def new_client(network: Network | None = None, timeout: httpx2.Timeout = DEFAULT_TIMEOUT,
               limits: httpx2.Limits = LIMITS, *, keep_cookies: bool = True) -> httpx2.AsyncClient:
    """A client for ``network`` (default: the environment's settings, as :func:`resolve_network` reads them), with
    ``limits`` per origin (a load test's pool is wider: :data:`LOAD_LIMITS`). ``keep_cookies=False``: a cookie
    a server sets is never stored nor sent again (the capture proxy serves many applications through one client:
    one's cookies must not ride on another's requests; each application gets the ``Set-Cookie`` itself)."""
    if network is None:
        from workbench.core.network import resolve_network

        network = resolve_network(None)
    default = DirectTransport(network, limits)
    mounts: dict[str, httpx2.AsyncBaseTransport | None] = {
        route.pattern: default if route.proxy is None else _transport(network, route.proxy, limits=limits)
        for route in network.routes()
    }
    for origin, settings in network.per_origin:
        scheme, _, host = origin.partition("://")
        mounts[origin] = _transport(settings, settings.proxy_for(scheme, host), limits=limits)
    cookies = None if keep_cookies else CookieJar(DefaultCookiePolicy(allowed_domains=()))
    return httpx2.AsyncClient(timeout=timeout, limits=limits, transport=default, mounts=mounts, trust_env=False,
                              cookies=cookies)
