"""Timing bounds that follow the machine instead of a fixed number of milliseconds.

A timed check ("the first token left 60 ms after the request, not later") is only as exact as the
machine is quick to wake a sleeping thread: idle, that is well under a millisecond; with every core
busy (another test worker, a build beside the suite) it can be tens of milliseconds, now and then.
So a check allows its nominal tolerance plus a multiple of the lateness this process actually suffered
*while the check ran*, measured by a probe sleeping beside it in the same event loop, and never less
than what this machine showed at the start of the session.

The lower bounds stay exact (a token never leaves early), and so do orderings.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable
from types import TracebackType

PROBE_NAP_S = 0.001
LATENESS_FACTOR = 3.0
"""How many worst-case wake-ups a check may suffer: its own, the peer's, and the bookkeeping around them."""


def wakeup_lateness_ms(samples: int = 50, nap_s: float = PROBE_NAP_S) -> float:
    """The worst lateness, in ms, of ``samples`` short sleeps of this thread, measured now."""
    worst = 0.0
    for _ in range(samples):
        started = time.perf_counter()
        time.sleep(nap_s)
        worst = max(worst, time.perf_counter() - started - nap_s)
    return worst * 1000


@functools.cache
def session_lateness_ms() -> float:
    """This machine's wake-up lateness, measured once per test process (each xdist worker has its own)."""
    return wakeup_lateness_ms(samples=200)


class LoopLateness:
    """``async with LoopLateness() as late:`` measures how late this event loop wakes a sleeper while the
    block runs; ``late.allowance_ms(nominal)`` is the tolerance a timed check in the block may use."""

    def __init__(self) -> None:
        self.worst_ms = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _probe(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(PROBE_NAP_S)
            self.worst_ms = max(self.worst_ms, (loop.time() - started - PROBE_NAP_S) * 1000)

    async def __aenter__(self) -> LoopLateness:
        self._task = asyncio.create_task(self._probe())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def allowance_ms(self, nominal_ms: float) -> float:
        """``nominal_ms`` (what an idle machine needs) plus a few of the worst wake-ups seen here."""
        return nominal_ms + LATENESS_FACTOR * max(self.worst_ms, session_lateness_ms())


def until(condition: Callable[[], object], what: str, timeout: float = 30.0) -> float:
    """Poll an observable condition until a deadline (no sleeps to synchronise); the moment it held. The bound
    only ends a test that would hang."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.005)
    return time.monotonic()


async def eventually(condition: Callable[[], object], what: str, timeout_s: float = 10.0) -> None:
    """Wait, on the event loop, until ``condition()`` holds (polled, bounded): the way a test waits for
    something to happen instead of sleeping a fixed time and hoping it has."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.002)
