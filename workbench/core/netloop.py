"""The network loop: an asyncio event loop on its own thread, owning the shared HTTP client.

Streams are read and timestamped here, so whatever a UI does on its own thread (layout, Markdown
rendering, a slow terminal) cannot delay a read or skew a timestamp. Other threads hand it coroutines
with :meth:`NetworkLoop.submit` and get a ``concurrent.futures.Future`` back.

A thread alone is not enough in CPython: a UI thread busy in Python code keeps the GIL for up to the
interpreter's switch interval (5 ms by default) before this thread may run, and every timestamp taken
after a wake-up would carry that wait. Starting a loop therefore lowers the process's switch interval
to 100 µs (``bench/ttft_accuracy.py`` measures both settings). The cost is paid only while both
threads want the CPU at once: an idle network thread sleeps in ``select`` and never asks for the GIL.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx

T = TypeVar("T")

DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=120.0, write=30.0, pool=60.0)
DEFAULT_LIMITS = httpx.Limits(max_connections=256, max_keepalive_connections=64, keepalive_expiry=30.0)
SWITCH_INTERVAL_S = 1e-4


def new_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=DEFAULT_TIMEOUT, limits=DEFAULT_LIMITS)


class NetworkLoop:
    def __init__(self, switch_interval_s: float | None = SWITCH_INTERVAL_S) -> None:
        """``switch_interval_s``: the GIL switch interval to ensure (``None`` leaves the interpreter's)."""
        if switch_interval_s is not None and sys.getswitchinterval() > switch_interval_s:
            sys.setswitchinterval(switch_interval_s)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="workbench-network", daemon=True)
        self._client: httpx.AsyncClient | None = None
        self._thread.start()
        self._ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(self._ready.set)
        self._loop.run_forever()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    @property
    def client(self) -> httpx.AsyncClient:
        """The shared client (connection pool); use it only from coroutines running on this loop."""
        if self._client is None:
            self._client = new_client()
        return self._client

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        if self._client is not None:
            self.submit(self._client.aclose()).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def __enter__(self) -> NetworkLoop:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
