"""A race: one request streamed to several targets at once, each into its own :class:`CallRecord`.

Targets that cannot even be called (unknown provider, missing key) get a failed record with the
reason; the others still run. Usage estimates for targets whose provider sent none are computed once
every stream has finished, so loading a tokenizer never competes with a live stream for the CPU.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence

import httpx

from workbench.core.call import CallRecord, collect, estimate_usage_of
from workbench.core.errors import WorkbenchError
from workbench.core.events import StreamEvent
from workbench.core.providers.base import Provider
from workbench.core.registry import make_provider, resolve
from workbench.core.request import ChatRequest, ModelRef

EventHook = Callable[[int, StreamEvent], None]
"""Called with (target index, event) for every event of every target."""
DoneHook = Callable[[int, CallRecord], None]
"""Called with (target index, record) when a record is final (again if its usage is estimated later)."""


class Race:
    def __init__(self, request: ChatRequest, targets: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        self.request = request
        self.records = [CallRecord(target, request) for target in targets]
        self._env = env

    async def run(
        self, client: httpx.AsyncClient, on_event: EventHook | None = None, on_done: DoneHook | None = None
    ) -> list[CallRecord]:
        """Run every target concurrently on the current loop; returns the records once all are done."""

        async def one(index: int, provider: Provider) -> None:
            hook = None if on_event is None else (lambda event: on_event(index, event))
            await collect(provider, self.request, self.records[index], estimate_usage=False, on_event=hook)
            if on_done is not None:
                on_done(index, self.records[index])

        jobs = []
        for index, record in enumerate(self.records):
            try:
                provider = make_provider(resolve(ModelRef.parse(record.target), self._env), client)
            except WorkbenchError as exc:
                record.fail(exc)
                if on_done is not None:
                    on_done(index, record)
                continue
            jobs.append(one(index, provider))
        await asyncio.gather(*jobs)
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
