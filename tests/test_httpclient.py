"""The shared client against real components on 127.0.0.1: proxies, TLS, and the IPv6 → IPv4 fallback.

Real HTTP and SOCKS5 proxies (``pproxy``, one process each for the module), a tiny asyncio origin, the
fake provider server, and a TLS front for it with certificates from a CA made for the run (``certs``).
A request went through a proxy when the client's only connection was to the proxy's port, the proxy
logged that connection (``127.0.0.1:CLIENT_PORT -> TARGET``), and the origin's peer was not the
client's socket; it went direct when the client connected to the origin itself and the origin's peer
is the client's socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.conftest import Certs
from workbench.core.call_record import CallRecord, collect
from workbench.core.child_process import child_process
from workbench.core.errors import ProviderConnectionError
from workbench.core.httpclient import new_client
from workbench.core.network import Network, resolve_network
from workbench.core.network_options import NetworkOptions, NetworkSection
from workbench.core.registry import make_provider, resolve
from workbench.core.request import ChatRequest, ModelRef
from workbench.fakeserver.process import FakeServerProcess

PROMPT = ChatRequest.from_prompt("Say something about proxies.")
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR",
                   "REQUESTS_CA_BUNDLE")


@pytest.fixture(autouse=True)
def _no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's own proxy and CA variables never leak into these tests."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


# -- real proxies ---------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Proxy:
    """A ``pproxy`` process on 127.0.0.1 and what it logged (``-v``: one line per connection it relays)."""

    scheme: str
    """As proxy URLs name it: ``http``, ``https`` or ``socks5``."""
    port: int
    lines: list[str] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def url(self, scheme: str | None = None) -> str:
        return f"{scheme or self.scheme}://127.0.0.1:{self.port}"

    def mark(self) -> int:
        with self.changed:
            return len(self.lines)

    def read(self, stream: Any) -> None:
        for line in stream:
            with self.changed:
                self.lines.append(line.rstrip())
                self.changed.notify_all()

    def wait_for(self, needle: str, since: int = 0, timeout: float = 5.0) -> str:
        """The first line from ``since`` on that holds ``needle``, waiting for it until ``timeout``."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                found = next((line for line in self.lines[since:] if needle in line), None)
                if found is not None:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"the {self.scheme} proxy never logged {needle!r}: {self.lines[since:]}")
                self.changed.wait(remaining)


PPROXY_WITHOUT_UVLOOP = ("import runpy, sys; sys.modules['uvloop'] = None; sys.argv[0] = 'pproxy'; "
                         "runpy.run_module('pproxy', run_name='__main__', alter_sys=True)")


@contextlib.contextmanager
def running_proxy(scheme: str, *, tls: Path | None = None) -> Iterator[Proxy]:
    """``pproxy`` serving ``scheme`` (over TLS with the certificate and key in ``tls``, as an https:// proxy)."""
    proxy = Proxy("https" if tls else scheme, _free_port())
    listen = f"{scheme}+ssl" if tls else scheme
    # pproxy installs uvloop when it can import it, then asks for a current loop, which uvloop >= 0.21 refuses:
    # it runs on asyncio's own loop here (uvloop is installed for workbench proxy).
    argv = [sys.executable, "-c", PPROXY_WITHOUT_UVLOOP, "-l", f"{listen}://127.0.0.1:{proxy.port}", "-v",
            *(["--ssl", str(tls)] if tls else [])]
    with child_process(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       env={**os.environ, "PYTHONUNBUFFERED": "1"}) as process:
        threading.Thread(target=proxy.read, args=(process.stdout,), daemon=True).start()
        deadline = time.monotonic() + 15
        while True:  # poll the port; between tries, wake as soon as the proxy prints something
            try:
                socket.create_connection(("127.0.0.1", proxy.port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"pproxy ({scheme}) did not start: {proxy.lines}") from None
                with proxy.changed:
                    proxy.changed.wait(0.05)
        yield proxy


@pytest.fixture(scope="module")
def http_proxy() -> Iterator[Proxy]:
    with running_proxy("http") as proxy:
        yield proxy


@pytest.fixture(scope="module")
def socks_proxy() -> Iterator[Proxy]:
    with running_proxy("socks5") as proxy:
        yield proxy


@pytest.fixture(scope="module")
def https_proxy(certs: Certs) -> Iterator[Proxy]:
    """An HTTP proxy reached over TLS, its certificate from the test CA."""
    with running_proxy("http", tls=certs.server) as proxy:
        yield proxy


# -- origins --------------------------------------------------------------------------------------------


@dataclass
class Origin:
    """A tiny HTTP origin: answers every request with ``origin says hi`` and records its peers."""

    port: int
    peers: list[tuple[str, int]] = field(default_factory=list)
    lines: list[bytes] = field(default_factory=list)


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        state.peers.append((peer[0], peer[1]))
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            head = await reader.readuntil(b"\r\n\r\n")
            state.lines.append(head.split(b"\r\n", 1)[0])
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 14\r\nconnection: close\r\n\r\norigin says hi")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    state = Origin(server.sockets[0].getsockname()[1])
    async with server:
        yield state


@dataclass
class Fetched:
    response: httpx2.Response
    local: tuple[str, int]
    """The client's end of its one TCP connection."""
    remote: tuple[str, int]
    """Where that connection went: the origin, or the proxy."""


async def fetch(network: Network | None, url: str) -> Fetched:
    connections: list[tuple[tuple[str, int], tuple[str, int]]] = []

    async def trace(name: str, info: dict[str, Any]) -> None:
        if name.endswith("connect_tcp.complete"):
            stream = info["return_value"]
            connections.append((stream.get_extra_info("client_addr")[:2], stream.get_extra_info("server_addr")[:2]))

    async with new_client(network) as client:
        response = await client.get(url, extensions={"trace": trace})
    assert len(connections) == 1, connections
    return Fetched(response, *connections[0])


def assert_via(proxy: Proxy, fetched: Fetched, mark: int, target: str, origin: Origin | None = None) -> None:
    """The request reached ``target`` through ``proxy`` and only through it."""
    assert fetched.remote == ("127.0.0.1", proxy.port), "the client did not connect to the proxy"
    proxy.wait_for(f"127.0.0.1:{fetched.local[1]} -> {target}", since=mark)
    if origin is not None:
        assert origin.peers and origin.peers[-1] != fetched.local, "the origin saw the client, not the proxy"


def assert_direct(fetched: Fetched, origin: Origin) -> None:
    assert fetched.remote == ("127.0.0.1", origin.port), "the client did not connect to the origin"
    assert origin.peers == [fetched.local], "the origin's peer is not the client's own socket"
    assert fetched.response.text == "origin says hi"


# -- proxies: from the environment and from [network] ---------------------------------------------------


def _network(where: str, variable: str, url: str) -> Network:
    if where == "environment":
        return resolve_network(None, env={variable: url})
    return resolve_network(NetworkSection(proxy=url), env={})


@pytest.mark.parametrize("where", ["environment", "[network] proxy"])
@pytest.mark.parametrize(("variable", "scheme", "host"), [
    ("HTTP_PROXY", "http", "127.0.0.1"),
    ("http_proxy", "http", "localhost"),
    ("ALL_PROXY", "socks5", "127.0.0.1"),
    ("ALL_PROXY", "socks5h", "localhost"),
])
async def test_a_proxy_carries_the_request(where: str, variable: str, scheme: str, host: str, origin: Origin,
                                           http_proxy: Proxy, socks_proxy: Proxy) -> None:
    proxy = http_proxy if scheme == "http" else socks_proxy
    mark = proxy.mark()
    fetched = await fetch(_network(where, variable, proxy.url(scheme)), f"http://{host}:{origin.port}/v1/models")
    assert fetched.response.text == "origin says hi"
    # With either SOCKS scheme the proxy gets the host name and resolves it (see workbench.core.network).
    assert_via(proxy, fetched, mark, f"{host}:{origin.port}", origin)
    if scheme == "http":  # a forwarding proxy: the request line names the whole URL, the origin sees a path
        assert origin.lines == [b"GET /v1/models HTTP/1.1"]


async def test_the_environment_proxy_applies_to_the_default_client(origin: Origin, http_proxy: Proxy,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", http_proxy.url())
    mark = http_proxy.mark()
    fetched = await fetch(None, f"http://127.0.0.1:{origin.port}/")  # new_client() reads os.environ
    assert_via(http_proxy, fetched, mark, f"127.0.0.1:{origin.port}", origin)


@pytest.mark.parametrize(("variable", "scheme"), [("HTTPS_PROXY", "http"), ("HTTPS_PROXY", "socks5")])
async def test_https_goes_through_a_tunnel(variable: str, scheme: str, http_proxy: Proxy, socks_proxy: Proxy,
                                           tls_front: TLSFront, certs: Certs) -> None:
    proxy = http_proxy if scheme == "http" else socks_proxy
    mark = proxy.mark()
    network = resolve_network(NetworkSection(ca_bundle=str(certs.ca)), env={variable: proxy.url(scheme)})
    fetched = await fetch(network, f"https://localhost:{tls_front.port}/_fake/log")
    assert fetched.response.status_code == 200 and isinstance(fetched.response.json(), list)
    assert_via(proxy, fetched, mark, f"localhost:{tls_front.port}")


async def test_https_proxy_does_not_carry_plain_http(origin: Origin, http_proxy: Proxy) -> None:
    fetched = await fetch(resolve_network(None, env={"HTTPS_PROXY": http_proxy.url()}),
                          f"http://127.0.0.1:{origin.port}/")
    assert_direct(fetched, origin)


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "127.0.0.0/8", "localhost,127.0.0.1", "{host}:{port}",
                                      "example.com, .internal ,127.0.0.1"])
async def test_no_proxy_hosts_are_reached_directly(no_proxy: str, origin: Origin, http_proxy: Proxy) -> None:
    no_proxy = no_proxy.format(host="127.0.0.1", port=origin.port)
    network = resolve_network(None, env={"HTTP_PROXY": http_proxy.url(), "NO_PROXY": no_proxy})
    assert_direct(await fetch(network, f"http://127.0.0.1:{origin.port}/"), origin)


async def test_no_proxy_for_another_port_still_uses_the_proxy(origin: Origin, http_proxy: Proxy) -> None:
    network = resolve_network(None, env={"HTTP_PROXY": http_proxy.url(), "NO_PROXY": f"127.0.0.1:{origin.port + 1}"})
    mark = http_proxy.mark()
    fetched = await fetch(network, f"http://127.0.0.1:{origin.port}/")
    assert_via(http_proxy, fetched, mark, f"127.0.0.1:{origin.port}", origin)


async def test_no_proxy_localhost_bypasses_a_socks_proxy(origin: Origin, socks_proxy: Proxy) -> None:
    network = resolve_network(None, env={"ALL_PROXY": socks_proxy.url("socks5h"), "no_proxy": "localhost"})
    assert_direct(await fetch(network, f"http://localhost:{origin.port}/"), origin)


async def test_proxy_none_in_the_config_overrides_the_environment(origin: Origin, http_proxy: Proxy,
                                                                  socks_proxy: Proxy) -> None:
    env = {"HTTP_PROXY": http_proxy.url(), "ALL_PROXY": socks_proxy.url()}
    network = resolve_network(NetworkSection(proxy="none"), env=env)
    assert_direct(await fetch(network, f"http://127.0.0.1:{origin.port}/"), origin)


async def test_a_provider_table_routes_only_that_provider_through_its_proxy(
        origin: Origin, socks_proxy: Proxy, fake_server: FakeServerProcess) -> None:
    network = resolve_network(NetworkSection(providers={"fake": NetworkOptions(proxy=socks_proxy.url())}),
                              env={}, base_urls={"fake": fake_server.base_url})
    fake_port = int(fake_server.base_url.rsplit(":", 1)[1])
    mark = socks_proxy.mark()
    via = await fetch(network, f"{fake_server.base_url}/v1/models")
    assert via.response.status_code == 200
    assert_via(socks_proxy, via, mark, f"127.0.0.1:{fake_port}")
    assert_direct(await fetch(network, f"http://127.0.0.1:{origin.port}/"), origin)  # every other origin


async def test_a_provider_table_can_take_its_provider_off_the_proxy(
        origin: Origin, http_proxy: Proxy, fake_server: FakeServerProcess) -> None:
    network = resolve_network(NetworkSection(proxy=http_proxy.url(), providers={"fake": NetworkOptions(proxy="none")}),
                              env={}, base_urls={"fake": fake_server.base_url})
    direct = await fetch(network, f"{fake_server.base_url}/v1/models")
    assert direct.remote == ("127.0.0.1", int(fake_server.base_url.rsplit(":", 1)[1]))
    mark = http_proxy.mark()
    via = await fetch(network, f"http://127.0.0.1:{origin.port}/")
    assert_via(http_proxy, via, mark, f"127.0.0.1:{origin.port}", origin)


@pytest.mark.parametrize("scheme", ["socks5", "socks5h", "http"])
async def test_a_streamed_chat_through_a_proxy(scheme: str, socks_proxy: Proxy, http_proxy: Proxy,
                                               fake_env: dict[str, str]) -> None:
    proxy = http_proxy if scheme == "http" else socks_proxy
    mark = proxy.mark()
    async with new_client(resolve_network(NetworkSection(proxy=proxy.url(scheme)), env={})) as client:
        provider = make_provider(resolve(ModelRef.parse("fake/demo@tokens=7"), fake_env), client)
        record = await collect(provider, PROMPT)
    assert record.status == "ok", record.error
    assert len(record.text.split()) == 7 and record.usage is not None and record.usage.output_tokens == 7
    assert record.timing.ttft_ms is not None
    proxy.wait_for(f"-> 127.0.0.1:{fake_env['WORKBENCH_FAKE_URL'].rsplit(':', 1)[1]}", since=mark)


@pytest.mark.parametrize("where", ["environment", "[network]"])
async def test_an_https_proxy_is_trusted_by_the_ca_bundle(where: str, origin: Origin, https_proxy: Proxy,
                                                          certs: Certs) -> None:
    if where == "environment":
        network = resolve_network(None, env={"HTTP_PROXY": https_proxy.url(), "SSL_CERT_FILE": str(certs.ca)})
    else:
        network = resolve_network(NetworkSection(proxy=https_proxy.url(), ca_bundle=str(certs.ca)), env={})
    mark = https_proxy.mark()
    fetched = await fetch(network, f"http://127.0.0.1:{origin.port}/")
    assert fetched.response.text == "origin says hi"
    assert_via(https_proxy, fetched, mark, f"127.0.0.1:{origin.port}", origin)
    with pytest.raises(httpx2.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):  # the OS store: not trusted
        await fetch(resolve_network(None, env={"HTTP_PROXY": https_proxy.url()}), f"http://127.0.0.1:{origin.port}/")


# -- TLS: a CA made here ---------------------------------------------------------------------------------


@dataclass
class TLSFront:
    """A TLS server on 127.0.0.1 in front of the fake provider server (bytes relayed both ways)."""

    port: int
    client_subjects: list[str] = field(default_factory=list)
    """The common name of each client certificate presented."""

    def env(self, host: str = "127.0.0.1") -> dict[str, str]:
        return {"WORKBENCH_FAKE_URL": f"https://{host}:{self.port}"}


StartFront = Callable[..., Awaitable[TLSFront]]


@pytest.fixture
async def start_tls_front(certs: Certs, fake_server: FakeServerProcess) -> AsyncIterator[StartFront]:
    upstream_host, upstream_port = fake_server.base_url.removeprefix("http://").rsplit(":", 1)
    servers: list[asyncio.Server] = []

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def start(cert: Path | None = None, *, client_ca: Path | None = None) -> TLSFront:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert or certs.server)
        if client_ca is not None:  # mutual TLS: no client certificate, no connection
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(client_ca)

        async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peer = writer.get_extra_info("peercert") or {}
            front.client_subjects.extend(value for rdn in peer.get("subject", ()) for key, value in rdn
                                         if key == "commonName")
            up_reader, up_writer = await asyncio.open_connection(upstream_host, int(upstream_port))
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

        server = await asyncio.start_server(relay, "127.0.0.1", 0, ssl=context)
        servers.append(server)
        front = TLSFront(server.sockets[0].getsockname()[1])
        return front

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def tls_front(start_tls_front: StartFront) -> TLSFront:
    return await start_tls_front()


async def chat(network: Network, env: dict[str, str]) -> CallRecord:
    async with new_client(network) as client:
        return await collect(make_provider(resolve(ModelRef.parse("fake/tls@tokens=5"), env), client), PROMPT)


@pytest.mark.parametrize("where", ["ca_bundle", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"])
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_a_private_ca_is_trusted_once_named(where: str, host: str, tls_front: TLSFront, certs: Certs) -> None:
    if where == "ca_bundle":
        network = resolve_network(NetworkSection(ca_bundle=str(certs.ca)), env={})
    else:
        network = resolve_network(None, env={where: str(certs.ca)})
    assert dict(network.sources)["ca_bundle"] == ("[network]" if where == "ca_bundle" else where)
    record = await chat(network, tls_front.env(host))
    assert record.status == "ok", record.error
    assert len(record.text.split()) == 5


async def test_an_untrusted_certificate_says_how_to_trust_it(tls_front: TLSFront) -> None:
    record = await chat(resolve_network(None, env={}), tls_front.env())
    assert isinstance(record.error, ProviderConnectionError)
    message = str(record.error)
    assert "TLS certificate not trusted (CERTIFICATE_VERIFY_FAILED: " in message
    assert "set [network] ca_bundle or SSL_CERT_FILE to your CA bundle" in message
    assert f"https://127.0.0.1:{tls_front.port}" in message and "\n" not in message


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_a_certificate_for_another_host_is_named_as_such(host: str, start_tls_front: StartFront,
                                                               certs: Certs) -> None:
    front = await start_tls_front(certs.wrong_host)
    record = await chat(resolve_network(NetworkSection(ca_bundle=str(certs.ca)), env={}), front.env(host))
    assert isinstance(record.error, ProviderConnectionError)
    assert "is for another host (CERTIFICATE_VERIFY_FAILED: " in str(record.error)
    assert record.error.hint is not None and "base URL" in record.error.hint


@pytest.mark.parametrize("key_apart", [True, False], ids=["cert+key", "one file"])
async def test_a_client_certificate_for_mutual_tls(key_apart: bool, start_tls_front: StartFront,
                                                   certs: Certs) -> None:
    front = await start_tls_front(client_ca=certs.ca)
    options = (NetworkSection(ca_bundle=str(certs.ca), client_cert=str(certs.client_cert),
                              client_key=str(certs.client_key)) if key_apart else
               NetworkSection(ca_bundle=str(certs.ca), client_cert=str(certs.client_both)))
    record = await chat(resolve_network(options, env={}), front.env())
    assert record.status == "ok", record.error
    assert front.client_subjects == ["workbench test client"]


async def test_without_the_client_certificate_mutual_tls_fails(start_tls_front: StartFront, certs: Certs) -> None:
    front = await start_tls_front(client_ca=certs.ca)
    record = await chat(resolve_network(NetworkSection(ca_bundle=str(certs.ca)), env={}), front.env())
    assert isinstance(record.error, ProviderConnectionError), record.error
    assert front.client_subjects == []


async def test_verify_false_connects_and_warns(tls_front: TLSFront) -> None:
    network = resolve_network(NetworkSection(verify=False), env={})
    assert network.warnings() and "not verified" in network.warnings()[0]
    record = await chat(network, tls_front.env())
    assert record.status == "ok", record.error


# -- IPv6 → IPv4 ------------------------------------------------------------------------------------------

CHILD = """
import asyncio, json, socket, sys, time
from workbench.core.httpclient import new_client
from workbench.core.network import resolve_network
from workbench.core.network_options import NetworkSection

name, port = sys.argv[1], int(sys.argv[2])
addresses = [info[4][0] for info in socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)]

async def main():
    async with new_client(resolve_network(NetworkSection(connect_retries=0), env={})) as client:
        started = time.perf_counter()
        response = await client.get(f"http://{name}:{port}/")
        return response.text, time.perf_counter() - started

text, elapsed = asyncio.run(main())
print(json.dumps({"addresses": addresses, "text": text, "elapsed": elapsed}))
"""
DUAL_NAME = "dual-stack.workbench.test"


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def _dual_stack_name() -> str | None:
    """A name this machine resolves to both ::1 and 127.0.0.1 (``localhost`` on most)."""
    for name in ("localhost", "ip6-localhost", "localhost6"):
        try:
            found = {info[4][0] for info in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)}
        except OSError:
            continue
        if {"::1", "127.0.0.1"} <= found:
            return name
    return None


def _private_hosts(tmp_path: Path) -> list[str] | None:
    """A command prefix that runs a program with its own /etc/hosts, where ``DUAL_NAME`` is both ::1 and
    127.0.0.1 (a private mount namespace: root and ``unshare``); ``None`` where that cannot be done."""
    if shutil.which("unshare") is None or not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    hosts = tmp_path / "hosts"
    hosts.write_text(f"127.0.0.1 localhost\n::1 {DUAL_NAME}\n127.0.0.1 {DUAL_NAME}\n")
    prefix = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
              'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts)]
    probe = subprocess.run([*prefix, "getent", "ahosts", DUAL_NAME], capture_output=True, text=True, timeout=10)
    return prefix if probe.returncode == 0 and "::1" in probe.stdout else None


@contextlib.contextmanager
def never_accepting(port: int) -> Iterator[None]:
    """::1 ``port`` listening with a full accept queue: a new connection's SYN is dropped, its connect hangs."""
    with socket.socket(socket.AF_INET6) as listener:
        listener.bind(("::1", port))
        listener.listen(0)
        fillers: list[socket.socket] = []
        try:
            for _ in range(16):
                filler = socket.socket(socket.AF_INET6)
                filler.setblocking(False)
                filler.connect_ex(("::1", port))
                if not select.select([], [filler], [], 0.3)[1]:  # this one hangs: the queue is full
                    filler.close()
                    break
                fillers.append(filler)
            else:
                pytest.fail("the ::1 listener kept accepting connections into its queue")
            yield
        finally:
            for filler in fillers:
                filler.close()


@pytest.mark.parametrize("ipv6", ["refused", "never accepts"])
async def test_a_dead_ipv6_address_falls_back_to_ipv4(ipv6: str, origin: Origin, tmp_path: Path) -> None:
    if not _ipv6_loopback():
        pytest.skip("this machine has no IPv6 loopback (::1): nothing to fall back from")
    name, prefix = _dual_stack_name(), []
    if name is None:
        private = _private_hosts(tmp_path)
        if private is None:
            pytest.skip("no host name resolves to both ::1 and 127.0.0.1 here, and a private /etc/hosts needs "
                        "root and unshare")
        name, prefix = DUAL_NAME, private
    with contextlib.ExitStack() as stack:
        if ipv6 == "never accepts":
            stack.enter_context(never_accepting(origin.port))
        else:
            with socket.socket(socket.AF_INET6) as probe:
                assert probe.connect_ex(("::1", origin.port)) != 0, "something listens on ::1 at the origin's port"
        child = await asyncio.create_subprocess_exec(
            *prefix, sys.executable, "-c", CHILD, name, str(origin.port),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(child.communicate(), 60)
    assert child.returncode == 0, err.decode()
    result = json.loads(out)
    assert {"::1", "127.0.0.1"} <= set(result["addresses"]), result
    assert result["text"] == "origin says hi"
    assert len(origin.peers) == 1 and origin.peers[0][0] == "127.0.0.1"
    # The connect timeout is 10 s; the IPv4 attempt starts at once (refused) or after 250 ms (happy eyeballs).
    assert result["elapsed"] < 3.0, result
    if ipv6 == "never accepts" and result["addresses"][0] == "::1":
        assert result["elapsed"] >= 0.2, result  # ::1 was tried first and given up on, not skipped


async def test_an_http_origin_never_loads_the_ca_certificates(tmp_path: Path,
                                                              fake_server: FakeServerProcess) -> None:
    """The direct transport builds its TLS context on the first https:// request only: a local model server
    on http:// works whatever the trust settings hold (and starts without loading them)."""
    from workbench.core.errors import ConfigError

    not_pem = tmp_path / "notes.txt"
    not_pem.write_text("not a certificate\n")
    async with new_client(Network(ca_bundle=str(not_pem))) as client:
        response = await client.get(f"{fake_server.base_url}/v1/models")
        assert response.status_code == 200
        with pytest.raises(ConfigError, match=r"ca_bundle: cannot load .*notes\.txt"):
            await client.get("https://127.0.0.1:9/")
