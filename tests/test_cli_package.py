"""The shape of ``workbench.cli``: one module per command, none importing another, each imported only when its
command runs; and no process-wide setting changed by library code."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp

from workbench.cli import COMMANDS, build_parser

PACKAGE = "workbench.cli"
NOT_COMMANDS = {"arguments", "arguments_evals", "argument_parts", "_shared", "render", "eval_batch", "team",
                "team_reads"}
"""The package's modules that are not a command: arguments (and the parts they share), shared helpers, renderings,
the batch phase of ``eval``/``evals resume``, the team store's sync report (``sync``, ``eval --sync``) and its reads
(``--team``)."""


def test_every_module_of_the_package_is_a_command_or_a_known_helper() -> None:
    modules = {path.stem for path in Path(__file__).parents[1].joinpath("workbench", "cli").glob("*.py")}
    assert modules - {"__init__"} == set(COMMANDS.values()) | NOT_COMMANDS


def test_no_command_module_imports_another_or_the_package() -> None:
    graph = grimp.build_graph("workbench", cache_dir=None)  # every import, function-level ones included
    commands = {f"{PACKAGE}.{name}" for name in COMMANDS.values()}
    dispatching = {f"{PACKAGE}.evals"}  # `evals resume RUN` runs `eval --resume RUN` through the package's command()
    for module in sorted(commands):
        inside = {m for m in graph.find_modules_directly_imported_by(module) if m.startswith(PACKAGE)}
        allowed = {f"{PACKAGE}.{name}" for name in NOT_COMMANDS} | ({PACKAGE} if module in dispatching else set())
        assert inside <= allowed, module
    for helper in NOT_COMMANDS:
        imported = graph.find_modules_directly_imported_by(f"{PACKAGE}.{helper}")
        assert not imported & (commands | {PACKAGE}), helper


def test_the_parser_is_built_without_importing_any_command() -> None:
    code = ("import sys; from workbench.cli import build_parser; build_parser(); "
            "print(sorted(m for m in sys.modules if m.startswith('workbench.cli.')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == ("['workbench.cli._shared', 'workbench.cli.argument_parts', "
                                     "'workbench.cli.arguments', 'workbench.cli.arguments_evals']")


def test_every_command_has_a_parser_and_a_module() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert sub.choices is not None and sorted(sub.choices) == sorted(COMMANDS)


def test_library_code_changes_no_process_wide_setting() -> None:
    """The collector and the GIL switch interval belong to a program's entry point (workbench.process_settings,
    used by the CLI's commands and the benchmarks; the network child is a program of its own)."""
    calls = {("sys", "setswitchinterval"), ("gc", "set_threshold"), ("gc", "disable"), ("gc", "enable")}
    core = Path(__file__).parents[1] / "workbench" / "core"
    found = []
    for path in core.rglob("*.py"):
        if path.name == "netchild.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and (node.value.id, node.attr) in calls):
                found.append(f"{path.name}:{node.lineno} {node.value.id}.{node.attr}")
    assert found == []
