"""``workbench export prompt|session|report|code``: artefacts into a repository folder, or code for a prompt."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.prompts_cli import variables, workspace_dir, workspace_option
from workbench.sessions_cli import optional_workspace

if TYPE_CHECKING:
    from workbench.core.export import ExportFile


def add_parser(sub: Any) -> None:
    export = sub.add_parser("export", help="export a prompt version or a session to a repo (optionally as one git "
                                           "commit), or print ready-to-run code for a prompt",
                            description="Export workspace artefacts to a repository folder, or print code.")
    workspace_option(export)
    actions = export.add_subparsers(dest="export_command", metavar="WHAT", required=True)
    prompt = actions.add_parser("prompt", help="DIR/prompts/NAME.yaml (the version's exact content) and "
                                               "NAME.meta.json (version, hash, labels)")
    prompt.add_argument("ref", metavar="NAME[@VERSION|@LABEL]",
                        help="NAME alone: the working file, saved as a version first if it changed")
    session = actions.add_parser("session", help="DIR/sessions/NAME.yaml")
    session.add_argument("file", metavar="FILE", help="a session file, or the name of one in sessions/")
    report = actions.add_parser("report", help="DIR/evals/reports/SUITE.md (and .json, .xml, .html): an eval "
                                               "run's report at one stable path per suite")
    report.add_argument("run", metavar="RUN|last", help="an eval run id (see `workbench evals list`), or last")
    report.add_argument("--format", dest="formats", action="append", choices=("md", "json", "junit", "html"),
                        help="repeatable (default: md and json)")
    report.add_argument("--config", metavar="FILE", help="the workspace configuration (default: the nearest "
                                                         "workbench.toml up from here, if any)")
    for parser in (prompt, session, report):
        parser.add_argument("--to", required=True, metavar="DIR", help="the destination folder (a repository)")
        parser.add_argument("--commit", action="store_true",
                            help="make one git commit of exactly the exported files (none if nothing changed)")
    code = actions.add_parser("code", help="print a ready-to-run request for a prompt (Python or curl)")
    code.add_argument("ref", metavar="NAME[@VERSION|@LABEL]")
    code.add_argument("--target", metavar="PROVIDER/MODEL",
                      help="default: the prompt's first target, else the configuration's first default target")
    code.add_argument("--lang", choices=("python", "curl"), default="python")
    code.add_argument("--sdk", action="store_true",
                      help="Python with the official SDK (openai, anthropic) instead of httpx2")
    code.add_argument("--var", action="append", default=[], metavar="KEY=VALUE",
                      help="a value for a {{variable}} (repeatable; the prompt's defaults fill the rest)")


def run(args: argparse.Namespace) -> int:
    from workbench.core.export import prompt_export, session_export

    if args.export_command == "code":
        return _code(args)
    if args.export_command == "prompt":
        files, message = prompt_export(workspace_dir(args.workspace), args.ref)
    elif args.export_command == "report":
        files, message = _report(args)
    else:
        from workbench.core.sessions import find_session

        files, message = session_export(find_session(args.file, optional_workspace(args)))
    return _write(files, message, Path(args.to).expanduser(), commit=args.commit)


def _report(args: argparse.Namespace) -> tuple[list[ExportFile], str]:
    from workbench.core.evals.report_data import report_for
    from workbench.core.export import report_export
    from workbench.eval_cli import open_store

    store = open_store(args)
    return report_export(report_for(store, store.run(args.run)), args.formats or ["md", "json"])


def _write(files: list[ExportFile], message: str, to: Path, *, commit: bool) -> int:
    from workbench.core.export import export_files

    result = export_files(to, files, message, commit=commit)
    if result.written:
        print(f"wrote {', '.join(result.written)} in {to}")
    else:
        print(f"{', '.join(result.paths)} in {to}: unchanged")
    if commit:
        print(f"committed {result.committed}: {message}" if result.committed
              else "nothing to commit: the repository already has these files")
    return 0


def _code(args: argparse.Namespace) -> int:
    from workbench.core.codegen import generate
    from workbench.core.config import load_settings
    from workbench.core.errors import ConfigError
    from workbench.core.prompts import pin, to_request
    from workbench.core.workspace import WORKSPACE_FILE

    workspace = workspace_dir(args.workspace)
    config_file = workspace / WORKSPACE_FILE
    config = load_settings(config_file if config_file.is_file() else None).config
    prompt, version = pin(workspace, args.ref)
    target = args.target or next(iter(prompt.targets or config.defaults.targets), None)
    if target is None:
        raise ConfigError(f"prompt '{prompt.name}' has no targets", "pass --target PROVIDER/MODEL")
    request = to_request(prompt, variables(args.var))
    sys.stdout.write(generate(request, config.expand(target), lang=args.lang, sdk=args.sdk,
                              providers=config.provider_specs(), title=f"prompt {prompt.name} v{version.number}"))
    return 0
