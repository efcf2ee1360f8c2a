"""What the Traces and Evals screens share for their local/team switch (``t``): switching, and opening the team
store's read-only connection in a worker (:class:`~workbench.ui.team_switch.TeamSwitch`)."""

from __future__ import annotations

from textual import work

from workbench.ui.base import WorkbenchScreen
from workbench.ui.team_switch import TeamSwitch


class TeamSwitchingScreen(WorkbenchScreen):
    """A screen that reads the local store or the team store: :meth:`store_switched` shows the one now chosen."""

    def __init__(self) -> None:
        super().__init__()
        self.switch = TeamSwitch()

    def action_toggle_store(self) -> None:
        """The local store or the team store (read-only): the subtitle says which, or why it stays local."""
        if self.switch.on:
            self.switch.close()
            self.store_switched()
            return
        self.open_team()

    @work(thread=True, exclusive=True, exit_on_error=False, group="team", name="team-open")
    def open_team(self) -> None:
        app = self.workbench
        try:
            self.switch.open(app)
        except Exception as exc:
            app.report(exc, "cannot show the team store: ")
            return
        app.call_from_thread(self.store_switched)

    def store_switched(self) -> None:
        """Show what the store now chosen holds (each screen its own)."""
        raise NotImplementedError
