"""A race: one request streamed to several targets at once, each into its own :class:`CallRecord`.

Targets that cannot even be called (unknown provider, missing key) get a failed record with the
reason; the others still run. Usage estimates for targets whose provider sent none are computed once
every stream has finished, so loading a tokenizer never competes with a live stream for the CPU.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import httpx

from workbench.core.call import CallRecord, collect, estimate_usage_of
from workbench.core.errors import WorkbenchError
from workbench.core.registry import make_provider, resolve
from workbench.core.request import ChatRequest, ModelRef


class Race:
    def __init__(self, request: ChatRequest, targets: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        self.request = request
        self.records = [CallRecord(target, request) for target in targets]
        self._env = env

    async def run(self, client: httpx.AsyncClient) -> list[CallRecord]:
        """Run every target concurrently on the current loop; returns the records once all are done."""
        jobs = []
        for record in self.records:
            try:
                provider = make_provider(resolve(ModelRef.parse(record.target), self._env), client)
            except WorkbenchError as exc:
                record.fail(exc)
                continue
            jobs.append(collect(provider, self.request, record, estimate_usage=False))
        await asyncio.gather(*jobs)
        missing = [r for r in self.records if r.usage is None and r.timing.first_event_ns is not None]
        if missing:
            await asyncio.to_thread(_estimate_all, missing)
        return self.records

    @property
    def done(self) -> bool:
        return all(r.done for r in self.records)


def _estimate_all(records: list[CallRecord]) -> None:
    for record in records:
        estimate_usage_of(record)
