"""What a race the TUI started is: where its request came from and what it sent (no Textual)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.core.netproc import RemoteRace
    from workbench.core.request import ChatRequest
    from workbench.core.sessions import PromptRef
    from workbench.core.traces.context import CallContext
    from workbench.services import CallTracer


@dataclass(frozen=True)
class RaceSource:
    """Where the editor's request came from: a prompt file (pinned to a version when the race starts, if the
    editor still holds it), a saved session (its prompt version and name), or neither (typed text)."""

    prompt_name: str | None = None
    edited: dict[str, Any] = field(default_factory=dict)
    """The prompt-file fields the editor holds; the race is linked to the pinned version when they equal it."""
    prompt: PromptRef | None = None
    variables: dict[str, str] = field(default_factory=dict)
    session: str | None = None


@dataclass
class RaceRun:
    """A race the app started: what it sent (targets expanded), where that came from, its calls' trace ids."""

    race: RemoteRace
    request: ChatRequest
    targets: list[str]
    prompt: PromptRef | None
    variables: dict[str, str]
    session: str | None
    tracer: CallTracer | None = None
    """Writes each call to the trace log as it ends (``None``: not traced)."""
    traced: bool = False

    @property
    def trace_ids(self) -> list[str]:
        """The calls' trace ids, in target order, once every call is written (else none)."""
        ids = [] if self.tracer is None else self.tracer.ids
        return [i for i in ids if i is not None] if all(ids) else []

    @staticmethod
    def context_of(prompt: PromptRef | None, session: str | None) -> CallContext:
        """What the trace log links a race's calls to: its prompt version, its session."""
        from workbench.core.traces.context import CallContext

        return CallContext(prompt_name=prompt.name if prompt else None,
                           prompt_version=prompt.version if prompt else None, session_id=session)
