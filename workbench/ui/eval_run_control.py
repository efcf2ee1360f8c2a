"""How the Evals screen steers a run that lives on another thread's loop: cancelling it (:class:`RunControl`) and
hearing its batch phase (:class:`BatchPhase`)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.core.evals.batch_run import BatchEvent, BatchPlan


class RunControl:
    """Cancels a run from any thread: the task running it is cancelled on its own loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handle: tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]] | None = None
        self.cancelled = False

    def attach(self) -> None:
        """Called in the task to cancel, on the run's loop (before its first await)."""
        task = asyncio.current_task()
        assert task is not None
        with self._lock:
            self._handle = (asyncio.get_running_loop(), task)
            if self.cancelled:
                task.cancel()

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            handle = self._handle
        if handle is not None:
            loop, task = handle
            with contextlib.suppress(RuntimeError):  # the loop already closed: the run is over
                loop.call_soon_threadsafe(task.cancel)


class BatchPhase:
    """A run's batch phase told to the screen from the run's thread: its plan, then each batch event."""

    def __init__(self, app: Any, on_plan: Callable[[BatchPlan], None], on_event: Callable[[BatchEvent], None]
                 ) -> None:
        self.app, self.on_plan, self.on_event = app, on_plan, on_event

    def plan(self, plan: BatchPlan) -> None:
        self._tell(self.on_plan, plan)

    def event(self, event: BatchEvent) -> None:
        self._tell(self.on_event, event)

    def _tell(self, show: Callable[[Any], None], what: object) -> None:
        if self.app.is_running:
            with contextlib.suppress(Exception):  # the app closed meanwhile
                self.app.call_from_thread(show, what)
