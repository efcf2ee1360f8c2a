"""``workbench sessions list|show``: saved races in the workspace's ``sessions/`` folder."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from workbench.prompts_cli import relative, report_file_errors, workspace_dir, workspace_option


def add_parser(sub: Any) -> None:
    sessions = sub.add_parser("sessions", help="list and show saved races (workbench run --save-session NAME)",
                              description="Sessions: races saved as YAML in the workspace's sessions/ folder. "
                                          "Run one again with `workbench run --session FILE`.")
    workspace_option(sessions)
    actions = sessions.add_subparsers(dest="sessions_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="every session: its prompt, targets and outcome")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    show = actions.add_parser("show", help="a session file")
    show.add_argument("file", metavar="FILE", help="a session file, or the name of one in sessions/")


def run(args: argparse.Namespace) -> int:
    from workbench.core.sessions import find_session, load_session_file

    if args.sessions_command == "show":
        path = find_session(args.file, optional_workspace(args))
        load_session_file(path)  # report a malformed file as file:line
        sys.stdout.write(path.read_text(encoding="utf-8"))
        return 0
    return _list(workspace_dir(args.workspace), args.json)


def optional_workspace(args: argparse.Namespace) -> Path | None:
    from workbench.core.errors import ConfigError

    try:
        return workspace_dir(args.workspace)
    except ConfigError:
        return None  # a session file's path works anywhere


def _list(workspace: Path, as_json: bool) -> int:
    from workbench.core.sessions import load_sessions

    loaded, errors = load_sessions(workspace)
    rows: list[dict[str, Any]] = []
    for path, session in loaded:
        failed = sum(result.status == "error" for result in session.results)
        rows.append({"name": session.name, "prompt": session.prompt.name if session.prompt else None,
                     "prompt_version": session.prompt.version if session.prompt else None,
                     "targets": session.targets, "calls": len(session.results), "failed": failed,
                     "path": relative(path, workspace)})
    if as_json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(box=None, header_style="bold", pad_edge=False)
        for column in ("name", "prompt", "targets", "ok", "path"):
            table.add_column(column)
        for row in rows:
            prompt = f"{row['prompt']}@{row['prompt_version']}" if row["prompt"] else "(inline)"
            table.add_row(row["name"], prompt, ", ".join(row["targets"]), f"{row['calls'] - row['failed']}/"
                          f"{row['calls']}", row["path"])
        Console().print(table)
    return report_file_errors(errors, workspace)
