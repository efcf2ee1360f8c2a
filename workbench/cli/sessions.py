"""``workbench sessions list|show``: saved races in the workspace's ``sessions/`` folder."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from workbench.cli._shared import EXIT_OK, optional_workspace, relative, report_file_errors, workspace_dir


def run(args: argparse.Namespace) -> int:
    from workbench.core.sessions import find_session, load_session_file

    if args.sessions_command == "show":
        path = find_session(args.file, optional_workspace(args))
        load_session_file(path)  # report a malformed file as file:line
        sys.stdout.write(path.read_text(encoding="utf-8"))
        return EXIT_OK
    return _list(workspace_dir(args.workspace, args.command), args.json)


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
        from workbench.cli._shared import console
        from workbench.cli.render import new_table, print_table

        table = new_table("name", "prompt", "targets", "ok", "path", numbers=("ok",))
        for row in rows:
            prompt = f"{row['prompt']}@{row['prompt_version']}" if row["prompt"] else "(inline)"
            table.add_row(row["name"], prompt, ", ".join(row["targets"]), f"{row['calls'] - row['failed']}/"
                          f"{row['calls']}", row["path"])
        print_table(table, console())
    return report_file_errors(errors, workspace)
