"""``workbench export prompt|session|report|code``: artefacts into a repository folder, or code for a prompt."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.cli._shared import EXIT_OK, eval_store, optional_workspace, settings, variables, workspace_dir

if TYPE_CHECKING:
    from workbench.core.export import ExportFile


def run(args: argparse.Namespace) -> int:
    from workbench.core.export import check_destination, prompt_export, session_export

    if args.export_command == "code":
        return _code(args)
    check_destination(Path(args.to).expanduser())  # before anything is read, saved or written
    if args.export_command == "prompt":
        files, message = prompt_export(workspace_dir(args.workspace, args.command), args.ref)
    elif args.export_command == "report":
        files, message = _report(args)
    else:
        from workbench.core.sessions import find_session

        files, message = session_export(find_session(args.file, optional_workspace(args)), settings(args).redactor())
    return _write(files, message, Path(args.to).expanduser(), commit=args.commit)


def _report(args: argparse.Namespace) -> tuple[list[ExportFile], str]:
    from workbench.core.evals.report_data import report_for
    from workbench.core.export import report_export
    store = eval_store(settings(args))
    try:  # the report as the run gave it: its recorded gate, comparison and verdict
        return report_export(report_for(store, store.run(args.run)), args.formats or ["md", "json"])
    finally:
        store.close()


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
    return EXIT_OK


def _code(args: argparse.Namespace) -> int:
    from workbench.core.codegen import generate
    from workbench.core.config import load_settings
    from workbench.core.errors import ConfigError
    from workbench.core.prompts import pin, prompts_folder, to_request
    from workbench.core.workspace import WORKSPACE_FILE

    workspace = workspace_dir(args.workspace, args.command)
    config_file = workspace / WORKSPACE_FILE
    config = load_settings(config_file if config_file.is_file() else None).config
    prompt, version = pin(workspace, args.ref)
    target = args.target or next(iter(prompt.targets or config.defaults.targets), None)
    if target is None:
        raise ConfigError(f"prompt '{prompt.name}' has no targets", "pass --target PROVIDER/MODEL")
    request = to_request(prompt, variables(args.var), folder=prompts_folder(workspace))
    if args.images or args.image_detail:
        from workbench.core.attachments import load_attachments

        request = request.with_attachments(load_attachments(args.images, detail=args.image_detail))
    target = config.expand(target)
    if any(m.attachments for m in request.messages):  # a detail or a PDF the target's wire cannot carry
        from workbench.core.providers.attachments import check_targets

        check_targets(request, [target], config.provider_specs())
    sys.stdout.write(generate(request, target, lang=args.lang, sdk=args.sdk,
                              providers=config.provider_specs(), title=f"prompt {prompt.name} v{version.number}"))
    return EXIT_OK
