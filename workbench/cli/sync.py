"""``workbench sync [--push|--pull] [--since WHEN] [--json]``: the team store (see :mod:`workbench.core.team`).

Exit 0 synced; 1 the server cannot be reached or the connection was cut (one line: sync again, nothing is sent
twice); 2 a bad configuration (through :func:`workbench.cli.main`). Never a traceback, never the password.
"""

from __future__ import annotations

import argparse
import sys

from workbench.cli._shared import settings
from workbench.cli.team import sync_and_report


def run(args: argparse.Namespace) -> int:
    from workbench.core.traces.filters import moment

    since = moment(args.since) if args.since else None
    return sync_and_report(settings(args), push=not args.pull, pull=not args.push, since=since, as_json=args.json,
                           out=sys.stdout)
