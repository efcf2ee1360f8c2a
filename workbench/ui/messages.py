"""The facts the TUI's screens tell the app (messages bubble up from a screen to the app, which handles them
with ``@on``). What the app holds and screens follow (the race on screen, the calls traced) are reactives on
the app, watched by the screens that show them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from workbench.core.prompts import Prompt, Version
    from workbench.core.request import ChatRequest
    from workbench.core.sessions import Session
    from workbench.ui.races import RaceRun, RaceSource


class RaceRequested(Message):
    """The editor asks for a race of ``request`` on ``targets``."""

    def __init__(self, request: ChatRequest, targets: Sequence[str], source: RaceSource) -> None:
        super().__init__()
        self.request, self.targets, self.source = request, list(targets), source


class RaceStarted(Message):
    """The network process took the race (posted from the thread that started it)."""

    def __init__(self, run: RaceRun) -> None:
        super().__init__()
        self.run = run


class RaceFinished(Message):
    """Every call of a race is final (posted from the network reader thread)."""

    def __init__(self, run: RaceRun) -> None:
        super().__init__()
        self.run = run


class TracesWritten(Message):
    """Calls were committed to the trace log."""

    def __init__(self, ids: Sequence[str]) -> None:
        super().__init__()
        self.ids = list(ids)


class ReplayRequested(Message):
    """A traced request goes back into the editor, with its target."""

    def __init__(self, request: ChatRequest, targets: Sequence[str]) -> None:
        super().__init__()
        self.request, self.targets = request, list(targets)


class SessionPicked(Message):
    """A saved session was picked: its request and targets go into the editor."""

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session


class SessionSaved(Message):
    """A race was saved as ``sessions/NAME.yaml``: a re-run of it is traced under its name."""

    def __init__(self, run: RaceRun, name: str, path: Path) -> None:
        super().__init__()
        self.run, self.name, self.path = run, name, path


class PromptSaved(Message):
    """The editor was saved to its prompt file and a version of it (``unchanged``: that version existed)."""

    def __init__(self, prompt: Prompt, version: Version, unchanged: bool) -> None:
        super().__init__()
        self.prompt, self.version, self.unchanged = prompt, version, unchanged
