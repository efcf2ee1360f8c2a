"""Following the trace log as calls are written (``workbench traces tail``, the Traces screen's follow mode).

Each poll reads the newest write mark (``max(rowid)`` of ``payloads``: one index lookup), and only when it moved
reads the calls written since, in the order they were written. Rows that other processes write (``workbench
proxy``, a run in another terminal) show as soon as they are committed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from workbench.core.traces.filters import NO_FILTERS, Filters

POLL_S = 0.2
"""How often the write mark is read."""


class Follower:
    """The calls written since it was made (or since its last :meth:`poll`) that match ``filters``."""

    def __init__(self, store: Any, filters: Filters = NO_FILTERS) -> None:
        self.store, self.filters = store, filters
        self.mark = store.last_written()

    def poll(self) -> list[dict[str, Any]]:
        """The calls written since the last poll, oldest first (each with ``_seq``); ``[]`` at once when none."""
        top = self.store.last_written()
        if top <= self.mark:
            return []
        rows: list[dict[str, Any]] = self.store.written_after(self.mark, top, self.filters)
        self.mark = top  # calls the filters leave out are not read again
        return rows


def follow(store: Any, filters: Filters = NO_FILTERS, *, last: int = 0, every_s: float = POLL_S,
           wait: Callable[[float], None] = time.sleep) -> Iterator[list[dict[str, Any]]]:
    """Batches of calls as they are written, oldest first, forever (the caller stops it): the ``last`` calls
    written already first, then every call written from then on."""
    follower = Follower(store, filters)
    if last:
        yield store.last_rows(last, follower.mark, filters)
    while True:
        rows = follower.poll()
        if rows:
            yield rows
        else:
            wait(every_s)
