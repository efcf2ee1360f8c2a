"""What ``workbench sync`` and ``workbench eval --sync`` share: a sync of the team store and its one-line report."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from typing import TextIO

from workbench.cli._shared import EXIT_FAILED, EXIT_OK
from workbench.core.config import Settings
from workbench.core.errors import one_line

_NAMES = {"calls": "calls", "eval_runs": "eval runs", "eval_results": "eval results",
          "prompt_versions": "prompt versions"}


def check_team(config: Settings) -> None:
    """A :class:`~workbench.core.errors.ConfigError` now when no usable team store is configured (``eval --sync``
    says so before the run, not after it)."""
    config.team_target(os.environ)


def sync_and_report(config: Settings, *, push: bool, pull: bool, since: float | None, as_json: bool,
                    out: TextIO) -> int:
    """Sync and print the counts on ``out``; a connection that fails is one line on stderr and exit 1."""
    from workbench.core.team.connection import TeamUnreachable
    from workbench.core.team.push import LocalStores
    from workbench.core.team.sync import sync

    target = config.team_target(os.environ)
    stores = LocalStores(config.trace_path(os.environ), config.workspace)
    progress = _Progress() if sys.stderr.isatty() and not as_json else None
    try:
        try:
            report = sync(target, stores, config.redactor(), push=push, pull=pull, since=since, progress=progress)
        finally:
            if progress is not None:
                progress.end()  # the counting line ends before anything else is printed
    except TeamUnreachable as exc:
        hint = f"\n  hint: {exc.hint}" if exc.hint else ""
        print(f"workbench: {exc}{hint}", file=sys.stderr)
        return EXIT_FAILED
    except sqlite3.Error as exc:  # a local store (or the sync state, or the cache) that cannot be read or written
        print(f"workbench: the local stores beside {stores.trace_path} failed: {one_line(str(exc))}\n"
              "  hint: check the disk and the files' permissions (`workbench traces check`), then sync again",
              file=sys.stderr)
        return EXIT_FAILED
    if as_json:
        print(json.dumps(report.as_dict()), file=out)
        return EXIT_OK
    parts = []
    if report.pushed is not None:
        sent = ", ".join(f"{report.pushed.rows.get(t, 0):,} {name}" for t, name in _NAMES.items())
        parts.append(f"pushed {sent}")
    if report.pulled is not None:
        got = ", ".join(f"{report.pulled.rows.get(t, 0):,} {name}" for t, name in _NAMES.items())
        parts.append(f"pulled {got} into {report.cache}")
    print(f"team store {report.server}: {'; '.join(parts)}", file=out)
    return EXIT_OK


class _Progress:
    """A line on the terminal that counts the rows of each table as their batches commit."""

    def __init__(self) -> None:
        self.done: dict[str, int] = {}

    def __call__(self, table: str, rows: int) -> None:
        self.done[table] = self.done.get(table, 0) + rows
        line = ", ".join(f"{n:,} {_NAMES.get(t, t.replace('_', ' '))}" for t, n in self.done.items())
        print(f"\r{line}…", end="", file=sys.stderr, flush=True)

    def end(self) -> None:
        if self.done:
            print(file=sys.stderr)
