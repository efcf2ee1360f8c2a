"""Process-wide settings (the garbage collector, the GIL switch interval), applied only by a program's entry
point: the commands of the CLI and the benchmarks. Library code (``workbench.core``) never changes them, and
the TUI keeps the interpreter's defaults (its own thread must get the GIL back to paint)."""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Iterator

_gc_paused: list[bool] = []


def pause_collection() -> None:
    """No cyclic collection while a command starts, until its request is out (:func:`resume_collection`):
    start-up allocates much and frees little, and collecting it costs ~15 % of the imports' time."""
    if gc.isenabled():
        gc.disable()
        _gc_paused.append(True)


def resume_collection() -> None:
    """Collect again; what start-up made is frozen out of the collections (a first full one would scan
    it all, ~30 ms, just when a short race ends). For the command's own process only: kept until exit.
    Does nothing unless :func:`pause_collection` paused it."""
    if _gc_paused:
        _gc_paused.clear()
        gc.freeze()
        gc.enable()


@contextlib.contextmanager
def fewer_collections(young: int = 50_000) -> Iterator[None]:
    """Collect the young generation every ``young`` allocations instead of every 700 while it lasts.

    Each call of an eval run allocates thousands of short-lived objects (requests, responses, events,
    records), so with the default threshold the collector runs several times per call, and at 50 calls in
    flight that costs a measurable share of the loop (about 10% of the wall time in ``bench/evals.py``)."""
    threshold = gc.get_threshold()
    gc.set_threshold(young, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)


@contextlib.contextmanager
def prompter_thread_switches(interval_s: float = 0.001) -> Iterator[None]:
    """Let a waiting thread take the GIL after ``interval_s`` instead of 5 ms while it lasts.

    During an eval run the trace writer and the result store commit from their own threads, and SQLite
    releases the GIL around every statement step. With the event loop busy, each step then waited up to the
    5 ms switch interval to get the GIL back, so the writer committed a few hundred calls a second and fell
    behind the calls (2,400 records queued after 10,000 cases in ``bench/evals.py``). At 1 ms it keeps up,
    and the run's wall time does not change."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, interval_s))
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


@contextlib.contextmanager
def eval_run_settings() -> Iterator[None]:
    """What an eval run's entry point applies while the run lasts: :func:`fewer_collections` and
    :func:`prompter_thread_switches`, both restored after."""
    with fewer_collections(), prompter_thread_switches():
        yield
