"""``workbench evals list|show|resume|cancel|diff``: the eval runs stored beside the trace log."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.cli._shared import EXIT_FAILED, EXIT_OK, console, eval_store, settings
from workbench.figures import usd

if TYPE_CHECKING:
    from workbench.core.config import Settings
    from workbench.core.evals.model import RunInfo
    from workbench.core.evals.run_store import EvalStore
    from workbench.core.team.queries import PushedBy, TeamRuns


def _resume(args: argparse.Namespace, run: RunInfo, config: Settings) -> int:
    """``evals resume RUN``: ``eval SUITE --resume RUN`` on the run's suite and targets (its batches waited for and
    collected first: :mod:`workbench.cli.eval_batch`); ``evals cancel RUN``: the same run's batches still running
    cancelled, nothing else done."""
    from workbench.cli import build_parser, command
    from workbench.core.evals.suite import load_suite

    workspace = config.workspace or Path.cwd()
    path = Path(run.suite_path) if Path(run.suite_path).is_absolute() else workspace / run.suite_path
    words = ["eval", str(path), "--resume", run.id]
    if set(run.targets) != {target.label for target in load_suite(path, workspace).targets}:  # run with -t
        words += [word for target in run.targets for word in ("-t", target)]
    if args.json:
        words.append("--json")
    if args.config:
        words += ["--config", args.config]
    eval_args = build_parser().parse_args(words)
    eval_args.cancel_batches = args.evals_command == "cancel"
    return command("eval")(eval_args)


STORES = ("team", "local")
"""The prefixes of a RUN as written that pick its store: ``team:RUN``, ``local:RUN``."""


def _side(ref: str, team: bool) -> tuple[str, str]:
    """(store, run) of a RUN as written: ``team:``/``local:`` pick the store, else ``--team`` does."""
    store, sep, rest = ref.partition(":")
    if sep and store in STORES:
        return store, rest
    return ("team" if team else "local"), ref


def _refs(args: argparse.Namespace) -> list[str]:
    if args.evals_command == "diff":
        return [args.base, args.head]
    return [args.run] if args.evals_command == "show" else []


def run(args: argparse.Namespace) -> int:
    """``list``, ``show`` and ``diff`` read the local eval store, or the team store (``--team``, a ``team:RUN``): a
    diff may compare a local run with a team run (``evals diff RUN team:RUN``)."""
    config = settings(args)
    if args.evals_command in ("resume", "cancel"):
        store = eval_store(config)
        run = store.run(args.run)
        store.close()
        return _resume(args, run, config)
    sides = [_side(ref, args.team) for ref in _refs(args)]
    if not args.team and all(store == "local" for store, _ in sides):
        return _act(args, sides, {"local": eval_store(config)})
    from workbench.cli.team_reads import on_team_store
    from workbench.core.team.queries import TeamRuns

    def act(conn: Any) -> int:
        sources: dict[str, EvalStore | TeamRuns] = {"team": TeamRuns(conn)}
        if any(store == "local" for store, _ in sides):
            sources["local"] = eval_store(config)
        return _act(args, sides, sources)

    return on_team_store(config, act)


def _act(args: argparse.Namespace, sides: list[tuple[str, str]], sources: dict[str, EvalStore | TeamRuns]) -> int:
    from workbench.core.evals.diff import diff_runs
    from workbench.core.evals.report_data import cells_of, report_for
    from workbench.core.evals.report_formats import render

    if args.evals_command == "list":
        _list(sources["team" if args.team else "local"], args)
        return EXIT_OK
    if args.evals_command == "show":  # as the run reported it: its recorded gate, comparison and verdict
        source = sources[sides[0][0]]
        sys.stdout.write(render(report_for(source, source.run(sides[0][1])), args.format))
        return EXIT_OK
    (base_store, base_ref), (head_store, head_ref) = sides
    base = sources[base_store].run(base_ref)
    head = sources[head_store].run(head_ref)
    from workbench.core.evals.model import RunReport

    diff = diff_runs(RunReport(base, cells_of(sources[base_store], base)),
                     RunReport(head, cells_of(sources[head_store], head)))
    for entry in diff.entries:
        if args.json:
            print(json.dumps({"test": entry.key.test, "prompt": entry.key.prompt, "target": entry.key.target,
                              "change": entry.change,
                              "base_pass_rate": entry.base.pass_rate if entry.base else None,
                              "head_pass_rate": entry.head.pass_rate if entry.head else None,
                              "cost_delta_usd": entry.cost_delta, "latency_delta_ms": entry.latency_delta_ms}))
        elif entry.change != "unchanged":
            print(f"{entry.change:<12} {entry.key.test} · {entry.key.prompt} · {entry.key.target}")
    if not args.json:  # a diff with nothing to show still says what it compared
        counts = Counter(entry.change for entry in diff.entries)
        changes = ", ".join(f"{n} {change}" for change, n in sorted(counts.items())) or "no cells"
        mixed = base_store != head_store  # a local run against a team run: each id says where it is from
        print(f"{base_store + ':' if mixed else ''}{base.id} → {head_store + ':' if mixed else ''}{head.id}: "
              f"{changes}")
    return EXIT_FAILED if diff.regressions else EXIT_OK


def _list(source: EvalStore | TeamRuns, args: argparse.Namespace) -> None:
    """The newest runs, as a table or JSON lines; from the team store with who pushed each (``user``, ``host``)."""
    from rich.console import Group
    from rich.text import Text

    from workbench.cli.render import Target, new_table, print_table
    from workbench.cli.team_reads import pushed_by

    team = args.team
    table = new_table("id", *(("pushed by",) if team else ()), "suite", "state", "USD", "targets", numbers=("USD",),
                      whole=("id", "state"))
    for info in source.runs(args.suite, args.limit):
        row: dict[str, Any] = {
            "id": info.id, "suite": info.suite, "status": info.status, "stop_reason": info.stop_reason,
            "verdict": info.verdict, "started_at": info.started_at, "repeat": info.repeat,
            "targets": list(info.targets), "cost_usd": round(info.cost_usd, 6)}
        who = _pushed_by(source, info) if team else None
        if who is not None:
            row.update(user=who.user, host=who.host)
        state = "interrupted" if info.stop_reason == "interrupted" else info.verdict or info.status
        if args.json:
            print(json.dumps(row))
        else:
            table.add_row(info.id, *((Text(pushed_by(who.user, who.host)),) if who is not None else ()), info.suite,
                          state, usd(info.cost_usd), Group(*(Target(target) for target in info.targets)))  # one a line
    if table.row_count:
        print_table(table, console())


def _pushed_by(source: EvalStore | TeamRuns, run: RunInfo) -> PushedBy:
    from workbench.core.team.queries import TeamRuns

    assert isinstance(source, TeamRuns)  # --team lists the team store's runs
    return source.pushed_by(run)
