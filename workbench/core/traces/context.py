"""Where a call came from (its prompt version, session, eval run and cell, tags): what the trace log stores
beside the call. Light, so a face builds it before its request is out without importing the trace writer."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CallContext:
    """Where a call came from: what the trace browser filters on besides the call itself."""

    prompt_name: str | None = None
    prompt_version: int | None = None
    session_id: str | None = None
    eval_run_id: str | None = None
    tags: tuple[str, ...] = ()
    eval_cell: str | None = None
    """The eval cell the call answered (``Cell.identity`` of :mod:`workbench.core.evals.runner`)."""


NO_CONTEXT = CallContext()
"""A call from nowhere in particular."""
