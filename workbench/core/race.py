"""A race: one request streamed to several targets at once, each into its own :class:`CallRecord`.

Every target goes through the resilient call path (:class:`~workbench.core.resilience.caller.Caller`):
its retries, fallbacks, hedges and rate limits. A target that cannot even be called (unknown
provider, missing key) gets a failed record with the reason; the others still run. Usage estimates
for targets whose provider sent none are computed once every stream has finished, so loading a
tokenizer never competes with a live stream for the CPU.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence

from workbench.core.call import CallRecord, estimate_usage_of
from workbench.core.events import StreamEvent
from workbench.core.policy import PolicySet
from workbench.core.request import ChatRequest
from workbench.core.resilience.caller import Caller

EventHook = Callable[[int, StreamEvent], None]
"""Called with (target index, event) for every event of every target."""
RecordHook = Callable[[int, CallRecord], None]
"""Called with (target index, record): after each attempt, and when a record is final (again if its
usage is estimated later)."""


class Race:
    def __init__(self, request: ChatRequest, targets: Sequence[str], env: Mapping[str, str] | None = None,
                 policies: PolicySet | None = None) -> None:
        self.request = request
        self.records = [CallRecord(target, request) for target in targets]
        self.env = env
        self.policies = policies or PolicySet()

    async def run(self, caller: Caller, on_event: EventHook | None = None, on_done: RecordHook | None = None,
                  on_update: RecordHook | None = None) -> list[CallRecord]:
        """Run every target concurrently on the current loop; returns the records once all are done."""

        async def one(index: int) -> None:
            record = self.records[index]
            await caller.call(
                record, policies=self.policies, env=self.env,
                on_event=None if on_event is None else (lambda event: on_event(index, event)),
                on_update=None if on_update is None else (lambda rec: on_update(index, rec)),
            )
            if on_done is not None:
                on_done(index, record)

        await asyncio.gather(*(one(i) for i in range(len(self.records))))
        missing = [i for i, r in enumerate(self.records) if r.usage is None and r.timing.first_event_ns is not None]
        if missing:
            await asyncio.to_thread(_estimate_all, [self.records[i] for i in missing])
            if on_done is not None:
                for index in missing:
                    on_done(index, self.records[index])
        return self.records

    @property
    def done(self) -> bool:
        return all(r.done for r in self.records)


def _estimate_all(records: list[CallRecord]) -> None:
    for record in records:
        estimate_usage_of(record)
