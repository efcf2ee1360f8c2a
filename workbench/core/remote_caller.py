"""The call path through the network process, for code that awaits one call at a time (an eval run).

:class:`RemoteCaller` keeps :meth:`Caller.call`'s contract (a record in, the same record filled in,
never raising for a failed call) but serves each call as a one-target race in the network process, so
its TTFT is measured where a busy screen cannot delay a timestamp, exactly as a race's. The calling
loop waits on a future that the race's done callback settles: no thread per call.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping

from workbench.core.call_record import CallRecord
from workbench.core.netproc import NetworkProcess, wait_bound
from workbench.core.network import Network
from workbench.core.policy import PolicySet
from workbench.core.pricing import PriceBook
from workbench.core.registry import ProviderSpec
from workbench.core.resilience.caller import EventHook, UpdateHook


class RemoteCaller:
    def __init__(self, net: NetworkProcess, network: Network | None = None) -> None:
        self.net, self.network = net, network

    async def call(self, record: CallRecord, *, policies: PolicySet | None = None,
                   env: Mapping[str, str] | None = None, providers: Mapping[str, ProviderSpec] | None = None,
                   prices: PriceBook | None = None, on_event: EventHook | None = None,
                   on_update: UpdateHook | None = None) -> CallRecord:
        """Run the call for ``record.target`` in the network process into ``record`` (``on_event`` and
        ``on_update`` are not offered: the record arrives whole)."""
        policies = policies or PolicySet()
        loop = asyncio.get_running_loop()
        finished: asyncio.Future[None] = loop.create_future()

        def settle() -> None:
            if not finished.done():
                finished.set_result(None)

        def from_reader() -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(settle)

        race = self.net.race(record.request, [record.target], dict(env or {}), policies, prices, providers,
                             self.network)
        race.add_done_callback(from_reader)
        bound = wait_bound(policies, [record.target], record.request)
        try:
            await asyncio.wait_for(asyncio.shield(finished), bound)
        except TimeoutError:
            race.cancel()
            race.abandon(f"no result within {bound:.0f} s (the policies' timeouts and retries)")
        except asyncio.CancelledError:
            race.cancel()
            raise
        record.update_from(race.records[0])
        return record
