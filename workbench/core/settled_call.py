"""One call through the resilient path, settled (usage estimated where the provider sent none, priced), however it
ends: what an eval cell and a load test's request share before they trace the call.

A call cancelled once it was sent (Ctrl-C, SIGTERM, a cell's time limit) is failed as cancelled and settled, its
partial output priced, before the cancellation goes on: the caller traces it as it would a finished one
(:func:`was_sent` says whether there is anything to trace)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping

from workbench.core.call_record import CallRecord
from workbench.core.errors import CallCancelledError, UnexpectedError
from workbench.core.policy import PolicySet
from workbench.core.pricing import PriceBook
from workbench.core.race import settle
from workbench.core.registry import ProviderSpec
from workbench.core.resilience.caller import CallPath


def was_sent(record: CallRecord) -> bool:
    """Did the call get as far as an attempt (so it belongs in the trace log, even cancelled)?"""
    return bool(record.attempts) or record.timing.started_ns is not None


async def settled_call(caller: CallPath, record: CallRecord, *, policies: PolicySet, prices: PriceBook,
                       env: Mapping[str, str] | None = None,
                       providers: Mapping[str, ProviderSpec] | None = None) -> CallRecord:
    """Run ``record``'s call through ``caller`` and settle it (a settling failure fails the record alone). On
    cancellation a sent call is failed as cancelled and settled, then the cancellation is raised again."""
    try:
        await caller.call(record, policies=policies, env=env, prices=prices, providers=providers)
    except asyncio.CancelledError:
        if was_sent(record):
            if not isinstance(record.error, CallCancelledError):
                record.fail(CallCancelledError(record.target))
            with contextlib.suppress(Exception):
                settle(record, prices)
        raise
    try:
        settle(record, prices)
    except Exception as exc:
        record.fail(UnexpectedError(record.target, exc))
    return record
