"""The headless face: the ``workbench`` command line. Thin: parsing and printing only.

One module per command (``run``, ``tokens``, ``traces``, ``keys``, ``prompts``, ``sessions``, ``export``,
``eval``, ``evals``, ``init``, ``config``, ``models``, ``fake-server``, ``proxy``, ``load``, ``sync``), each with
``run(args) -> int``;
their arguments are in :mod:`workbench.cli.arguments`, what several of them share in :mod:`workbench.cli._shared`,
their rich renderings in :mod:`workbench.cli.render`. No command module imports another one, and a command's
module is imported only when that command runs.

`workbench run` imports little before its request is out (the other commands' modules, rich, the trace store,
tokenizers and price data come later or not at all) and starts its network process first, so that the child's
start-up overlaps this one's: see bench/startup.py and BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from workbench import __version__
from workbench.cli import arguments, arguments_evals
from workbench.cli._shared import EXIT_INTERRUPTED, EXIT_OK, EXIT_PIPE, EXIT_USAGE
from workbench.cli.argument_parts import Subparsers
from workbench.core.errors import WorkbenchError
from workbench.process_settings import pause_collection, resume_collection

if TYPE_CHECKING:
    from workbench.core.netproc import NetworkProcess
    from workbench.core.netspawn import Spawned

__all__ = ["COMMANDS", "build_parser", "main"]

COMMANDS: dict[str, str] = {
    "run": "run", "tokens": "tokens", "traces": "traces", "keys": "keys", "prompts": "prompts",
    "sessions": "sessions", "export": "export", "eval": "eval", "evals": "evals", "init": "init",
    "config": "config", "models": "models", "fake-server": "fake_server", "proxy": "proxy", "load": "load",
    "sync": "sync",
}
"""Each command and its module in this package (which has ``run(args) -> int``), in the order of the help."""

_ADDERS: dict[str, Callable[[Subparsers], None]] = {
    "run": arguments.add_run, "tokens": arguments.add_tokens, "traces": arguments.add_traces,
    "keys": arguments.add_keys, "prompts": arguments.add_prompts, "sessions": arguments.add_sessions,
    "export": arguments.add_export, "init": arguments.add_init, "config": arguments.add_config,
    "models": arguments.add_models, "eval": arguments_evals.add_eval, "evals": arguments_evals.add_evals,
    "fake-server": arguments.add_fake_server, "proxy": arguments.add_proxy, "load": arguments_evals.add_load,
    "sync": arguments.add_sync,
}


def build_parser(run_only: bool = False) -> argparse.ArgumentParser:
    """The command line; with ``run_only`` just ``workbench run`` (its help and errors are the same)."""
    parser = arguments.Parser(prog="workbench", description="A terminal workbench for LLM engineers.")
    parser.add_argument("--version", action="version", version=f"workbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command, add in _ADDERS.items():
        if command == "run" or not run_only:
            add(sub)
    return parser


def command(name: str) -> Callable[[argparse.Namespace], int]:
    """The ``run`` function of command ``name``, its module imported now."""
    module = importlib.import_module(f"{__name__}.{COMMANDS[name]}")
    run: Callable[[argparse.Namespace], int] = module.run
    return run


def main(argv: Sequence[str] | None = None, *, spawned: Spawned | None = None) -> int:
    """The command line ``argv`` (this process's arguments when ``None``: it then is the command);
    ``spawned``: the network process :mod:`workbench.launch` started for ``workbench run``."""
    words = sys.argv[1:] if argv is None else list(argv)
    if words[:1] == ["run"]:
        if argv is None:  # this process is the command
            pause_collection()
        code = _main_run(words, spawned)
        if argv is None:  # ... and it closed and committed all it opened
            _exit_now(code)
        return code
    parser = build_parser()
    args = parser.parse_args(words)
    if args.command is None:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):  # piped or scripted: no TUI, the help
            parser.print_help()
            return EXIT_OK
        from workbench.ui.app import run_tui

        return run_tui()
    return _dispatch(lambda: command(args.command)(args))


def _main_run(argv: list[str], spawned: Spawned | None) -> int:
    """``workbench run``: the network process starts before anything else (its start-up, ~0.2 s of imports,
    then overlaps reading the configuration here; :mod:`workbench.launch` has started it already), then
    only the ``run`` parser is built."""
    from workbench.core.netproc import NetworkProcess

    net: NetworkProcess | None = None
    try:
        with contextlib.suppress(WorkbenchError):  # cannot start: the command says why
            net = NetworkProcess(spawned=spawned)
        args = build_parser(run_only=True).parse_args(argv)
        from workbench.cli import run

        return _dispatch(lambda: run.run(args, net))
    finally:
        resume_collection()
        if net is not None:
            net.close(wait=net.raced)


def _reader_gone() -> None:
    """Quietly: stdout's reader closed the pipe. What is still buffered can never be written; pointing stdout
    at /dev/null keeps the interpreter's last flush from failing with a traceback (Python's documented way)."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _exit_now(code: int) -> None:
    """Exit without tearing the interpreter down: freeing every module and object of a process that
    imported pydantic, httpx2 and the trace store takes ~0.1 s, after the output is complete. Only for a
    command that has closed what it opened (the network process, the trace log, servers it started)."""
    with contextlib.suppress(OSError, ValueError):  # a reader that went away (`| head`) or a closed stream
        sys.stdout.flush()
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    os._exit(code)


def _dispatch(command: Callable[[], int]) -> int:
    try:
        code = command()
        sys.stdout.flush()  # here, where a reader gone away is handled, not at the interpreter's exit
        return code
    except BrokenPipeError:  # `workbench traces list --json | head -1`: the reader has what it wanted
        _reader_gone()
        return EXIT_PIPE
    except WorkbenchError as exc:
        hint = f"\n  hint: {exc.hint}" if exc.hint else ""
        print(f"workbench: {exc}{hint}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
