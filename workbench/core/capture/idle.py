"""The read timeout of a relayed stream as one idle watchdog per stream, not a timer per read.

httpx2 enforces its ``read`` timeout around every socket read (a cancel scope and a timer armed and disarmed per
chunk: a large share of the proxy's CPU per relayed event). The proxy sends its streamed requests with no read
timeout and bounds the upstream's silence with :class:`IdleTimeout` instead: the time of the last chunk is noted
(one clock read per chunk), and a single timer checks it once per ``limit_s``, firing only when the upstream sent
nothing for that long. It wraps :func:`asyncio.timeout`, so the block ends in :class:`TimeoutError` exactly as
an expired ``asyncio.timeout`` does (other cancellations pass through untouched).
"""

from __future__ import annotations

import asyncio
from types import TracebackType


class IdleTimeout:
    """``async with IdleTimeout(limit_s) as idle:`` raises :class:`TimeoutError` once the block went ``limit_s``
    seconds without :meth:`touch` while not :meth:`pause`-d (the clock starts when the block is entered);
    ``None``: no limit."""

    def __init__(self, limit_s: float | None) -> None:
        self.limit_s = limit_s
        self.loop = asyncio.get_running_loop()
        self.last: float | None = self.loop.time()
        """When the upstream last sent something, or ``None`` while the relay waits on the application."""
        self.deadline = asyncio.timeout(None)
        self.check: asyncio.TimerHandle | None = None

    async def __aenter__(self) -> IdleTimeout:
        await self.deadline.__aenter__()
        if self.limit_s is not None:
            self.check = self.loop.call_at(self.loop.time() + self.limit_s, self._check)
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        if self.check is not None:
            self.check.cancel()
        await self.deadline.__aexit__(kind, error, trace)

    def touch(self) -> None:
        """The upstream sent something (a chunk): the idle time starts again."""
        self.last = self.loop.time()

    def pause(self) -> None:
        """The relay waits on the application (a send held up by its flow control): not the upstream's silence;
        :meth:`touch` resumes the clock."""
        self.last = None

    def _check(self) -> None:
        assert self.limit_s is not None
        now = self.loop.time()
        due = now + self.limit_s if self.last is None else self.last + self.limit_s
        if now < due:
            self.check = self.loop.call_at(due, self._check)
        else:  # silent for limit_s: the block is cancelled now, and ends in TimeoutError
            self.deadline.reschedule(now)
