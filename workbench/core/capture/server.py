"""``workbench proxy``'s server: :class:`~workbench.core.capture.app.ProxyApp` in uvicorn, the traced calls
settled (usage estimated where the provider sent none, priced) and written to the trace log.

Uvicorn handles Ctrl-C and SIGTERM: it stops accepting, lets open streams finish for ``graceful_s`` seconds, then
cancels them (each is traced as cancelled) and returns."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor

import uvicorn

from workbench.core.call_record import CallRecord
from workbench.core.capture.access import Access
from workbench.core.capture.app import ProxyApp
from workbench.core.capture.resilient import Resilience
from workbench.core.errors import WorkbenchError
from workbench.core.httpclient import new_client
from workbench.core.network import Network
from workbench.core.policy import PolicySet
from workbench.core.pricing import PriceBook
from workbench.core.race import settle
from workbench.core.registry import ProviderSpec
from workbench.core.traces.context import CallContext
from workbench.core.traces.writer import TraceWriter

LOOPBACK = ("127.0.0.1", "::1", "localhost")
KEEP_ALIVE_S = 75


def event_loop() -> asyncio.AbstractEventLoop:
    """The proxy's event loop: uvloop's where it is installed (a dependency but on Windows, which it does not
    support), else asyncio's. With uvloop the proxy spends less CPU on each relayed chunk (the loopback sends and
    the wake-ups of the streams): see BENCHMARKS.md."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")


class _UnfinishedOnPurpose(logging.Filter):
    """Drops uvicorn's complaint about a response left unfinished: the proxy leaves one so when the provider's
    stream broke, and uvicorn then closes the application's connection, as the provider's was."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("ASGI callable returned without completing response")


@contextlib.contextmanager
def trace_sink(writer: TraceWriter, prices: PriceBook) -> Iterator[Callable[[CallRecord, CallContext], None]]:
    """Where the app's traced calls go: settled (usage estimated where the provider sent none: a tokenizer's
    work, its first load about a second; priced) and written on one worker thread, in the order they ended, off
    the event loop that relays every open stream; all of them written to the writer's queue when the block ends."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="workbench-proxy-traces") as worker:
        def settled(record: CallRecord, context: CallContext) -> None:
            settle(record, prices)
            writer.write(record, context)

        def sink(record: CallRecord, context: CallContext) -> None:
            worker.submit(settled, record, context)

        yield sink


async def serve(host: str, port: int, specs: Mapping[str, ProviderSpec], env: Mapping[str, str], network: Network,
                writer: TraceWriter, *, prices: PriceBook | None = None, graceful_s: int = 5,
                on_ready: Callable[[str], None] | None = None, policies: PolicySet | None = None,
                resilient: frozenset[str] = frozenset(), access: Access | None = None) -> None:
    """Serve until Ctrl-C or SIGTERM; ``on_ready`` is told the base URL once listening. The ``resilient`` routes
    (provider names) send their chat calls with ``policies`` (:mod:`.resilient`), the others pass through;
    ``access``: the proxy token and the user's keys (:mod:`.access`)."""
    logging.getLogger("uvicorn.error").addFilter(_UnfinishedOnPurpose())
    async with new_client(network, keep_cookies=False) as client, contextlib.AsyncExitStack() as stack:
        sink = stack.enter_context(trace_sink(writer, prices or PriceBook()))
        app = ProxyApp(specs, env, client, sink, resilient=resilient,
                       resilience=Resilience(client, policies or PolicySet()) if resilient else None, access=access)
        # The upstream's own Date and Server headers pass through: uvicorn adds none of its own. An idle
        # connection is kept longer than clients keep theirs (httpx, the SDKs: 5 s), so that a client never sends
        # a request on a connection the proxy is closing at that moment.
        # ``http="auto"``: uvicorn's httptools parser where installed (a dependency), else h11. No
        # ``X-Forwarded-*`` reading: the proxy never uses the client's address.
        config = uvicorn.Config(app, host=host, port=port, lifespan="on", log_level="warning", access_log=False,
                                http="auto", proxy_headers=False,
                                timeout_graceful_shutdown=graceful_s, server_header=False, date_header=False,
                                timeout_keep_alive=KEEP_ALIVE_S)
        # Listening before it is announced: a client that comes at once waits in the backlog.
        try:
            sock = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
        except OSError as exc:
            raise WorkbenchError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                                 "pick another --port (0: any free port)") from None
        with sock:
            # What start-up built (modules, configuration, price data, the app) lives as long as the process: kept
            # out of the collector's full passes, which would otherwise walk it all (a ~13 ms pause of every stream
            # now and then: see BENCHMARKS.md).
            gc.freeze()
            if on_ready is not None:
                on_ready(f"http://{host if ':' not in host else f'[{host}]'}:{sock.getsockname()[1]}")
            await uvicorn.Server(config).serve(sockets=[sock])
