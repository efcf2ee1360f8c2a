"""The team store: the local stores' traces, eval runs and results and prompt versions, shared on a PostgreSQL server.

Local first: the SQLite stores stay the default and the hot path (``workbench run`` imports nothing from here);
``workbench sync`` pushes what is local and pulls what teammates pushed.

- :mod:`.target`: where the server is (``[team] url`` or ``WORKBENCH_TEAM_URL``), its password (keyring entry
  ``team``, else libpq's ``PGPASSFILE``/``~/.pgpass``), TLS by default.
- :mod:`.connection`: opening a connection (one line for a bad URL, an unreachable server, a refused login; the
  password never in a message), and :func:`~.connection.team_session` for readers and writers alike.
- :mod:`.tables`: the team tables, defined once with sqlmodel; :mod:`.migrations`: the named migrations that
  create them on the server.
- :mod:`.push`, :mod:`.pull`, :mod:`.marks`: ``workbench sync``.
"""
