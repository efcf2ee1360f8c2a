"""``workbench sync``: push (:mod:`.push`) then pull (:mod:`.pull`) over one connection to the team store.

A push needs a role that may write (and, on a new server, create the tables); a pull alone only reads, so a
read-only role can keep a cache.
"""

from __future__ import annotations

from dataclasses import dataclass

from workbench.core.evals import store_schema
from workbench.core.sqlite_file import open_private
from workbench.core.team import pull as pulling
from workbench.core.team import push as pushing
from workbench.core.team.connection import team_session
from workbench.core.team.marks import SyncMarks
from workbench.core.team.outgoing import Outgoing, sync_redactor
from workbench.core.team.push import BATCH, Counts, LocalStores, Progress
from workbench.core.team.target import TeamTarget, who
from workbench.core.traces import schema
from workbench.core.traces.redact import Redactor

_HINT = "check the path and its permissions, or point WORKBENCH_TRACES elsewhere"


@dataclass
class SyncReport:
    server: str
    pushed: Counts | None = None
    pulled: Counts | None = None
    cache: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {"server": self.server, "pushed": None if self.pushed is None else self.pushed.rows,
                "pushed_new": None if self.pushed is None else self.pushed.new,
                "pulled": None if self.pulled is None else self.pulled.rows, "cache": self.cache}


def sync(target: TeamTarget, stores: LocalStores, redactor: Redactor, *, push: bool = True, pull: bool = True,
         since: float | None = None, batch: int = BATCH, progress: Progress | None = None) -> SyncReport:
    """Push then pull (either alone when the other is off); driver errors come out as one-line
    :class:`~workbench.core.errors.WorkbenchError` s (:func:`team_session`)."""
    report = SyncReport(target.shown)
    user, host = who()
    outgoing = Outgoing(sync_redactor(redactor), user, host)
    marks = SyncMarks(stores.marks_path, target.identity)
    try:
        with team_session(target, write=push) as conn:
            if push:
                report.pushed = counts = Counts()
                for path, migrate, label, push_store in (
                        (stores.trace_path, schema.migrate, "the trace store", pushing.push_traces),
                        (stores.eval_path, store_schema.migrate, "the eval store", pushing.push_evals)):
                    if not path.exists():
                        continue
                    local = open_private(path, migrate, label, _HINT)
                    try:
                        push_store(conn, local, marks, outgoing, counts, since=since, batch=batch, progress=progress)
                    finally:
                        local.close()
                pushing.push_prompts(conn, stores.workspace, marks, outgoing, counts, batch=batch, progress=progress)
            if pull:
                report.pulled = Counts()
                report.cache = str(stores.cache)
                pulling.pull(conn, stores.cache, marks, report.pulled, since=since, batch=batch, progress=progress)
    finally:
        marks.close()
    return report
