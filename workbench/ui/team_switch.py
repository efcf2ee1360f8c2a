"""The local/team switch of the Traces and Evals screens (``t``): which store a screen reads, and its label.

Off, a screen reads the local stores. Switched on, it opens a read-only connection to the team store
(:class:`~workbench.core.team.queries.TeamReader`: ``[team] url`` or ``WORKBENCH_TEAM_URL``) and reads from it until
switched off; with no team store configured, or one that cannot be reached, it says so and stays local.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text

if TYPE_CHECKING:
    from workbench.core.team.queries import TeamReader
    from workbench.ui.base import WorkbenchBase

LOCAL_LABEL = "local store"


class TeamSwitch:
    """A screen's switch: ``reader`` is the open team connection while it is on, ``None`` while it reads locally."""

    def __init__(self) -> None:
        self.reader: TeamReader | None = None

    @property
    def on(self) -> bool:
        return self.reader is not None

    def open(self, app: WorkbenchBase) -> TeamReader:
        """Connect to the configured team store (blocking: in a worker); a ``ConfigError`` when none is configured
        (its message says so), a ``WorkbenchError`` when it cannot be reached or read."""
        from workbench.core.team.queries import TeamReader

        reader = TeamReader(app.settings().team_target(app.env))
        self.close()
        self.reader = reader
        return reader

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
            self.reader = None

    def label(self) -> str:
        """Which store the screen shows, for its subtitle."""
        if self.reader is None:
            return LOCAL_LABEL
        return f"team store {self.reader.target.shown} (t: back to local)"

    def text(self) -> Text:
        return Text(self.label(), style="bold" if self.on else "dim")
