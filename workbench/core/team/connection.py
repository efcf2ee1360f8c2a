"""Connections to the team store: one line for every way a connection fails, never the password in it.

- :class:`TeamUnreachable` (a :class:`WorkbenchError`, the CLI exits 1): the server cannot be reached, or the
  connection was cut.
- :class:`~workbench.core.errors.ConfigError` (exit 2): a login refused, a database that does not exist, a server
  without TLS when TLS is required.

:func:`team_session` is what a command opens: connected, the schema migrated (a writer) or checked (a reader).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from workbench.core.errors import ConfigError, WorkbenchError, one_line, scrub_key
from workbench.core.team import migrations
from workbench.core.team.target import TeamTarget

if TYPE_CHECKING:
    import psycopg


_CONNECT_TIMEOUT_S = 10
_CONFIG_STATES = {
    "28P01": "the login was refused (wrong password)",
    "28000": "the login was refused",
    "3D000": "the database does not exist",
    "42501": "this role may not do that",
}


class TeamUnreachable(WorkbenchError):
    """The team store cannot be reached, or the connection was cut (the CLI exits 1)."""

    error_class = "network"


def describe(exc: Exception, target: TeamTarget, *, connected: bool = False) -> WorkbenchError:
    """The error to show for a driver error: its first line, the password scrubbed out; ``connected``: it came once
    the connection was up (a cut connection, not an unreachable server)."""
    import psycopg

    text = one_line(scrub_key(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                              target.password))
    state = getattr(exc, "sqlstate", None)
    where = f"team store {target.shown} ({target.source})"
    if state in _CONFIG_STATES:
        hint = ("check the user in the URL and the password (keyring entry `team`: workbench keys set team; or "
                "PGPASSFILE)") if state.startswith("28") else "ask the store's admin (see \"Team store\" in the README)"
        return ConfigError(f"{where}: {_CONFIG_STATES[state]}: {text}", hint)
    if "does not exist" in text and "database" in text:
        return ConfigError(f"{where}: the database does not exist: {text}", "check the database name in the URL")
    if "no password supplied" in text or "password authentication failed" in text:
        return ConfigError(f"{where}: the login was refused: {text}",
                           "store the password: workbench keys set team (or in PGPASSFILE)")
    if "SSL" in text and ("not support" in text or "off" in text):
        return ConfigError(f"{where}: the server does not offer TLS: {text}",
                           "enable TLS on the server; only a server on this machine may use sslmode=disable")
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        if connected:
            return TeamUnreachable(f"{where}: the connection was cut: {text}",
                                   "sync again: what was committed is kept, and nothing is sent twice")
        return TeamUnreachable(f"{where}: cannot reach the server: {text}",
                               "check the host and port, the network, and that the server is running; then sync again")
    return TeamUnreachable(f"{where}: {text}", "sync again: what was committed is kept, nothing is sent twice")


def connect(target: TeamTarget) -> psycopg.Connection[tuple[object, ...]]:
    """A connection in autocommit mode (each :meth:`~psycopg.Connection.transaction` block is a transaction)."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    try:
        return psycopg.connect(make_conninfo("", **target.params), autocommit=True, connect_timeout=_CONNECT_TIMEOUT_S)
    except psycopg.Error as exc:
        raise describe(exc, target) from None


@contextmanager
def team_session(target: TeamTarget, *, write: bool) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A connection to the team store with its schema current: migrated by a writer, checked by a reader. Driver
    errors inside are re-raised as one-line :class:`WorkbenchError` s."""
    import psycopg

    conn = connect(target)
    try:
        if write:
            migrations.migrate(conn)
        else:
            migrations.check(conn)
        yield conn
    except psycopg.Error as exc:
        raise describe(exc, target, connected=True) from None
    finally:
        conn.close()
