"""A race: one request streamed to several targets at once, each into its own :class:`CallRecord`.

Every target goes through the resilient call path (:class:`~workbench.core.resilience.caller.Caller`):
its retries, fallbacks, hedges and rate limits. A target that cannot even be called (unknown
provider, missing key) gets a failed record with the reason; the others still run. Usage estimates
for targets whose provider sent none, and every cost, are computed once every stream has finished
(in a worker thread), so loading a tokenizer or the price data never competes with a live stream.
A race in the network process runs with ``settle=False``: the parent process settles the records it
mirrors (:mod:`workbench.core.netproc`), with the tokenizer and the price data loaded while the
streams run (:func:`prepare`), so the child's loop never waits for them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from workbench.core.call_record import CallRecord, estimate_usage_of
from workbench.core.errors import UnexpectedError
from workbench.core.events import StreamEvent
from workbench.core.policy import PolicySet
from workbench.core.pricing import PriceBook

if TYPE_CHECKING:
    from workbench.core.registry import ProviderSpec
    from workbench.core.request import ChatRequest
    from workbench.core.resilience.caller import Caller

EventHook = Callable[[int, StreamEvent], None]
"""Called with (target index, event) for every event of every target."""
RecordHook = Callable[[int, CallRecord], None]
"""Called with (target index, record): after each attempt, and when a record is final (again if its
usage is estimated later)."""


class Race:
    def __init__(self, request: ChatRequest, targets: Sequence[str], env: Mapping[str, str] | None = None,
                 policies: PolicySet | None = None, prices: PriceBook | None = None,
                 providers: Mapping[str, ProviderSpec] | None = None) -> None:
        self.request = request
        self.records = [CallRecord(target, request) for target in targets]
        self.env = env
        self.providers = providers
        self.policies = policies or PolicySet()
        self.prices = prices or PriceBook()

    async def run(self, caller: Caller, on_event: EventHook | None = None, on_done: RecordHook | None = None,
                  on_update: RecordHook | None = None, *, settle: bool = True) -> list[CallRecord]:
        """Run every target concurrently on the current loop; returns the records once all are done.

        With ``settle`` (the default) missing usage is then estimated and every call priced (``on_done``
        sees those records again); without, the caller settles them (see :func:`settle`)."""

        async def one(index: int) -> None:
            record = self.records[index]
            try:
                await caller.call(
                    record, policies=self.policies, env=self.env, providers=self.providers, prices=self.prices,
                    on_event=None if on_event is None else (lambda event: on_event(index, event)),
                    on_update=None if on_update is None else (lambda rec: on_update(index, rec)),
                )
            except Exception as exc:  # a hook failed: this target's failure, the others run on
                record.fail(UnexpectedError(record.target, exc))
            if on_done is not None:
                on_done(index, record)

        await asyncio.gather(*(one(i) for i in range(len(self.records))))
        if not settle:
            return self.records
        await asyncio.to_thread(self._settle)
        if on_done is not None:
            for index, record in enumerate(self.records):
                if record.usage is not None:
                    on_done(index, record)
        return self.records

    def _settle(self) -> None:
        for record in self.records:
            try:
                settle(record, self.prices)
            except Exception as exc:
                record.fail(UnexpectedError(record.target, exc))

    @property
    def done(self) -> bool:
        return all(r.done for r in self.records)


def settle(record: CallRecord, prices: PriceBook) -> None:
    """Estimate missing usage (flagged), then price the call if it used tokens (at the price in force
    when it started, for the target that served it)."""
    if record.timing.first_event_ns is not None:
        estimate_usage_of(record)
    if record.usage is not None:
        at = None if record.started_at is None else datetime.fromtimestamp(record.started_at, UTC)
        record.cost_usd = prices.cost(record.served_by or record.target, record.usage, at)
    record.settled = True


def prepare(targets: Iterable[str], prices: PriceBook | None = None, tokenizer: bool = False) -> None:
    """Load what settling calls to ``targets`` can need, so that :func:`settle` is instant afterwards:
    with ``prices``, the bundled price data for the targets it prices (needed for sure); with
    ``tokenizer``, the encodings a usage estimate would count with (needed only when a provider sends
    no usage). Each is loaded once per process (~100-300 ms of CPU)."""
    targets = list(dict.fromkeys(targets))
    if prices is not None:
        for target in targets:
            prices.facts(target)
    if tokenizer:
        from workbench.core.tokens.encodings import encoding_name_for, get_encoding

        for name in dict.fromkeys(encoding_name_for(*_provider_model(t))[0] for t in targets):
            get_encoding(name)


def _provider_model(target: str) -> tuple[str, str]:
    provider, _, model = target.partition("/")
    return provider, model
