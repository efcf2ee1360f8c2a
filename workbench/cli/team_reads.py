"""What ``--team`` on ``traces`` and ``evals`` shares: a read-only session on the team store, and its failures as one
line (a server that cannot be reached: exit 1; a bad URL, a refused login, a store not set up: exit 2 through
:func:`workbench.cli.main`)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from workbench.cli._shared import EXIT_FAILED
from workbench.core.config import Settings

if TYPE_CHECKING:
    import psycopg

def on_team_store(config: Settings, action: Callable[[psycopg.Connection[tuple[object, ...]]], int]) -> int:
    """``action`` on a read-only session (:func:`~workbench.core.team.connection.team_session`); its exit code, or 1
    with one line on stderr when the server cannot be reached or the connection is cut."""
    from workbench.core.team.connection import TeamUnreachable, team_session

    target = config.team_target(os.environ)
    try:
        with team_session(target, write=False) as conn:
            return action(conn)
    except TeamUnreachable as exc:
        hint = f"\n  hint: {exc.hint}" if exc.hint else ""
        print(f"workbench: {exc}{hint}", file=sys.stderr)
        return EXIT_FAILED


def pushed_by(user: str, host: str) -> str:
    """Who pushed a row, as the tables show it."""
    return f"{user}@{host}"
